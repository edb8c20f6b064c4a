import { createRouter } from '../lib/create-router.ts';
import { INSUFFICIENT_INVENTORY } from '../ticket/ticket-service.ts';
import type { StockActor } from './stock-actor.ts';
import { availableRoute, reserveRoute } from './vacancy.routes.ts';

export interface VacancyRouterOptions {
  actor: StockActor;
  bodyLimitBytes: number;
}

/**
 * The vacancy service's API: the stock itself, owned by the actor.
 *
 * @example
 * app.route('/', createVacancyRouter({ actor, bodyLimitBytes: 1024 * 1024 }));
 */
export function createVacancyRouter({ actor, bodyLimitBytes }: VacancyRouterOptions) {
  const router = createRouter();

  router.openapi(availableRoute, async (c) => c.json({ qty: await actor.available() }, 200));

  router.openapi(reserveRoute(bodyLimitBytes), async (c) => {
    const { qty } = c.req.valid('json');
    const outcome = await actor.reserve(qty);
    return c.json(
      {
        success: outcome.success,
        remaining: outcome.remaining,
        message: outcome.success ? `Reserved ${qty} ticket${qty === 1 ? '' : 's'}` : INSUFFICIENT_INVENTORY,
      },
      200,
    );
  });

  return router;
}
