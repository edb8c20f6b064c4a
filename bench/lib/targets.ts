/**
 * The processes a benchmark measures, started from the built bundle (and the
 * bundled baseline and Hono floor servers, bench/lib/servers.ts) on free
 * loopback ports, with what the runner needs to read from them: the stock
 * (for the invariant), peak RSS and CPU time.
 *
 * Bundle processes are started with test/support/processes.ts, the helper the
 * end-to-end tests use: free port, health wait, retry on a lost port race or a
 * bundle being rebuilt, SIGKILL of every child when the runner exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, getStatus, sleep, startService, type Service } from '../../test/support/processes.ts';
import { startReplicatedRedis } from '../../test/support/redis-topologies.ts';
import { BENCH_EVENT, zipfEventId } from './load.ts';
import type { TargetName } from './plan.ts';
import type { BenchServers } from './servers.ts';

/** One OS process of a target (micro has two). */
export interface TargetProcess {
  role: string;
  pid: number;
  url: string;
}

export interface StockReading {
  sold: number;
  remaining: number;
}

export interface Target {
  name: TargetName;
  /** Where load goes. */
  url: string;
  /** Where the admin API is (the process that owns the stock), for targets of the service itself. */
  adminUrl?: string;
  initialStock: number;
  processes: TargetProcess[];
  /** Sold and remaining, through the API (baseline: GET /stats; the app: GET /api/v1/health). */
  readStock(): Promise<StockReading>;
  /** SIGTERM, SIGKILL after a grace period; removes its data directory. */
  stop(): Promise<void>;
}

/** The admin token of the measured processes (the benchmark creates its events through the admin API). */
export const BENCH_ADMIN_TOKEN = 'a-benchmark-admin-token';

/** The environment every measured process of the app gets, on top of processes.ts's quiet defaults. */
const APP_ENV = {
  ENVIRONMENT: 'production',
  LOG_LEVEL: 'warn',
  HOST: '127.0.0.1',
  ADMIN_TOKEN: BENCH_ADMIN_TOKEN,
} as const;

/**
 * Creates the events the event scenarios sell from (each of one ticket type
 * with more tickets than any run sells): the bench event, and with `zipf`
 * the 10,000 events of that scenario, 50 at a time.
 */
export async function createBenchEvents(target: Target, zipfEvents: number): Promise<void> {
  if (!target.adminUrl) throw new Error(`${target.name} has no admin API to create events with`);
  const put = async (eventId: string) => {
    const response = await fetch(`${target.adminUrl}/api/v1/events/${eventId}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${BENCH_ADMIN_TOKEN}` },
      body: JSON.stringify({
        name: `Benchmark ${eventId}`,
        ticketTypes: [{ id: 'general', name: 'General', capacity: 1_000_000_000 }],
      }),
      signal: AbortSignal.timeout(30_000),
    });
    await response.arrayBuffer();
    if (response.status !== 200 && response.status !== 201) {
      throw new Error(`${target.name}: PUT /api/v1/events/${eventId} answered ${response.status}`);
    }
  };
  await put(BENCH_EVENT);
  for (let start = 0; start < zipfEvents; start += 50) {
    await Promise.all(Array.from({ length: Math.min(50, zipfEvents - start) }, (_, i) => put(zipfEventId(start + i))));
  }
}

async function getJson(url: string): Promise<unknown> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
  return response.json();
}

/** `details.vacancy.stock` (monolith) or `details.stock` (vacancy) of GET /api/v1/health, as sold/remaining. */
export function stockFromHealth(health: unknown): StockReading {
  const details = (health as { details?: Record<string, unknown> } | null)?.details ?? {};
  const vacancy = (details.vacancy as Record<string, unknown> | undefined) ?? details;
  const stock = vacancy.stock as { available?: unknown; sold?: unknown } | null | undefined;
  if (typeof stock?.available !== 'number' || typeof stock.sold !== 'number') {
    throw new Error(`health has no stock figures: ${JSON.stringify(health).slice(0, 300)}`);
  }
  return { sold: stock.sold, remaining: stock.available };
}

/**
 * Starts a process that is not the Node bundle (the baseline, the monolith on
 * Deno or Bun) on a free port and waits until GET /api/v1/health answers.
 * Tracked for the exit handler; the caller stops it through stop().
 */
async function startChild(
  role: string,
  command: string,
  args: readonly string[],
  env: Record<string, string>,
  startTimeoutMs = 15_000,
): Promise<{ process: TargetProcess; stop(): Promise<void> }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const child = spawn(command, args, {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env, PORT: String(port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    otherChildren.add(child);
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    child.once('close', () => otherChildren.delete(child));
    const stop = async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    };
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + startTimeoutMs;
    while (Date.now() < deadline && child.exitCode === null) {
      if ((await getStatus(`${url}/api/v1/health`).catch(() => 0)) === 200) {
        return { process: { role, pid: child.pid ?? -1, url }, stop };
      }
      await sleep(50);
    }
    await stop();
    if (attempt >= 3 || !stderr.includes('EADDRINUSE')) throw new Error(`${role} did not start: ${stderr}`);
  }
}

/** The baseline or the Hono floor (a bundled .mjs) on plain node. */
function startYardstick(role: string, script: string, initialStock: number) {
  return startChild(role, process.execPath, [script], { INITIAL_STOCK: String(initialStock) });
}

const otherChildren = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of otherChildren) child.kill('SIGKILL');
});

const ROOT = resolvePath(fileURLToPath(new URL('../..', import.meta.url)));

/** The monolith (memory store) on Deno or Bun, through the same entrypoints as npm run start:deno / start:bun. */
function startOnRuntime(runtime: 'deno' | 'bun', env: Record<string, string>) {
  const entry = resolvePath(ROOT, 'src', `${runtime}.ts`);
  const args =
    runtime === 'deno'
      ? ['run', '--allow-net', '--allow-env', '--allow-read', '--allow-write', '--allow-sys', entry]
      : [entry];
  return startChild(
    `monolith on ${runtime}`,
    resolvePath(ROOT, 'node_modules/.bin', runtime),
    args,
    {
      ...env,
      MODE: 'monolith',
      STOCK_STORE: 'memory',
    },
    30_000,
  );
}

function appProcess(role: string, service: Service): TargetProcess {
  return { role, pid: service.pid, url: service.url };
}

/** Starts one target with `initialStock` tickets; `extraEnv` goes to every app process. */
export async function startTarget(
  name: TargetName,
  options: {
    servers: BenchServers;
    initialStock: number;
    extraEnv?: Record<string, string>;
    /** monolith-sqlite: this DATA_DIR, kept when the target stops (default: a fresh one, removed). */
    dataDir?: string;
  },
): Promise<Target> {
  const { initialStock } = options;
  const env = { ...APP_ENV, INITIAL_STOCK: String(initialStock), ...options.extraEnv };
  const base = { name, initialStock };
  const stopAll = (services: Service[]) =>
    Promise.all(services.map((s) => s.stop('SIGTERM', 5_000))).then(() => undefined);

  switch (name) {
    case 'baseline':
    case 'hono-floor': {
      const script = name === 'baseline' ? options.servers.baseline : options.servers.honoFloor;
      const yardstick = await startYardstick(name, script, initialStock);
      return {
        ...base,
        url: yardstick.process.url,
        processes: [yardstick.process],
        readStock: async () => {
          const stats = (await getJson(`${yardstick.process.url}/stats`)) as StockReading;
          return { sold: stats.sold, remaining: stats.remaining };
        },
        stop: yardstick.stop,
      };
    }
    case 'monolith-memory':
    case 'monolith-no-metrics':
    case 'monolith-sqlite': {
      const durable = name === 'monolith-sqlite';
      const dataDir = durable ? (options.dataDir ?? (await mkdtemp(join(tmpdir(), 'ticket-bench-data-')))) : undefined;
      const service = await startService({
        ...env,
        MODE: 'monolith',
        STOCK_STORE: dataDir ? 'sqlite' : 'memory',
        ...(dataDir ? { DATA_DIR: dataDir } : {}),
        // The cost of metrics: the memory-store monolith without them, beside the one with them.
        ...(name === 'monolith-no-metrics' ? { METRICS: 'false' } : {}),
      });
      return {
        ...base,
        url: service.url,
        adminUrl: service.url,
        processes: [appProcess('monolith', service)],
        readStock: async () => stockFromHealth(await getJson(`${service.url}/api/v1/health`)),
        stop: async () => {
          await stopAll([service]);
          if (dataDir && !options.dataDir) await rm(dataDir, { recursive: true, force: true });
        },
      };
    }
    case 'monolith-redis':
    case 'monolith-redis-wait': {
      // A primary and its replica of this target's own (AOF everysec, noeviction), the monolith on the
      // primary; -wait answers no batch before the replica has it (REDIS_WAIT_REPLICAS=1).
      const redis = await startReplicatedRedis();
      let service: Service;
      try {
        service = await startService({
          ...env,
          MODE: 'monolith',
          STOCK_STORE: 'redis',
          REDIS_URL: redis.url,
          REDIS_WAIT_REPLICAS: name === 'monolith-redis-wait' ? '1' : '0',
        });
      } catch (error) {
        await redis.stop();
        throw error;
      }
      return {
        ...base,
        url: service.url,
        adminUrl: service.url,
        processes: [
          appProcess('monolith', service),
          { role: 'redis primary', pid: redis.primary.pid(), url: redis.url },
          { role: 'redis replica', pid: redis.replica.pid(), url: `redis://${redis.replica.address}` },
        ],
        readStock: async () => stockFromHealth(await getJson(`${service.url}/api/v1/health`)),
        stop: async () => {
          await stopAll([service]);
          await redis.stop();
        },
      };
    }
    case 'monolith-deno':
    case 'monolith-bun': {
      const started = await startOnRuntime(name === 'monolith-deno' ? 'deno' : 'bun', env);
      return {
        ...base,
        url: started.process.url,
        processes: [started.process],
        readStock: async () => stockFromHealth(await getJson(`${started.process.url}/api/v1/health`)),
        stop: started.stop,
      };
    }
    case 'micro': {
      const vacancy = await startService({ ...env, MODE: 'vacancy', STOCK_STORE: 'memory' });
      let ticket: Service;
      try {
        ticket = await startService({ ...env, MODE: 'ticket', VACANCY_URL: vacancy.url });
      } catch (error) {
        await stopAll([vacancy]);
        throw error;
      }
      return {
        ...base,
        url: ticket.url,
        adminUrl: vacancy.url,
        processes: [appProcess('ticket', ticket), appProcess('vacancy', vacancy)],
        readStock: async () => stockFromHealth(await getJson(`${vacancy.url}/api/v1/health`)),
        stop: () => stopAll([ticket, vacancy]),
      };
    }
  }
}

/** Starts several targets at once; if one fails, stops the others and rethrows its error. */
export async function startTargets(
  names: readonly TargetName[],
  options: { servers: BenchServers; initialStock: number; extraEnv?: Record<string, string> },
): Promise<Target[]> {
  const settled = await Promise.allSettled(names.map((name) => startTarget(name, options)));
  const started = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(started.map((t) => t.stop()));
    throw failed.reason;
  }
  return started;
}

/**
 * Resets the kernel's peak-RSS mark of a process (`echo 5 > /proc/<pid>/clear_refs`),
 * so VmHWM read after a run is that run's peak. False where that is not possible.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** VmHWM (peak resident set size) of a process in MB, or null if it cannot be read (not Linux, gone). */
export function readPeakRssMb(pid: number): number | null {
  try {
    return parseVmHwmMb(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return null;
  }
}

/**
 * CPU time a process has used so far, all its threads, user and system, in
 * seconds; null if it cannot be read (not Linux, gone).
 */
export function readCpuSeconds(pid: number): number | null {
  try {
    return parseCpuSeconds(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/**
 * utime + stime of a /proc/<pid>/stat text, in seconds. The fields are
 * counted after the command name, which is in parentheses and may itself hold
 * spaces or parentheses. Linux reports them in USER_HZ ticks, 100 a second on
 * every architecture it exposes to programs.
 */
export function parseCpuSeconds(stat: string, ticksPerSecond = 100): number | null {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "pid (comm) ": state is field 3 of proc(5), utime 14 and stime 15, so indexes 11 and 12 here.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) && fields.length > 12
    ? (utime + stime) / ticksPerSecond
    : null;
}

/** The VmHWM line of a /proc/<pid>/status text, in MB (1 MB = 1024 kB), or null. */
export function parseVmHwmMb(status: string): number | null {
  const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status);
  return match ? Number(match[1]) / 1024 : null;
}
