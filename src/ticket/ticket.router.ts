import type { Context } from 'hono';
import { jsonResponse } from '../lib/api-headers.ts';
import { createRouter } from '../lib/create-router.ts';
import { IDEMPOTENT_REPLAYED_HEADER, InFlightKeys } from '../lib/idempotency.ts';
import { keyedJsonReader } from '../lib/json-body.ts';
import { QtyRequestSchema } from '../lib/schemas.ts';
import type { Metrics } from '../lib/metrics.ts';
import type { PurchaseResult, TicketService } from './ticket-service.ts';
import { purchaseRoute, ticketAvailableRoute } from './ticket.routes.ts';

export interface TicketRouterOptions {
  tickets: TicketService;
  bodyLimitBytes: number;
  /** Counts purchases by outcome. */
  metrics: Metrics;
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
export function createTicketRouter({ tickets, bodyLimitBytes, serveAvailability, metrics }: TicketRouterOptions) {
  const router = createRouter();
  const inFlight = new InFlightKeys();

  // The hot path: described by purchaseRoute, validated in one step by the reader.
  const readPurchase = keyedJsonReader(QtyRequestSchema, bodyLimitBytes);
  router.openAPIRegistry.registerPath(purchaseRoute);
  router.post(purchaseRoute.path, async (c) => {
    let outcome: PurchaseResult;
    try {
      const { body, idempotencyKey: key } = await readPurchase(c);
      outcome = await inFlight.run(key, () => tickets.purchase(body.qty, { ...callContext(c), idempotencyKey: key }));
    } catch (error) {
      metrics.purchase('rejected');
      throw error;
    }
    const { replayed, ...purchase } = outcome;
    metrics.purchase(replayed ? 'replayed' : purchase.success ? 'sold' : 'insufficient', purchaseQty(purchase));
    return jsonResponse(c, purchase, 200, replayed ? { [IDEMPOTENT_REPLAYED_HEADER]: 'true' } : undefined);
  });

  if (serveAvailability) {
    router.openAPIRegistry.registerPath(ticketAvailableRoute);
    router.get(ticketAvailableRoute.path, async (c) =>
      jsonResponse(c, { qty: await tickets.available(callContext(c)) }),
    );
  }

  return router;
}

function callContext(c: Context) {
  return { requestId: c.get('requestId') };
}

function purchaseQty(purchase: Omit<PurchaseResult, 'replayed'>): number {
  return purchase.tickets ? purchase.tickets.last - purchase.tickets.first + 1 : 0;
}
