import { createRoute } from '@hono/zod-openapi';
import {
  CommandBatchRequestSchema,
  CommandBatchResponseSchema,
  EventDefinitionSchema,
  EventIdParamsSchema,
  EventListQuerySchema,
  EventListSchema,
  EventViewSchema,
  InsufficientInventoryProblemSchema,
  OrderRequestSchema,
  OrderSchema,
} from './event-schemas.ts';
import { jsonBody } from './json-body.ts';
import { PROBLEM_CONTENT_TYPE } from './problem.ts';
import { IdempotencyHeadersSchema, problemResponses, replayedHeader } from './schemas.ts';

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
    409: {
      description:
        'Not enough tickets for some item (insufficient-inventory, with each item’s available), or a request with this Idempotency-Key still in progress',
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
