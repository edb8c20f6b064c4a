import { createRoute } from '@hono/zod-openapi';
import {
  AvailableResponseSchema,
  IdempotencyHeadersSchema,
  idempotentOk,
  problemResponses,
  qtyBodyProblems,
  qtyRequestBody,
  ReserveResponseSchema,
} from '../lib/schemas.ts';

export const availableRoute = createRoute({
  method: 'get',
  path: '/api/v1/available',
  tags: ['vacancy'],
  summary: 'Tickets left',
  responses: {
    200: { description: 'Tickets left right now', content: { 'application/json': { schema: AvailableResponseSchema } } },
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
