import { createRoute } from '@hono/zod-openapi';
import {
  AvailableResponseSchema,
  IdempotencyHeadersSchema,
  idempotentOk,
  problemResponses,
  PurchaseResponseSchema,
  qtyBodyProblems,
  qtyRequestBody,
} from '../lib/schemas.ts';

export const purchaseRoute = createRoute({
  method: 'post',
  path: '/api/v1/purchase',
  tags: ['ticket'],
  summary: 'Buy tickets',
  description:
    'Buys qty tickets if all of them are left, else none. Not enough stock is a 200 with success false and message "Insufficient inventory".',
  request: { headers: IdempotencyHeadersSchema, body: qtyRequestBody },
  responses: {
    200: idempotentOk('The purchase, recorded by vacancy before it is answered', PurchaseResponseSchema),
    ...qtyBodyProblems,
    ...problemResponses('badGateway'),
  },
});

export const ticketAvailableRoute = createRoute({
  method: 'get',
  path: '/api/v1/available',
  tags: ['ticket'],
  summary: 'Tickets left, asked of vacancy',
  responses: {
    200: {
      description: 'Tickets left right now',
      content: { 'application/json': { schema: AvailableResponseSchema } },
    },
    ...problemResponses('serviceUnavailable', 'badGateway'),
  },
});
