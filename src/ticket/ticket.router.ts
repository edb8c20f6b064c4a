import type { Context } from 'hono';
import { jsonResponse } from '../lib/api-headers.ts';
import { createRouter } from '../lib/create-router.ts';
import { IDEMPOTENT_REPLAYED_HEADER, InFlightKeys } from '../lib/idempotency.ts';
import { keyedJsonReader } from '../lib/json-body.ts';
import { QtyRequestSchema } from '../lib/schemas.ts';
import type { TicketService } from './ticket-service.ts';
import { purchaseRoute, ticketAvailableRoute } from './ticket.routes.ts';

export interface TicketRouterOptions {
  tickets: TicketService;
  bodyLimitBytes: number;
  /**
   * Serve GET /api/v1/available through the vacancy client. Off in the
   * monolith, where the vacancy router answers it from the same actor.
   */
  serveAvailability: boolean;
}

/**
 * The ticket service's public API: purchases, and availability for buyers.
 *
 * @example
 * app.route('/', createTicketRouter({ tickets, bodyLimitBytes: 1024 * 1024, serveAvailability: true }));
 */
export function createTicketRouter({ tickets, bodyLimitBytes, serveAvailability }: TicketRouterOptions) {
  const router = createRouter();
  const inFlight = new InFlightKeys();

  // The hot path: described by purchaseRoute, validated in one step by the reader.
  const readPurchase = keyedJsonReader(QtyRequestSchema, bodyLimitBytes);
  router.openAPIRegistry.registerPath(purchaseRoute);
  router.post(purchaseRoute.path, async (c) => {
    const { body, idempotencyKey: key } = await readPurchase(c);
    const { replayed, ...purchase } = await inFlight.run(key, () =>
      tickets.purchase(body.qty, { ...callContext(c), idempotencyKey: key }),
    );
    return jsonResponse(c, purchase, 200, replayed ? { [IDEMPOTENT_REPLAYED_HEADER]: 'true' } : undefined);
  });

  if (serveAvailability) {
    router.openAPIRegistry.registerPath(ticketAvailableRoute);
    router.get(ticketAvailableRoute.path, async (c) => jsonResponse(c, { qty: await tickets.available(callContext(c)) }));
  }

  return router;
}

function callContext(c: Context) {
  return { requestId: c.get('requestId') };
}
