/**
 * The framework's floor: the baseline's JSON work (bench/baseline-server.ts)
 * as the smallest Hono app on @hono/node-server, the stack the service is
 * built on. It has no actor, store, validation library, middleware or extra
 * headers, so no Node service on Hono can be expected to beat it: its ratio
 * to the baseline, in the same run, is the ceiling of the monolith's.
 *
 *   POST /api/v1/purchase {"qty": n} → as the baseline (200, 400, 413, 415, 422)
 *   GET  /api/v1/available, /api/v1/health, /stats → as the baseline
 *
 * @example
 * // INITIAL_STOCK=1000 PORT=9001 node hono-floor-server.mjs
 * serve({ fetch: createHonoFloorApp(1000).fetch, port: 9001 });
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { pathToFileURL } from 'node:url';
import { BODY_LIMIT, decidePurchase, KEEP_ALIVE_TIMEOUT_MS } from './purchase-decision.ts';

/** A Hono app selling from `initialStock` tickets held in memory. */
export function createHonoFloorApp(initialStock: number): Hono {
  const stock = { remaining: initialStock, sold: 0 };
  const app = new Hono();
  app.post('/api/v1/purchase', async (c) => {
    if (!/^application\/json\b/i.test(c.req.header('content-type') ?? '')) {
      return c.json({ status: 415, detail: 'send application/json' }, 415);
    }
    if (Number(c.req.header('content-length') ?? 0) > BODY_LIMIT)
      return c.json({ status: 413, detail: 'body too large' }, 413);
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return c.json({ status: 400, detail: 'malformed JSON' }, 400);
    }
    const answer = decidePurchase(stock, body);
    return c.json(answer.body, answer.status as 200 | 422);
  });
  app.get('/api/v1/available', (c) => c.json({ qty: stock.remaining }));
  app.get('/api/v1/health', (c) => c.json({ status: 'healthy' }));
  app.get('/stats', (c) => c.json({ sold: stock.sold, remaining: stock.remaining }));
  app.notFound((c) => c.json({ status: 404, detail: `no route for ${c.req.method} ${c.req.path}` }, 404));
  return app;
}

// Started as a program (by the runner): INITIAL_STOCK, PORT and HOST from the environment.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const server = serve({
    fetch: createHonoFloorApp(Number(process.env.INITIAL_STOCK ?? '1000')).fetch,
    port: Number(process.env.PORT ?? '9001'),
    hostname: process.env.HOST ?? '127.0.0.1',
  });
  server.on('error', (error) => {
    process.stderr.write(`hono floor server: ${error.message}\n`);
    process.exit(1);
  });
  if ('keepAliveTimeout' in server) {
    server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1_000;
  }
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
