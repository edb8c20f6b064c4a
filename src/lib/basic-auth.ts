import type { MiddlewareHandler } from 'hono';
import { secretsEqual } from './bearer-token.ts';
import { ProblemError } from './problem.ts';

const decoder = new TextDecoder('utf-8', { fatal: true });

/** `user:password` from an `Authorization: Basic …` header, or null when there is none or it does not decode. */
export function basicCredentials(header: string | undefined): string | null {
  const match = /^Basic[ ]+([A-Za-z0-9+/]+={0,2})[ ]*$/i.exec(header ?? '');
  if (!match?.[1]) return null;
  try {
    const binary = atob(match[1]);
    return decoder.decode(Uint8Array.from(binary, (char) => char.charCodeAt(0)));
  } catch {
    return null;
  }
}

/**
 * Requires HTTP Basic authentication as `user` with `password`, so that a
 * browser can open the page (it asks once and sends the credentials with
 * every request of the page after). User and password are compared together
 * in constant time (see {@link secretsEqual}); anything else is a 401 problem
 * with the `WWW-Authenticate: Basic` challenge that makes a browser ask.
 *
 * @example
 * router.use('/dashboard', requireBasicAuth('admin', config.ADMIN_TOKEN, 'ticket-system dashboard'));
 */
export function requireBasicAuth(user: string, password: string, realm: string): MiddlewareHandler {
  const expected = `${user}:${password}`;
  const challenge = `Basic realm="${realm.replace(/["\\]/g, '')}", charset="UTF-8"`;
  return async (c, next) => {
    const given = basicCredentials(c.req.header('authorization'));
    if (given === null || !secretsEqual(given, expected)) {
      throw new ProblemError('unauthorized', `This page needs HTTP Basic authentication as ${user}`, {
        headers: { 'WWW-Authenticate': challenge },
      });
    }
    await next();
  };
}
