/**
 * How the Redis store reaches Redis: one server (`REDIS_URL`), a Redis
 * Cluster (`REDIS_CLUSTER_NODES`), or the primary Sentinel names
 * (`REDIS_SENTINELS` + `REDIS_SENTINEL_NAME`). Every client fails closed and
 * fast: no command waits for a reconnect or is sent twice, each has a
 * timeout. ioredis is loaded here, on demand, so processes on the other
 * stores never load it.
 */
import type { Cluster, ClusterOptions, Command, Redis, RedisOptions } from 'ioredis';
import type { HostPort } from '../config.ts';

/** Where Redis is: exactly one of the three. */
export type RedisTopology =
  | { url: string; cluster?: undefined; sentinels?: undefined }
  | { cluster: readonly HostPort[]; url?: undefined; sentinels?: undefined }
  | { sentinels: readonly HostPort[]; sentinelName: string; url?: undefined; cluster?: undefined };

export interface RedisConnection {
  /**
   * The client every command goes through: a Redis, or a Cluster that routes
   * each command to the primary of its keys' slot (typed as Redis: the
   * commands the store sends are the same on both).
   */
  readonly client: Redis;
  /** The Cluster, when it is one. */
  readonly cluster: Cluster | null;
  /** Where Redis is, without credentials, for health and messages: `redis://host:port/db`, `redis-cluster://…`, `redis-sentinel://…/name`. */
  readonly location: string;
  /** The setting that says so: REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS. */
  readonly variable: 'REDIS_URL' | 'REDIS_CLUSTER_NODES' | 'REDIS_SENTINELS';
  /** ioredis's Command, to send one with a timeout of its own (WAIT). */
  readonly Command: typeof Command;
  /** A connection to every primary: the client itself, or each primary of the Cluster. */
  primaries(): Redis[];
}

/**
 * Makes the client (not connected yet: `client.connect()` does that).
 *
 * @example
 * const { client, location } = await createRedisConnection({ url: 'redis://127.0.0.1:6379' }, 1_000);
 * await client.connect();
 */
export async function createRedisConnection(topology: RedisTopology, timeoutMs: number): Promise<RedisConnection> {
  const { Redis: RedisClient, Cluster: ClusterClient, Command: CommandClass } = await import('ioredis');
  const options: RedisOptions = {
    lazyConnect: true,
    // Fail closed and fast: no command waits for a reconnect, none is retried or sent again, each has a timeout.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: timeoutMs,
    connectTimeout: Math.max(timeoutMs, 1_000),
    retryStrategy: (attempt) => Math.min(50 * attempt, 1_000),
  };
  if (topology.cluster) {
    const clusterOptions: ClusterOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      enableReadyCheck: true,
      scaleReads: 'master',
      // A command whose connection closed may have run: never sent again (ioredis would, after 100 ms).
      retryDelayOnFailover: 0,
      // CLUSTERDOWN: the batch fails at once (503, nothing ran) rather than waiting in a queue.
      retryDelayOnClusterDown: 0,
      // MOVED, ASK and TRYAGAIN mean the command did not run: following them is safe.
      retryDelayOnMoved: 0,
      clusterRetryStrategy: (attempt) => Math.min(100 * attempt, 1_000),
      slotsRefreshTimeout: Math.max(timeoutMs, 1_000),
      redisOptions: options,
    };
    const cluster = new ClusterClient(
      topology.cluster.map(({ host, port }) => ({ host, port })),
      clusterOptions,
    );
    return {
      client: cluster as unknown as Redis,
      cluster,
      location: `redis-cluster://${topology.cluster.map(formatHostPort).join(',')}`,
      variable: 'REDIS_CLUSTER_NODES',
      Command: CommandClass,
      primaries: () => cluster.nodes('master'),
    };
  }
  if (topology.sentinels) {
    const client = new RedisClient({
      ...options,
      sentinels: topology.sentinels.map(({ host, port }) => ({ host, port })),
      name: topology.sentinelName,
      role: 'master',
      sentinelCommandTimeout: timeoutMs,
      sentinelRetryStrategy: (attempt) => Math.min(50 * attempt, 1_000),
      // No failoverDetector: a primary that fails is gone (its connection closes), and one that Sentinel
      // demotes closes its clients' connections itself; ioredis's detector, firing while a reconnect asks
      // the sentinels, leaves the client ended for good.
    });
    return {
      client,
      cluster: null,
      location: `redis-sentinel://${topology.sentinels.map(formatHostPort).join(',')}/${topology.sentinelName}`,
      variable: 'REDIS_SENTINELS',
      Command: CommandClass,
      primaries: () => [client],
    };
  }
  const client = new RedisClient(topology.url, options);
  const url = new URL(topology.url);
  return {
    client,
    cluster: null,
    location: `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`,
    variable: 'REDIS_URL',
    Command: CommandClass,
    primaries: () => [client],
  };
}

function formatHostPort({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
