import type { Context, MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { timeout } from 'hono/timeout';
import { rateLimiter } from 'hono-rate-limiter';
import { clientAddress } from './client-address.ts';
import { ProblemError } from './problem.ts';

/** Probes and scrapes are never limited: an orchestrator must always be able to ask. */
const EXEMPT_PATHS = new Set(['/api/v1/health', '/api/v1/ready', '/metrics']);

/**
 * At most `limit` requests per client in each `windowSeconds` window (a
 * fixed window per process, kept in memory); past it, 429 problem+json with
 * Retry-After until the window ends. The client is the connection's address,
 * or the first X-Forwarded-For entry with `trustProxy`.
 *
 * @example
 * app.use(rateLimit({ limit: 100, windowSeconds: 60, trustProxy: false }));
 */
export function rateLimit(options: { limit: number; windowSeconds: number; trustProxy: boolean }): MiddlewareHandler {
  const { limit, windowSeconds, trustProxy } = options;
  return rateLimiter({
    windowMs: windowSeconds * 1000,
    limit,
    standardHeaders: false,
    keyGenerator: (c) => clientAddress(c, trustProxy),
    skip: (c) => EXEMPT_PATHS.has(c.req.path),
    handler: (c) => {
      const resetTime = (c.get('rateLimit') as { resetTime?: Date } | undefined)?.resetTime;
      const retryAfter = Math.max(
        1,
        Math.ceil(((resetTime?.getTime() ?? Date.now() + windowSeconds * 1000) - Date.now()) / 1000),
      );
      throw new ProblemError(
        'tooManyRequests',
        `More than ${limit} requests in ${windowSeconds} s from this client; retry in ${retryAfter} s`,
        { headers: { 'Retry-After': String(retryAfter) } },
      );
    },
  }) as MiddlewareHandler;
}

/** Thrown by `requestTimeout`: carries the problem the caller gets. */
export class RequestTimedOutError extends HTTPException {
  constructor(readonly problem: ProblemError) {
    super(503, { message: problem.message });
    this.name = 'RequestTimedOutError';
  }
}

/**
 * Answers 503 problem+json with Retry-After when a request is not answered
 * within `seconds`. A purchase or reserve cut off this way may still be made
 * after the answer: the problem says so (`outcomeUnknown`), and a retry with
 * the same Idempotency-Key returns its outcome.
 *
 * @example
 * app.use(requestTimeout(5));
 */
export function requestTimeout(seconds: number): MiddlewareHandler {
  return timeout(seconds * 1000, (c: Context) => {
    const mayHaveChanged = c.req.method === 'POST';
    return new RequestTimedOutError(
      new ProblemError(
        'serviceUnavailable',
        `The request was not answered within ${seconds} s` +
          (mayHaveChanged
            ? '; it may still be carried out — retry with the same Idempotency-Key to get its outcome without buying twice'
            : ''),
        { headers: { 'Retry-After': '1' }, extensions: mayHaveChanged ? { outcomeUnknown: true } : {} },
      ),
    );
  });
}
