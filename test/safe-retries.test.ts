/**
 * Safe retries between the microservices, with real processes and a lossy
 * link: vacancy (file store) behind an HTTP proxy in this test process that
 * can lose the answer to the first POST /api/v1/reserve after vacancy has
 * committed it (the request is forwarded, vacancy's full response is read,
 * then the ticket service's socket is destroyed without it), or answer that
 * first reserve with 503 itself. The ticket service must retry with the same
 * Idempotency-Key, so vacancy replays the sale it recorded instead of
 * selling again; with retries off, the caller's own retry with its key must
 * get the recorded sale.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { available, makeTempDir, purchase, removeDir, stockHealth, type PurchaseBody } from './support/http-json.ts';
import { startService, stopAllServices, type Service } from './support/processes.ts';

const INITIAL_STOCK = 100;

/** What the proxy saw of one POST /api/v1/reserve. */
interface SeenReserve {
  key: string | undefined;
  qty: number;
  /** Whether it went on to vacancy (false when the proxy answered it itself). */
  forwarded: boolean;
  /** Vacancy's answer, when forwarded. */
  status?: number;
  replayed?: string | null;
  body?: PurchaseBody;
  /** Vacancy answered, but the proxy destroyed the caller's socket instead of passing the answer on. */
  dropped: boolean;
}

type Fault = 'none' | 'drop-first-reserve-response' | 'first-reserve-503';

/** A forwarding HTTP proxy that can lose or replace the answer to the next reserve. */
class LossyProxy {
  target: string;
  #fault: Fault = 'none';
  readonly reserves: SeenReserve[] = [];
  /** Anything that went wrong inside the proxy itself (never expected). */
  readonly errors: string[] = [];
  readonly #server: Server;

  private constructor(target: string) {
    this.target = target;
    this.#server = createServer((req, res) => {
      void this.#handle(req).then(
        (answer) => {
          if (answer === 'drop') {
            // Vacancy has committed and answered; the caller never hears of it.
            req.socket.destroy();
            return;
          }
          res.writeHead(answer.status, answer.headers);
          res.end(answer.body);
        },
        (error: unknown) => {
          this.errors.push(`${req.method} ${req.url}: ${error instanceof Error ? error.stack : String(error)}`);
          res.writeHead(502, { 'Content-Type': 'text/plain' });
          res.end(`proxy failed: ${String(error)}`);
        },
      );
    });
  }

  static async start(target: string): Promise<LossyProxy> {
    const proxy = new LossyProxy(target);
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Applies `fault` to the next reserve only, and forgets what was seen so far. */
  arm(fault: Fault): void {
    this.#fault = fault;
    this.reserves.length = 0;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage): Promise<'drop' | { status: number; headers: Record<string, string>; body: Buffer }> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const isReserve = req.method === 'POST' && req.url === '/api/v1/reserve';
    if (!isReserve) return this.#forward(req, body);

    const fault = this.#fault;
    this.#fault = 'none';
    const header = req.headers['idempotency-key'];
    const seen: SeenReserve = {
      key: Array.isArray(header) ? header.join(',') : header,
      qty: (JSON.parse(body.toString('utf8')) as { qty: number }).qty,
      forwarded: fault !== 'first-reserve-503',
      dropped: false,
    };
    this.reserves.push(seen);
    if (fault === 'first-reserve-503') {
      const problem = { type: 'about:blank', title: 'Service Unavailable', status: 503, detail: 'injected by the test proxy' };
      return { status: 503, headers: { 'Content-Type': 'application/problem+json' }, body: Buffer.from(JSON.stringify(problem)) };
    }
    const answer = await this.#forward(req, body);
    seen.status = answer.status;
    seen.replayed = answer.headers['idempotent-replayed'] ?? null;
    seen.body = JSON.parse(decode(answer.body, answer.headers['content-encoding']).toString('utf8')) as PurchaseBody;
    if (fault === 'drop-first-reserve-response') {
      seen.dropped = true;
      return 'drop';
    }
    return answer;
  }

  #forward(req: IncomingMessage, body: Buffer): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
    const headers: IncomingHttpHeaders = { ...req.headers, 'content-length': String(body.length) };
    delete headers.host;
    delete headers.connection;
    delete headers['keep-alive'];
    delete headers['transfer-encoding'];
    return new Promise((resolve, reject) => {
      const upstream = httpRequest(
        `${this.target}${req.url ?? '/'}`,
        { method: req.method, headers, agent: false, timeout: 10_000 },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.once('error', reject);
          res.once('end', () => {
            const out: Record<string, string> = {};
            for (const [name, value] of Object.entries(res.headers)) {
              if (value === undefined || ['connection', 'keep-alive', 'transfer-encoding', 'content-length'].includes(name)) continue;
              out[name] = Array.isArray(value) ? value.join(', ') : value;
            }
            resolve({ status: res.statusCode ?? 502, headers: out, body: Buffer.concat(chunks) });
          });
        },
      );
      upstream.once('timeout', () => upstream.destroy(new Error('vacancy did not answer the proxy')));
      upstream.once('error', reject);
      upstream.end(body);
    });
  }
}

/** The body as sent, decoded for inspection (the proxy passes the encoded bytes on unchanged). */
function decode(body: Buffer, encoding: string | undefined): Buffer {
  switch (encoding?.trim().toLowerCase()) {
    case undefined:
    case '':
    case 'identity':
      return body;
    case 'gzip':
    case 'x-gzip':
      return gunzipSync(body);
    case 'deflate':
      return inflateSync(body);
    case 'br':
      return brotliDecompressSync(body);
    default:
      throw new Error(`the test proxy cannot decode Content-Encoding ${encoding}`);
  }
}

describe('ticket → vacancy over a lossy link: retries never sell twice', () => {
  const dataDir = makeTempDir('ticket-system-retries');
  let vacancy: Service;
  let proxy: LossyProxy;
  /** VACANCY_RETRIES=2 */
  let ticket: Service;
  /** VACANCY_RETRIES=0 */
  let ticketNoRetry: Service;
  /** A caller-keyed purchase answered 200, checked again after vacancy restarts. */
  let keyedSale: { key: string; qty: number; body: PurchaseBody } | undefined;

  const vacancyEnv = { MODE: 'vacancy', STOCK_STORE: 'file', DATA_DIR: dataDir, INITIAL_STOCK: String(INITIAL_STOCK) };

  beforeAll(async () => {
    vacancy = await startService(vacancyEnv);
    proxy = await LossyProxy.start(vacancy.url);
    const ticketEnv = { MODE: 'ticket', VACANCY_URL: proxy.url, VACANCY_TIMEOUT: '3' };
    [ticket, ticketNoRetry] = await Promise.all([
      startService({ ...ticketEnv, VACANCY_RETRIES: '2' }),
      startService({ ...ticketEnv, VACANCY_RETRIES: '0' }),
    ]);
  });

  afterAll(async () => {
    await stopAllServices();
    await proxy?.close();
    removeDir(dataDir);
  });

  beforeEach(() => {
    proxy.arm('none');
    proxy.errors.length = 0;
  });
  afterEach(() => {
    expect(proxy.errors, 'the test proxy itself failed').toEqual([]);
  });

  /** Vacancy's own view of the stock, straight from it (not through the proxy). */
  async function vacancyStock() {
    const { stock } = await stockHealth(vacancy.url);
    expect(await available(vacancy.url)).toBe(stock.available);
    expect(stock.available + stock.sold).toBe(INITIAL_STOCK);
    return stock;
  }

  function expectSameSale(a: PurchaseBody | undefined, b: PurchaseBody | undefined): void {
    expect(a?.success).toBe(true);
    expect(b?.reservationId ?? b?.purchaseId).toBe(a?.reservationId ?? a?.purchaseId);
    expect(b?.tickets).toEqual(a?.tickets);
  }

  it('retries a reserve whose answer was lost after vacancy committed, with the same key, and sells once', async () => {
    const before = await vacancyStock();
    proxy.arm('drop-first-reserve-response');

    const reply = await purchase(ticket.url, 3);
    expect(reply.status, reply.text).toBe(200);
    expect(reply.body).toMatchObject({ success: true, remaining: before.available - 3, message: 'Purchased 3 tickets' });
    expect(reply.body.tickets).toEqual({ first: before.sold + 1, last: before.sold + 3 });
    // The caller sent no key: this is their first and only answer, not a replay.
    expect(reply.headers.get('idempotent-replayed')).toBeNull();

    expect(await vacancyStock(), 'sold once, not twice').toEqual({ available: before.available - 3, sold: before.sold + 3 });
    expect(await available(vacancy.url)).toBe(INITIAL_STOCK - before.sold - 3);

    const [lost, retry] = proxy.reserves;
    expect(proxy.reserves.length, JSON.stringify(proxy.reserves)).toBeGreaterThanOrEqual(2);
    expect(lost).toMatchObject({ dropped: true, forwarded: true, status: 200, replayed: null, qty: 3 });
    expect(lost!.key, 'ticket makes a key of its own for a purchase without one').toMatch(/^purchase:[0-9a-f-]{36}$/);
    for (const seen of proxy.reserves) expect(seen.key, 'every attempt carries the same key').toBe(lost!.key);
    expect(retry).toMatchObject({ forwarded: true, status: 200, replayed: 'true', qty: 3 });
    expectSameSale(lost!.body, retry!.body);
    expectSameSale(lost!.body, reply.body);
  });

  it('forwards the caller\'s Idempotency-Key as purchase:<key> on every attempt', async () => {
    const before = await vacancyStock();
    const callerKey = `caller-${crypto.randomUUID()}`;
    proxy.arm('drop-first-reserve-response');

    const reply = await purchase(ticket.url, 3, callerKey);
    expect(reply.status, reply.text).toBe(200);
    expect(reply.body).toMatchObject({ success: true, remaining: before.available - 3 });
    expect(await vacancyStock()).toEqual({ available: before.available - 3, sold: before.sold + 3 });

    expect(proxy.reserves.length).toBeGreaterThanOrEqual(2);
    for (const seen of proxy.reserves) expect(seen.key).toBe(`purchase:${callerKey}`);
    expect(proxy.reserves[0]).toMatchObject({ dropped: true, status: 200 });
    expect(proxy.reserves[1]).toMatchObject({ status: 200, replayed: 'true' });
    expectSameSale(proxy.reserves[0]!.body, reply.body);

    // The caller's own retry gets the same sale, flagged as a replay, and nothing more is sold.
    const again = await purchase(ticket.url, 3, callerKey);
    expect(again.status, again.text).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(reply.body);
    expect(await vacancyStock()).toEqual({ available: before.available - 3, sold: before.sold + 3 });
    keyedSale = { key: callerKey, qty: 3, body: reply.body };
  });

  it('with VACANCY_RETRIES=0 answers 503, and the caller\'s retry with its key gets the sale vacancy recorded', async () => {
    const before = await vacancyStock();
    const callerKey = `no-retry-${crypto.randomUUID()}`;
    proxy.arm('drop-first-reserve-response');

    const failed = await purchase(ticketNoRetry.url, 2, callerKey);
    expect(failed.status, failed.text).toBe(503);
    expect(failed.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(failed.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(failed.body).toMatchObject({ status: 503, type: expect.stringContaining('service-unavailable') });
    expect(proxy.reserves).toHaveLength(1);
    const lost = proxy.reserves[0]!;
    expect(lost).toMatchObject({ key: `purchase:${callerKey}`, dropped: true, status: 200 });

    // Vacancy did sell: the answer was lost, not the sale.
    expect(await vacancyStock()).toEqual({ available: before.available - 2, sold: before.sold + 2 });

    const retried = await purchase(ticketNoRetry.url, 2, callerKey);
    expect(retried.status, retried.text).toBe(200);
    expect(retried.headers.get('idempotent-replayed')).toBe('true');
    expect(retried.body).toMatchObject({ success: true, remaining: before.available - 2, message: 'Purchased 2 tickets' });
    expectSameSale(lost.body, retried.body);
    expect(proxy.reserves).toHaveLength(2);
    expect(proxy.reserves[1]).toMatchObject({ key: `purchase:${callerKey}`, replayed: 'true' });
    expect(await vacancyStock(), 'stock moved only once').toEqual({ available: before.available - 2, sold: before.sold + 2 });
  });

  it('does not tell the caller "nothing was sold" when the reserve reached vacancy and only its answer was lost', async () => {
    const before = await vacancyStock();
    proxy.arm('drop-first-reserve-response');
    const failed = await purchase(ticketNoRetry.url, 1);
    expect(failed.status, failed.text).toBe(503);
    expect(proxy.reserves[0]).toMatchObject({ dropped: true, status: 200 });
    expect(await vacancyStock(), 'vacancy sold the ticket whose answer was lost').toEqual({
      available: before.available - 1,
      sold: before.sold + 1,
    });
    // The outcome is unknown to ticket, so the problem must not claim that nothing was sold: a caller
    // trusting that claim buys again and pays twice.
    const detail = (failed.body as unknown as { detail: string }).detail;
    expect(detail, `503 detail after a lost reserve answer: ${JSON.stringify(detail)}`).not.toMatch(/nothing was sold/i);
  });

  it('retries a reserve answered 503 and succeeds, selling once', async () => {
    const before = await vacancyStock();
    proxy.arm('first-reserve-503');

    const reply = await purchase(ticket.url, 4);
    expect(reply.status, reply.text).toBe(200);
    expect(reply.body).toMatchObject({ success: true, remaining: before.available - 4 });
    expect(reply.body.tickets).toEqual({ first: before.sold + 1, last: before.sold + 4 });
    expect(await vacancyStock()).toEqual({ available: before.available - 4, sold: before.sold + 4 });

    expect(proxy.reserves).toHaveLength(2);
    expect(proxy.reserves[0]).toMatchObject({ forwarded: false });
    // Vacancy never saw the first attempt, so the second is a first decision, not a replay.
    expect(proxy.reserves[1]).toMatchObject({ forwarded: true, status: 200, replayed: null, key: proxy.reserves[0]!.key });
    expect(proxy.reserves[0]!.key).toMatch(/^purchase:/);
  });

  it('keeps the sales and the keys when vacancy is killed and restarted on the same DATA_DIR', async () => {
    expect(keyedSale, 'the caller-key test ran first').toBeDefined();
    const before = await vacancyStock();
    await vacancy.stop('SIGKILL');
    vacancy = await startService(vacancyEnv);
    proxy.target = vacancy.url;
    expect(await vacancyStock()).toEqual(before);

    const again = await purchase(ticket.url, keyedSale!.qty, keyedSale!.key);
    expect(again.status, again.text).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(keyedSale!.body);
    expect(await vacancyStock()).toEqual(before);
  });
});
