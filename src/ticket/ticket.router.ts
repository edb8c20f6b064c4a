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
      const { body, idempotencyKey } = await readPurchase(c);
      const context = { requestId: c.get('requestId'), idempotencyKey };
      outcome = await inFlight.run(idempotencyKey, () => tickets.purchase(body.qty, context));
    } catch (error) {
      metrics.purchase('rejected');
      throw error;
    }
    metrics.purchase(
      outcome.replayed ? 'replayed' : outcome.success ? 'sold' : 'insufficient',
      outcome.tickets ? outcome.tickets.last - outcome.tickets.first + 1 : 0,
    );
    // The answer's fields in one literal (undefined ones are left out of the JSON): no rest copy per purchase.
    const answer = {
      success: outcome.success,
      remaining: outcome.remaining,
      message: outcome.message,
      purchaseId: outcome.purchaseId,
      tickets: outcome.tickets,
    };
    return jsonResponse(c, answer, 200, outcome.replayed ? REPLAYED : undefined);
  });

  if (serveAvailability) {
    router.openAPIRegistry.registerPath(ticketAvailableRoute);
    router.get(ticketAvailableRoute.path, async (c) =>
      jsonResponse(c, { qty: await tickets.available(callContext(c)) }),
    );
  }

  return router;
}

const REPLAYED: Readonly<Record<string, string>> = Object.freeze({ [IDEMPOTENT_REPLAYED_HEADER]: 'true' });

function callContext(c: Context) {
  return { requestId: c.get('requestId') };
}
