/**
 * The three ways the service runs, started as real processes for load tests:
 * the monolith on SQLite, ticket in front of vacancy on SQLite, and three
 * vacancy replicas sharing Redis behind one ticket service. Plus a keep-alive
 * HTTP client for many requests at once.
 */
import { Agent, request } from 'undici';
import { makeTempDir, removeDir } from './http-json.ts';
import { startService, stopAllServices, type Service } from './processes.ts';
import { deleteKeysWithPrefix, redisGate, uniquePrefix } from './redis.ts';

export interface Reply {
  status: number;
  text: string;
  body: Record<string, unknown>;
  replayed: boolean;
}

const agent = new Agent({ connections: 128, keepAliveTimeout: 30_000, pipelining: 1 });

/** One request on the shared keep-alive pool; the body parsed when it is JSON. */
export async function call(
  url: string,
  method: string,
  json?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const response = await request(url, {
    method: method as 'GET',
    dispatcher: agent,
    headers: { ...(json === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(json === undefined ? {} : { body: JSON.stringify(json) }),
    headersTimeout: 60_000,
    bodyTimeout: 60_000,
  });
  const text = await response.body.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON: kept as text for the failure message
  }
  return { status: response.statusCode, text, body, replayed: response.headers['idempotent-replayed'] === 'true' };
}

export interface Topology {
  name: string;
  /** Redis is not reachable here (and this is not CI): skip, loudly. */
  skip?: boolean;
  /** Starts the services; answers where the admin API is and where buyers go. */
  start(): Promise<{ admin: Service; buyers: Service }>;
}

/**
 * The topologies, with `adminToken` as every stock owner's ADMIN_TOKEN.
 * Call the returned `cleanup` in afterAll: it stops every service and
 * removes the data directories and Redis keys.
 */
export async function topologies(
  label: string,
  adminToken: string,
): Promise<{ topologies: Topology[]; cleanup(): Promise<void> }> {
  const dirs: string[] = [];
  const gate = await redisGate(`${label} on Redis`);
  const redisPrefix = uniquePrefix(label);
  const dataDir = (name: string) => {
    const dir = makeTempDir(`ticket-${label}-${name}`);
    dirs.push(dir);
    return dir;
  };
  return {
    topologies: [
      {
        name: 'the monolith on SQLite',
        async start() {
          const monolith = await startService({
            MODE: 'monolith',
            STOCK_STORE: 'sqlite',
            DATA_DIR: dataDir('monolith'),
            ADMIN_TOKEN: adminToken,
          });
          return { admin: monolith, buyers: monolith };
        },
      },
      {
        name: 'ticket and vacancy on SQLite',
        async start() {
          const vacancy = await startService({
            MODE: 'vacancy',
            STOCK_STORE: 'sqlite',
            DATA_DIR: dataDir('micro'),
            ADMIN_TOKEN: adminToken,
          });
          // Correctness under load, not latency: a busy machine's queue can outlast the default 5 s budget.
          const ticket = await startService({ MODE: 'ticket', VACANCY_URL: vacancy.url, VACANCY_TIMEOUT: '30' });
          return { admin: vacancy, buyers: ticket };
        },
      },
      {
        name: 'three vacancy replicas on Redis behind a ticket service',
        skip: gate.skip,
        async start() {
          gate.assertReachable();
          const env = {
            MODE: 'vacancy',
            STOCK_STORE: 'redis',
            REDIS_URL: gate.url,
            REDIS_KEY_PREFIX: redisPrefix,
            ADMIN_TOKEN: adminToken,
          };
          const replicas = await Promise.all([0, 1, 2].map(() => startService(env)));
          const ticket = await startService({
            MODE: 'ticket',
            VACANCY_URL: replicas.map((replica) => replica.url).join(','),
            VACANCY_TIMEOUT: '30',
          });
          return { admin: replicas[0]!, buyers: ticket };
        },
      },
    ],
    async cleanup() {
      await stopAllServices(3_000);
      await agent.close();
      for (const dir of dirs) removeDir(dir);
      if (gate.reachable) await deleteKeysWithPrefix(gate.url, redisPrefix);
    },
  };
}
