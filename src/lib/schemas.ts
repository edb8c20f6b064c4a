import { z } from '@hono/zod-openapi';
import { REQUEST_ID } from './api-headers.ts';
import { PROBLEM_CONTENT_TYPE, problemTypes, type ProblemKind } from './problem.ts';

// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;

/** An Idempotency-Key value (IETF httpapi draft): 1–255 characters, no control characters. */
export const IdempotencyKeySchema = z
  .string()
  .min(1, 'Idempotency-Key must not be empty')
  .max(255, 'Idempotency-Key must be at most 255 characters')
  .refine((key) => !CONTROL_CHARACTERS.test(key), 'Idempotency-Key must not contain control characters');

const QTY_TOO_LARGE = `qty must be at most ${Number.MAX_SAFE_INTEGER}`;
const QTY_TOO_SMALL = 'qty must be at least 1';

// The range is checked first and stops the checks when it fails: zod's int() also refuses integers
// beyond 2**53, so a huge qty would otherwise get a second, wrong detail ("must be a whole number").
const QtySchema = z
  .number({
    // JSON numbers beyond ±1.8e308 parse as ±Infinity, which zod reports as not a number.
    error: (issue) =>
      issue.input === Infinity ? QTY_TOO_LARGE : issue.input === -Infinity ? QTY_TOO_SMALL : 'qty must be a number',
  })
  .positive({ error: QTY_TOO_SMALL, abort: true })
  .max(Number.MAX_SAFE_INTEGER, { error: QTY_TOO_LARGE, abort: true })
  .int('qty must be a whole number')
  .openapi({ example: 2, description: 'How many tickets to take' });

/** The body of POST /api/v1/reserve and POST /api/v1/purchase. */
export const QtyRequestSchema = z.object({ qty: QtySchema }).openapi('QtyRequest');

const TicketRangeSchema = z
  .object({
    first: z.number().int().positive().openapi({ example: 3 }),
    last: z.number().int().positive().openapi({ example: 4 }),
  })
  .openapi('TicketRange', {
    description: 'The ticket numbers taken, first to last inclusive; unique, from the stock sequence',
  });

const decisionFields = {
  success: z.boolean().openapi({ example: true }),
  remaining: z.number().int().nonnegative().openapi({ example: 998 }),
};

/** The answer to a reserve; insufficient stock is `success: false`, not an error. */
export const ReserveResponseSchema = z
  .object({
    ...decisionFields,
    message: z.string().openapi({ example: 'Reserved 2 tickets' }),
    reservationId: z.string().optional().openapi({ description: 'Set when success', example: '0b9c…' }),
    tickets: TicketRangeSchema.optional(),
  })
  .openapi('ReserveResponse');

/** How many reserves one POST /api/v1/reserve/batch may carry. */
export const MAX_RESERVE_BATCH = 1000;

/** The body of POST /api/v1/reserve/batch: reserves the ticket service coalesced, each under its own key. */
export const ReserveBatchRequestSchema = z
  .object({
    reserves: z
      .array(
        z.object({
          qty: QtySchema,
          key: IdempotencyKeySchema.openapi({
            description: "The reserve's idempotency key: a retried batch replays the decisions already made",
          }),
          requestId: z
            .string()
            .regex(REQUEST_ID, 'requestId must be 1-255 letters, digits, _, - or =')
            .optional()
            .openapi({ description: 'The X-Request-Id of the purchase this reserve is for; logged by vacancy' }),
        }),
      )
      .min(1, 'reserves must not be empty')
      .max(MAX_RESERVE_BATCH, `reserves must hold at most ${MAX_RESERVE_BATCH} items`),
  })
  .openapi('ReserveBatchRequest');

/** One reserve of a batch, decided: the fields of a single reserve's answer, plus whether it was replayed. */
export const ReserveBatchDecisionSchema = z.object({
  status: z.literal(200),
  ...decisionFields,
  message: z.string(),
  reservationId: z.string().optional(),
  tickets: TicketRangeSchema.optional(),
  replayed: z.boolean(),
});

/** One reserve of a batch, refused or not made: the problem a single reserve would have answered. */
export const ReserveBatchProblemSchema = z.object({
  status: z.number().int().openapi({ example: 409 }),
  type: z.string().openapi({ example: 'https://ticket-system.dev/problems/idempotency-key-in-flight' }),
  title: z.string(),
  detail: z.string(),
  outcomeUnknown: z.boolean().optional(),
});

/** The answer to a batch: one result per reserve, in the order sent. */
export const ReserveBatchResponseSchema = z
  .object({ results: z.array(z.union([ReserveBatchDecisionSchema, ReserveBatchProblemSchema])) })
  .openapi('ReserveBatchResponse');

/** The answer to a purchase; insufficient stock is `success: false`, not an error. */
export const PurchaseResponseSchema = z
  .object({
    ...decisionFields,
    message: z.string().openapi({ example: 'Purchased 2 tickets' }),
    purchaseId: z.string().optional().openapi({ description: 'Set when success', example: '0b9c…' }),
    tickets: TicketRangeSchema.optional(),
  })
  .openapi('PurchaseResponse');

/** The Idempotency-Key request header, as the OpenAPI document describes it: optional. */
export const IdempotencyHeadersSchema = z.object({
  'idempotency-key': IdempotencyKeySchema.optional().openapi({
    param: { name: 'idempotency-key', in: 'header' },
    description:
      'Makes the request safe to retry: the first answer for a key is replayed (with Idempotent-Replayed: true) for 24 h',
    example: '9f1c2a4e-7b1d-4c55-9d0e-3f1a2b3c4d5e',
  }),
});

/** The Idempotent-Replayed response header, as the OpenAPI document describes it. */
export const replayedHeader = {
  'Idempotent-Replayed': {
    description: 'true when this is the recorded answer to an earlier request with the same Idempotency-Key',
    schema: { type: 'string' as const, enum: ['true'] },
  },
};

/** The 200 response of a route that takes an Idempotency-Key. */
export function idempotentOk(
  description: string,
  schema: typeof ReserveResponseSchema | typeof PurchaseResponseSchema,
) {
  return { description, headers: replayedHeader, content: { 'application/json': { schema } } };
}

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
  invalidIdempotencyKey: 'The Idempotency-Key header is empty, longer than 255 characters or holds control characters',
  idempotencyKeyInFlight: 'A request with this Idempotency-Key is still being processed',
  idempotencyKeyReused: 'The Idempotency-Key was already used with a different body',
  unauthorized: 'No valid Authorization: Bearer token',
  stockConflict: 'The change would leave the stock below zero',
  serviceUnavailable: 'The stock cannot be reached or recorded right now; nothing was sold',
};

/** The documented error responses of a route, by status code (kinds sharing a status share its entry). */
export function problemResponses(...kinds: ProblemKind[]) {
  const byStatus = new Map<number, string[]>();
  for (const kind of kinds) {
    const descriptions = byStatus.get(problemTypes[kind].status) ?? [];
    descriptions.push(problemDescriptions[kind] ?? problemTypes[kind].title);
    byStatus.set(problemTypes[kind].status, descriptions);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, descriptions]) => [status, problemResponse(descriptions.join('; or '))]),
  );
}

/** The error responses of every route that takes a qty body and an Idempotency-Key. */
export const qtyBodyProblems = problemResponses(
  'invalidIdempotencyKey',
  'idempotencyKeyInFlight',
  'malformedJson',
  'payloadTooLarge',
  'unsupportedMediaType',
  'validation',
  'idempotencyKeyReused',
  'serviceUnavailable',
);

/** The request body declaration of a route that takes a qty (required, so a missing body is validated). */
export const qtyRequestBody = {
  required: true,
  content: { 'application/json': { schema: QtyRequestSchema } },
} as const;
