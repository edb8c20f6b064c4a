/**
 * Redis as production runs it, on loopback, for tests: `redis-server`
 * processes of a test's own (each on free ports, in a temp directory of its
 * own), made into a Redis Cluster (`redis-cli --cluster create`) or into a
 * primary with replicas watched by Sentinel (`redis-server --sentinel` with a
 * generated config). Every process started here is SIGKILLed by `stop()`, and
 * by the exit handler if a test file dies without its hooks.
 *
 * @example
 * const cluster = await startRedisCluster({ primaries: 3 });
 * try { ... cluster.nodes ... } finally { await cluster.stop(); }
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { IN_CI, warnSkipped } from './loud-skip.ts';
import { freePort, sleep } from './processes.ts';

const children = new Set<ChildProcess>();

/** One `redis-server` (or sentinel) process: its ports and directory stay across restarts. */
export interface RedisNode {
  readonly port: number;
  readonly dir: string;
  /** `127.0.0.1:<port>` */
  readonly address: string;
  /** The pid of the running process, or -1. */
  pid(): number;
  running(): boolean;
  /** What the process printed (its log goes to stdout). */
  output(): string;
  /** The test's own client of this node (one, reused; it reconnects after a restart). */
  client(): Redis;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT. */
  freeze(): void;
  thaw(): void;
  /** Starts the process again on the same port and directory, with `extraArgs` after its own. */
  restart(extraArgs?: readonly string[]): Promise<void>;
  /** SIGKILL and remove its directory. */
  stop(): Promise<void>;
}

/**
 * Starts `redis-server` with `args` (after `--port`, `--bind 127.0.0.1`, `--dir`) on a free port,
 * or with a config file `configText` written to its directory (for sentinels: `--sentinel`), and
 * waits until it answers PING.
 */
export async function startRedisNode(
  options: {
    args?: (port: number) => string[];
    /** A config file's text (gets `port`, `bind` and `dir` lines prepended); for sentinels. */
    configText?: (port: number) => string;
    sentinel?: boolean;
    label?: string;
  } = {},
): Promise<RedisNode> {
  const dir = mkdtempSync(join(tmpdir(), `ticket-system-${options.label ?? 'redis'}-`));
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = '';
  let shared: Redis | undefined;

  const launch = async (port: number, extraArgs: readonly string[]) => {
    let argv: string[];
    if (options.configText) {
      const file = join(dir, options.sentinel ? 'sentinel.conf' : 'redis.conf');
      writeFileSync(file, `port ${port}\nbind 127.0.0.1\ndir ${dir}\n${options.configText(port)}\n`);
      argv = [file, ...(options.sentinel ? ['--sentinel'] : []), ...extraArgs];
    } else {
      argv = [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--loglevel',
        'notice',
        ...(options.args?.(port) ?? []),
        ...extraArgs,
      ];
    }
    const mine = spawn('redis-server', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = mine;
    children.add(mine);
    output += `\n[started ${argv.join(' ')}]\n`;
    mine.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    mine.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    exited = new Promise<void>((resolve) => {
      mine.once('exit', () => {
        children.delete(mine);
        resolve();
      });
      mine.once('error', (error) => {
        output += `\n[spawn error] ${String(error)}`;
        children.delete(mine);
        resolve();
      });
    });
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (mine.exitCode !== null || mine.signalCode !== null || !children.has(mine)) {
        throw new Error(`redis-server on port ${port} exited before it answered PING:\n${output.slice(-3_000)}`);
      }
      if (await ping(port)) return;
      if (Date.now() > deadline) {
        mine.kill('SIGKILL');
        throw new Error(`redis-server on port ${port} did not answer PING within 10 s:\n${output.slice(-3_000)}`);
      }
      await sleep(25);
    }
  };

  let port = 0;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await launch(port, []);
      break;
    } catch (error) {
      // Another process may have taken the free port between finding it and listening on it.
      if (attempt >= 3 || !/in use/i.test(output)) {
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }

  const isRunning = () => child !== undefined && children.has(child);
  const kill = async () => {
    if (isRunning()) child!.kill('SIGKILL');
    await exited;
  };
  return {
    port,
    dir,
    address: `127.0.0.1:${port}`,
    pid: () => (isRunning() ? (child!.pid ?? -1) : -1),
    running: isRunning,
    output: () => output,
    client() {
      if (shared) return shared;
      const client = new Redis({
        host: '127.0.0.1',
        port,
        lazyConnect: false,
        maxRetriesPerRequest: 1,
        connectTimeout: 5_000,
        commandTimeout: 5_000,
        retryStrategy: (attempt) => Math.min(50 * attempt, 500),
      });
      client.on('error', () => {});
      shared = client;
      return client;
    },
    kill,
    freeze: () => (isRunning() ? child!.kill('SIGSTOP') : undefined),
    thaw: () => (isRunning() ? child!.kill('SIGCONT') : undefined),
    async restart(extraArgs = []) {
      await kill();
      for (let attempt = 1; ; attempt++) {
        try {
          await launch(port, extraArgs);
          return;
        } catch (error) {
          if (attempt >= 5) throw error;
          await sleep(200);
        }
      }
    },
    async stop() {
      shared?.disconnect();
      shared = undefined;
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Raw PING over a fresh connection that never retries; true on PONG. */
async function ping(port: number): Promise<boolean> {
  const client = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 500,
    commandTimeout: 500,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/** Polls `check` every 50 ms until it answers true; throws with `what` after `timeoutMs`. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<number> {
  const started = performance.now();
  let last: unknown;
  while (performance.now() - started < timeoutMs) {
    try {
      if (await check()) return performance.now() - started;
    } catch (error) {
      last = error;
    }
    await sleep(50);
  }
  throw new Error(`${what} did not happen within ${timeoutMs} ms${last ? ` (last error: ${String(last)})` : ''}`);
}

/** The settings production Redis runs with (docs/deployment.md), plus fast replication for tests. */
export const DURABLE_ARGS = [
  '--appendonly',
  'yes',
  '--appendfsync',
  'everysec',
  '--maxmemory-policy',
  'noeviction',
  '--save',
  '',
  // A full sync starts at once (Redis 7 waits 5 s for more replicas by default).
  '--repl-diskless-sync',
  'yes',
  '--repl-diskless-sync-delay',
  '0',
];

// ---- A primary and its replica ---------------------------------------------------------------

export interface ReplicatedRedisUnderTest {
  readonly primary: RedisNode;
  readonly replica: RedisNode;
  /** `redis://127.0.0.1:<primary port>` */
  readonly url: string;
  stop(): Promise<void>;
}

/** A primary and one replica of it (`--replicaof`), each with the production settings; waits until the replica is online. */
export async function startReplicatedRedis(
  options: { serverArgs?: readonly string[] } = {},
): Promise<ReplicatedRedisUnderTest> {
  const args = [...DURABLE_ARGS, ...(options.serverArgs ?? [])];
  const primary = await startRedisNode({ label: 'primary', args: () => args });
  let replica: RedisNode | undefined;
  const stop = async () => {
    await Promise.all([primary.stop(), replica?.stop()]);
  };
  try {
    replica = await startRedisNode({
      label: 'replica',
      args: () => [...args, '--replicaof', '127.0.0.1', String(primary.port)],
    });
    await waitFor(
      'the replica to be online',
      async () => onlineReplicas(await primary.client().info('replication')) >= 1,
    );
    return { primary, replica, url: `redis://127.0.0.1:${primary.port}`, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

// ---- Cluster ------------------------------------------------------------------------------------

export interface RedisClusterUnderTest {
  /** Every node, primaries first as `redis-cli --cluster create` made them. */
  readonly nodes: RedisNode[];
  readonly primaries: RedisNode[];
  readonly replicas: RedisNode[];
  /** `REDIS_CLUSTER_NODES` for the service: every node's address. */
  readonly nodesVariable: string;
  /** The primary that holds `key`'s slot now. */
  primaryOf(key: string): Promise<RedisNode>;
  stop(): Promise<void>;
}

/**
 * Starts `primaries` cluster-enabled redis-servers (and `replicasPerPrimary`
 * replicas of each), each with a cluster bus port of its own, joins them with
 * `redis-cli --cluster create … --cluster-yes`, and waits until every node
 * says `cluster_state:ok` and every primary has its replicas online.
 */
export async function startRedisCluster(options: {
  primaries: number;
  replicasPerPrimary?: number;
}): Promise<RedisClusterUnderTest> {
  const replicasPerPrimary = options.replicasPerPrimary ?? 0;
  const count = options.primaries * (1 + replicasPerPrimary);
  const nodes: RedisNode[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.stop()));
  };
  try {
    for (let i = 0; i < count; i++) {
      const busPort = await freePort();
      nodes.push(
        await startRedisNode({
          label: 'cluster',
          args: () => [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            'nodes.conf',
            '--cluster-port',
            String(busPort),
            '--cluster-node-timeout',
            '2000',
            ...DURABLE_ARGS,
          ],
        }),
      );
    }
    const created = spawnSync(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map((node) => node.address),
        '--cluster-replicas',
        String(replicasPerPrimary),
        '--cluster-yes',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    if (created.status !== 0) {
      throw new Error(`redis-cli --cluster create failed (${created.status}):\n${created.stdout}\n${created.stderr}`);
    }
    const clients = nodes.map((node) => node.client());
    await waitFor('every node to see the cluster ok', async () => {
      const infos = await Promise.all(clients.map((client) => client.cluster('INFO')));
      return infos.every((info) => /cluster_state:ok/.test(String(info)));
    });
    const roles = await Promise.all(clients.map((client) => client.role()));
    const primaries = nodes.filter((_, i) => roles[i]![0] === 'master');
    const replicas = nodes.filter((_, i) => roles[i]![0] !== 'master');
    if (primaries.length !== options.primaries) {
      throw new Error(`expected ${options.primaries} primaries, found ${primaries.length}`);
    }
    await waitFor('every primary to have its replicas online', async () => {
      const infos = await Promise.all(primaries.map((node) => node.client().info('replication')));
      return infos.every((info) => onlineReplicas(info) >= replicasPerPrimary);
    });
    const any = clients[0]!;
    return {
      nodes,
      primaries,
      replicas,
      nodesVariable: nodes.map((node) => node.address).join(','),
      async primaryOf(key: string) {
        const slot = Number(await any.cluster('KEYSLOT', key));
        const shards = await any.cluster('SLOTS');
        const shard = shards.find(([from, to]) => slot >= from && slot <= to);
        const port = shard?.[2]?.[1];
        const node = nodes.find((candidate) => candidate.port === port);
        if (!node) throw new Error(`no node serves slot ${slot} of ${key}`);
        return node;
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** How many `slaveN:…state=online` lines an `INFO replication` has. */
export function onlineReplicas(info: string): number {
  return [...info.matchAll(/^slave\d+:.*state=online/gm)].length;
}

/** `INFO commandstats` as calls per command name (`evalsha`, `wait`, …). */
export async function commandCalls(client: Redis): Promise<Record<string, number>> {
  const calls: Record<string, number> = {};
  for (const [, name, count] of (await client.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    calls[name!] = Number(count);
  }
  return calls;
}

// ---- Sentinel -----------------------------------------------------------------------------------

export interface SentinelGroupUnderTest {
  /** The name the sentinels monitor the primary under. */
  readonly name: string;
  /** The data nodes: the first started as the primary, the rest as its replicas. */
  readonly servers: RedisNode[];
  readonly sentinels: RedisNode[];
  /** `REDIS_SENTINELS` for the service. */
  readonly sentinelsVariable: string;
  /** The primary the sentinels name now (asks each until one answers). */
  currentPrimary(): Promise<RedisNode>;
  /** Waits until a quorum of sentinels names another primary than `old`, and it answers as one. */
  waitForPromotion(old: RedisNode, timeoutMs?: number): Promise<RedisNode>;
  stop(): Promise<void>;
}

/**
 * One primary, `replicas` replicas and `sentinels` sentinels (quorum: a
 * majority), with `down-after-milliseconds` 1000 and `failover-timeout` 3000
 * so that a failover takes a few seconds. Waits until every sentinel knows
 * every replica and every other sentinel (else a failover could not be
 * agreed on).
 */
export async function startSentinelGroup(
  options: { replicas?: number; sentinels?: number; serverArgs?: readonly string[] } = {},
): Promise<SentinelGroupUnderTest> {
  const replicaCount = options.replicas ?? 1;
  const sentinelCount = options.sentinels ?? 3;
  const name = 'tickets';
  const servers: RedisNode[] = [];
  const sentinels: RedisNode[] = [];
  const stop = async () => {
    await Promise.all([...sentinels, ...servers].map((node) => node.stop()));
  };
  try {
    const args = [...DURABLE_ARGS, ...(options.serverArgs ?? [])];
    const primary = await startRedisNode({ label: 'primary', args: () => args });
    servers.push(primary);
    for (let i = 0; i < replicaCount; i++) {
      servers.push(
        await startRedisNode({
          label: 'replica',
          args: () => [...args, '--replicaof', '127.0.0.1', String(primary.port)],
        }),
      );
    }
    await waitFor('the replicas to be online', async () => {
      return onlineReplicas(await primary.client().info('replication')) >= replicaCount;
    });
    const quorum = Math.floor(sentinelCount / 2) + 1;
    for (let i = 0; i < sentinelCount; i++) {
      sentinels.push(
        await startRedisNode({
          label: 'sentinel',
          sentinel: true,
          configText: () =>
            [
              `sentinel monitor ${name} 127.0.0.1 ${primary.port} ${quorum}`,
              `sentinel down-after-milliseconds ${name} 1000`,
              `sentinel failover-timeout ${name} 3000`,
              `sentinel parallel-syncs ${name} 1`,
              'loglevel notice',
            ].join('\n'),
        }),
      );
    }
    const sentinelClients = sentinels.map((sentinel) => sentinel.client());
    await waitFor(
      'every sentinel to know every replica and every other sentinel',
      async () => {
        for (const client of sentinelClients) {
          const replicas = (await client.call('SENTINEL', 'REPLICAS', name)) as unknown[];
          const others = (await client.call('SENTINEL', 'SENTINELS', name)) as unknown[];
          if (replicas.length < replicaCount || others.length < sentinelCount - 1) return false;
        }
        return true;
      },
      30_000,
    );
    const byPort = (port: number) => servers.find((server) => server.port === port);
    const namedPrimaries = async () => {
      const named = await Promise.all(
        sentinelClients.map(async (client) => {
          try {
            const [, port] = (await client.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)) as [string, string];
            return Number(port);
          } catch {
            return undefined;
          }
        }),
      );
      return named;
    };
    return {
      name,
      servers,
      sentinels,
      sentinelsVariable: sentinels.map((sentinel) => sentinel.address).join(','),
      async currentPrimary() {
        const port = (await namedPrimaries()).find((candidate) => candidate !== undefined);
        const server = port === undefined ? undefined : byPort(port);
        if (!server) throw new Error(`no sentinel names a primary of ours (port ${port})`);
        return server;
      },
      async waitForPromotion(old, timeoutMs = 30_000) {
        let promoted: RedisNode | undefined;
        await waitFor(
          `a quorum of sentinels to promote a replica of ${old.address}`,
          async () => {
            const ports = (await namedPrimaries()).filter((port) => port !== undefined && port !== old.port);
            const counts = new Map<number, number>();
            for (const port of ports) counts.set(port!, (counts.get(port!) ?? 0) + 1);
            const [port] = [...counts].find(([, votes]) => votes >= quorum) ?? [];
            const candidate = port === undefined ? undefined : byPort(port);
            if (!candidate) return false;
            const [role] = (await candidate.client().role()) as [string];
            if (role !== 'master') return false;
            promoted = candidate;
            return true;
          },
          timeoutMs,
        );
        return promoted!;
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Why `redis-server` or `redis-cli` cannot be run here (Debian's redis-server package has both), or undefined. */
export function redisBinariesReason(): string | undefined {
  for (const binary of ['redis-server', 'redis-cli']) {
    const version = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 5_000 });
    if (version.status !== 0) return `${binary} cannot be run: ${version.error?.message ?? version.stderr}`;
  }
  return undefined;
}

/**
 * For a test file that starts Redis processes: `skip` when the binaries are
 * missing and this is not CI (after a loud warning); under CI=true it runs,
 * and `assertRunnable()` (call it first) fails with the reason.
 */
export function redisProcessesGate(what: string): { skip: boolean; assertRunnable(): void } {
  const reason = redisBinariesReason();
  if (reason && !IN_CI) warnSkipped(what, reason);
  return {
    skip: reason !== undefined && !IN_CI,
    assertRunnable() {
      if (reason) throw new Error(`${reason}. Under CI=true ${what} must run, not skip.`);
    },
  };
}

// Last resort if a test file dies without its hooks: never leave a server behind (SIGKILL works on a stopped one).
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
