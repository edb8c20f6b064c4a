import { z } from '@hono/zod-openapi';
import { PROBLEM_CONTENT_TYPE, problemTypes, type ProblemKind } from './problem.ts';

/** The body of POST /api/v1/reserve and POST /api/v1/purchase. */
export const QtyRequestSchema = z
  .object({
    qty: z
      .number({ error: 'qty must be a number' })
      .int('qty must be a whole number')
      .positive('qty must be at least 1')
      .max(Number.MAX_SAFE_INTEGER, `qty must be at most ${Number.MAX_SAFE_INTEGER}`)
      .openapi({ example: 2, description: 'How many tickets to take' }),
  })
  .openapi('QtyRequest');

/** The answer to a reserve or a purchase; insufficient stock is `success: false`, not an error. */
export const ReserveResponseSchema = z
  .object({
    success: z.boolean().openapi({ example: true }),
    remaining: z.number().int().nonnegative().openapi({ example: 998 }),
    message: z.string().openapi({ example: 'Reserved 2 tickets' }),
  })
  .openapi('ReserveResponse');

export const PurchaseResponseSchema = ReserveResponseSchema.openapi('PurchaseResponse');

export const AvailableResponseSchema = z
  .object({ qty: z.number().int().nonnegative().openapi({ example: 1000 }) })
  .openapi('AvailableResponse');

export const ProblemSchema = z
  .object({
    type: z.string().openapi({ example: problemTypes.validation.type }),
    title: z.string().openapi({ example: problemTypes.validation.title }),
    status: z.number().int().openapi({ example: 422 }),
    detail: z.string().openapi({ example: 'qty: qty must be at least 1' }),
    instance: z.string().optional().openapi({ example: '/api/v1/purchase' }),
    errors: z
      .array(z.object({ name: z.string(), reason: z.string() }))
      .optional()
      .openapi({ description: 'The offending fields, for validation problems' }),
  })
  .openapi('Problem', { description: 'RFC 9457 problem details' });

const problemResponse = (description: string) => ({
  description,
  content: { [PROBLEM_CONTENT_TYPE]: { schema: ProblemSchema } },
});

const problemDescriptions: Partial<Record<ProblemKind, string>> = {
  malformedJson: 'The body is not valid JSON',
  payloadTooLarge: 'The body is larger than BODY_LIMIT',
  unsupportedMediaType: 'The body is not sent as application/json',
  validation: 'The body is not an object with a positive integer qty',
  serviceUnavailable: 'The stock cannot be reached or recorded right now; nothing was sold',
};

/** The documented error responses of a route, by status code. */
export function problemResponses(...kinds: ProblemKind[]) {
  return Object.fromEntries(
    kinds.map((kind) => [
      problemTypes[kind].status,
      problemResponse(problemDescriptions[kind] ?? problemTypes[kind].title),
    ]),
  );
}

/** The error responses of every route that takes a qty body. */
export const qtyBodyProblems = problemResponses(
  'malformedJson',
  'payloadTooLarge',
  'unsupportedMediaType',
  'validation',
  'serviceUnavailable',
);

/** The request body declaration of a route that takes a qty (required, so a missing body is validated). */
export const qtyRequestBody = {
  required: true,
  content: { 'application/json': { schema: QtyRequestSchema } },
} as const;
