import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { compress } from 'hono/compress';
import { cors } from 'hono/cors';
import packageJson from '../package.json' with { type: 'json' };
import type { Config } from './config.ts';
import { apiHeaders } from './lib/api-headers.ts';
import { requireBearerToken } from './lib/bearer-token.ts';
import { rateLimit, requestTimeout } from './lib/limits.ts';
import { Metrics } from './lib/metrics.ts';
import { silentLogger, type Logger } from './lib/logger.ts';
import { errorToProblem, problemResponse, validationHook } from './lib/problem.ts';
import { toProblemError } from './domain-problems.ts';
import { createDashboardRouter } from './dashboard/dashboard.router.ts';
import { createDocsRouter, type SwaggerUiAssets } from './system/docs.router.ts';
import type { Lifecycle } from './lib/lifecycle.ts';
import { createSystemRouter } from './system/system.router.ts';
import { TicketService } from './ticket/ticket-service.ts';
import { createEventPurchaseRouter } from './ticket/events.router.ts';
import { createTicketRouter } from './ticket/ticket.router.ts';
import type { VacancyClient } from './stock/vacancy-client.ts';
import type { StockActor } from './vacancy/stock-actor.ts';
import { createAdminRouter } from './vacancy/admin.router.ts';
import { createEventReadsRouter } from './vacancy/events.router.ts';
import { LocalVacancyClient } from './vacancy/local-vacancy-client.ts';
import { createVacancyRouter } from './vacancy/vacancy.router.ts';

export const VERSION: string = packageJson.version;

/** Kubernetes probes and Prometheus scrapes: frequent, and of no interest in a trace. */
const UNTRACED_PATHS = new Set(['/api/v1/health', '/api/v1/ready', '/metrics']);

/** What an app is built from; the entrypoint makes these, tests make their own. */
export interface AppDependencies {
  config: Config;
  /** The stock; required in monolith and vacancy modes. */
  actor?: StockActor;
  /** How tickets reach the stock; required in monolith and ticket modes. */
  vacancyClient?: VacancyClient;
  /** Shown in health reports, e.g. `remote http://vacancy:8001`. */
  vacancyClientDescription?: string;
  logger?: Logger;
  lifecycle?: Lifecycle;
  /** Where the app counts what it does; GET /metrics exports it. A fresh one when not given. */
  metrics?: Metrics;
  /**
   * Opens an OpenTelemetry server span per request (continuing an incoming
   * traceparent): @hono/otel's middleware, which the runtime edge hands over
   * once it has started a tracer provider (src/node/tracing.ts), so that
   * processes without tracing never load it.
   */
  traceRequests?: MiddlewareHandler;
  /** Swagger UI's files for /docs, read by the runtime edge (src/node/swagger-ui-assets.ts). */
  swaggerUiAssets?: SwaggerUiAssets;
}

/**
 * Builds the HTTP app for the configured mode. Pure: no socket is opened,
 * so tests call `app.request()` and runtimes serve `app.fetch`.
 *
 * @example
 * const config = parseConfig({ MODE: 'monolith', INITIAL_STOCK: '10' });
 * const actor = await StockActor.start(new MemoryStockStore(), new Map([['default', 10]]));
 * const app = createApp({ config, actor, vacancyClient: new LocalVacancyClient(actor) });
 * await app.request('/api/v1/available'); // 200 {"qty":10}
 */
export function createApp(deps: AppDependencies): OpenAPIHono {
  const { config } = deps;
  const logger = deps.logger ?? silentLogger;
  const lifecycle = deps.lifecycle ?? { shuttingDown: false };
  const mode = config.MODE;
  const ownsStock = mode === 'monolith' || mode === 'vacancy';
  const sells = mode === 'monolith' || mode === 'ticket';
  if (ownsStock && !deps.actor) throw new Error(`MODE=${mode} needs a stock actor`);
  if (sells && !deps.vacancyClient) throw new Error(`MODE=${mode} needs a vacancy client`);

  const metrics = deps.metrics ?? new Metrics();
  if (!deps.metrics && deps.actor) metrics.watchStock(deps.actor);

  const app = new OpenAPIHono({ defaultHook: validationHook });

  if (deps.traceRequests) {
    // The service's name and version are on the tracer's resource; probes and scrapes are not traced.
    const traced = deps.traceRequests;
    app.use(async (c, next) => (UNTRACED_PATHS.has(c.req.path) ? next() : traced(c, next)));
  }
  if (config.METRICS) app.use(metrics.middleware());
  app.use(apiHeaders(lifecycle));
  if (logger.isLevelEnabled('info')) app.use(requestLog(logger));
  if (config.RATE_LIMIT > 0) {
    app.use(
      rateLimit({ limit: config.RATE_LIMIT, windowSeconds: config.RATE_LIMIT_WINDOW, trustProxy: config.TRUST_PROXY }),
    );
  }
  if (config.REQUEST_TIMEOUT > 0) app.use('/api/*', requestTimeout(config.REQUEST_TIMEOUT));
  if (config.CORS_ORIGINS.length > 0) {
    const anyOrigin = config.CORS_ORIGINS[0] === '*';
    app.use(
      cors({
        origin: anyOrigin ? '*' : config.CORS_ORIGINS,
        // Credentials are never combined with a wildcard origin.
        credentials: !anyOrigin,
        allowHeaders: ['Content-Type', 'X-Request-Id', 'Idempotency-Key'],
        exposeHeaders: ['X-Request-Id', 'Idempotent-Replayed'],
      }),
    );
  }
  // Only documents are worth compressing: every API answer is well under compress's 1 KiB threshold,
  // and compress would still rebuild each answer to add a Vary header.
  app.use('/openapi.json', compress());

  if (ownsStock && deps.actor) {
    app.route(
      '/',
      createVacancyRouter({
        actor: deps.actor,
        bodyLimitBytes: config.BODY_LIMIT,
        internalToken: config.INTERNAL_TOKEN,
        metrics,
      }),
    );
    app.route('/', createEventReadsRouter({ vacancy: new LocalVacancyClient(deps.actor) }));
    if (config.ADMIN_TOKEN) {
      app.route(
        '/',
        createAdminRouter({ actor: deps.actor, adminToken: config.ADMIN_TOKEN, bodyLimitBytes: config.BODY_LIMIT }),
      );
      app.openAPIRegistry.registerComponent('securitySchemes', 'adminToken', { type: 'http', scheme: 'bearer' });
      app.route(
        '/',
        createDashboardRouter({
          stock: deps.actor,
          metrics,
          requestMetrics: config.METRICS,
          adminToken: config.ADMIN_TOKEN,
          service: { name: config.SERVICE_NAME, mode, version: VERSION },
          lifecycle,
          onError: (error) => logger.error({ err: error }, 'dashboard update failed'),
        }),
      );
    }
  }
  if (sells && deps.vacancyClient) {
    const tickets = new TicketService(deps.vacancyClient);
    app.route(
      '/',
      createTicketRouter({ tickets, bodyLimitBytes: config.BODY_LIMIT, metrics, serveAvailability: mode === 'ticket' }),
    );
    app.route(
      '/',
      createEventPurchaseRouter({
        tickets,
        bodyLimitBytes: config.BODY_LIMIT,
        metrics,
        holdTtl: { default: config.HOLD_TTL, max: config.HOLD_TTL_MAX },
      }),
    );
    // In the monolith the stock's own router answers these; a ticket service asks vacancy.
    if (mode === 'ticket') app.route('/', createEventReadsRouter({ vacancy: deps.vacancyClient }));
  }
  app.route(
    '/',
    createSystemRouter({
      mode,
      serviceName: config.SERVICE_NAME,
      version: VERSION,
      lifecycle,
      actor: deps.actor,
      vacancyClient: mode === 'ticket' ? deps.vacancyClient : undefined,
      vacancyClientDescription: deps.vacancyClientDescription,
    }),
  );

  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: `ticket-system (${mode})`,
      version: VERSION,
      description: 'Sells a limited stock of tickets under heavy concurrency without overselling.',
    },
  });
  app.route('/', createDocsRouter({ title: `ticket-system (${mode})`, assets: deps.swaggerUiAssets }));

  if (config.METRICS) {
    if (config.METRICS_TOKEN) app.use('/metrics', requireBearerToken(config.METRICS_TOKEN, 'metrics'));
    app.get('/metrics', async (c) =>
      c.body(await metrics.registry.metrics(), 200, { 'Content-Type': metrics.registry.contentType }),
    );
  }

  app.notFound((c) => problemResponse(c, 'notFound', `No route for ${c.req.method} ${c.req.path}`));
  app.onError((error, c) => {
    const { response, unexpected } = errorToProblem(toProblemError(error), c);
    if (unexpected) {
      logger.error(
        { err: error, requestId: c.get('requestId'), method: c.req.method, path: c.req.path },
        'unhandled error',
      );
    }
    return response;
  });

  return app;
}

/** One log line per request, at info: request id, method, path, status, duration. */
function requestLog(logger: Logger): MiddlewareHandler {
  return async (c: Context, next) => {
    const started = performance.now();
    await next();
    logger.info(
      {
        requestId: c.get('requestId'),
        ...(c.get('batchRequestIds') ? { requestIds: c.get('batchRequestIds') } : {}),
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        durationMs: Math.round((performance.now() - started) * 100) / 100,
      },
      'request',
    );
  };
}
