/**
 * The container image, built with podman from Containerfile as written and
 * run for real: what the image is (user, entrypoint, health check, no shell,
 * the size of what it adds to its base), what its build context holds, and a
 * monolith container hardened as compose.yaml runs it, with its stock on a
 * named volume: it sells, stops on a real SIGTERM with every accepted
 * purchase answered, hands its stock to the next container, and loses no
 * acknowledged sale to `podman kill -s KILL`. The monolith checks run for the
 * default target (distroless Node) and for the `bun` target. The store is the
 * image's default, checked only through the API.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { durationSeconds, fromRoot, isKnownVariable, loadCompose } from './support/deployment.ts';
import {
  buildImage,
  buildSeconds,
  ContainerScope,
  containerLogs,
  inspectImage,
  podman,
  podmanGate,
  podmanResult,
  report,
  runComposeService,
  waitForExit,
  waitUntilHealthy,
  type RunningService,
  type Target,
} from './support/containers.ts';
import { requestJson, type PurchaseBody } from './support/http-json.ts';
import { parseConfig } from '../src/config.ts';

const gate = podmanGate('the container image tests (podman)');
// Each test starts containers and waits for their health checks: seconds alone, more beside a whole suite.
vi.setConfig({ testTimeout: 180_000 });
/** Builds may take minutes on a machine that has not built the image before (npm ci inside). */
const BUILD_TIMEOUT_MS = 20 * 60_000;
const MONOLITH_PORT = 8000;
const APPLICATION_LAYERS_GOAL_BYTES = 25_000_000;
const INITIAL_STOCK = 100_000;
/** Purchases in flight at once while a signal lands, and how many are answered before it is sent. */
const LOAD_WORKERS = 32;
const SIGNAL_AFTER = 200;
/** A bound on one load, should the signal never stop the server. */
const LOAD_LIMIT = 20_000;
const compose = loadCompose({});
const monolithService = compose.services.monolith;

describe.skipIf(gate.skip)('the runtime image (Containerfile, default target)', () => {
  let image: string;
  let inspected: Awaited<ReturnType<typeof inspectImage>>;

  beforeAll(async () => {
    gate.assertReady();
    image = await buildImage('runtime');
    inspected = await inspectImage(image);
    report(`runtime target built in ${buildSeconds.runtime?.toFixed(1)} s`);
  }, BUILD_TIMEOUT_MS);

  it('runs node itself as PID 1 as uid 65532, health-checks with the bundle, exposes every MODE`s port', () => {
    const config = inspected.Config;
    expect(config.User).toBe('65532:65532');
    expect(config.Entrypoint).toEqual(['/nodejs/bin/node', 'dist/main.js']);
    expect(config.Cmd ?? null).toBeNull();
    expect(config.WorkingDir).toBe('/app');
    expect(inspected.Healthcheck?.Test).toEqual(['CMD', '/nodejs/bin/node', 'dist/main.js', 'healthcheck']);
    const env = Object.fromEntries(
      config.Env.map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
    );
    const own = Object.keys(env).filter((name) => !['PATH', 'SSL_CERT_FILE', 'HOME', 'HOSTNAME'].includes(name));
    expect(
      own.filter((name) => !isKnownVariable(name)),
      'ENV names src/config.ts does not know',
    ).toEqual([]);
    expect(env).toMatchObject({ NODE_ENV: 'production', ENVIRONMENT: 'production', DATA_DIR: '/data' });
    const modePorts = (['monolith', 'vacancy', 'ticket'] as const).map((MODE) => parseConfig({ ...env, MODE }).port);
    expect(Object.keys(config.ExposedPorts ?? {}).sort()).toEqual(modePorts.map((port) => `${port}/tcp`).sort());
    expect(Object.keys(config.Volumes ?? {})).toEqual([parseConfig(env).DATA_DIR]);
  });

  it('is health-checked by compose with the image`s own command', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      if (service.image !== image) continue;
      expect(service.healthcheck?.test, name).toEqual(inspected.Healthcheck?.Test);
    }
  });

  it('has no shell, and its process cannot write outside /data', async () => {
    for (const shell of ['/bin/sh', 'sh', '/bin/bash', '/bin/busybox']) {
      const run = await podmanResult(['run', '--rm', '--entrypoint', shell, image, '-c', 'true']);
      expect(run.code, `${shell} ran in the image`).not.toBe(0);
    }
    const probe = `
      const fs = require('node:fs');
      const writable = (path) => { try { fs.writeFileSync(path, 'x'); fs.rmSync(path); return true; } catch { return false; } };
      const found = ['/bin', '/usr/bin', '/sbin', '/usr/sbin', '/usr/local/bin']
        .flatMap((dir) => ['sh', 'bash', 'dash', 'ash', 'busybox', 'apt', 'apt-get', 'dpkg', 'npm', 'curl', 'wget'].map((name) => dir + '/' + name))
        .filter((path) => fs.existsSync(path));
      console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), node: process.versions.node,
        found, app: writable('/app/x'), dist: writable('/app/dist/x'), data: writable('/data/x'),
        nodeModules: fs.readdirSync('/app/node_modules') }));`;
    const seen = JSON.parse(await podman(['run', '--rm', '--entrypoint', '/nodejs/bin/node', image, '-e', probe])) as {
      uid: number;
      gid: number;
      node: string;
      found: string[];
      app: boolean;
      dist: boolean;
      data: boolean;
      nodeModules: string[];
    };
    expect(seen).toMatchObject({ uid: 65532, gid: 65532, app: false, dist: false, data: true });
    expect(seen.node).toMatch(/^24\./);
    expect(seen.found, 'shells, package managers, downloaders').toEqual([]);
    // Everything else is bundled into dist/ (tsup.config.ts).
    expect(seen.nodeModules).toEqual(['swagger-ui-dist']);
  });

  it(`adds at most ${APPLICATION_LAYERS_GOAL_BYTES / 1e6} MB of application layers to its base`, async () => {
    const baseTag = 'gcr.io/distroless/nodejs24-debian13:nonroot';
    const base = await inspectImage(baseTag);
    // The base's layers, as their sizes and the instructions that made them, are the bottom of the image's.
    const layers = (tag: string) =>
      podman(['history', '--format', 'json', tag]).then((text) =>
        (JSON.parse(text) as Array<{ size: number; CreatedBy: string }>).map((l) => `${l.size} ${l.CreatedBy}`),
      );
    const [mine, theirs] = await Promise.all([layers(image), layers(baseTag)]);
    expect(mine.slice(mine.length - theirs.length), 'built on the base the Containerfile names').toEqual(theirs);
    const application = inspected.Size - base.Size;
    // Where the bytes are: the files under /app, as the image's own node counts them.
    const count = `
      const fs = require('node:fs'), path = require('node:path');
      const size = (p) => { const s = fs.lstatSync(p); return s.isDirectory() ? fs.readdirSync(p).reduce((n, f) => n + size(path.join(p, f)), 0) : s.size; };
      console.log(JSON.stringify(Object.fromEntries(fs.readdirSync('/app').map((f) => [f, size('/app/' + f)]))));`;
    const files = JSON.parse(
      await podman(['run', '--rm', '--entrypoint', '/nodejs/bin/node', image, '-e', count]),
    ) as Record<string, number>;
    report(
      `application layers: ${(application / 1e6).toFixed(2)} MB above the base (${(base.Size / 1e6).toFixed(1)} MB): ` +
        Object.entries(files)
          .map(([name, bytes]) => `${name} ${(bytes / 1e6).toFixed(2)} MB`)
          .join(', '),
    );
    expect(application).toBeGreaterThan(0);
    expect(application).toBeLessThanOrEqual(APPLICATION_LAYERS_GOAL_BYTES);
  });
});

describe.skipIf(gate.skip)('the debug image (--target debug)', () => {
  it(
    'holds the same files as the runtime image, with a shell, as the node user',
    async () => {
      gate.assertReady();
      const [debug, runtime] = [await buildImage('debug'), await buildImage('runtime')];
      const list = `
      const fs = require('node:fs'), path = require('node:path');
      const walk = (d) => fs.readdirSync(d).flatMap((f) => fs.statSync(path.join(d, f)).isDirectory() ? walk(path.join(d, f)) : [path.join(d, f)]);
      console.log(JSON.stringify(walk('/app')));`;
      const files = async (image: string, node: string) =>
        JSON.parse(await podman(['run', '--rm', '--entrypoint', node, image, '-e', list])) as string[];
      expect(await files(debug, '/usr/local/bin/node')).toEqual(await files(runtime, '/nodejs/bin/node'));
      const shell = await podman(['run', '--rm', '--entrypoint', '/bin/sh', debug, '-c', 'id -un; node --version']);
      expect(shell.split('\n')).toEqual(['node', expect.stringMatching(/^v24\./)]);
    },
    BUILD_TIMEOUT_MS,
  );
});

describe.skipIf(gate.skip)('the build context (.dockerignore), as the engine sends it', () => {
  it(
    'holds what the build COPYs and leaves out what is made, secret or large',
    async () => {
      gate.assertReady();
      await buildImage('runtime'); // the bases, and the lock that keeps builds one at a time
      const context = mkdtempSync(join(tmpdir(), 'ticket-system-context-'));
      const scope = new ContainerScope('context');
      try {
        const files = [
          'package.json',
          'package-lock.json',
          'tsconfig.json',
          'tsup.config.ts',
          'src/main.ts',
          'src/config.test.ts',
          'README.md',
          'CHANGELOG.md',
          'docs/guide.md',
          'node_modules/hono/package.json',
          'dist/main.js',
          'data/ticket-system.db',
          '.env',
          '.env.production',
          '.env.example',
          '.git/HEAD',
          'coverage/index.html',
          'test/microservices.test.ts',
          'bench/results/run.json',
          'infra/k8s/base/kustomization.yaml',
          'isolate-0x1-1-v8.log',
        ];
        for (const file of files) {
          mkdirSync(join(context, file, '..'), { recursive: true });
          writeFileSync(join(context, file), file);
        }
        cpSync(fromRoot('.dockerignore'), join(context, '.dockerignore'));
        writeFileSync(join(context, 'Containerfile'), 'FROM node:24-trixie-slim\nCOPY . /context\n');
        const tag = `localhost/${scope.name('context')}:latest`;
        await podman(['build', '--pull=never', '-q', '-f', join(context, 'Containerfile'), '-t', tag, context]);
        try {
          const listing = await podman(['run', '--rm', tag, 'find', '/context', '-type', 'f']);
          const sent = listing
            .split('\n')
            .map((path) => path.replace(/^\/context\//, ''))
            .sort();
          expect(sent).toEqual(
            [
              'package.json',
              'package-lock.json',
              'tsconfig.json',
              'tsup.config.ts',
              'src/main.ts',
              'README.md',
              '.env.example',
            ].sort(),
          );
        } finally {
          await podmanResult(['rmi', '-f', tag]);
        }
      } finally {
        rmSync(context, { recursive: true, force: true });
        await scope.removeAll();
      }
    },
    BUILD_TIMEOUT_MS,
  );
});

// ---- a monolith container, hardened as compose.yaml runs it ----------------------------------------

type Outcome =
  | { kind: 'answered'; id: string; status: number; body: PurchaseBody | undefined; text: string }
  | { kind: 'refused' | 'reset' | 'cut'; id: string; detail: string };

/** One purchase of qty 1 with an X-Request-Id, classified like test/shutdown.test.ts does. */
async function purchaseOnce(url: string, id: string, onAnswer: () => void): Promise<Outcome> {
  let response: Response;
  try {
    response = await fetch(`${url}/api/v1/purchase`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Request-Id': id },
      body: JSON.stringify({ qty: 1 }),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const detail = `${String(error)} (${cause?.code ?? ''} ${cause?.message ?? ''})`;
    return { kind: cause?.code === 'ECONNREFUSED' ? 'refused' : 'reset', id, detail };
  }
  onAnswer();
  try {
    const text = await response.text();
    let body: PurchaseBody | undefined;
    try {
      body = JSON.parse(text) as PurchaseBody;
    } catch {
      body = undefined;
    }
    return { kind: 'answered', id, status: response.status, body, text };
  } catch (error) {
    return { kind: 'cut', id, detail: String(error) };
  }
}

/**
 * Purchases of qty 1 from {@link LOAD_WORKERS} loops at once, each going on until the server
 * stops answering it; `signal` is sent once {@link SIGNAL_AFTER} purchases have been answered, so
 * that it lands while others are in flight.
 */
async function loadUntilDown(url: string, label: string, signal: () => Promise<unknown>) {
  const outcomes: Outcome[] = [];
  let answered = 0;
  let sent = 0;
  let signalled = 0;
  let stopping: Promise<unknown> | undefined;
  const loop = async () => {
    while (sent < LOAD_LIMIT) {
      const outcome = await purchaseOnce(url, `${label}-${sent++}`, () => {});
      outcomes.push(outcome);
      if (outcome.kind !== 'answered') return; // this connection's server is gone
      answered += 1;
      if (answered === SIGNAL_AFTER) {
        signalled = performance.now();
        stopping = signal();
      }
    }
  };
  await Promise.all(Array.from({ length: LOAD_WORKERS }, loop));
  await stopping;
  return { outcomes, signalled };
}

function tally(outcomes: Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const outcome of outcomes) {
    const key = outcome.kind === 'answered' ? `answered ${outcome.status}` : outcome.kind;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** Request ids of the purchases the container's server handled, from its JSON request log. */
function handledPurchases(logs: string): Set<string> {
  const handled = new Set<string>();
  for (const line of logs.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { msg?: string; path?: string; requestId?: unknown };
      if (entry.msg === 'request' && entry.path === '/api/v1/purchase' && typeof entry.requestId === 'string')
        handled.add(entry.requestId);
    } catch {
      // a line that is not JSON (none expected) is not a request log
    }
  }
  return handled;
}

function ticketsOf(outcomes: Outcome[]): number[] {
  return outcomes.flatMap((o) =>
    o.kind === 'answered' && o.status === 200 && o.body?.success && o.body.tickets ? [o.body.tickets.first] : [],
  );
}

describe.skipIf(gate.skip || !monolithService).each<Target>(['runtime', 'bun'])(
  'a monolith container of the %s target, hardened as compose.yaml runs it, its stock on a named volume',
  (target) => {
    const scope = new ContainerScope(`monolith-${target}`);
    let image: string;
    let replica = 0;
    /** Tickets sold so far, as the volume holds them. */
    let sold = 0;
    let highestTicket = 0;

    /** The next container of compose's `monolith` service on the same volume, healthy. */
    async function startMonolith(): Promise<{ container: RunningService; url: string }> {
      replica += 1;
      const container = await runComposeService(compose, 'monolith', {
        scope,
        replica,
        image,
        // What an .env next to compose.yaml (env_file) may add; LOG_LEVEL=info logs each request.
        dotenv: { INITIAL_STOCK: String(INITIAL_STOCK), LOG_LEVEL: 'info' },
        // compose's health check names the distroless node; the bun image brings its own.
        imageHealthcheck: target === 'bun',
      });
      await waitUntilHealthy(container.container);
      return { container, url: container.urls.get(MONOLITH_PORT) as string };
    }

    beforeAll(async () => {
      gate.assertReady();
      image = await buildImage(target);
      if (target !== 'runtime') report(`${target} target built in ${buildSeconds[target]?.toFixed(1)} s`);
    }, BUILD_TIMEOUT_MS);

    afterAll(() => scope.removeAll(), 120_000);

    it('runs read-only, without capabilities or new privileges, as uid 65532', async () => {
      const { container, url } = await startMonolith();
      const [hostConfig] = JSON.parse(await podman(['inspect', container.container])) as Array<{
        HostConfig: { ReadonlyRootfs: boolean; CapDrop: string[]; CapAdd: string[] | null; SecurityOpt: string[] };
        Config: { User: string };
        Mounts: Array<{ Type: string; Name?: string; Destination: string }>;
      }>;
      expect(hostConfig?.HostConfig.ReadonlyRootfs).toBe(true);
      expect(hostConfig?.HostConfig.CapAdd ?? []).toEqual([]);
      expect(hostConfig?.HostConfig.SecurityOpt).toContain('no-new-privileges');
      expect(hostConfig?.Config.User).toBe('65532:65532');
      expect(hostConfig?.Mounts.find((m) => m.Destination === '/data')?.Type).toBe('volume');
      const capabilities = await podman([
        'exec',
        container.container,
        ...runtimeOf(target),
        '-e',
        "console.log(require('node:fs').readFileSync('/proc/self/status','utf8').match(/^CapEff:\\s*(\\S+)/m)[1])",
      ]);
      expect(capabilities, 'effective capabilities of the process').toMatch(/^0+$/);
      const root = await requestJson<{ mode: string }>(`${url}/`);
      expect(root.body.mode).toBe('monolith');
      await podman(['stop', container.container]);
    });

    it('sells, then stops on SIGTERM under load (podman stop, as compose stop does): exit 0 within stop_grace_period, every accepted purchase answered', async () => {
      const { container, url } = await startMonolith();
      const before = await requestJson<{ qty: number }>(`${url}/api/v1/available`);
      expect(before.status).toBe(200);
      sold = INITIAL_STOCK - before.body.qty;

      // SIGTERM, then SIGKILL once stop_grace_period (--stop-timeout) has passed; no restart after it.
      const { outcomes, signalled } = await loadUntilDown(url, `term-${target}`, () =>
        podman(['stop', container.container], { timeoutMs: 60_000 }),
      );
      const exitMs = performance.now() - signalled;
      const exitCode = await waitForExit(container.container);
      const logs = await containerLogs(container.container);
      const context = `${JSON.stringify(tally(outcomes))}\n${logs.split('\n').slice(-20).join('\n')}`;

      expect(exitCode, `exit code after SIGTERM\n${context}`).toBe(0);
      const graceMs = durationSeconds(monolithService?.stop_grace_period ?? '10s') * 1000;
      expect(exitMs, 'stopped before the engine would have sent SIGKILL').toBeLessThan(graceMs);
      expect(
        outcomes.filter((o) => o.kind === 'cut'),
        `answers cut off\n${context}`,
      ).toEqual([]);
      // A purchase the server handled was answered; one it never saw may have found the listener closed.
      const handled = handledPurchases(logs);
      expect(
        outcomes.filter((o) => o.kind !== 'answered' && handled.has(o.id)).map((o) => o.id),
        `purchases the server handled but whose answer never arrived\n${context}`,
      ).toEqual([]);
      // Answered: a sale, or 503 for a purchase that arrived while it was shutting down (nothing sold).
      const answered = outcomes.filter((o): o is Extract<Outcome, { kind: 'answered' }> => o.kind === 'answered');
      for (const answer of answered) {
        if (answer.status === 503) expect(answer.text).toMatch(/shutting down/i);
        else
          expect({ status: answer.status, success: answer.body?.success }, answer.text).toEqual({
            status: 200,
            success: true,
          });
      }
      const tickets = ticketsOf(outcomes);
      expect(tickets.length, context).toBeGreaterThanOrEqual(SIGNAL_AFTER);
      expect(new Set(tickets).size, 'no ticket handed out twice').toBe(tickets.length);
      sold += tickets.length;
      highestTicket = Math.max(highestTicket, ...tickets);
      report(
        `${target}: SIGTERM under load: ${JSON.stringify(tally(outcomes))}; exit 0 after ${Math.round(exitMs)} ms`,
      );
    });

    it('continues the stock in a new container on the same volume: nothing lost, nothing resold', async () => {
      const { container, url } = await startMonolith();
      const available = await requestJson<{ qty: number }>(`${url}/api/v1/available`);
      expect(available.body.qty, 'the stock the previous container left').toBe(INITIAL_STOCK - sold);
      const next = await requestJson<PurchaseBody>(`${url}/api/v1/purchase`, { json: { qty: 2 } });
      expect(next.status, next.text).toBe(200);
      expect(next.body.tickets?.first, 'the next ticket follows the last one sold').toBe(sold + 1);
      expect(next.body.tickets?.first).toBeGreaterThan(highestTicket);
      sold += 2;
      highestTicket = next.body.tickets?.last ?? highestTicket;
      await podman(['stop', container.container]);
      expect(await waitForExit(container.container)).toBe(0);
    });

    it('loses no acknowledged sale to podman kill -s KILL under load', async () => {
      const { container, url } = await startMonolith();
      const { outcomes } = await loadUntilDown(url, `kill-${target}`, () =>
        podman(['kill', '-s', 'KILL', container.container]),
      );
      expect(await waitForExit(container.container)).toBe(137);
      const acknowledged = ticketsOf(outcomes);
      const unanswered = outcomes.filter((o) => o.kind !== 'answered').length;
      expect(acknowledged.length, JSON.stringify(tally(outcomes))).toBeGreaterThanOrEqual(SIGNAL_AFTER);

      // The same container again (same host name, same volume), as after a crash: the engine's
      // restart policy does not apply to a container it was told to kill, so start it as an operator would.
      await podman(['start', container.container]);
      await waitUntilHealthy(container.container);
      const available = (await requestJson<{ qty: number }>(`${url}/api/v1/available`)).body.qty;
      const soldUnderLoad = INITIAL_STOCK - sold - available;
      // Every acknowledged sale survived; a sale committed whose answer the kill cut off may be there too.
      expect(soldUnderLoad, JSON.stringify(tally(outcomes))).toBeGreaterThanOrEqual(acknowledged.length);
      expect(soldUnderLoad).toBeLessThanOrEqual(acknowledged.length + unanswered);
      const next = await requestJson<PurchaseBody>(`${url}/api/v1/purchase`, { json: { qty: 1 } });
      expect(next.status, next.text).toBe(200);
      expect(next.body.tickets?.first, 'no acknowledged ticket is sold again').toBeGreaterThan(
        Math.max(...acknowledged),
      );
      report(
        `${target}: SIGKILL under load: ${JSON.stringify(tally(outcomes))}, ` +
          `${acknowledged.length} acknowledged, ${soldUnderLoad} recorded after the restart`,
      );
      await podman(['stop', container.container]);
      expect(await waitForExit(container.container)).toBe(0);
    });
  },
);

/** The runtime binary inside each target's image, for `podman exec`. */
function runtimeOf(target: Target): string[] {
  return target === 'bun' ? ['/usr/local/bin/bun'] : ['/nodejs/bin/node'];
}
