import { requireBearerToken } from '../lib/bearer-token.ts';
import { createRouter } from '../lib/create-router.ts';
import { IDEMPOTENT_REPLAYED_HEADER, InFlightKeys } from '../lib/idempotency.ts';
import { INSUFFICIENT_INVENTORY } from '../ticket/ticket-service.ts';
import type { StockActor } from './stock-actor.ts';
import { availableRoute, reserveRoute } from './vacancy.routes.ts';

export interface VacancyRouterOptions {
  actor: StockActor;
  bodyLimitBytes: number;
  /** When set, POST /api/v1/reserve (a service-to-service call) needs `Authorization: Bearer <token>`. */
  internalToken?: string;
}

/**
 * The vacancy service's API: the stock itself, owned by the actor.
 *
 * @example
 * app.route('/', createVacancyRouter({ actor, bodyLimitBytes: 1024 * 1024 }));
 */
export function createVacancyRouter({ actor, bodyLimitBytes, internalToken }: VacancyRouterOptions) {
  const router = createRouter();
  const inFlight = new InFlightKeys();
  if (internalToken) router.post('/api/v1/reserve', requireBearerToken(internalToken, 'internal'));

  router.openapi(availableRoute, async (c) => c.json({ qty: await actor.available() }, 200));

  router.openapi(reserveRoute(bodyLimitBytes), async (c) => {
    const { qty } = c.req.valid('json');
    const key = c.req.valid('header')['idempotency-key'];
    // Reserve keys live apart from the purchase keys the monolith records in the same actor.
    const result = await inFlight.run(key, () =>
      actor.reserve(qty, { idempotencyKey: key === undefined ? undefined : `reserve:${key}` }),
    );
    if (result.replayed) c.header(IDEMPOTENT_REPLAYED_HEADER, 'true');
    return c.json(
      {
        success: result.success,
        remaining: result.remaining,
        message: result.success ? `Reserved ${qty} ticket${qty === 1 ? '' : 's'}` : INSUFFICIENT_INVENTORY,
        ...(result.success ? { reservationId: result.reservationId, tickets: result.tickets } : {}),
      },
      200,
    );
  });

  return router;
}
