import { createRoute } from '@hono/zod-openapi';
import {
  AvailableResponseSchema,
  IdempotencyHeadersSchema,
  idempotentOk,
  problemResponses,
  qtyBodyProblems,
  qtyRequestBody,
  ReserveBatchRequestSchema,
  ReserveBatchResponseSchema,
  ReserveResponseSchema,
} from '../lib/schemas.ts';

export const availableRoute = createRoute({
  method: 'get',
  path: '/api/v1/available',
  tags: ['vacancy'],
  summary: 'Tickets left',
  responses: {
    200: {
      description: 'Tickets left right now',
      content: { 'application/json': { schema: AvailableResponseSchema } },
    },
    ...problemResponses('serviceUnavailable'),
  },
});

export const reserveRoute = createRoute({
  method: 'post',
  path: '/api/v1/reserve',
  tags: ['vacancy'],
  summary: 'Take tickets from the stock',
  description:
    'Takes qty tickets if all of them are left, else nothing. Not enough stock is a 200 with success false. With INTERNAL_TOKEN configured, needs Authorization: Bearer INTERNAL_TOKEN.',
  request: { headers: IdempotencyHeadersSchema, body: qtyRequestBody },
  responses: {
    200: idempotentOk('The decision, made durable before it is answered', ReserveResponseSchema),
    ...qtyBodyProblems,
    ...problemResponses('unauthorized'),
  },
});

export const reserveBatchRoute = createRoute({
  method: 'post',
  path: '/api/v1/reserve/batch',
  tags: ['vacancy'],
  summary: 'Take tickets for many reserves at once (service to service)',
  description:
    'What the ticket service sends when purchases arrive faster than single reserves can travel: each reserve is decided as POST /api/v1/reserve would decide it under its key, in the order sent, and answered in `results` with the status that call would have had. A retried batch replays the decisions already made. With INTERNAL_TOKEN configured, needs Authorization: Bearer INTERNAL_TOKEN.',
  request: { body: { required: true, content: { 'application/json': { schema: ReserveBatchRequestSchema } } } },
  responses: {
    200: {
      description: 'One result per reserve, in the order sent',
      content: { 'application/json': { schema: ReserveBatchResponseSchema } },
    },
    ...problemResponses('malformedJson', 'payloadTooLarge', 'unsupportedMediaType', 'validation', 'unauthorized'),
  },
});
