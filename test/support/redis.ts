/**
 * Redis for tests: where it is (REDIS_URL, default redis://127.0.0.1:6379),
 * whether it can be reached (skip loudly when not, fail under CI=true), a
 * unique key prefix per test file and run, cleanup of every key with that
 * prefix, and private `redis-server` processes that a test may freeze
 * (SIGSTOP), thaw (SIGCONT), kill and restart without touching the shared one.
 *
 * @example
 * const gate = await redisGate();
 * describe.skipIf(gate.skip)('with Redis', () => {
 *   const prefix = uniquePrefix('stock');
 *   beforeAll(() => gate.assertReachable());
 *   afterAll(() => deleteKeysWithPrefix(gate.url, prefix));
 * });
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { levelOf, type EventRecord } from '../../src/stock/model.ts';
import { IN_CI, warnSkipped } from './loud-skip.ts';
import { freePort, sleep } from './processes.ts';

/** The shared Redis the tests use: REDIS_URL, else the local default. */
export const REDIS_URL = process.env.REDIS_URL?.trim() || 'redis://127.0.0.1:6379';

export interface RedisGate {
  url: string;
  /** Whether Redis answered PING (and, if asked for, whether `redis-server` can be run). */
  reachable: boolean;
  /** Why not, when not. */
  reason?: string;
  /** Skip the suite: unreachable and not under CI=true (a loud warning has been printed). */
  skip: boolean;
  /** Call in beforeAll: throws when Redis is unreachable (only reached when not skipped, i.e. under CI=true). */
  assertReachable(): void;
}

/**
 * Checks that Redis at `url` answers PING within `timeoutMs` (and, with
 * `needServerBinary`, that `redis-server` can be started). Unreachable: under
 * CI=true the suite must fail (call `assertReachable()` in beforeAll); else it
 * is skipped after a loud console.warn.
 */
export async function redisGate(
  what: string,
  options: { url?: string; timeoutMs?: number; needServerBinary?: boolean } = {},
): Promise<RedisGate> {
  const url = options.url ?? REDIS_URL;
  let reason: string | undefined;
  try {
    await pingRedis(url, options.timeoutMs ?? 2_000);
  } catch (error) {
    reason = `no Redis reachable at ${url} (set REDIS_URL): ${error instanceof Error ? error.message : String(error)}`;
  }
  if (reason === undefined && options.needServerBinary) {
    const version = spawnSync('redis-server', ['--version'], { encoding: 'utf8', timeout: 5_000 });
    if (version.status !== 0) {
      reason = `redis-server cannot be run (needed for a private, freezable Redis): ${version.error?.message ?? version.stderr}`;
    }
  }
  const reachable = reason === undefined;
  if (!reachable && !IN_CI) warnSkipped(what, reason as string);
  return {
    url,
    reachable,
    reason,
    skip: !reachable && !IN_CI,
    assertReachable() {
      if (!reachable)
        throw new Error(`${reason?.replace(/\.$/, '')}. Under CI=true the Redis tests must run, not skip.`);
    },
  };
}

/** One PING on a short-lived connection that never retries. */
export async function pingRedis(url: string, timeoutMs = 2_000): Promise<void> {
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    const pong = await client.ping();
    if (pong !== 'PONG') throw new Error(`PING answered ${pong}`);
  } finally {
    client.disconnect();
  }
}

/** A client for a test's own reads and writes: fails fast, never queues while disconnected. */
export function testClient(url: string, timeoutMs = 5_000): Redis {
  const client = new Redis(url, {
    maxRetriesPerRequest: 1,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    retryStrategy: (attempt) => Math.min(50 * attempt, 500),
  });
  client.on('error', () => {});
  return client;
}

/** A key prefix no other file or run uses: `test-<label>-<random>`. */
export function uniquePrefix(label: string): string {
  return `test-${label}-${randomBytes(6).toString('hex')}`;
}

/** The hash of one event (definition and stock), as RedisStockStore names it. */
export function eventKey(prefix: string, eventId = 'default'): string {
  return `{${prefix}:${eventId}}:event`;
}

/** A cross-event key (the hold deadline index, its versions, the sweep lease, the order index), as RedisStockStore names it. */
export function crossEventKey(
  prefix: string,
  name: 'hold-deadlines' | 'hold-versions' | 'sweeper' | 'order-events',
): string {
  return `{${prefix}}:${name}`;
}

/** The index of every event id, as RedisStockStore names it. */
export function eventIndexKey(prefix: string): string {
  return `${prefix}:events`;
}

/**
 * An event as Redis holds it, read straight from its hash (not through the
 * store), or null when it is absent. The layout is RedisStockStore's: `name`,
 * `cap`, `pb`, `types` (ids joined by spaces), and `n:`, `c:`, `m:`, `b:`,
 * `s:`, `h:`, `i:` per type.
 */
export async function readEvent(client: Redis, prefix: string, eventId = 'default'): Promise<EventRecord | null> {
  const fields = await client.hgetall(eventKey(prefix, eventId));
  if (fields.name === undefined) return null;
  const number = (value: string | undefined) => (value === undefined ? null : Number(value));
  return {
    id: eventId,
    name: fields.name,
    capacity: number(fields.cap),
    maxPerBuyer: number(fields.pb),
    types: (fields.types ?? '')
      .split(' ')
      .filter(Boolean)
      .map((id) => ({
        id,
        name: fields[`n:${id}`]!,
        capacity: Number(fields[`c:${id}`]),
        maxPerOrder: number(fields[`m:${id}`]),
        maxPerBuyer: number(fields[`b:${id}`]),
        sold: Number(fields[`s:${id}`]),
        held: Number(fields[`h:${id}`] ?? 0),
        issued: Number(fields[`i:${id}`]),
      })),
  };
}

/** A ticket type's stock in Redis as remaining (under the event's cap too) and sold; null when absent. */
export async function readStock(
  client: Redis,
  prefix: string,
  eventId = 'default',
  typeId = 'default',
): Promise<{ remaining: number; sold: number } | null> {
  const event = await readEvent(client, prefix, eventId);
  const type = event?.types.find((candidate) => candidate.id === typeId);
  return event && type ? levelOf(event, type) : null;
}

function globEscape(value: string): string {
  return value.replace(/[*?[\]\\]/g, '\\$&');
}

/** Deletes every key containing `prefix` (SCAN + DEL); answers how many went. */
export async function deleteKeysWithPrefix(url: string, prefix: string): Promise<number> {
  const client = testClient(url);
  let deleted = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `*${globEscape(prefix)}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await client.del(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
  return deleted;
}

/** A `redis-server` of the test's own, on a free loopback port, with nothing saved. */
export interface PrivateRedis {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** The pid of the current server process (changes on restart). */
  pid(): number;
  /** SIGSTOP: the server holds every connection open and answers nothing. */
  freeze(): void;
  /** SIGCONT: the server runs what it was sent while frozen, then carries on. */
  thaw(): void;
  /** SIGKILL, and wait for the exit. Its data is gone (nothing is saved). */
  kill(): Promise<void>;
  /** Starts a fresh server on the same port (after kill). */
  restart(): Promise<void>;
  /** Kills the server (frozen or not) and removes its directory. */
  stop(): Promise<void>;
}

const servers = new Set<ChildProcess>();

function spawnServer(port: number, dir: string): { child: ChildProcess; output: () => string; exited: Promise<void> } {
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--loglevel',
      'warning',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  servers.add(child);
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      servers.delete(child);
      resolve();
    });
    child.once('error', (error) => {
      output += `\n[spawn error] ${String(error)}`;
      servers.delete(child);
      resolve();
    });
  });
  return { child, output: () => output, exited };
}

/** Raw PING over a fresh socket; resolves on +PONG. */
function rawPing(port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('PING timed out'));
    }, timeoutMs);
    let reply = '';
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      reply += chunk;
      if (reply.includes('\r\n')) {
        clearTimeout(timer);
        socket.destroy();
        if (reply.startsWith('+PONG')) resolve();
        else reject(new Error(`PING answered ${reply.trim()}`));
      }
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

async function waitForPong(
  port: number,
  exited: () => boolean,
  output: () => string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt';
  while (Date.now() < deadline) {
    if (exited()) throw new Error(`redis-server on port ${port} exited before it answered PING:\n${output()}`);
    try {
      await rawPing(port, 500);
      return;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await sleep(25);
  }
  throw new Error(
    `redis-server on port ${port} did not answer PING within ${timeoutMs} ms (last: ${last}):\n${output()}`,
  );
}

/**
 * Starts `redis-server --port N --bind 127.0.0.1 --save "" --appendonly no`
 * with a temp --dir on a free port and waits until it answers PING. Call
 * `stop()` in afterAll; a process exit kills any server left over.
 */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'ticket-system-redis-'));
  let current: ReturnType<typeof spawnServer> | undefined;
  let done = true;
  /** Spawns a server on `port` and waits for PONG; on failure it is killed and the error rethrown. */
  const launch = async (port: number) => {
    const mine = spawnServer(port, dir);
    current = mine;
    done = false;
    void mine.exited.then(() => {
      if (current === mine) done = true;
    });
    try {
      await waitForPong(port, () => current === mine && done, mine.output);
    } catch (error) {
      mine.child.kill('SIGKILL');
      await mine.exited;
      throw Object.assign(error as Error, { output: mine.output() });
    }
  };

  let port = 0;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await launch(port);
      break;
    } catch (error) {
      // Another process may have taken the free port between finding it and listening on it.
      if (attempt >= 3 || !/in use|EADDRINUSE/i.test(String((error as { output?: string }).output))) {
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }

  const signal = (name: NodeJS.Signals) => {
    if (current && !done) current.child.kill(name);
  };
  const kill = async () => {
    signal('SIGKILL');
    await current?.exited;
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: () => current?.child.pid ?? -1,
    freeze: () => signal('SIGSTOP'),
    thaw: () => signal('SIGCONT'),
    kill,
    async restart() {
      await kill();
      // The port was ours a moment ago; a few tries cover a slow release.
      for (let attempt = 1; ; attempt++) {
        try {
          await launch(port);
          return;
        } catch (error) {
          if (attempt >= 5) throw error;
          await sleep(200);
        }
      }
    },
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A TCP proxy in front of Redis that passes commands on at once and can hold
 * Redis's answers back for `replyDelayMs` (in order): Redis runs a command in
 * time, but its answer reaches the client after the client gave up.
 *
 * @example
 * const proxy = await SlowReplyProxy.start(REDIS_URL);
 * proxy.replyDelayMs = 800; // answers now arrive 800 ms late
 */
export class SlowReplyProxy {
  replyDelayMs = 0;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  private constructor(target: { host: string; port: number }) {
    this.#server = createServer((client) => {
      const upstream = connect(target);
      this.#sockets.add(client).add(upstream);
      let releaseAt = 0;
      client.on('data', (chunk) => upstream.write(chunk));
      upstream.on('data', (chunk) => {
        releaseAt = Math.max(releaseAt, Date.now() + this.replyDelayMs);
        setTimeout(() => client.writable && client.write(chunk), releaseAt - Date.now());
      });
      const close = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('close', close).on('error', close);
      upstream.on('close', close).on('error', close);
    });
  }

  static async start(redisUrl: string): Promise<SlowReplyProxy> {
    const url = new URL(redisUrl);
    const proxy = new SlowReplyProxy({ host: url.hostname, port: Number(url.port || 6379) });
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

// Last resort if a test file dies without its hooks: never leave a server behind (SIGKILL works on a stopped one).
process.once('exit', () => {
  for (const child of servers) child.kill('SIGKILL');
});
