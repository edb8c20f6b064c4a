import type { Context } from 'hono';

/**
 * The address of the client a request came from, on any runtime: Node's
 * adapter passes `{ incoming }` as the app's env, Deno.serve its `info`
 * (`remoteAddr`), Bun.serve its server (`requestIP`). Behind a proxy that
 * sets X-Forwarded-For (TRUST_PROXY=true), its first entry is the client.
 *
 * @example
 * clientAddress(c, false); // '127.0.0.1'
 */
export function clientAddress(c: Context, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = c.req.header('x-forwarded-for');
    const first = forwarded?.split(',')[0]?.trim();
    if (first) return first;
  }
  const env = c.env as RuntimeEnv | undefined;
  return (
    env?.incoming?.socket?.remoteAddress ??
    env?.remoteAddr?.hostname ??
    (typeof env?.requestIP === 'function' ? env.requestIP(c.req.raw)?.address : undefined) ??
    'unknown'
  );
}

interface RuntimeEnv {
  incoming?: { socket?: { remoteAddress?: string } };
  remoteAddr?: { hostname?: string };
  requestIP?: (request: Request) => { address?: string } | null;
}
