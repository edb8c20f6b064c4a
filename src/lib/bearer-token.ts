import type { MiddlewareHandler } from 'hono';
import { ProblemError } from './problem.ts';

const encoder = new TextEncoder();

async function digest(value: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(value)));
}

/**
 * Compares two secrets in time that does not depend on where they differ:
 * both are hashed to 32 bytes first, so their lengths do not leak either.
 * Web-standard (crypto.subtle), so it runs on every runtime.
 */
export async function secretsEqual(given: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([digest(given), digest(expected)]);
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= (a[i] as number) ^ (b[i] as number);
  return difference === 0;
}

/**
 * Requires `Authorization: Bearer <token>`; anything else is a 401 problem
 * with a `WWW-Authenticate` challenge, and the route is never reached.
 *
 * @example
 * router.use('/api/v1/admin/*', requireBearerToken(config.ADMIN_TOKEN, 'admin'));
 */
export function requireBearerToken(token: string, realm: string): MiddlewareHandler {
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
    if (!match?.[1] || !(await secretsEqual(match[1], token))) {
      throw new ProblemError('unauthorized', `This endpoint needs Authorization: Bearer <the ${realm} token>`, {
        headers: { 'WWW-Authenticate': `Bearer realm="${realm}"` },
      });
    }
    await next();
  };
}
