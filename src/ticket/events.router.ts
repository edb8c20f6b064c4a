import { jsonResponse } from '../lib/api-headers.ts';
import { createRouter } from '../lib/create-router.ts';
import { confirmHoldRoute, holdRoute, orderPurchaseRoute, releaseHoldRoute } from '../lib/event-routes.ts';
import { holdRequestSchema, OrderRequestSchema } from '../lib/event-schemas.ts';
import { IDEMPOTENT_REPLAYED_HEADER, InFlightKeys } from '../lib/idempotency.ts';
import { keyedJsonReader } from '../lib/json-body.ts';
import type { Metrics } from '../lib/metrics.ts';
import { ProblemError } from '../lib/problem.ts';
import { InsufficientInventoryError } from '../stock/errors.ts';
import { ID_PATTERN } from '../stock/model.ts';
import type { TicketService } from './ticket-service.ts';

export interface EventPurchaseRouterOptions {
  tickets: TicketService;
  bodyLimitBytes: number;
  /** Counts purchases by outcome, and tickets sold. */
  metrics: Metrics;
  /** A hold's time to live when its request names none (HOLD_TTL), and the longest it may ask for (HOLD_TTL_MAX), in s. */
  holdTtl: { default: number; max: number };
}

/**
 * POST /api/v1/events/{eventId}/purchase: an order of one or more ticket
 * types of one event, all or none, made through the vacancy client.
 *
 * @example
 * app.route('/', createEventPurchaseRouter({ tickets, bodyLimitBytes: 1024 * 1024, metrics }));
 */
export function createEventPurchaseRouter({ tickets, bodyLimitBytes, metrics, holdTtl }: EventPurchaseRouterOptions) {
  const router = createRouter();
  const inFlight = new InFlightKeys();
  const readOrder = keyedJsonReader(OrderRequestSchema, bodyLimitBytes);

  // A hot path: described by orderPurchaseRoute, validated in one step by the reader.
  router.openAPIRegistry.registerPath(orderPurchaseRoute);
  router.post(orderPurchaseRoute.path.replace('{eventId}', ':eventId'), async (c) => {
    try {
      const eventId = knownEventId(c.req.param('eventId') ?? '');
      const { body, idempotencyKey: key } = await readOrder(c);
      const { order, replayed } = await inFlight.run(key === undefined ? undefined : `${eventId} ${key}`, () =>
        tickets.purchaseOrder(
          eventId,
          body.items.map((item) => ({ typeId: item.ticketType, qty: item.qty })),
          { buyer: body.buyer ?? null, idempotencyKey: key, requestId: c.get('requestId') },
        ),
      );
      const qty = order.items.reduce((sum, item) => sum + item.qty, 0);
      metrics.purchase(replayed ? 'replayed' : 'sold', qty);
      return jsonResponse(c, order, 201, replayed ? { [IDEMPOTENT_REPLAYED_HEADER]: 'true' } : undefined);
    } catch (error) {
      metrics.purchase(error instanceof InsufficientInventoryError ? 'insufficient' : 'rejected');
      throw error;
    }
  });

  const readHold = keyedJsonReader(holdRequestSchema(holdTtl.max), bodyLimitBytes);
  router.openAPIRegistry.registerPath(holdRoute);
  router.post(holdRoute.path.replace('{eventId}', ':eventId'), async (c) => {
    const eventId = knownEventId(c.req.param('eventId') ?? '');
    const { body, idempotencyKey: key } = await readHold(c);
    const { hold, replayed } = await inFlight.run(key === undefined ? undefined : `${eventId} ${key}`, () =>
      tickets.hold(
        eventId,
        body.items.map((item) => ({ typeId: item.ticketType, qty: item.qty })),
        {
          buyer: body.buyer ?? null,
          ttlSeconds: body.ttlSeconds ?? holdTtl.default,
          idempotencyKey: key,
          requestId: c.get('requestId'),
        },
      ),
    );
    return jsonResponse(c, hold, 201, replayed ? { [IDEMPOTENT_REPLAYED_HEADER]: 'true' } : undefined);
  });

  router.openapi(confirmHoldRoute, async (c) => {
    const { holdId } = c.req.valid('param');
    const { order, replayed } = await tickets.confirm(holdId, { requestId: c.get('requestId') });
    return jsonResponse(c, order, replayed ? 200 : 201) as never;
  });

  router.openapi(releaseHoldRoute, async (c) => {
    const { holdId } = c.req.valid('param');
    const hold = await tickets.release(holdId, { requestId: c.get('requestId') });
    return jsonResponse(c, { holdId: hold.holdId, status: hold.status }) as never;
  });

  return router;
}

/** An event id from a path: one that no event can have is simply not found. */
function knownEventId(eventId: string): string {
  if (!ID_PATTERN.test(eventId)) throw new ProblemError('notFound', `There is no event ${JSON.stringify(eventId)}`);
  return eventId;
}
