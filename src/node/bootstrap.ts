/**
 * What every runtime's entrypoint does before it serves: read and check the
 * configuration, make the logger and the store, build the app. Node, Deno
 * and Bun all run this (the stores and pino use Node built-ins, which Deno
 * and Bun provide); only listening, signals and exiting differ per runtime.
 */
import { existsSync } from 'node:fs';
import process from 'node:process';
import { pino, type Logger as PinoLogger } from 'pino';
import { createApp } from '../app.ts';
import { ConfigError, parseConfig, type Config } from '../config.ts';
import { buildDependencies, type BuiltDependencies } from '../dependencies.ts';
import type { Lifecycle } from '../lib/lifecycle.ts';
import type { VacancyFetch } from '../ticket/vacancy-fetch.ts';
import { MemoryStockStore, type StockStore } from '../stock/store.ts';
import { backupCommand } from './backup-command.ts';
import { RedisStockStore } from './redis-stock-store.ts';
import { swaggerUiAssets } from './swagger-ui-assets.ts';
import { SqliteStockStore } from './sqlite-stock-store.ts';
import type { Tracing } from './tracing.ts';

/** Keep-alive longer than common load balancers' idle timeouts (AWS ALB 60 s, nginx 75 s). */
export const KEEP_ALIVE_TIMEOUT_MS = 76_000;

/**
 * Reads the configuration, or exits 2 with the message naming every wrong
 * variable. `.env` is for development: variables already set win, and a
 * production environment never reads one.
 */
export function loadConfigOrExit(): Config {
  try {
    if (process.env.ENVIRONMENT !== 'production' && existsSync('.env') && typeof process.loadEnvFile === 'function') {
      process.loadEnvFile('.env');
    }
    return parseConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

export function createLogger(config: Config): PinoLogger {
  return pino({
    level: config.LOG_LEVEL,
    base: { service: config.SERVICE_NAME, mode: config.MODE },
    ...(config.JSON_LOGS
      ? {}
      : { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } }),
  });
}

/** The store of the modes that own stock, as STOCK_STORE says. */
export async function createStore(config: Config, logger: PinoLogger): Promise<StockStore | undefined> {
  if (config.MODE === 'ticket') return undefined;
  if (config.STOCK_STORE === 'memory') return new MemoryStockStore({ maxKeys: config.IDEMPOTENCY_MAX_KEYS });
  if (config.STOCK_STORE === 'redis') {
    return RedisStockStore.create({
      ...(config.REDIS_CLUSTER_NODES
        ? { cluster: config.REDIS_CLUSTER_NODES }
        : config.REDIS_SENTINELS && config.REDIS_SENTINEL_NAME
          ? { sentinels: config.REDIS_SENTINELS, sentinelName: config.REDIS_SENTINEL_NAME }
          : { url: config.REDIS_URL }),
      keyPrefix: config.REDIS_KEY_PREFIX,
      timeoutMs: Math.round(config.REDIS_TIMEOUT * 1000),
      waitReplicas: config.REDIS_WAIT_REPLICAS,
      waitTimeoutMs: Math.round(config.REDIS_WAIT_TIMEOUT * 1000),
    });
  }
  return new SqliteStockStore({
    dataDir: config.DATA_DIR,
    maxKeys: config.IDEMPOTENCY_MAX_KEYS,
    walAutocheckpoint: config.SQLITE_WAL_AUTOCHECKPOINT,
    logger: logger.child({ store: 'sqlite' }),
  });
}

export interface Started {
  config: Config;
  logger: PinoLogger;
  deps: BuiltDependencies;
  lifecycle: Lifecycle;
  app: ReturnType<typeof createApp>;
  /** Tracing, when the entry started it (Node with OTEL_* set); the entry shuts it down last. */
  tracing?: Tracing;
}

/** What only some runtimes' entries bring to {@link prepare}. */
export interface EntryExtras {
  /** Starts tracing if configured (src/node/tracing.ts); the app then opens a server span per request. */
  startTracing?: (config: Config, logger: PinoLogger) => Promise<Tracing | undefined>;
}

/**
 * Everything up to serving, from the configuration (see
 * {@link loadConfigOrExit}): the `healthcheck` and `backup PATH` subcommands,
 * logger, tracing (if the entry brings it and OTEL_* ask for it), store,
 * dependencies and the app. `fetch` is what the ticket service calls vacancy
 * through (by default the runtime's global fetch).
 */
export async function prepare(
  config: Config,
  args: readonly string[],
  fetch?: VacancyFetch,
  extras: EntryExtras = {},
): Promise<Started> {
  if (args[0] === 'healthcheck') await healthcheck(config);
  if (args[0] === 'backup') await backupCommand(config, args[1]);
  if (args[0] !== undefined) {
    process.stderr.write(`unknown command ${JSON.stringify(args[0])}; the commands are healthcheck and backup PATH\n`);
    process.exit(2);
  }
  const logger = createLogger(config);
  // Before anything is fetched, so that the first call to vacancy is traced too.
  const tracing = await extras.startTracing?.(config, logger);
  const deps = await buildDependencies(config, { logger, fetch, store: await createStore(config, logger) });
  const lifecycle: Lifecycle = { shuttingDown: false };
  const app = createApp({
    ...deps,
    logger,
    lifecycle,
    traceRequests: tracing?.requestMiddleware,
    swaggerUiAssets: swaggerUiAssets(),
  });
  return { config, logger, deps, lifecycle, app, tracing };
}

/** Logs that the service listens, with what it runs on. */
export function logListening({ config, logger, deps }: Started, runtime: string): void {
  logger.info(
    {
      port: config.port,
      host: config.HOST,
      runtime,
      store: deps.actor?.storeKind,
      vacancy: deps.vacancyClientDescription,
    },
    `${config.MODE} listening on http://${config.HOST}:${config.port}`,
  );
}

/** Closes the actor, the store and the vacancy client, then exits: 0 when all closed cleanly. */
export async function closeAndExit({ deps, logger }: Started, extra?: () => Promise<unknown>): Promise<never> {
  try {
    await deps.close();
    await extra?.();
    logger.info({}, 'stopped');
    logger.flush();
    process.exit(0);
  } catch (error) {
    logger.error({ err: error }, 'failed to close cleanly');
    process.exit(1);
  }
}

export interface ShutdownHooks {
  /** Stops accepting and resolves once every request in flight is answered. */
  drain(): Promise<unknown>;
  /** Called if draining outlasts SHUTDOWN_TIMEOUT: close what is left. */
  force(): unknown;
  /** Closes what the entrypoint opened itself (a connection pool), after the app's own resources. */
  release?(): Promise<unknown>;
}

/**
 * The shutdown every runtime does on SIGTERM / SIGINT (the entry passes how
 * it listens for them): readiness turns 503, the server drains (forced after
 * SHUTDOWN_TIMEOUT), then the actor, store and clients close and the process
 * exits 0.
 */
export function shutdownOnSignals(
  started: Started,
  listen: (signal: 'SIGTERM' | 'SIGINT', handler: () => void) => void,
  hooks: ShutdownHooks,
): void {
  const { config, logger, lifecycle } = started;
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    lifecycle.shuttingDown = true;
    logger.info({ signal }, 'shutting down: refusing new connections, finishing requests in flight');
    const deadline = setTimeout(() => {
      logger.warn(
        { timeoutSeconds: config.SHUTDOWN_TIMEOUT },
        'shutdown deadline passed; closing remaining connections',
      );
      void hooks.force();
    }, config.SHUTDOWN_TIMEOUT * 1000);
    void hooks.drain().then(() => {
      clearTimeout(deadline);
      return closeAndExit(started, hooks.release);
    });
  };
  listen('SIGTERM', () => shutdown('SIGTERM'));
  listen('SIGINT', () => shutdown('SIGINT'));
}

/** Reports a start-up failure (a held lock, a corrupt journal, no Redis) for operators, and exits 1. */
export function exitOnStartFailure(error: unknown): never {
  process.stderr.write(`ticket-system failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}

/**
 * `healthcheck`: exit 0 when this container's service answers GET
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
