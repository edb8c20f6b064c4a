import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ZodError } from 'zod';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** One field that failed validation, as reported in a 422 problem. */
export interface InvalidParam {
  /** Where the field sits, e.g. `qty` or `body` for the whole body. */
  name: string;
  reason: string;
}

/** An RFC 9457 problem details object. */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  errors?: InvalidParam[];
  [extension: string]: unknown;
}

const PROBLEM_BASE = 'https://ticket-system.dev/problems/';

/**
 * The catalogue of every error the service answers with: one entry per kind,
 * so that status, type and title never drift apart between call sites.
 */
export const problemTypes = {
  malformedJson: { status: 400, type: `${PROBLEM_BASE}malformed-json`, title: 'Malformed JSON' },
  badRequest: { status: 400, type: `${PROBLEM_BASE}bad-request`, title: 'Bad request' },
  invalidIdempotencyKey: {
    status: 400,
    type: `${PROBLEM_BASE}invalid-idempotency-key`,
    title: 'Invalid Idempotency-Key',
  },
  unauthorized: { status: 401, type: `${PROBLEM_BASE}unauthorized`, title: 'Unauthorized' },
  notFound: { status: 404, type: `${PROBLEM_BASE}not-found`, title: 'Not found' },
  stockConflict: { status: 409, type: `${PROBLEM_BASE}stock-conflict`, title: 'Stock conflict' },
  insufficientInventory: {
    status: 409,
    type: `${PROBLEM_BASE}insufficient-inventory`,
    title: 'Insufficient inventory',
  },
  buyerLimitReached: { status: 409, type: `${PROBLEM_BASE}buyer-limit-reached`, title: 'Limit per buyer reached' },
  holdConfirmed: { status: 409, type: `${PROBLEM_BASE}hold-confirmed`, title: 'Hold already confirmed' },
  holdExpired: { status: 410, type: `${PROBLEM_BASE}hold-expired`, title: 'Hold expired' },
  holdReleased: { status: 410, type: `${PROBLEM_BASE}hold-released`, title: 'Hold released' },
  idempotencyKeyInFlight: {
    status: 409,
    type: `${PROBLEM_BASE}idempotency-key-in-flight`,
    title: 'Request with this Idempotency-Key in progress',
  },
  payloadTooLarge: { status: 413, type: `${PROBLEM_BASE}payload-too-large`, title: 'Payload too large' },
  unsupportedMediaType: {
    status: 415,
    type: `${PROBLEM_BASE}unsupported-media-type`,
    title: 'Unsupported media type',
  },
  validation: { status: 422, type: `${PROBLEM_BASE}validation-error`, title: 'Invalid request' },
  idempotencyKeyReused: {
    status: 422,
    type: `${PROBLEM_BASE}idempotency-key-reused`,
    title: 'Idempotency-Key reused with a different request',
  },
  tooManyRequests: { status: 429, type: `${PROBLEM_BASE}too-many-requests`, title: 'Too many requests' },
  internal: { status: 500, type: `${PROBLEM_BASE}internal-error`, title: 'Internal server error' },
  badGateway: { status: 502, type: `${PROBLEM_BASE}bad-gateway`, title: 'Bad gateway' },
  serviceUnavailable: {
    status: 503,
    type: `${PROBLEM_BASE}service-unavailable`,
    title: 'Service unavailable',
  },
} as const satisfies Record<string, { status: ContentfulStatusCode; type: string; title: string }>;

export type ProblemKind = keyof typeof problemTypes;

/**
 * An error that knows the problem+json answer it becomes. Throw it anywhere
 * below a router; the app's `onError` turns it into the response.
 *
 * @example
 * throw new ProblemError('serviceUnavailable', 'The vacancy service did not answer in time', {
 *   headers: { 'Retry-After': '1' },
 * });
 */
export class ProblemError extends Error {
  readonly kind: ProblemKind;
  readonly extensions: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(
    kind: ProblemKind,
    detail: string,
    options: { extensions?: Record<string, unknown>; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(detail, { cause: options.cause });
    this.name = 'ProblemError';
    this.kind = kind;
    this.extensions = options.extensions ?? {};
    this.headers = options.headers ?? {};
  }

  get status(): ContentfulStatusCode {
    return problemTypes[this.kind].status;
  }
}

/** Builds the problem+json response for a kind of problem. */
export function problemResponse(
  c: Context,
  kind: ProblemKind,
  detail: string,
  extensions: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Response {
  const { status, type, title } = problemTypes[kind];
  const body: ProblemDetails = { type, title, status, detail, instance: c.req.path, ...extensions };
  // c.body, not new Response: headers set earlier by middleware (X-Request-Id, CORS) must stay.
  return c.body(JSON.stringify(body), status, { ...headers, 'Content-Type': PROBLEM_CONTENT_TYPE });
}

/** Turns a zod error into the `errors` list of a 422 problem. */
export function invalidParams(error: ZodError): InvalidParam[] {
  return error.issues.map((issue) => ({
    name: issue.path.length > 0 ? issue.path.join('.') : 'body',
    reason: issue.message,
  }));
}

/** The 400 for an Idempotency-Key header that fails its schema. */
export function idempotencyKeyProblem(error: ZodError): ProblemError {
  return new ProblemError('invalidIdempotencyKey', error.issues.map((issue) => issue.message).join('; '));
}

/** The 422 for a body that fails its schema, with every failing field in `errors`. */
export function validationProblem(error: ZodError): ProblemError {
  const errors = invalidParams(error);
  const detail = errors.map((e) => `${e.name}: ${e.reason}`).join('; ');
  return new ProblemError('validation', detail, { extensions: { errors } });
}

/**
 * The validation hook shared by every router: a body that fails its schema is
 * a 422 problem; a header that fails (Idempotency-Key) is a 400.
 */
export function validationHook(
  result: ({ success: true } | { success: false; error: ZodError }) & { target?: string },
): undefined {
  if (result.success) return undefined;
  throw result.target === 'header' ? idempotencyKeyProblem(result.error) : validationProblem(result.error);
}

/**
 * Maps anything thrown while handling a request to a problem response.
 * Hono raises HTTPException for malformed JSON; everything unknown is a 500
 * whose detail says nothing about the internals.
 */
export function errorToProblem(error: unknown, c: Context): { response: Response; unexpected: boolean } {
  if (error instanceof ProblemError) {
    return {
      response: problemResponse(c, error.kind, error.message, error.extensions, error.headers),
      unexpected: false,
    };
  }
  if (error instanceof HTTPException) {
    if (error.status === 400) {
      const malformed = /json/i.test(error.message);
      return {
        response: problemResponse(
          c,
          malformed ? 'malformedJson' : 'badRequest',
          malformed ? 'The request body is not valid JSON' : error.message || 'The request is not valid',
        ),
        unexpected: false,
      };
    }
    if (error.status === 413) {
      return { response: problemResponse(c, 'payloadTooLarge', 'The request body is too large'), unexpected: false };
    }
    if (error.status === 415) {
      return {
        response: problemResponse(c, 'unsupportedMediaType', 'The request body must be sent as application/json'),
        unexpected: false,
      };
    }
  }
  return {
    response: problemResponse(c, 'internal', 'The server failed to handle this request; it has been logged'),
    unexpected: true,
  };
}
