import { jsonResponse } from '../lib/api-headers.ts';
import { requireBearerToken } from '../lib/bearer-token.ts';
import { createRouter } from '../lib/create-router.ts';
import { IDEMPOTENT_REPLAYED_HEADER, InFlightKeys } from '../lib/idempotency.ts';
import { keyedJsonReader } from '../lib/json-body.ts';
import { QtyRequestSchema } from '../lib/schemas.ts';
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

  router.openAPIRegistry.registerPath(availableRoute);
  router.get(availableRoute.path, async (c) => jsonResponse(c, { qty: await actor.available() }));

  // The hot path: described by reserveRoute, validated in one step by the reader.
  const readReserve = keyedJsonReader(QtyRequestSchema, bodyLimitBytes);
  router.openAPIRegistry.registerPath(reserveRoute);
  router.post(reserveRoute.path, async (c) => {
    const { body, idempotencyKey: key } = await readReserve(c);
    const { qty } = body;
    // Reserve keys live apart from the purchase keys the monolith records in the same actor.
    const result = await inFlight.run(key, () =>
      actor.reserve(qty, { idempotencyKey: key === undefined ? undefined : `reserve:${key}` }),
    );
    return jsonResponse(
      c,
      {
        success: result.success,
        remaining: result.remaining,
        message: result.success ? `Reserved ${qty} ticket${qty === 1 ? '' : 's'}` : INSUFFICIENT_INVENTORY,
        ...(result.success ? { reservationId: result.reservationId, tickets: result.tickets } : {}),
      },
      200,
      result.replayed ? { [IDEMPOTENT_REPLAYED_HEADER]: 'true' } : undefined,
    );
  });

  return router;
}
