import type { Context } from 'hono';
import { createRouter } from '../lib/create-router.ts';
import { IDEMPOTENT_REPLAYED_HEADER, InFlightKeys } from '../lib/idempotency.ts';
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

  router.openapi(purchaseRoute(bodyLimitBytes), async (c) => {
    const { qty } = c.req.valid('json');
    const key = c.req.valid('header')['idempotency-key'];
    const { replayed, ...purchase } = await inFlight.run(key, () =>
      tickets.purchase(qty, { ...callContext(c), idempotencyKey: key }),
    );
    if (replayed) c.header(IDEMPOTENT_REPLAYED_HEADER, 'true');
    return c.json(purchase, 200);
  });

  if (serveAvailability) {
    router.openapi(ticketAvailableRoute, async (c) => c.json({ qty: await tickets.available(callContext(c)) }, 200));
  }

  return router;
}

function callContext(c: Context) {
  return { requestId: c.get('requestId') as string | undefined };
}
