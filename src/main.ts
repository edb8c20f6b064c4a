#!/usr/bin/env node
/**
 * The Node entrypoint: reads configuration, builds the app for MODE and
 * serves it, and shuts down gracefully on SIGTERM / SIGINT. Everything
 * Node-only (sockets, the connection pool, the log destination, signals)
 * lives here, at the edge; the app itself is web-standard.
 */
import { existsSync } from 'node:fs';
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { pino } from 'pino';
import { Agent } from 'undici';
import { createApp } from './app.ts';
import { ConfigError, parseConfig, type Config } from './config.ts';
import { buildDependencies } from './dependencies.ts';
import { FileStockStore } from './node/file-stock-store.ts';
import { RedisStockStore } from './node/redis-stock-store.ts';
import { MemoryStockStore, type StockStore } from './vacancy/stock-store.ts';
import type { Lifecycle } from './system/system.router.ts';

/** Keep-alive longer than common load balancers' idle timeouts (AWS ALB 60 s, nginx 75 s). */
const KEEP_ALIVE_TIMEOUT_MS = 76_000;

function loadConfig(): Config {
  // .env is for development: variables already set in the environment win,
  // and a production environment never reads one.
  if (process.env.ENVIRONMENT !== 'production' && existsSync('.env')) process.loadEnvFile('.env');
  return parseConfig(process.env);
}

function createLogger(config: Config) {
  return pino({
    level: config.LOG_LEVEL,
    base: { service: config.SERVICE_NAME, mode: config.MODE },
    ...(config.JSON_LOGS
      ? {}
      : { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } }),
  });
}

/** The store of the modes that own stock; the file store is Node-only, so it is made here, at the edge. */
function createStore(config: Config, logger: ReturnType<typeof createLogger>): StockStore | undefined {
  if (config.MODE === 'ticket') return undefined;
  if (config.STOCK_STORE === 'memory') return new MemoryStockStore();
  if (config.STOCK_STORE === 'redis') {
    return new RedisStockStore({
      url: config.REDIS_URL,
      keyPrefix: config.REDIS_KEY_PREFIX,
      timeoutMs: Math.round(config.REDIS_TIMEOUT * 1000),
    });
  }
  return new FileStockStore({
    dataDir: config.DATA_DIR,
    snapshotEvery: config.SNAPSHOT_EVERY,
    maxKeys: config.IDEMPOTENCY_MAX_KEYS,
    logger,
  });
}

/**
 * `main.js healthcheck`: exit 0 when this container's service answers GET
 * /api/v1/health with 200, else 1. For container health checks in images
 * with no shell or curl.
 */
async function healthcheck(config: Config): Promise<never> {
  const url = `http://127.0.0.1:${config.port}/api/v1/health`;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    process.stdout.write(`${url}: ${response.status}\n`);
    process.exit(response.status === 200 ? 0 : 1);
  } catch (error) {
    process.stderr.write(`${url}: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }

  if (process.argv[2] === 'healthcheck') await healthcheck(config);
  if (process.argv[2] !== undefined) {
    process.stderr.write(`unknown command ${JSON.stringify(process.argv[2])}; the only command is healthcheck\n`);
    process.exit(2);
  }

  const logger = createLogger(config);
  const pool =
    config.MODE === 'ticket'
      ? new Agent({
          connections: config.HTTP_MAX_CONNECTIONS,
          keepAliveTimeout: 30_000,
          pipelining: 1,
          // A last line of defence under the client's own deadline: no socket waits longer than a call may.
          headersTimeout: Math.ceil(config.VACANCY_TIMEOUT * 1000),
          bodyTimeout: Math.ceil(config.VACANCY_TIMEOUT * 1000),
        })
      : undefined;
  const pooledFetch: typeof fetch | undefined = pool
    ? (input, init) => fetch(input, { ...init, dispatcher: pool } as RequestInit)
    : undefined;

  const deps = await buildDependencies(config, { logger, fetch: pooledFetch, store: createStore(config, logger) });
  const lifecycle: Lifecycle = { shuttingDown: false };
  const app = createApp({ ...deps, logger, lifecycle });

  const server = serve({ fetch: app.fetch, port: config.port, hostname: config.HOST }) as Server;
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1_000;
  server.on('error', (error) => {
    logger.error({ err: error }, `cannot listen on ${config.HOST}:${config.port}`);
    process.exit(1);
  });
  server.on('listening', () => {
    logger.info(
      { port: config.port, host: config.HOST, store: deps.actor?.storeKind, vacancy: deps.vacancyClientDescription },
      `${config.MODE} listening on http://${config.HOST}:${config.port}`,
    );
  });

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    lifecycle.shuttingDown = true;
    logger.info({ signal }, 'shutting down: refusing new connections, finishing requests in flight');
    const deadline = setTimeout(() => {
      logger.warn({ timeoutSeconds: config.SHUTDOWN_TIMEOUT }, 'shutdown deadline passed; closing remaining connections');
      server.closeAllConnections();
    }, config.SHUTDOWN_TIMEOUT * 1000);
    deadline.unref();
    // A connection busy at the signal becomes idle once its answer is sent; close those as they appear.
    const closeIdle = setInterval(() => server.closeIdleConnections(), 50);
    closeIdle.unref();
    server.close(async () => {
      clearTimeout(deadline);
      clearInterval(closeIdle);
      try {
        await deps.close();
        await pool?.close();
        logger.info({}, 'stopped');
        logger.flush?.();
        process.exit(0);
      } catch (error) {
        logger.error({ err: error }, 'failed to close cleanly');
        process.exit(1);
      }
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  // Start-up failures (a held lock, a corrupt journal) are for operators: the message, not a stack.
  process.stderr.write(`ticket-system failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
