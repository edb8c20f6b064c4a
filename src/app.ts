import { OpenAPIHono } from '@hono/zod-openapi';
import { swaggerUI } from '@hono/swagger-ui';
import type { Context, MiddlewareHandler } from 'hono';
import { compress } from 'hono/compress';
import { cors } from 'hono/cors';
import packageJson from '../package.json' with { type: 'json' };
import type { Config } from './config.ts';
import { apiHeaders } from './lib/api-headers.ts';
import { silentLogger, type Logger } from './lib/logger.ts';
import { errorToProblem, problemResponse, ProblemError, validationHook } from './lib/problem.ts';
import { createSystemRouter, type Lifecycle } from './system/system.router.ts';
import { TicketService } from './ticket/ticket-service.ts';
import { createTicketRouter } from './ticket/ticket.router.ts';
import { VacancyProtocolError } from './ticket/remote-vacancy-client.ts';
import { VacancyUnavailableError, type VacancyClient } from './ticket/vacancy-client.ts';
import {
  ActorClosedError,
  NegativeStockError,
  IdempotencyKeyInFlightError,
  IdempotencyKeyReusedError,
  StoreUnavailableError,
  UnknownInventoryError,
  type StockActor,
} from './vacancy/stock-actor.ts';
import { createAdminRouter } from './vacancy/admin.router.ts';
import { createVacancyRouter } from './vacancy/vacancy.router.ts';

export const VERSION: string = packageJson.version;

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

  const app = new OpenAPIHono({ defaultHook: validationHook });

  app.use(apiHeaders(lifecycle));
  if (logger.isLevelEnabled('info')) app.use(requestLog(logger));
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
  app.use('/docs', compress());

  if (ownsStock && deps.actor) {
    app.route(
      '/',
      createVacancyRouter({ actor: deps.actor, bodyLimitBytes: config.BODY_LIMIT, internalToken: config.INTERNAL_TOKEN }),
    );
    if (config.ADMIN_TOKEN) {
      app.route(
        '/',
        createAdminRouter({ actor: deps.actor, adminToken: config.ADMIN_TOKEN, bodyLimitBytes: config.BODY_LIMIT }),
      );
      app.openAPIRegistry.registerComponent('securitySchemes', 'adminToken', { type: 'http', scheme: 'bearer' });
    }
  }
  if (sells && deps.vacancyClient) {
    app.route(
      '/',
      createTicketRouter({
        tickets: new TicketService(deps.vacancyClient),
        bodyLimitBytes: config.BODY_LIMIT,
        serveAvailability: mode === 'ticket',
      }),
    );
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
  app.get('/docs', swaggerUI({ url: '/openapi.json' }));

  app.notFound((c) => problemResponse(c, 'notFound', `No route for ${c.req.method} ${c.req.path}`));
  app.onError((error, c) => {
    const { response, unexpected } = errorToProblem(toProblemError(error), c);
    if (unexpected) {
      logger.error({ err: error, requestId: c.get('requestId'), method: c.req.method, path: c.req.path }, 'unhandled error');
    }
    return response;
  });

  return app;
}

/** Maps the domain's failures to the problem a caller sees. */
function toProblemError(error: Error): Error {
  if (error instanceof VacancyUnavailableError) {
    const consequence = error.outcomeUnknown
      ? 'the purchase may or may not have been made; retry with the same Idempotency-Key to get its outcome without buying twice'
      : 'nothing was sold';
    return new ProblemError('serviceUnavailable', `${error.message}; ${consequence}`, {
      headers: { 'Retry-After': '1' },
      extensions: { outcomeUnknown: error.outcomeUnknown },
    });
  }
  if (error instanceof StoreUnavailableError && error.outcomeUnknown) {
    return new ProblemError(
      'serviceUnavailable',
      'The stock store did not answer in time; the change may or may not have been made — retry with the same Idempotency-Key to get its outcome without buying twice',
      { headers: { 'Retry-After': '1' }, extensions: { outcomeUnknown: true } },
    );
  }
  if (error instanceof StoreUnavailableError || error instanceof ActorClosedError) {
    return new ProblemError('serviceUnavailable', 'The stock cannot record changes right now; nothing was sold', {
      headers: { 'Retry-After': '1' },
    });
  }
  if (error instanceof VacancyProtocolError) {
    return new ProblemError('badGateway', error.message);
  }
  if (error instanceof IdempotencyKeyReusedError) {
    return new ProblemError('idempotencyKeyReused', `${error.message}; send a new key for a new request`);
  }
  if (error instanceof IdempotencyKeyInFlightError) {
    return new ProblemError('idempotencyKeyInFlight', `${error.message}; retry later`, { headers: { 'Retry-After': '1' } });
  }
  if (error instanceof NegativeStockError) {
    return new ProblemError('stockConflict', `${error.message}; nothing was changed`);
  }
  if (error instanceof UnknownInventoryError) {
    return new ProblemError('notFound', error.message);
  }
  return error;
}

/** One log line per request, at info: request id, method, path, status, duration. */
function requestLog(logger: Logger): MiddlewareHandler {
  return async (c: Context, next) => {
    const started = performance.now();
    await next();
    logger.info(
      {
        requestId: c.get('requestId'),
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        durationMs: Math.round((performance.now() - started) * 100) / 100,
      },
      'request',
    );
  };
}
