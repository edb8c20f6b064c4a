import { createRoute } from '@hono/zod-openapi';
import {
  CommandBatchRequestSchema,
  CommandBatchResponseSchema,
  EventDefinitionSchema,
  EventIdParamsSchema,
  EventListQuerySchema,
  EventListSchema,
  EventViewSchema,
  HoldIdParamsSchema,
  HoldReleasedSchema,
  HoldSchema,
  holdRequestSchema,
  InsufficientInventoryProblemSchema,
  OrderIdParamsSchema,
  OrderRequestSchema,
  OrderSchema,
} from './event-schemas.ts';
import { jsonBody } from './json-body.ts';
import { PROBLEM_CONTENT_TYPE } from './problem.ts';
import { IdempotencyHeadersSchema, problemResponses, replayedHeader } from './schemas.ts';

/** The errors of a route that takes tickets (a purchase or a hold); `conflicts` says what its 409s mean. */
function takingProblems(conflicts: string) {
  return {
    409: {
      description: conflicts,
      content: { [PROBLEM_CONTENT_TYPE]: { schema: InsufficientInventoryProblemSchema } },
    },
    ...problemResponses(
      'invalidIdempotencyKey',
      'notFound',
      'malformedJson',
      'payloadTooLarge',
      'unsupportedMediaType',
      'validation',
      'idempotencyKeyReused',
      'serviceUnavailable',
      'badGateway',
    ),
  };
}

export const listEventsRoute = createRoute({
  method: 'get',
  path: '/api/v1/events',
  tags: ['events'],
  summary: 'List events',
  description:
    'Events whose ids sort after `after`, in id order, at most `limit` (default 50, at most 100). `next` is the `after` of the following page; it is absent on the last.',
  request: { query: EventListQuerySchema },
  responses: {
    200: { description: 'A page of events', content: { 'application/json': { schema: EventListSchema } } },
    ...problemResponses('validation', 'serviceUnavailable'),
  },
});

export const getEventRoute = createRoute({
  method: 'get',
  path: '/api/v1/events/{eventId}',
  tags: ['events'],
  summary: 'An event and what is left of each ticket type',
  request: { params: EventIdParamsSchema },
  responses: {
    200: { description: 'The event', content: { 'application/json': { schema: EventViewSchema } } },
    ...problemResponses('notFound', 'serviceUnavailable'),
  },
});

export const putEventRoute = (bodyLimitBytes: number) =>
  createRoute({
    method: 'put',
    path: '/api/v1/events/{eventId}',
    tags: ['admin'],
    summary: 'Create or update an event (operators)',
    description:
      'Creates the event (201) or updates it (200): names, capacities and limits may change and ticket types may be added. A capacity below what is sold, or removing a ticket type that has sold, is a 409 that changes nothing. Recorded by the store like a sale. Needs Authorization: Bearer ADMIN_TOKEN; absent (404) without one.',
    security: [{ adminToken: [] }],
    middleware: jsonBody(bodyLimitBytes),
    request: {
      params: EventIdParamsSchema,
      body: { required: true, content: { 'application/json': { schema: EventDefinitionSchema } } },
    },
    responses: {
      200: { description: 'The event, updated', content: { 'application/json': { schema: EventViewSchema } } },
      201: { description: 'The event, created', content: { 'application/json': { schema: EventViewSchema } } },
      ...problemResponses(
        'malformedJson',
        'unauthorized',
        'stockConflict',
        'payloadTooLarge',
        'unsupportedMediaType',
        'validation',
        'serviceUnavailable',
      ),
    },
  });

export const orderPurchaseRoute = createRoute({
  method: 'post',
  path: '/api/v1/events/{eventId}/purchase',
  tags: ['events'],
  summary: 'Buy tickets of one or more types, all or none',
  description:
    'Takes every item if all fit (each type within its own capacity, all of them within the event’s cap), else none: a 409 listing what each item had. An Idempotency-Key makes a retry replay the first answer.',
  request: {
    params: EventIdParamsSchema,
    headers: IdempotencyHeadersSchema,
    body: { required: true, content: { 'application/json': { schema: OrderRequestSchema } } },
  },
  responses: {
    201: {
      description: 'The order, recorded before it is answered',
      headers: replayedHeader,
      content: { 'application/json': { schema: OrderSchema } },
    },
    ...takingProblems(
      'Not enough tickets for some item (insufficient-inventory, with each item’s available), the buyer’s limit reached (buyer-limit-reached), or a request with this Idempotency-Key still in progress',
    ),
  },
});

export const commandBatchRoute = createRoute({
  method: 'post',
  path: '/api/v1/batch',
  tags: ['vacancy'],
  summary: 'Decide many purchases at once (service to service)',
  description:
    'What the ticket service sends for the purchases it coalesced: each is decided as its own call would be, under its key, in the order sent, and answered in `results` with the status that call would have had. A retried batch replays the decisions already made. With INTERNAL_TOKEN configured, needs Authorization: Bearer INTERNAL_TOKEN.',
  request: { body: { required: true, content: { 'application/json': { schema: CommandBatchRequestSchema } } } },
  responses: {
    200: {
      description: 'One result per command, in the order sent',
      content: { 'application/json': { schema: CommandBatchResponseSchema } },
    },
    ...problemResponses('malformedJson', 'payloadTooLarge', 'unsupportedMediaType', 'validation', 'unauthorized'),
  },
});

export const holdRoute = createRoute({
  method: 'post',
  path: '/api/v1/events/{eventId}/holds',
  tags: ['checkout'],
  summary: 'Take tickets out of sale while the buyer pays, all or none',
  description:
    'Holds every item for `ttlSeconds` (default HOLD_TTL, 10 to HOLD_TTL_MAX), or none: a 409 listing what each item had, or a 409 buyer-limit-reached. Confirm the hold before its `expiresAt`; after it the hold is never confirmable and its tickets are back on sale within a second. The hold id is the right to confirm or release it: give it only to the buyer. An Idempotency-Key makes a retry replay the first answer.',
  request: {
    params: EventIdParamsSchema,
    headers: IdempotencyHeadersSchema,
    body: { required: true, content: { 'application/json': { schema: holdRequestSchema(86_400) } } },
  },
  responses: {
    201: {
      description: 'The hold, recorded before it is answered',
      headers: replayedHeader,
      content: { 'application/json': { schema: HoldSchema } },
    },
    ...takingProblems(
      'Not enough tickets (insufficient-inventory, with each item’s available), the buyer’s limit reached (buyer-limit-reached), or a request with this Idempotency-Key still in progress',
    ),
  },
});

export const getHoldRoute = createRoute({
  method: 'get',
  path: '/api/v1/holds/{holdId}',
  tags: ['checkout'],
  summary: 'A hold and its status: held, confirmed (with its orderId), released or expired',
  request: { params: HoldIdParamsSchema },
  responses: {
    200: { description: 'The hold as it is now', content: { 'application/json': { schema: HoldSchema } } },
    ...problemResponses('notFound', 'serviceUnavailable', 'badGateway'),
  },
});

export const confirmHoldRoute = createRoute({
  method: 'post',
  path: '/api/v1/holds/{holdId}/confirm',
  tags: ['checkout'],
  summary: 'Turn a hold into an order',
  description:
    'Sells the held tickets: 201 with the order. Confirming again answers the same order (200). A hold that expired or was released: 410, nothing sold.',
  request: { params: HoldIdParamsSchema },
  responses: {
    200: {
      description: 'The order this hold became earlier',
      content: { 'application/json': { schema: OrderSchema } },
    },
    201: {
      description: 'The order, recorded before it is answered',
      content: { 'application/json': { schema: OrderSchema } },
    },
    ...problemResponses('notFound', 'holdExpired', 'holdReleased', 'serviceUnavailable', 'badGateway'),
  },
});

export const releaseHoldRoute = createRoute({
  method: 'delete',
  path: '/api/v1/holds/{holdId}',
  tags: ['checkout'],
  summary: 'Release a hold: its tickets are back on sale at once',
  description:
    'Releasing again answers the same. A hold that expired first answers status expired. A confirmed hold: 409.',
  request: { params: HoldIdParamsSchema },
  responses: {
    200: { description: 'Released', content: { 'application/json': { schema: HoldReleasedSchema } } },
    ...problemResponses('notFound', 'holdConfirmed', 'serviceUnavailable', 'badGateway'),
  },
});

export const getOrderRoute = createRoute({
  method: 'get',
  path: '/api/v1/orders/{orderId}',
  tags: ['checkout'],
  summary: 'An order and its status: confirmed or cancelled',
  request: { params: OrderIdParamsSchema },
  responses: {
    200: { description: 'The order', content: { 'application/json': { schema: OrderSchema } } },
    ...problemResponses('notFound', 'serviceUnavailable', 'badGateway'),
  },
});

export const cancelOrderRoute = createRoute({
  method: 'post',
  path: '/api/v1/orders/{orderId}/cancel',
  tags: ['admin'],
  summary: 'Cancel an order (operators): its tickets go back on sale',
  description:
    'Cancelling again answers the same order. Ticket numbers of a cancelled order are never handed out again. Needs Authorization: Bearer ADMIN_TOKEN; absent (404) without one.',
  security: [{ adminToken: [] }],
  request: { params: OrderIdParamsSchema },
  responses: {
    200: { description: 'The order, cancelled', content: { 'application/json': { schema: OrderSchema } } },
    ...problemResponses('unauthorized', 'notFound', 'serviceUnavailable'),
  },
});
