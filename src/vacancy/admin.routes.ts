import { createRoute, z } from '@hono/zod-openapi';
import { jsonBody } from '../lib/json-body.ts';
import { problemResponses } from '../lib/schemas.ts';

export const AdjustStockRequestSchema = z
  .object({
    op: z.enum(['set', 'add'], { error: 'op must be "set" or "add"' }).openapi({ example: 'add' }),
    qty: z
      .number({ error: 'qty must be a number' })
      .int('qty must be a whole number')
      .min(-Number.MAX_SAFE_INTEGER, 'qty is out of range')
      .max(Number.MAX_SAFE_INTEGER, 'qty is out of range')
      .openapi({
        example: 500,
        description: 'set: the tickets remaining from now on (0 or more); add: tickets to add (negative takes away)',
      }),
  })
  .refine((body) => body.op !== 'set' || body.qty >= 0, { message: 'qty must be 0 or more to set', path: ['qty'] })
  .openapi('AdjustStockRequest');

export const StockLevelSchema = z
  .object({
    remaining: z.number().int().nonnegative().openapi({ example: 1500 }),
    sold: z.number().int().nonnegative().openapi({ example: 37 }),
  })
  .openapi('StockLevel');

export const adjustStockRoute = (bodyLimitBytes: number) =>
  createRoute({
    method: 'post',
    path: '/api/v1/admin/stock',
    tags: ['admin'],
    summary: 'Change the stock (operators)',
    description:
      'Sets or adds to the tickets remaining, recorded by the store like a sale. Needs Authorization: Bearer ADMIN_TOKEN; absent (404) when no ADMIN_TOKEN is configured.',
    security: [{ adminToken: [] }],
    middleware: jsonBody(bodyLimitBytes),
    request: { body: { required: true, content: { 'application/json': { schema: AdjustStockRequestSchema } } } },
    responses: {
      200: { description: 'The stock after the change', content: { 'application/json': { schema: StockLevelSchema } } },
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
