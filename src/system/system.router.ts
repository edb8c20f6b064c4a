import { createRouter } from '../lib/create-router.ts';
import type { Lifecycle } from '../lib/lifecycle.ts';
import { ProblemError } from '../lib/problem.ts';
import type { Mode } from '../config.ts';
import type { StockActor } from '../vacancy/stock-actor.ts';
import type { VacancyClient } from '../stock/vacancy-client.ts';
import { healthRoute, readyRoute, rootRoute } from './system.routes.ts';

export interface SystemRouterOptions {
  mode: Mode;
  serviceName: string;
  version: string;
  lifecycle: Lifecycle;
  /** The stock, in the modes that own it (monolith, vacancy). */
  actor?: StockActor;
  /** How tickets reach the stock, in the modes that sell (monolith, ticket). */
  vacancyClient?: VacancyClient;
  /** Describes the vacancy client in health reports, e.g. `remote http://vacancy:8001`. */
  vacancyClientDescription?: string;
}

/**
 * GET /, /api/v1/health and /api/v1/ready for any mode. Health is liveness
 * (200 while the process answers); ready is 503 while shutting down or while
 * the stock cannot be reached or written.
 *
 * @example
 * app.route('/', createSystemRouter({ mode: 'vacancy', serviceName, version, lifecycle, actor }));
 */
export function createSystemRouter(options: SystemRouterOptions) {
  const { mode, serviceName, version, lifecycle, actor, vacancyClient } = options;
  const router = createRouter();

  router.openapi(rootRoute, (c) => c.json({ service: serviceName, version, mode, docs: '/docs' }, 200));

  const vacancyDetails = () => {
    if (!actor) return undefined;
    const level = actor.snapshot();
    return {
      status: 'healthy',
      store: actor.storeHealth(),
      stock: level ? { available: level.remaining, sold: level.sold } : null,
      actor: actor.stats(),
    };
  };
  const ticketDetails = () => ({ status: 'healthy', vacancyClient: options.vacancyClientDescription ?? 'local' });

  router.openapi(healthRoute, (c) => {
    const status = lifecycle.shuttingDown ? 'shutting-down' : 'healthy';
    const details =
      mode === 'monolith'
        ? { vacancy: vacancyDetails() ?? null, ticket: ticketDetails() }
        : mode === 'vacancy'
          ? (vacancyDetails() ?? {})
          : ticketDetails();
    return c.json({ status, service: mode, details }, 200);
  });

  router.openapi(readyRoute, async (c) => {
    if (lifecycle.shuttingDown) {
      throw new ProblemError('serviceUnavailable', 'The service is shutting down', { headers: { 'Retry-After': '5' } });
    }
    if (actor) {
      const store = await actor.checkStore();
      if (!store.writable) {
        const why = store.error ? `: ${store.error}` : '';
        throw new ProblemError('serviceUnavailable', `The ${store.kind} store cannot record changes${why}`, {
          headers: { 'Retry-After': '5' },
        });
      }
    }
    if (vacancyClient) {
      const probe = await vacancyClient.probe({ requestId: c.get('requestId') });
      if (!probe.ready) {
        throw new ProblemError('serviceUnavailable', probe.detail, { headers: { 'Retry-After': '5' } });
      }
      return c.json({ status: 'ready' as const, detail: probe.detail }, 200);
    }
    return c.json({ status: 'ready' as const, detail: `${actor?.storeKind ?? 'no'} store is writable` }, 200);
  });

  return router;
}
