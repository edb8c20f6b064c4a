/**
 * The events API's bodies and answers as zod schemas: they validate requests
 * and, through @hono/zod-openapi, are the OpenAPI document.
 */
import { z } from '@hono/zod-openapi';
import { ID_PATTERN, MAX_CAPACITY } from '../stock/model.ts';
import { REQUEST_ID } from './api-headers.ts';
import { IdempotencyKeySchema, MAX_RESERVE_BATCH } from './schemas.ts';

const ID_RULE = 'must be 1 to 64 lowercase letters, digits or hyphens, starting with a letter or digit';

const id = (what: string, example: string) =>
  z
    .string({ error: `${what} must be a string` })
    .regex(ID_PATTERN, `${what} ${ID_RULE}`)
    .openapi({ example });

const name = (what: string, example: string) =>
  z
    .string({ error: `${what} must be a string` })
    .min(1, `${what} must not be empty`)
    .max(200, `${what} must be at most 200 characters`)
    .openapi({ example });

const count = (what: string, min: number, example: number) =>
  z
    .number({ error: `${what} must be a number` })
    .int(`${what} must be a whole number`)
    .min(min, `${what} must be at least ${min}`)
    .max(MAX_CAPACITY, `${what} must be at most ${MAX_CAPACITY}`)
    .openapi({ example });

/** A check that no two entries of a list share `field`; the second one is the field named. */
function eachOnce<Field extends string>(field: Field, message: (value: string) => string) {
  return (entries: Array<Record<Field, string>>, ctx: z.RefinementCtx) => {
    const seen = new Set<string>();
    entries.forEach((entry, index) => {
      if (seen.has(entry[field]))
        ctx.addIssue({ code: 'custom', path: [index, field], message: message(entry[field]) });
      seen.add(entry[field]);
    });
  };
}

/** A path's event id: one that cannot exist is simply not found. */
export const EventIdParamsSchema = z.object({
  eventId: z.string().openapi({ param: { name: 'eventId', in: 'path' }, example: 'spring-concert' }),
});

/** The body of PUT /api/v1/events/{eventId}. */
export const EventDefinitionSchema = z
  .object({
    name: name('name', 'Spring Concert'),
    capacity: count('capacity', 0, 1000)
      .nullable()
      .optional()
      .openapi({ description: 'Cap on the tickets of all types together; absent or null: no cap' }),
    maxPerBuyer: count('maxPerBuyer', 1, 8).nullable().optional().openapi({
      description:
        'Most tickets of all types one buyer may hold or have bought (a request must then name its buyer); absent or null: no limit',
    }),
    ticketTypes: z
      .array(
        z.object({
          id: id('id', 'general'),
          name: name('name', 'General admission'),
          capacity: count('capacity', 0, 900),
          maxPerOrder: count('maxPerOrder', 1, 10)
            .nullable()
            .optional()
            .openapi({ description: 'Most tickets of this type in one order; absent or null: no limit' }),
          maxPerBuyer: count('maxPerBuyer', 1, 4).nullable().optional().openapi({
            description: 'Most tickets of this type one buyer may hold or have bought; absent or null: no limit',
          }),
        }),
        { error: 'ticketTypes must be a list' },
      )
      .min(1, 'ticketTypes must hold at least one ticket type')
      .max(100, 'ticketTypes must hold at most 100 ticket types')
      .superRefine(eachOnce('id', (id) => `ticket type ${id} is listed twice`)),
  })
  .openapi('EventDefinition');

export type EventDefinitionBody = z.output<typeof EventDefinitionSchema>;

const TicketTypeViewSchema = z
  .object({
    id: z.string().openapi({ example: 'vip' }),
    name: z.string().openapi({ example: 'VIP' }),
    capacity: z.number().int().openapi({ example: 100 }),
    maxPerOrder: z.number().int().nullable().openapi({ example: 4 }),
    maxPerBuyer: z.number().int().nullable().openapi({ example: 4 }),
    sold: z.number().int().openapi({ example: 12 }),
    held: z.number().int().openapi({ example: 3, description: 'Out of sale in holds not yet confirmed or expired' }),
    available: z.number().int().openapi({
      example: 88,
      description: "What can still be sold of this type: its own capacity left, within what the event's cap leaves",
    }),
  })
  .openapi('TicketType');

export const EventViewSchema = z
  .object({
    id: z.string().openapi({ example: 'spring-concert' }),
    name: z.string().openapi({ example: 'Spring Concert' }),
    capacity: z.number().int().nullable().openapi({ example: 1000, description: 'The cap over all types, or null' }),
    maxPerBuyer: z.number().int().nullable().openapi({ example: 8 }),
    sold: z.number().int().openapi({ example: 40 }),
    held: z.number().int().openapi({ example: 6 }),
    available: z.number().int().openapi({ example: 960, description: 'What can still be sold over all types' }),
    ticketTypes: z.array(TicketTypeViewSchema),
  })
  .openapi('Event');

export const EventListQuerySchema = z.object({
  limit: z
    .string()
    .regex(/^\d+$/, 'limit must be a whole number from 1 to 100')
    .transform(Number)
    .pipe(z.number().min(1, 'limit must be at least 1').max(100, 'limit must be at most 100'))
    .optional()
    .openapi({ param: { name: 'limit', in: 'query' }, example: '50', description: 'At most this many (default 50)' }),
  after: z
    .string()
    .max(64, 'after must be at most 64 characters')
    .optional()
    .openapi({ param: { name: 'after', in: 'query' }, description: 'List the events whose ids sort after this one' }),
});

export const EventListSchema = z
  .object({
    events: z.array(EventViewSchema),
    next: z.string().optional().openapi({
      description: 'Pass as `after` for the next page; absent on the last page',
      example: 'spring-concert',
    }),
  })
  .openapi('EventList');

/** The body of POST /api/v1/events/{eventId}/purchase. */
export const OrderRequestSchema = z
  .object({
    items: z
      .array(
        z.object({
          ticketType: id('ticketType', 'vip'),
          qty: z
            .number({ error: 'qty must be a number' })
            .int('qty must be a whole number')
            .min(1, 'qty must be at least 1')
            .max(MAX_CAPACITY, `qty must be at most ${MAX_CAPACITY}`)
            .openapi({ example: 2 }),
        }),
        { error: 'items must be a list' },
      )
      .min(1, 'items must hold at least one item')
      .max(100, 'items must hold at most 100 items')
      .superRefine(
        eachOnce('ticketType', (id) => `ticket type ${id} is listed twice; ask for its whole qty in one item`),
      ),
    buyer: z
      .string({ error: 'buyer must be a string' })
      .min(1, 'buyer must not be empty')
      .max(200, 'buyer must be at most 200 characters')
      .optional()
      .openapi({ example: 'customer-8812', description: 'An opaque id of the buyer, kept with the order' }),
  })
  .openapi('OrderRequest');

export type OrderRequestBody = z.output<typeof OrderRequestSchema>;

export const OrderSchema = z
  .object({
    orderId: z.string().openapi({
      example: 'ord_AZrI2kPq3kPqXv8TQm2bL0sWf9ZyAaspring-concert',
      description: '`ord_`, 30 URL-safe characters (time, then random), then the event id',
    }),
    eventId: z.string().openapi({ example: 'spring-concert' }),
    items: z.array(
      z.object({
        ticketType: z.string().openapi({ example: 'vip' }),
        qty: z.number().int().openapi({ example: 2 }),
        tickets: z
          .object({ first: z.number().int(), last: z.number().int() })
          .openapi({ description: 'The ticket numbers of this line, first to last; per type, never handed out twice' }),
      }),
    ),
    buyer: z.string().nullable().openapi({ example: 'customer-8812' }),
    status: z.enum(['confirmed', 'cancelled']).openapi({ description: 'cancelled once an operator cancelled it' }),
    holdId: z.string().optional().openapi({ description: 'The hold this order confirmed, when there was one' }),
    createdAt: z.string().openapi({ example: '2026-12-01T20:15:00.000Z' }),
  })
  .openapi('Order');

/** The body of POST /api/v1/events/{eventId}/holds; the longest ttlSeconds comes from HOLD_TTL_MAX. */
export function holdRequestSchema(maxTtlSeconds: number) {
  return z
    .object({
      items: OrderRequestSchema.shape.items,
      buyer: OrderRequestSchema.shape.buyer,
      ttlSeconds: z
        .number({ error: 'ttlSeconds must be a number' })
        .int('ttlSeconds must be a whole number')
        .min(10, 'ttlSeconds must be at least 10')
        .max(maxTtlSeconds, `ttlSeconds must be at most ${maxTtlSeconds}`)
        .optional()
        .openapi({ example: 600, description: 'How long the hold lasts (default HOLD_TTL)' }),
    })
    .openapi('HoldRequest');
}

export type HoldRequestBody = z.output<ReturnType<typeof holdRequestSchema>>;

export const HoldSchema = z
  .object({
    holdId: z.string().openapi({
      example: 'hld_AZrI2kPq7QmXv2L0sWf9ZyAa3kPqXvspring-concert',
      description:
        '`hld_`, 30 URL-safe characters (time, then random), then the event id. Holding it is the right to confirm or release',
    }),
    eventId: z.string().openapi({ example: 'spring-concert' }),
    items: z.array(z.object({ ticketType: z.string(), qty: z.number().int() })),
    buyer: z.string().nullable(),
    status: z.enum(['held', 'confirmed', 'released', 'expired']),
    expiresAt: z.string().openapi({
      example: '2026-12-01T20:25:00.000Z',
      description: 'Never confirmable after this; its stock back on sale within a second of it',
    }),
    orderId: z.string().optional().openapi({ description: 'Set once confirmed' }),
  })
  .openapi('Hold');

export const HoldReleasedSchema = z
  .object({
    holdId: z.string(),
    status: z.enum(['released', 'expired']).openapi({ description: 'expired when its time had passed first' }),
  })
  .openapi('HoldReleased');

export const HoldIdParamsSchema = z.object({
  holdId: z
    .string()
    .openapi({ param: { name: 'holdId', in: 'path' }, example: 'hld_AZrI2kPq7QmXv2L0sWf9ZyAa3kPqXvspring-concert' }),
});

export const OrderIdParamsSchema = z.object({
  orderId: z
    .string()
    .openapi({ param: { name: 'orderId', in: 'path' }, example: 'ord_AZrI2kPq3kPqXv8TQm2bL0sWf9ZyAaspring-concert' }),
});

export const InsufficientInventoryProblemSchema = z
  .object({
    type: z.string().openapi({ example: 'https://ticket-system.dev/problems/insufficient-inventory' }),
    title: z.string().openapi({ example: 'Insufficient inventory' }),
    status: z.number().int().openapi({ example: 409 }),
    detail: z.string(),
    instance: z.string().optional(),
    items: z.array(
      z.object({
        ticketType: z.string(),
        requested: z.number().int(),
        available: z.number().int(),
      }),
    ),
  })
  .openapi('InsufficientInventoryProblem');

/**
 * The body of POST /api/v1/batch (ticket to vacancy): purchases the ticket
 * service coalesced, each under its own idempotency key, decided in order.
 */
const requestId = z.string().regex(REQUEST_ID, 'requestId must be 1-255 letters, digits, _, - or =').optional();

export const CommandBatchRequestSchema = z
  .object({
    commands: z
      .array(
        z.discriminatedUnion('op', [
          z.object({
            op: z.literal('purchase'),
            eventId: z.string().openapi({ example: 'spring-concert' }),
            items: OrderRequestSchema.shape.items,
            buyer: OrderRequestSchema.shape.buyer,
            key: IdempotencyKeySchema.openapi({
              description: "The purchase's idempotency key: a retried batch replays the decisions already made",
            }),
            requestId,
          }),
          z.object({
            op: z.literal('hold'),
            eventId: z.string(),
            items: OrderRequestSchema.shape.items,
            buyer: OrderRequestSchema.shape.buyer,
            ttlSeconds: z.number().int().min(1).max(86_400),
            key: IdempotencyKeySchema,
            requestId,
          }),
          z.object({ op: z.literal('confirm'), holdId: z.string(), requestId }),
          z.object({ op: z.literal('release'), holdId: z.string(), requestId }),
        ]),
      )
      .min(1, 'commands must not be empty')
      .max(MAX_RESERVE_BATCH, `commands must hold at most ${MAX_RESERVE_BATCH} items`),
  })
  .openapi('CommandBatchRequest');

export const CommandBatchResponseSchema = z
  .object({
    results: z.array(
      z.union([
        z.object({ status: z.literal(201), order: OrderSchema, replayed: z.boolean() }),
        z.object({ status: z.literal(201), hold: HoldSchema, replayed: z.boolean() }),
        z.object({
          status: z.number().int(),
          type: z.string(),
          title: z.string(),
          detail: z.string(),
          outcomeUnknown: z.boolean().optional(),
        }),
      ]),
    ),
  })
  .openapi('CommandBatchResponse');
