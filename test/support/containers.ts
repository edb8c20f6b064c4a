/**
 * Real containers for tests, with podman: the image built from Containerfile
 * as written, and compose.yaml's services run as the file says (environment,
 * hardening, health check, volumes, network aliases), each an ordinary
 * `podman run`. Every podman command gets CONTAINERS_CONF=containers.conf
 * beside this file (runc, open-files limits this machine allows).
 *
 * The bases the Containerfile names come from a registry where one is
 * reachable; where none is, stand-ins/build.sh makes local images under the
 * same names (test scaffolding), and every build uses `--pull=never`.
 *
 * @example
 * const gate = podmanGate('the image tests');
 * const image = await buildImage('runtime');
 * const scope = new ContainerScope('image');
 * const monolith = await runComposeService(compose, 'monolith', { scope, publish: true });
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  durationSeconds,
  environmentOf,
  fromRoot,
  networkAliases,
  PACKAGE,
  portsOf,
  type ComposeFile,
  type ComposeService,
} from './deployment.ts';
import { IN_CI, warnSkipped } from './loud-skip.ts';
import { sleep } from './processes.ts';

const CONTAINERS_CONF = process.env.CONTAINERS_CONF ?? fromRoot('test/support/containers.conf');
const STAND_IN_SCRIPT = fromRoot('test/support/stand-in-bases/build.sh');

/** The image every compose service and Kubernetes workload runs, tagged with the package version. */
export const APP_IMAGE = `ghcr.io/ticket-system/${PACKAGE.name}:${PACKAGE.version}`;
export type Target = 'runtime' | 'bun' | 'debug';
export const imageTag = (target: Target) => (target === 'runtime' ? APP_IMAGE : `${APP_IMAGE}-${target}`);

export interface PodmanResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `podman args...`; never throws for a non-zero exit (see {@link podman} for that). */
export function podmanResult(args: string[], options: { timeoutMs?: number } = {}): Promise<PodmanResult> {
  return run('podman', args, options.timeoutMs ?? 60_000);
}

/** Runs a command with CONTAINERS_CONF set, collecting its output; kills it after `timeoutMs`. */
function run(command: string, args: string[], timeoutMs: number): Promise<PodmanResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: fromRoot(),
      env: { ...process.env, CONTAINERS_CONF },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs `podman args...` and answers its stdout, trimmed; throws with stderr on a non-zero exit. */
export async function podman(args: string[], options: { timeoutMs?: number } = {}) {
  const result = await podmanResult(args, options);
  if (result.code !== 0) {
    throw new Error(`podman ${args.join(' ')} exited ${result.code}:\n${withoutSystemdNoise(result.stderr)}`);
  }
  return result.stdout.trim();
}

/**
 * Drops podman's complaints that it cannot reach systemd to schedule health
 * checks (there is no systemd in these containers' host): the checks are run
 * by the tests themselves with `podman healthcheck run`.
 */
export function withoutSystemdNoise(text: string): string {
  return text
    .split('\n')
    .filter((line) => !/systemd|failed to connect to syslog/.test(line))
    .join('\n');
}

export interface PodmanGate {
  skip: boolean;
  reason?: string;
  /** Throws when podman cannot run containers here (under CI=true the tests fail instead of skipping). */
  assertReady(): void;
}

/** Whether podman can run containers here; a skip is loud, and under CI=true a failure. */
export function podmanGate(what: string): PodmanGate {
  const version = spawnSync('podman', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  let reason: string | undefined;
  if (version.status !== 0) reason = `podman is not installed (${version.error?.message ?? version.stderr.trim()})`;
  else {
    const info = spawnSync('podman', ['info', '--format', '{{.Host.OCIRuntime.Name}}'], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, CONTAINERS_CONF },
    });
    if (info.status !== 0) reason = `podman cannot run containers here: ${info.stderr.trim()}`;
  }
  if (reason !== undefined && !IN_CI) warnSkipped(what, `${reason}; .ci/run installs podman and runc`);
  return {
    skip: reason !== undefined && !IN_CI,
    reason,
    assertReady() {
      if (reason !== undefined) throw new Error(`${reason}. Under CI=true the container tests must run, not skip.`);
    },
  };
}

/**
 * Serializes work across the test files that run at once (vitest forks): one
 * image build at a time, so the second finds every layer in the cache.
 */
async function withLock<T>(name: string, work: () => Promise<T>, timeoutMs = 30 * 60_000): Promise<T> {
  const lock = join(tmpdir(), `ticket-system-${name}.lock`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // A lock left by a run that was killed is older than any build takes.
      if (Date.now() - statSync(lock, { throwIfNoEntry: false })!.mtimeMs > timeoutMs) rmdirSync(lock);
      if (Date.now() > deadline) throw new Error(`${lock} held for ${timeoutMs} ms`, { cause: error });
      await sleep(500);
    }
  }
  try {
    return await work();
  } finally {
    rmdirSync(lock);
  }
}

let standInsReady: Promise<void> | undefined;

/** The bases the Containerfile and compose.yaml name: real ones if present, else local stand-ins. */
export function ensureBaseImages(): Promise<void> {
  standInsReady ??= withLock('stand-in-bases', async () => {
    const started = performance.now();
    const result = await run('bash', [STAND_IN_SCRIPT], 20 * 60_000);
    if (result.code !== 0) throw new Error(`${STAND_IN_SCRIPT} failed:\n${result.stdout}\n${result.stderr}`);
    const built = result.stdout.split('\n').filter((line) => line.startsWith('stand-in: '));
    if (built.length > 0)
      report(`stand-in bases built in ${((performance.now() - started) / 1000).toFixed(0)} s: ${built.join('; ')}`);
  });
  return standInsReady;
}

/**
 * Prints a measurement (a build's time, the image's size, what a signal mid-burst did) straight
 * to stderr, past vitest's console capture (`silent: 'passed-only'`), so CI's log shows it.
 */
export function report(line: string): void {
  process.stderr.write(`[containers] ${line}\n`);
}

/** What one build took; the image test prints it. */
export const buildSeconds: Partial<Record<Target, number>> = {};

/**
 * Builds `target` of Containerfile (as `npx just image` does, plus the flags
 * this machine needs: no pull, host network for npm ci) and answers its tag.
 */
export async function buildImage(target: Target): Promise<string> {
  await ensureBaseImages();
  const tag = imageTag(target);
  await withLock('image-build', async () => {
    const started = performance.now();
    await podman(
      [
        'build',
        '--format',
        'docker',
        '--pull=never',
        '--network',
        'host',
        '-f',
        'Containerfile',
        '--target',
        target,
      ].concat(['-t', tag, '.']),
      { timeoutMs: 20 * 60_000 },
    );
    buildSeconds[target] = (performance.now() - started) / 1000;
  });
  return tag;
}

/** The image's configuration as the engine recorded it (`podman image inspect`). */
export interface ImageConfig {
  User: string;
  Env: string[];
  Entrypoint: string[] | null;
  Cmd: string[] | null;
  WorkingDir: string;
  ExposedPorts?: Record<string, object>;
  Volumes?: Record<string, object>;
  Labels?: Record<string, string>;
}

export interface InspectedImage {
  Size: number;
  Config: ImageConfig;
  /** HEALTHCHECK (kept by `--format docker`). */
  Healthcheck?: { Test: string[] };
}

export async function inspectImage(tag: string): Promise<InspectedImage> {
  const [image] = JSON.parse(await podman(['image', 'inspect', tag])) as InspectedImage[];
  if (!image) throw new Error(`no image ${tag}`);
  return image;
}

/**
 * Names of everything a test file makes (containers, pods, volumes, one
 * network), unique to the run, and their removal.
 */
export class ContainerScope {
  readonly prefix: string;
  readonly network: string;
  #containers: string[] = [];
  #pods: string[] = [];
  #volumes = new Set<string>();
  #networkMade = false;

  constructor(what: string) {
    this.prefix = `ts-${what}-${randomBytes(3).toString('hex')}`;
    this.network = `${this.prefix}_default`;
  }

  name(what: string): string {
    return `${this.prefix}-${what}`;
  }

  volume(name: string): string {
    const volume = `${this.prefix}_${name}`;
    this.#volumes.add(volume);
    return volume;
  }

  async ensureNetwork(): Promise<string> {
    if (!this.#networkMade) {
      await podman(['network', 'create', this.network]);
      this.#networkMade = true;
    }
    return this.network;
  }

  trackContainer(name: string): void {
    this.#containers.push(name);
  }

  trackPod(name: string): void {
    this.#pods.push(name);
  }

  async removeAll(): Promise<void> {
    for (const name of this.#containers.reverse()) await podmanResult(['rm', '-f', '-v', '-t', '0', name]);
    for (const name of this.#pods) await podmanResult(['pod', 'rm', '-f', name]);
    for (const volume of this.#volumes) await podmanResult(['volume', 'rm', '-f', volume]);
    if (this.#networkMade) await podmanResult(['network', 'rm', '-f', this.network]);
  }
}

/** One compose service replica running as a container. */
export interface RunningService {
  service: string;
  container: string;
  /** The pod that holds the replica's network namespace (its address and published ports). */
  pod: string;
  image: string;
  /** The environment compose gives the container (the image's ENV comes on top of nothing else). */
  env: Record<string, string>;
  /** http://127.0.0.1:<host port> for each published container port. */
  urls: Map<number, string>;
}

/** compose.yaml keys this runner understands; any other key in a service stops the test. */
const SUPPORTED_KEYS = new Set([
  'image',
  'build',
  'command',
  'env_file',
  'environment',
  'ports',
  'volumes',
  'depends_on',
  'healthcheck',
  'restart',
  'stop_grace_period',
  'read_only',
  'tmpfs',
  'cap_drop',
  'security_opt',
  'profiles',
  'deploy',
  'networks',
]);

/**
 * Runs replica `replica` of compose service `name` as `docker compose up`
 * would, in a pod of its own on the scope's network (the pod carries the
 * service name and its aliases, so other services reach it by name, and a
 * container started later in the same pod sees the same 127.0.0.1). Taken
 * from the file: image, command, environment, volumes (named volumes of the
 * scope), healthcheck, restart, read_only, tmpfs, cap_drop, security_opt,
 * stop_grace_period, network aliases. Adapted for a test: published ports go
 * to free ports on 127.0.0.1; env_file (an optional .env) is replaced by `dotenv`;
 * `image` may name another build of the same Containerfile (its bun target).
 */
export async function runComposeService(
  compose: ComposeFile,
  name: string,
  options: {
    scope: ContainerScope;
    replica?: number;
    image?: string;
    dotenv?: Record<string, string>;
    /** Keep the image's own HEALTHCHECK instead of compose's (for an image compose does not name). */
    imageHealthcheck?: boolean;
  },
): Promise<RunningService> {
  const service = compose.services[name];
  if (!service) throw new Error(`compose.yaml has no service ${name}`);
  const unknown = Object.keys(service).filter((key) => !SUPPORTED_KEYS.has(key));
  if (unknown.length > 0)
    throw new Error(`compose service ${name}: this runner does not implement ${unknown.join(', ')}`);
  const { scope } = options;
  const replica = options.replica ?? 1;
  const image = options.image ?? service.image;
  if (!image) throw new Error(`compose service ${name} names no image`);

  const network = await scope.ensureNetwork();
  const pod = scope.name(`${name}-${replica}-pod`);
  const aliases = [name, ...networkAliases(service)];
  const containerPorts = portsOf(service).map((port) => port.target);
  await podman([
    'pod',
    'create',
    '--name',
    pod,
    '--network',
    network,
    ...aliases.flatMap((alias) => ['--network-alias', alias]),
    ...containerPorts.flatMap((port) => ['-p', `127.0.0.1::${port}`]),
  ]);
  scope.trackPod(pod);

  const env = { ...options.dotenv, ...environmentOf(service) };
  const container = scope.name(`${name}-${replica}`);
  const args = ['run', '-d', '--name', container, '--pod', pod];
  for (const [key, value] of Object.entries(env)) args.push('-e', `${key}=${value}`);
  for (const volume of service.volumes ?? []) {
    if (typeof volume !== 'string') throw new Error(`compose service ${name}: long-form volumes are not implemented`);
    const [source = '', target, mode] = volume.split(':');
    if (!target || source.startsWith('.') || source.startsWith('/'))
      throw new Error(`compose service ${name}: only named volumes are implemented (${volume})`);
    args.push('-v', `${scope.volume(source)}:${target}${mode ? `:${mode}` : ''}`);
  }
  if (typeof service.restart === 'string') args.push('--restart', service.restart);
  if (service.read_only) args.push('--read-only');
  for (const path of (service.tmpfs as string[] | undefined) ?? []) args.push('--tmpfs', path);
  for (const cap of (service.cap_drop as string[] | undefined) ?? []) args.push('--cap-drop', cap);
  for (const opt of (service.security_opt as string[] | undefined) ?? []) args.push('--security-opt', opt);
  if (service.stop_grace_period)
    args.push('--stop-timeout', String(Math.ceil(durationSeconds(service.stop_grace_period))));
  if (!options.imageHealthcheck) args.push(...healthcheckArgs(service));
  args.push(image);
  if (service.command !== undefined) {
    if (!Array.isArray(service.command)) throw new Error(`compose service ${name}: command must be a list`);
    args.push(...(service.command as string[]));
  }
  await podman(args);
  scope.trackContainer(container);

  const urls = new Map<number, string>();
  const infra = await podman(['pod', 'inspect', pod, '--format', '{{.InfraContainerID}}']);
  for (const port of containerPorts) {
    const hostPort = (await podman(['port', infra, `${port}/tcp`])).split('\n')[0]?.trim();
    urls.set(port, `http://${hostPort}`);
  }
  return { service: name, container, pod, image, env, urls };
}

/** compose's `healthcheck:` as podman flags; ['CMD', ...argv] is exec form, ['CMD-SHELL', line] a shell. */
function healthcheckArgs(service: ComposeService): string[] {
  const check = service.healthcheck;
  if (!check) return [];
  const test = typeof check.test === 'string' ? ['CMD-SHELL', check.test] : check.test;
  // podman takes exec form as a JSON array without the CMD word, a shell line as a plain string.
  const command = test[0] === 'CMD' ? JSON.stringify(test.slice(1)) : test.slice(1).join(' ');
  const args = ['--health-cmd', command];
  if (check.interval) args.push('--health-interval', check.interval);
  if (check.timeout) args.push('--health-timeout', check.timeout);
  if (check.retries !== undefined) args.push('--health-retries', String(check.retries));
  if (check.start_period) args.push('--health-start-period', check.start_period);
  return args;
}

/**
 * Runs the container's health check (`podman healthcheck run`, the command
 * compose gave it) until it passes: what `depends_on: condition:
 * service_healthy` waits for. A container that exits meanwhile may be
 * started again by its restart policy, so only the deadline ends the wait.
 */
export async function waitUntilHealthy(container: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: PodmanResult | undefined;
  while (Date.now() < deadline) {
    last = await podmanResult(['healthcheck', 'run', container]);
    if (last.code === 0) return;
    await sleep(250);
  }
  const logs = await podmanResult(['logs', '--tail', '40', container]);
  throw new Error(
    `${container} not healthy within ${timeoutMs} ms (last check: ${last?.stdout.trim()} ${withoutSystemdNoise(last?.stderr ?? '')})\n` +
      `${logs.stdout}${withoutSystemdNoise(logs.stderr)}`,
  );
}

/** The exit code of a stopped container (`podman wait`). */
export async function waitForExit(container: string, timeoutMs = 60_000): Promise<number> {
  return Number(await podman(['wait', container], { timeoutMs }));
}

/** The container's log, stdout and stderr together. */
export async function containerLogs(container: string): Promise<string> {
  const result = await podmanResult(['logs', container]);
  return `${result.stdout}${withoutSystemdNoise(result.stderr)}`;
}
