import type { Context, MiddlewareHandler } from 'hono';
import type { Lifecycle } from './lifecycle.ts';

declare module 'hono' {
  interface ContextVariableMap {
    /** The request's id: the caller's X-Request-Id when it is a sane token, else a fresh UUID. */
    requestId: string;
    /** On a batch of reserves: the request ids of the purchases it carries, for the request log. */
    batchRequestIds: string[];
  }
}

export const REQUEST_ID_HEADER = 'X-Request-Id';

/**
 * Sent on every API answer: the response headers the OWASP REST Security
 * Cheat Sheet asks of a JSON API. The HTML-document headers of Hono's
 * secureHeaders (XSS filter, DNS prefetch, download options, …) mean nothing
 * to a JSON answer and cost every purchase; /docs, the one HTML page, gets
 * those as well (see app.ts).
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Cache-Control': 'no-store',
  'Content-Security-Policy': "frame-ancestors 'none'",
  'Strict-Transport-Security': 'max-age=15552000; includeSubDomains',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
});

/** What an X-Request-Id from outside must look like to be kept (Hono's requestId rule): else a new one is made. */
export const REQUEST_ID = /^[\w\-=]{1,255}$/;
const COMPLETE = Symbol('api headers set');

/**
 * Gives every request an id (`c.get('requestId')`) and every answer the
 * X-Request-Id and security headers; while shutting down, asks clients to
 * close keep-alive connections. Answers built by `jsonResponse` already carry
 * the headers as a plain object, which Node's adapter writes without building
 * a web Headers object; anything else (problems, documents) gets them here.
 */
export function apiHeaders(lifecycle: Lifecycle): MiddlewareHandler {
  return async (c, next) => {
    const given = c.req.header(REQUEST_ID_HEADER);
    const requestId = given !== undefined && REQUEST_ID.test(given) ? given : crypto.randomUUID();
    c.set('requestId', requestId);
    await next();
    if (!(c.res as Partial<Record<typeof COMPLETE, true>>)[COMPLETE]) {
      const headers = c.res.headers;
      headers.set(REQUEST_ID_HEADER, requestId);
      for (const name in SECURITY_HEADERS) if (!headers.has(name)) headers.set(name, SECURITY_HEADERS[name]!);
    }
    if (lifecycle.shuttingDown) c.header('Connection', 'close');
  };
}

/**
 * A JSON answer with every header `apiHeaders` would add, set up front.
 *
 * @example
 * return jsonResponse(c, { qty: 10 });
 */
export function jsonResponse(c: Context, body: unknown, status = 200, headers?: Record<string, string>): Response {
  const response = new Response(JSON.stringify(body), {
    status,
    headers: {
      'Content-Type': 'application/json',
      [REQUEST_ID_HEADER]: c.get('requestId'),
      ...SECURITY_HEADERS,
      ...headers,
    },
  });
  (response as unknown as Record<typeof COMPLETE, true>)[COMPLETE] = true;
  return response;
}
