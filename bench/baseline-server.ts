/**
 * The benchmark's yardstick: a plain node:http server doing the same JSON work
 * as the app's hot paths and nothing else (no framework, no actor, no store,
 * no validation library, no headers beyond Content-Type). Every target's
 * throughput is reported as a ratio to this server's in the same round.
 *
 *   POST /api/v1/purchase {"qty": n} → 200 {success, remaining, message}
 *                                       400 malformed JSON, 415 not JSON, 413 too large,
 *                                       422 qty not a positive safe integer
 *   GET  /api/v1/available            → 200 {qty}
 *   GET  /api/v1/health               → 200 {status}          (readiness for the runner)
 *   GET  /stats                       → 200 {sold, remaining} (the stock invariant check)
 *
 * node:http only: the runner bundles it (bench/lib/servers.ts) into one .mjs
 * file and starts it with plain `node`, with no loader in the process whose
 * memory is measured.
 *
 * @example
 * // INITIAL_STOCK=1000 PORT=9000 node baseline-server.mjs
 * const server = createBaselineServer(1000);
 * server.listen(9000, '127.0.0.1');
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { pathToFileURL } from 'node:url';
import { BODY_LIMIT, decidePurchase, KEEP_ALIVE_TIMEOUT_MS } from './purchase-decision.ts';

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function problem(res: ServerResponse, status: number, detail: string): void {
  send(res, status, { status, detail });
}

/** A server selling from `initialStock` tickets held in memory. Not listening yet. */
export function createBaselineServer(initialStock: number): Server {
  const stock = { remaining: initialStock, sold: 0 };

  const purchase = (req: IncomingMessage, res: ServerResponse) => {
    const contentType = req.headers['content-type'] ?? '';
    if (!/^application\/json\b/i.test(contentType)) {
      req.resume();
      problem(res, 415, 'send application/json');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > BODY_LIMIT) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => {
      if (tooLarge) return problem(res, 413, 'body too large');
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return problem(res, 400, 'malformed JSON');
      }
      const answer = decidePurchase(stock, body);
      send(res, answer.status, answer.body);
    });
  };

  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (req.method === 'POST' && url === '/api/v1/purchase') return purchase(req, res);
    req.resume();
    if (req.method === 'GET' && url === '/api/v1/available') return send(res, 200, { qty: stock.remaining });
    if (req.method === 'GET' && url === '/api/v1/health') return send(res, 200, { status: 'healthy' });
    if (req.method === 'GET' && url === '/stats')
      return send(res, 200, { sold: stock.sold, remaining: stock.remaining });
    problem(res, 404, `no route for ${req.method} ${url}`);
  });
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1_000;
  return server;
}

// Started as a program (by the runner): INITIAL_STOCK, PORT and HOST from the environment.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const initialStock = Number(process.env.INITIAL_STOCK ?? '1000');
  const port = Number(process.env.PORT ?? '9000');
  const server = createBaselineServer(initialStock);
  server.on('error', (error) => {
    process.stderr.write(`baseline server: ${error.message}\n`);
    process.exit(1);
  });
  server.listen(port, process.env.HOST ?? '127.0.0.1');
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
