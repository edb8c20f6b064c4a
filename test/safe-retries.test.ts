/**
 * Safe retries between the microservices, with real processes and a lossy
 * link: vacancy (SQLite store) behind an HTTP proxy in this test process that
 * can lose the answer to the first POST /api/v1/reserve after vacancy has
 * committed it (the request is forwarded, vacancy's full response is read,
 * then the ticket service's socket is destroyed without it), or answer that
 * first reserve with 503 itself. The ticket service must retry with the same
 * Idempotency-Key, so vacancy replays the sale it recorded instead of
 * selling again; with retries off, the caller's own retry with its key must
 * get the recorded sale.
 *
 * Concurrent purchases travel coalesced, in one POST /api/v1/reserve/batch
 * whose items carry their own keys; the proxy can lose or replace the answer
 * to the first batch in the same ways, and a retried batch must replay every
 * item it carried.
 */
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  available,
  makeTempDir,
  purchase,
  removeDir,
  stockHealth,
  type JsonReply,
  type PurchaseBody,
} from './support/http-json.ts';
import { startService, stopAllServices, type Service } from './support/processes.ts';

/** Enough for the bursts of the batch tests as well as the single purchases. */
const INITIAL_STOCK = 1000;

const RESERVE_PATH = '/api/v1/reserve';
const BATCH_PATH = '/api/v1/reserve/batch';

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

/** One item's result in vacancy's answer to a batch: the single reserve's answer, or its problem. */
type BatchItemResult =
  | (PurchaseBody & { status: 200; replayed: boolean })
  | { status: number; type: string; title: string; detail: string; outcomeUnknown?: boolean };

/** What the proxy saw of one POST /api/v1/reserve/batch. */
interface SeenBatch {
  /** The items' keys and quantities, in the order sent. */
  keys: string[];
  qtys: number[];
  /** The call's own Idempotency-Key header (a batch has none: each item carries its key). */
  headerKey: string | undefined;
  /** Whether it went on to vacancy (false when the proxy answered it itself). */
  forwarded: boolean;
  /** Vacancy's answer, when forwarded. */
  status?: number;
  results?: BatchItemResult[];
  /** Vacancy answered, but the proxy destroyed the caller's socket instead of passing the answer on. */
  dropped: boolean;
}

/** Each fault hits the first request to its path after it is armed, and only that one. */
const FAULTS = {
  none: undefined,
  'drop-first-reserve-response': { path: RESERVE_PATH, effect: 'drop' },
  'first-reserve-503': { path: RESERVE_PATH, effect: 'answer-503' },
  'drop-first-batch-response': { path: BATCH_PATH, effect: 'drop' },
  'first-batch-503': { path: BATCH_PATH, effect: 'answer-503' },
} as const;
type Fault = keyof typeof FAULTS;

/** A forwarding HTTP proxy that can lose or replace the answer to the next reserve or batch of reserves. */
class LossyProxy {
  target: string;
  #fault: Fault = 'none';
  readonly reserves: SeenReserve[] = [];
  readonly batches: SeenBatch[] = [];
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

  /** Applies `fault` to the next request to its path only, and forgets what was seen so far. */
  arm(fault: Fault): void {
    this.#fault = fault;
    this.reserves.length = 0;
    this.batches.length = 0;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(
    req: IncomingMessage,
  ): Promise<'drop' | { status: number; headers: Record<string, string>; body: Buffer }> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const isReserve = req.method === 'POST' && req.url === RESERVE_PATH;
    const isBatch = req.method === 'POST' && req.url === BATCH_PATH;
    if (!isReserve && !isBatch) return this.#forward(req, body);

    const armed = FAULTS[this.#fault];
    const effect = armed !== undefined && armed.path === req.url ? armed.effect : undefined;
    if (effect) this.#fault = 'none';
    const header = req.headers['idempotency-key'];
    const headerKey = Array.isArray(header) ? header.join(',') : header;
    const sent: unknown = JSON.parse(body.toString('utf8'));
    let seen: SeenReserve | SeenBatch;
    if (isBatch) {
      const { reserves } = sent as { reserves: Array<{ qty: number; key: string }> };
      seen = {
        keys: reserves.map((item) => item.key),
        qtys: reserves.map((item) => item.qty),
        headerKey,
        forwarded: effect !== 'answer-503',
        dropped: false,
      };
      this.batches.push(seen);
    } else {
      seen = { key: headerKey, qty: (sent as { qty: number }).qty, forwarded: effect !== 'answer-503', dropped: false };
      this.reserves.push(seen);
    }
    if (effect === 'answer-503') {
      const problem = {
        type: 'about:blank',
        title: 'Service Unavailable',
        status: 503,
        detail: 'injected by the test proxy',
      };
      return {
        status: 503,
        headers: { 'Content-Type': 'application/problem+json' },
        body: Buffer.from(JSON.stringify(problem)),
      };
    }
    const answer = await this.#forward(req, body);
    const answered: unknown = JSON.parse(decode(answer.body, answer.headers['content-encoding']).toString('utf8'));
    seen.status = answer.status;
    if ('keys' in seen) {
      seen.results = (answered as { results?: BatchItemResult[] }).results;
    } else {
      seen.replayed = answer.headers['idempotent-replayed'] ?? null;
      seen.body = answered as PurchaseBody;
    }
    if (effect === 'drop') {
      seen.dropped = true;
      return 'drop';
    }
    return answer;
  }

  #forward(
    req: IncomingMessage,
    body: Buffer,
  ): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
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
              if (
                value === undefined ||
                ['connection', 'keep-alive', 'transfer-encoding', 'content-length'].includes(name)
              )
                continue;
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

  const vacancyEnv = {
    MODE: 'vacancy',
    STOCK_STORE: 'sqlite',
    DATA_DIR: dataDir,
    INITIAL_STOCK: String(INITIAL_STOCK),
  };

  beforeAll(async () => {
    vacancy = await startService(vacancyEnv);
    proxy = await LossyProxy.start(vacancy.url);
    [ticket, ticketNoRetry] = await Promise.all([
      startService(ticketEnv({ VACANCY_RETRIES: '2' })),
      startService(ticketEnv({ VACANCY_RETRIES: '0' })),
    ]);
  });

  /** A ticket service that reaches vacancy through the proxy (VACANCY_BATCH_MAX left at its default unless given). */
  function ticketEnv(env: Record<string, string>): Record<string, string> {
    return { MODE: 'ticket', VACANCY_URL: proxy.url, VACANCY_TIMEOUT: '3', ...env };
  }

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
    expect(reply.body).toMatchObject({
      success: true,
      remaining: before.available - 3,
      message: 'Purchased 3 tickets',
    });
    expect(reply.body.tickets).toEqual({ first: before.sold + 1, last: before.sold + 3 });
    // The caller sent no key: this is their first and only answer, not a replay.
    expect(reply.headers.get('idempotent-replayed')).toBeNull();

    expect(await vacancyStock(), 'sold once, not twice').toEqual({
      available: before.available - 3,
      sold: before.sold + 3,
    });
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

  it("forwards the caller's Idempotency-Key as purchase:<key> on every attempt", async () => {
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

  it("with VACANCY_RETRIES=0 answers 503, and the caller's retry with its key gets the sale vacancy recorded", async () => {
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
    expect(retried.body).toMatchObject({
      success: true,
      remaining: before.available - 2,
      message: 'Purchased 2 tickets',
    });
    expectSameSale(lost.body, retried.body);
    expect(proxy.reserves).toHaveLength(2);
    expect(proxy.reserves[1]).toMatchObject({ key: `purchase:${callerKey}`, replayed: 'true' });
    expect(await vacancyStock(), 'stock moved only once').toEqual({
      available: before.available - 2,
      sold: before.sold + 2,
    });
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
    expect(detail, `503 detail after a lost reserve answer: ${JSON.stringify(detail)}`).not.toMatch(
      /nothing was sold/i,
    );
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
    expect(proxy.reserves[1]).toMatchObject({
      forwarded: true,
      status: 200,
      replayed: null,
      key: proxy.reserves[0]!.key,
    });
    expect(proxy.reserves[0]!.key).toMatch(/^purchase:/);
  });

  /** One purchase of a burst: its Idempotency-Key, and the answer it got. */
  interface BurstPurchase {
    key: string;
    reply: JsonReply<PurchaseBody>;
  }

  /** Fires `size` purchases of one ticket at once, each under its own Idempotency-Key, and awaits every answer. */
  function burst(url: string, size: number, label: string): Promise<BurstPurchase[]> {
    const keys = Array.from({ length: size }, (_, index) => `${label}-${index}-${crypto.randomUUID()}`);
    return Promise.all(keys.map(async (key) => ({ key, reply: await purchase(url, 1, key) })));
  }

  /**
   * A burst of 40 concurrent purchases, and a bigger one if the first went out as single reserves
   * only, so that the ticket service is seen to coalesce: the proxy saw at least one batch.
   */
  async function burstUntilBatched(url: string, label: string): Promise<BurstPurchase[]> {
    const purchases: BurstPurchase[] = [];
    for (const size of [40, 160]) {
      purchases.push(...(await burst(url, size, `${label}-${size}`)));
      if (proxy.batches.length > 0) break;
    }
    expect(
      proxy.batches.length,
      `no batch among ${purchases.length} concurrent purchases (${proxy.reserves.length} single reserves)`,
    ).toBeGreaterThan(0);
    return purchases;
  }

  /** The key the ticket service sends to vacancy for a purchase under the caller's `key`. */
  function reserveKey(key: string): string {
    return `purchase:${key}`;
  }

  /** A batch item vacancy decided (status 200), as a reserve's answer. */
  function decided(result: BatchItemResult | undefined): PurchaseBody & { status: 200; replayed: boolean } {
    expect(result, JSON.stringify(result)).toMatchObject({ status: 200 });
    return result as PurchaseBody & { status: 200; replayed: boolean };
  }

  /**
   * The tickets of these sales, all together, are exactly the `count` tickets after `soldBefore`,
   * each once: no ticket went to two purchases, none was skipped.
   */
  function expectTicketsExactly(sales: Array<PurchaseBody | undefined>, soldBefore: number, count: number): void {
    const numbers = sales
      .flatMap((sale) => {
        const tickets = sale?.tickets;
        if (!tickets) return [];
        return Array.from({ length: tickets.last - tickets.first + 1 }, (_, index) => tickets.first + index);
      })
      .sort((a, b) => a - b);
    expect(numbers).toEqual(Array.from({ length: count }, (_, index) => soldBefore + 1 + index));
  }

  /** The first batch the proxy saw: the one the armed fault hit. It carried more than one purchase. */
  function firstBatch(): SeenBatch {
    const batch = proxy.batches[0]!;
    expect(batch.keys.length, 'a batch carries more than one reserve').toBeGreaterThan(1);
    expect(batch.qtys).toEqual(batch.keys.map(() => 1));
    expect(batch.headerKey, 'a batch has no Idempotency-Key of its own: each item carries its key').toBeUndefined();
    return batch;
  }

  /** Every purchase of the burst answered as a first sale (fresh keys: no replays), and the stock moved by exactly one each. */
  async function expectEachSoldOnce(
    purchases: Awaited<ReturnType<typeof burstUntilBatched>>,
    before: Awaited<ReturnType<typeof vacancyStock>>,
  ): Promise<void> {
    for (const { reply } of purchases) {
      expect(reply.status, reply.text).toBe(200);
      expect(reply.body).toMatchObject({ success: true, message: 'Purchased 1 ticket' });
      expect(reply.headers.get('idempotent-replayed')).toBeNull();
    }
    expect(await vacancyStock(), 'each purchase sold once').toEqual({
      available: before.available - purchases.length,
      sold: before.sold + purchases.length,
    });
    expectTicketsExactly(
      purchases.map(({ reply }) => reply.body),
      before.sold,
      purchases.length,
    );
  }

  /** The batch after `first` that carries the same keys: the ticket service's retry of it. */
  function retryOf(first: SeenBatch): SeenBatch {
    const retry = proxy.batches.slice(1).find((batch) => batch.keys.includes(first.keys[0]!));
    expect(
      retry,
      `no retry of the first batch among ${JSON.stringify(proxy.batches.map((batch) => batch.keys))}`,
    ).toBeDefined();
    expect(retry!.keys, 'the retry carries the same keys, in the same order').toEqual(first.keys);
    expect(retry!.qtys).toEqual(first.qtys);
    return retry!;
  }

  it('coalesces concurrent purchases, retries a batch whose answer was lost with the same keys, and sells each once', async () => {
    const before = await vacancyStock();
    proxy.arm('drop-first-batch-response');

    const purchases = await burstUntilBatched(ticket.url, 'batch-drop');
    await expectEachSoldOnce(purchases, before);

    const lost = firstBatch();
    expect(lost).toMatchObject({ forwarded: true, dropped: true, status: 200 });
    expect(lost.results).toHaveLength(lost.keys.length);
    const retry = retryOf(lost);
    expect(retry).toMatchObject({ forwarded: true, dropped: false, status: 200 });
    expect(retry.results).toHaveLength(lost.keys.length);
    const replies = new Map(purchases.map(({ key, reply }) => [reserveKey(key), reply]));
    lost.keys.forEach((key, index) => {
      const made = decided(lost.results![index]);
      expect(made).toMatchObject({ success: true, replayed: false });
      // Vacancy replays the decision it recorded for each item instead of selling again ...
      const replayed = decided(retry.results![index]);
      expect(replayed, key).toMatchObject({ success: true, replayed: true });
      expectSameSale(made, replayed);
      // ... and the purchase answers with the sale made by the attempt whose answer was lost.
      expect(replies.has(key), `${key} is one of the burst's purchases`).toBe(true);
      expectSameSale(made, replies.get(key)!.body);
    });

    // Every purchase reached vacancy under its own key, in a batch or alone.
    const sent = new Set([...proxy.reserves.map((seen) => seen.key), ...proxy.batches.flatMap((batch) => batch.keys)]);
    expect(sent).toEqual(new Set(replies.keys()));
  });

  it('retries a coalesced batch answered 503 and sells each purchase once', async () => {
    const before = await vacancyStock();
    proxy.arm('first-batch-503');

    const purchases = await burstUntilBatched(ticket.url, 'batch-503');
    await expectEachSoldOnce(purchases, before);

    const refused = firstBatch();
    expect(refused).toMatchObject({ forwarded: false, dropped: false });
    const retry = retryOf(refused);
    expect(retry).toMatchObject({ forwarded: true, dropped: false, status: 200 });
    const replies = new Map(purchases.map(({ key, reply }) => [reserveKey(key), reply]));
    retry.keys.forEach((key, index) => {
      // Vacancy never saw the refused attempt, so each item of the retry is a first decision.
      const made = decided(retry.results![index]);
      expect(made, key).toMatchObject({ success: true, replayed: false });
      expectSameSale(made, replies.get(key)?.body);
    });
  });

  it("with VACANCY_RETRIES=0 answers a lost batch's purchases 503 with outcomeUnknown, and each caller's retry gets its sale", async () => {
    const before = await vacancyStock();
    proxy.arm('drop-first-batch-response');

    const purchases = await burstUntilBatched(ticketNoRetry.url, 'batch-no-retry');
    const lost = firstBatch();
    expect(lost).toMatchObject({ forwarded: true, dropped: true, status: 200 });
    const lostKeys = new Set(lost.keys);
    const failed = purchases.filter(({ key }) => lostKeys.has(reserveKey(key)));
    expect(failed, "every item of the lost batch is one of the burst's purchases").toHaveLength(lost.keys.length);
    for (const { key, reply } of purchases) {
      if (!lostKeys.has(reserveKey(key))) {
        expect(reply.status, reply.text).toBe(200);
        expect(reply.body).toMatchObject({ success: true, message: 'Purchased 1 ticket' });
        continue;
      }
      expect(reply.status, reply.text).toBe(503);
      expect(reply.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(reply.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(reply.body).toMatchObject({
        status: 503,
        type: expect.stringContaining('service-unavailable'),
        outcomeUnknown: true,
      });
      const detail = (reply.body as unknown as { detail: string }).detail;
      expect(detail, 'the outcome is unknown, so the problem must not claim that nothing was sold').not.toMatch(
        /nothing was sold/i,
      );
    }
    // Without retries, none of the lost batch's reserves went to vacancy again.
    const resent = [
      ...proxy.reserves.map((seen) => seen.key),
      ...proxy.batches.slice(1).flatMap((batch) => batch.keys),
    ];
    expect(resent.filter((key) => key !== undefined && lostKeys.has(key))).toEqual([]);

    // Vacancy did sell every one: the answers were lost, not the sales.
    expect(await vacancyStock()).toEqual({
      available: before.available - purchases.length,
      sold: before.sold + purchases.length,
    });
    const sales = new Map(lost.keys.map((key, index) => [key, decided(lost.results![index])]));
    expectTicketsExactly(
      [...purchases.filter(({ reply }) => reply.status === 200).map(({ reply }) => reply.body), ...sales.values()],
      before.sold,
      purchases.length,
    );

    // The callers retry with their keys: one alone (a single reserve, replayed from the record the
    // batch made), then the others at once (coalesced again); each gets the sale vacancy recorded.
    proxy.arm('none');
    const [alone, ...together] = failed;
    const retried = [
      { key: alone!.key, again: await purchase(ticketNoRetry.url, 1, alone!.key) },
      ...(await Promise.all(
        together.map(async ({ key }) => ({ key, again: await purchase(ticketNoRetry.url, 1, key) })),
      )),
    ];
    expect(proxy.reserves[0]).toMatchObject({ key: reserveKey(alone!.key), status: 200, replayed: 'true' });
    for (const { key, again } of retried) {
      expect(again.status, again.text).toBe(200);
      expect(again.headers.get('idempotent-replayed'), key).toBe('true');
      expect(again.body).toMatchObject({ success: true, message: 'Purchased 1 ticket' });
      expectSameSale(sales.get(reserveKey(key)), again.body);
    }
    expect(await vacancyStock(), 'the retries sold nothing more').toEqual({
      available: before.available - purchases.length,
      sold: before.sold + purchases.length,
    });
  });

  it('with VACANCY_BATCH_MAX=1 sends every reserve of a burst on its own', async () => {
    const unbatched = await startService(ticketEnv({ VACANCY_RETRIES: '2', VACANCY_BATCH_MAX: '1' }));
    try {
      const before = await vacancyStock();
      proxy.arm('none');

      const purchases = await burst(unbatched.url, 40, 'unbatched');
      for (const { reply } of purchases) {
        expect(reply.status, reply.text).toBe(200);
        expect(reply.body).toMatchObject({ success: true, message: 'Purchased 1 ticket' });
      }
      expect(proxy.batches, 'no reserve travelled in a batch').toEqual([]);
      expect(new Set(proxy.reserves.map((seen) => seen.key))).toEqual(
        new Set(purchases.map(({ key }) => reserveKey(key))),
      );
      expect(await vacancyStock()).toEqual({
        available: before.available - purchases.length,
        sold: before.sold + purchases.length,
      });
      expectTicketsExactly(
        purchases.map(({ reply }) => reply.body),
        before.sold,
        purchases.length,
      );
    } finally {
      await unbatched.stop();
    }
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
