/**
 * Real processes for end-to-end tests: the built bundle (`dist/main.js`, built
 * by test/global-setup.ts) started as a child process on a free loopback port.
 *
 * Every process started here is remembered until it has exited; call
 * {@link stopAllServices} in afterEach/afterAll so nothing outlives its test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BUNDLE = resolve(fileURLToPath(new URL('../../dist/main.js', import.meta.url)));

/**
 * The children run in an empty directory: main.ts loads `.env` from its working
 * directory outside production, and a developer's .env must not leak into tests.
 * (STOCK_STORE=memory, so nothing is ever written there; one directory, reused.)
 */
const WORK_DIR = join(tmpdir(), 'ticket-system-e2e-cwd');
mkdirSync(WORK_DIR, { recursive: true });

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Service {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Everything written so far, for assertions and failure messages. */
  stdout(): string;
  stderr(): string;
  /** stdout and stderr, labelled, for failure messages. */
  output(): string;
  /** The JSON log lines written so far (JSON_LOGS is on outside ENVIRONMENT=development). */
  logEntries(): Array<Record<string, unknown>>;
  /** Resolves once the process has exited (never rejects). */
  readonly exited: Promise<Exit>;
  hasExited(): boolean;
  /** Resolves when stdout+stderr match `pattern` (a RegExp or a test of the whole output); rejects on exit or timeout. */
  waitForOutput(pattern: RegExp | ((output: string) => boolean), timeoutMs?: number): Promise<void>;
  /** Sends `signal` and awaits the exit; SIGKILL if it has not exited after `timeoutMs`. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
  /** Awaits an exit already under way (e.g. after a signal sent by the test); SIGKILL after `timeoutMs`. */
  waitForExit(timeoutMs?: number): Promise<Exit>;
}

const running = new Set<Service>();

/** Listens on port 0 on loopback, reads the port the kernel chose, and frees it. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('no port assigned'));
        return;
      }
      server.close(() => resolvePort(address.port));
    });
  });
}

/** The environment a child gets: nothing from the test runner's shell but PATH, plus quiet test defaults. */
export function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOST: '127.0.0.1',
    ENVIRONMENT: 'test',
    LOG_LEVEL: 'warn',
    STOCK_STORE: 'memory',
    ...env,
  };
}

/**
 * Spawns the bundle without waiting for anything; the process is tracked for cleanup.
 * `nodeArgs` go to node before the bundle (e.g. `--expose-gc`).
 */
export function spawnBundle(
  env: Record<string, string>,
  port = Number(env.PORT ?? 0),
  nodeArgs: string[] = [],
  args: string[] = [],
): Service {
  const child = spawn(process.execPath, [...nodeArgs, BUNDLE, ...args], {
    cwd: WORK_DIR,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  let listeners: Array<() => void> = [];
  const notify = () => {
    for (const listener of listeners) listener();
  };
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    notify();
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
    notify();
  });

  let done = false;
  const exited = new Promise<Exit>((resolveExit) => {
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (done) return;
      done = true;
      running.delete(service);
      notify();
      resolveExit({ code, signal });
    };
    // 'close' waits for stdio to drain, so output() is complete once `exited` resolves.
    child.once('close', finish);
    child.once('error', (error) => {
      err += `\n[spawn error] ${String(error)}`;
      finish(null, null);
    });
  });

  const service: Service = {
    child,
    pid: child.pid ?? -1,
    port,
    url: `http://127.0.0.1:${port}`,
    stdout: () => out,
    stderr: () => err,
    output: () => `--- stdout ---\n${out}\n--- stderr ---\n${err}`,
    logEntries: () => parseLogLines(out),
    exited,
    hasExited: () => done,
    waitForOutput(pattern, timeoutMs = 10_000) {
      return new Promise<void>((resolveWait, reject) => {
        const matches = typeof pattern === 'function' ? pattern : (output: string) => pattern.test(output);
        const check = () => {
          if (matches(out + err)) {
            cleanup();
            resolveWait();
          } else if (done) {
            cleanup();
            reject(new Error(`process exited before printing ${pattern}\n${service.output()}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no ${pattern} within ${timeoutMs} ms\n${service.output()}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          listeners = listeners.filter((l) => l !== check);
        };
        listeners.push(check);
        check();
      });
    },
    stop(signal = 'SIGTERM', timeoutMs = 10_000) {
      if (done) return exited;
      child.kill(signal);
      return service.waitForExit(timeoutMs);
    },
    async waitForExit(timeoutMs = 10_000) {
      if (done) return exited;
      const timer = setTimeout(() => {
        if (!done) child.kill('SIGKILL');
      }, timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  running.add(service);
  return service;
}

/** One GET on a fresh connection (no keep-alive pool involved); resolves with the status or rejects. */
export function getStatus(url: string, timeoutMs = 1_000): Promise<number> {
  return new Promise((resolveStatus, reject) => {
    const req = httpRequest(url, { method: 'GET', agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.once('end', () => resolveStatus(res.statusCode ?? 0));
      res.once('error', reject);
    });
    req.once('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.once('error', reject);
    req.end();
  });
}

/**
 * Another test run in the same checkout rebuilds dist/ (tsup cleans it first), so the bundle can be
 * missing for a moment: wait for it, and treat "module not found" as a reason to start again.
 */
async function waitForBundle(timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(BUNDLE)) {
    if (Date.now() > deadline) throw new Error(`${BUNDLE} does not exist; run npx tsup`);
    await sleep(100);
  }
}

function bundleWasMissing(output: string): boolean {
  return /ERR_MODULE_NOT_FOUND|Cannot find module/.test(output) && output.includes('dist');
}

/** Polls GET /api/v1/health until it answers 200; fails fast if the process exits. */
export async function waitForHealth(service: Service, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt';
  while (Date.now() < deadline) {
    if (service.hasExited()) {
      const exit = await service.exited;
      throw new Error(`service exited (${JSON.stringify(exit)}) before it was healthy\n${service.output()}`);
    }
    try {
      const status = await getStatus(`${service.url}/api/v1/health`);
      if (status === 200) return;
      last = `status ${status}`;
    } catch (error) {
      last = String(error);
    }
    await sleep(50);
  }
  throw new Error(
    `service on port ${service.port} not healthy within ${timeoutMs} ms (last: ${last})\n${service.output()}`,
  );
}

/**
 * Starts the bundle with `env` on a free port (unless PORT is given) and waits
 * until it is healthy. Retries with another port if the free port was taken
 * between finding it and listening on it.
 */
export async function startService(
  env: Record<string, string>,
  options: { timeoutMs?: number; nodeArgs?: string[] } = {},
): Promise<Service> {
  for (let attempt = 1; ; attempt++) {
    await waitForBundle();
    const port = env.PORT ? Number(env.PORT) : await freePort();
    const service = spawnBundle({ ...env, PORT: String(port) }, port, options.nodeArgs);
    try {
      await waitForHealth(service, options.timeoutMs);
      return service;
    } catch (error) {
      await service.stop('SIGKILL');
      const lostPortRace = !env.PORT && /EADDRINUSE/.test(service.output());
      if (attempt >= 3 || !(lostPortRace || bundleWasMissing(service.output()))) throw error;
    }
  }
}

/** Stops every process still running (SIGTERM, then SIGKILL after `graceMs`). */
export async function stopAllServices(graceMs = 5_000): Promise<void> {
  await Promise.all([...running].map((service) => service.stop('SIGTERM', graceMs)));
}

/** Runs the bundle to completion (for processes expected to exit on their own), SIGKILL after `timeoutMs`. */
export async function runBundle(
  env: Record<string, string>,
  timeoutMs = 10_000,
  args: string[] = [],
): Promise<Exit & { stdout: string; stderr: string; durationMs: number; timedOut: boolean }> {
  for (let attempt = 1; ; attempt++) {
    await waitForBundle();
    const started = performance.now();
    const service = spawnBundle(env, Number(env.PORT ?? 0), [], args);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      service.child.kill('SIGKILL');
    }, timeoutMs);
    const exit = await service.exited;
    clearTimeout(timer);
    if (attempt < 3 && bundleWasMissing(service.stderr())) continue;
    return {
      ...exit,
      stdout: service.stdout(),
      stderr: service.stderr(),
      durationMs: performance.now() - started,
      timedOut,
    };
  }
}

/** Parses JSON log lines, skipping anything else (and a last line still being written). */
export function parseLogLines(text: string): Array<Record<string, unknown>> {
  const entries: Array<Record<string, unknown>> = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      entries.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // not JSON, or not complete yet
    }
  }
  return entries;
}

/**
 * Node arguments that make the child collect garbage every few milliseconds, so that a bug which
 * only shows once something has been garbage-collected shows at once instead of now and then.
 */
export const FREQUENT_GC_NODE_ARGS = [
  '--expose-gc',
  '--import',
  'data:text/javascript,setInterval(()=>globalThis.gc(),20).unref()',
];

export function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}

// Last resort if a test file dies without its hooks: never leave children behind.
process.once('exit', () => {
  for (const service of running) service.child.kill('SIGKILL');
});
