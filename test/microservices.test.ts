/**
 * The microservice deployment as real processes: vacancy (MODE=vacancy) owns
 * the stock, ticket (MODE=ticket) sells through it over HTTP. Also what the
 * ticket service answers when vacancy dies or stops answering.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from './support/http-json.ts';
import { FREQUENT_GC_NODE_ARGS, sleep, startService, stopAllServices, type Service } from './support/processes.ts';

const INITIAL_STOCK = 50;
const BURST = 200;
/** Slack over VACANCY_TIMEOUT for a 503 to come back: bounds the contract, it is not a performance target. */
const MARGIN_MS = 1_500;

interface PurchaseBody {
  success: boolean;
  remaining: number;
  message: string;
}

interface VacancyHealth {
  status: string;
  service: string;
  details: { stock: { available: number; sold: number } };
}

async function getJson<T>(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: T; response: Response }> {
  const response = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  return { status: response.status, body: JSON.parse(text) as T, response };
}

async function buy(ticket: Service, qty: number, headers: Record<string, string> = {}) {
  const started = performance.now();
  const response = await fetch(`${ticket.url}/api/v1/purchase`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify({ qty }),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  return { status: response.status, text, response, elapsedMs: performance.now() - started };
}

/** Ticket must answer every purchase, at the latest when VACANCY_TIMEOUT is spent; past this, it has left one hanging. */
const UNANSWERED_AFTER_MS = 10_000;

/** Like {@link buy}, but a purchase left without an answer is a result (status 0), not an exception. */
async function tryBuy(
  ticket: Service,
  qty: number,
  headers: Record<string, string> = {},
  giveUpAfterMs = UNANSWERED_AFTER_MS,
) {
  const started = performance.now();
  try {
    const response = await fetch(`${ticket.url}/api/v1/purchase`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify({ qty }),
      signal: AbortSignal.timeout(giveUpAfterMs),
    });
    const text = await response.text();
    return { status: response.status, text, response, elapsedMs: performance.now() - started };
  } catch (error) {
    return { status: 0, text: String(error), response: undefined, elapsedMs: performance.now() - started };
  }
}

/** A GET that is a result (status 0) when left without an answer. */
async function tryGet(url: string, giveUpAfterMs = UNANSWERED_AFTER_MS) {
  const started = performance.now();
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(giveUpAfterMs) });
    return { status: response.status, text: await response.text(), elapsedMs: performance.now() - started };
  } catch (error) {
    return { status: 0, text: String(error), elapsedMs: performance.now() - started };
  }
}

async function vacancyStock(vacancy: Service): Promise<{ available: number; sold: number }> {
  const [available, health] = await Promise.all([
    getJson<{ qty: number }>(`${vacancy.url}/api/v1/available`),
    getJson<VacancyHealth>(`${vacancy.url}/api/v1/health`),
  ]);
  expect(available.status).toBe(200);
  expect(health.status).toBe(200);
  expect(health.body.details.stock.available).toBe(available.body.qty);
  return { available: available.body.qty, sold: health.body.details.stock.sold };
}

function expectServiceUnavailable(result: { status: number; text: string; response?: Response }) {
  expect(result.status, result.text).toBe(503);
  expect(result.response?.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const problem = JSON.parse(result.text) as Record<string, unknown>;
  // It says what became of the purchase: nothing was sold, or ticket cannot tell (outcomeUnknown).
  expect(problem.detail).toMatch(problem.outcomeUnknown === true ? /may or may not/ : /nothing was sold/);
  expect(problem).toMatchObject({
    type: expect.stringContaining('service-unavailable'),
    title: 'Service unavailable',
    status: 503,
    detail: expect.any(String),
  });
  return problem;
}

describe('vacancy and ticket as separate processes', () => {
  let vacancy: Service;
  let ticket: Service;

  beforeAll(async () => {
    // LOG_LEVEL=info on vacancy: its request log shows which request ids reached it.
    vacancy = await startService({ MODE: 'vacancy', INITIAL_STOCK: String(INITIAL_STOCK), LOG_LEVEL: 'info' });
    ticket = await startService({ MODE: 'ticket', VACANCY_URL: vacancy.url, VACANCY_TIMEOUT: '1' });
  });

  afterAll(async () => {
    await stopAllServices();
  });

  it('reports each process as what it is', async () => {
    const [vacancyRoot, ticketRoot] = await Promise.all([
      getJson<{ mode: string }>(`${vacancy.url}/`),
      getJson<{ mode: string }>(`${ticket.url}/`),
    ]);
    expect(vacancyRoot.body.mode).toBe('vacancy');
    expect(ticketRoot.body.mode).toBe('ticket');
    const health = await getJson<{ status: string; service: string }>(`${ticket.url}/api/v1/health`);
    expect(health.body).toMatchObject({ status: 'healthy', service: 'ticket' });
  });

  it('sells through ticket, and the sale is recorded by vacancy', async () => {
    const before = await vacancyStock(vacancy);
    const result = await buy(ticket, 2);
    expect(result.status, result.text).toBe(200);
    expect(result.response.headers.get('content-type')).toMatch(/^application\/json/);
    // Additive fields are allowed; these three are the 1.0.0 contract.
    expect(JSON.parse(result.text)).toMatchObject({
      success: true,
      remaining: before.available - 2,
      message: 'Purchased 2 tickets',
    });

    const after = await vacancyStock(vacancy);
    expect(after).toEqual({ available: before.available - 2, sold: before.sold + 2 });
    expect(after.available + after.sold).toBe(INITIAL_STOCK);
  });

  it('answers GET /api/v1/available on ticket with what vacancy has', async () => {
    await buy(ticket, 1);
    const [fromTicket, fromVacancy] = await Promise.all([
      getJson<{ qty: number }>(`${ticket.url}/api/v1/available`),
      getJson<{ qty: number }>(`${vacancy.url}/api/v1/available`),
    ]);
    expect(fromTicket.status).toBe(200);
    expect(fromTicket.body).toEqual(fromVacancy.body);
  });

  it('is ready while vacancy is reachable', async () => {
    const ready = await getJson<{ status: string; detail: string }>(`${ticket.url}/api/v1/ready`);
    expect(ready.status, JSON.stringify(ready.body)).toBe(200);
    expect(ready.body.status).toBe('ready');
  });

  it("returns the caller's X-Request-Id and forwards it to vacancy", async () => {
    const requestId = `e2e-${crypto.randomUUID()}`;
    const result = await buy(ticket, 1, { 'X-Request-Id': requestId });
    expect(result.status, result.text).toBe(200);
    expect(result.response.headers.get('x-request-id')).toBe(requestId);

    const available = await fetch(`${ticket.url}/api/v1/available`, { headers: { 'X-Request-Id': `${requestId}-a` } });
    await available.text();
    expect(available.headers.get('x-request-id')).toBe(`${requestId}-a`);

    // The reserve that ticket sent on the caller's behalf carries the same id.
    const reachedVacancy = () =>
      vacancy.logEntries().some((entry) => entry.requestId === requestId && entry.path === '/api/v1/reserve');
    await vacancy.waitForOutput(reachedVacancy, 5_000);
  });

  it('keeps the invariant under a concurrent burst: every success reported by ticket was recorded by vacancy', async () => {
    const before = await vacancyStock(vacancy);
    expect(before.available + before.sold).toBe(INITIAL_STOCK);

    const seed = Date.now() % 1_000_000;
    const random = seededRandom(seed);
    const quantities = Array.from({ length: BURST }, () => 1 + Math.floor(random() * 3));
    const ids = quantities.map((_, index) => `burst-${seed}-${index}`);
    // Each purchase carries its own Idempotency-Key, so that one whose outcome ticket could not tell
    // can be asked again below without buying twice.
    const keyed = (id: string) => ({ 'X-Request-Id': id, 'Idempotency-Key': id });
    const results = await Promise.all(quantities.map((qty, index) => tryBuy(ticket, qty, keyed(ids[index] ?? ''))));
    const context = `seed ${seed}`;

    type Outcome =
      | { kind: 'sold'; qty: number; remaining: number }
      | { kind: 'insufficient' }
      | { kind: 'nothing-sold' }
      | { kind: 'unknown'; why: string };
    const classify = (result: Awaited<ReturnType<typeof tryBuy>>, qty: number): Outcome => {
      if (result.status === 0) return { kind: 'unknown', why: `no answer (${result.text})` };
      if (result.status === 503) {
        // Allowed under load; checked against what vacancy recorded below.
        const problem = expectServiceUnavailable(result);
        return problem.outcomeUnknown === true
          ? { kind: 'unknown', why: String(problem.detail) }
          : { kind: 'nothing-sold' };
      }
      if (result.status === 409) return { kind: 'unknown', why: 'key still in flight' };
      expect(result.status, `${context}: a purchase is answered 200 (or 503): ${result.text}`).toBe(200);
      const body = JSON.parse(result.text) as PurchaseBody;
      expect(Number.isSafeInteger(body.remaining) && body.remaining >= 0, `${context}: ${result.text}`).toBe(true);
      if (body.success) {
        expect(body.message).toBe(`Purchased ${qty} ticket${qty === 1 ? '' : 's'}`);
        return { kind: 'sold', qty, remaining: body.remaining };
      }
      expect(body.message).toBe('Insufficient inventory');
      // Refused only when it truly did not fit at the moment it was decided.
      expect(qty, `${context}: refused although ${body.remaining} were left`).toBeGreaterThan(body.remaining);
      return { kind: 'insufficient' };
    };

    const outcomes = results.map((result, index) => classify(result, quantities[index] ?? 0));
    const firstAnswers = tally(outcomes);
    const unanswered = results.flatMap((result, index) => (result.status === 0 ? [ids[index]] : []));

    // Purchases whose outcome ticket could not tell: ask again with the same key, as a client would.
    for (let attempt = 1; attempt <= 5 && outcomes.some((o) => o.kind === 'unknown'); attempt++) {
      await sleep(300 * attempt);
      await Promise.all(
        outcomes.map(async (outcome, index) => {
          if (outcome.kind !== 'unknown') return;
          const id = ids[index] ?? '';
          outcomes[index] = classify(await tryBuy(ticket, quantities[index] ?? 0, keyed(id)), quantities[index] ?? 0);
        }),
      );
    }
    console.info(
      `[microservices] burst of ${BURST} (${context}): first answers ${JSON.stringify(firstAnswers)}; ` +
        `after asking again with the same keys ${JSON.stringify(tally(outcomes))}`,
    );

    const after = await vacancyStock(vacancy);
    const sold = outcomes.filter((o): o is Extract<Outcome, { kind: 'sold' }> => o.kind === 'sold');
    const unknown = outcomes.flatMap((o, index) => (o.kind === 'unknown' ? [`${ids[index]}: ${o.why}`] : []));
    const soldByTicket = sold.reduce((sum, s) => sum + s.qty, 0);
    const unknownQty = outcomes.reduce(
      (sum, o, index) => sum + (o.kind === 'unknown' ? (quantities[index] ?? 0) : 0),
      0,
    );
    const soldByVacancy = after.sold - before.sold;

    expect(after.available, context).toBeGreaterThanOrEqual(0);
    expect(after.available + after.sold, `${context}: sold + remaining == initial`).toBe(INITIAL_STOCK);
    expect(soldByVacancy, `${context}: sold == what vacancy lost`).toBe(before.available - after.available);
    // No purchase is reported successful that vacancy did not record ...
    expect(soldByTicket, `${context}: ticket reported sales that vacancy did not record`).toBeLessThanOrEqual(
      soldByVacancy,
    );
    // ... and none that vacancy recorded is hidden behind a 503 that says "nothing was sold".
    expect(
      soldByVacancy,
      `${context}: vacancy recorded sales that ticket answered "nothing was sold"`,
    ).toBeLessThanOrEqual(soldByTicket + unknownQty);
    // Ticket answers every purchase, at the latest once VACANCY_TIMEOUT (1 s) is spent, never leaving one hanging.
    expect
      .soft(unanswered, `${context}: purchases ticket left without an answer for ${UNANSWERED_AFTER_MS} ms`)
      .toEqual([]);
    // Asked again with its key, every purchase gets a definite answer.
    expect.soft(unknown, `${context}: purchases whose outcome stayed unknown`).toEqual([]);
    if (unknown.length === 0) expect(soldByTicket, `${context}: every recorded sale was reported`).toBe(soldByVacancy);

    if (outcomes.every((o) => o.kind === 'sold' || o.kind === 'insufficient')) {
      // More was asked than there was, and every qty is at most 3: the stock ran down below 3.
      expect(after.available, context).toBeLessThanOrEqual(2);
    }

    // The sales form one chain of decisions: ordered by remaining, each took exactly its qty.
    const chain = [...sold].sort((a, b) => b.remaining - a.remaining);
    let level = before.available;
    for (const sale of chain) {
      level -= sale.qty;
      expect(sale.remaining, `${context}: chain of sales ${JSON.stringify(chain)}`).toBe(level);
    }
  });
});

function tally(outcomes: Array<{ kind: string }>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const outcome of outcomes) counts[outcome.kind] = (counts[outcome.kind] ?? 0) + 1;
  return counts;
}

describe('when vacancy dies', () => {
  afterEach(async () => {
    await stopAllServices();
  });

  it('ticket answers 503 problem+json within VACANCY_TIMEOUT and turns unready', async () => {
    const timeoutS = 1;
    const vacancy = await startService({ MODE: 'vacancy', INITIAL_STOCK: '10' });
    const ticket = await startService({ MODE: 'ticket', VACANCY_URL: vacancy.url, VACANCY_TIMEOUT: String(timeoutS) });

    // A sale first, so ticket holds a keep-alive connection to the vacancy that is about to die.
    const first = await buy(ticket, 1);
    expect(first.status, first.text).toBe(200);
    expect((await getJson(`${ticket.url}/api/v1/ready`)).status).toBe(200);

    expect(await vacancy.stop('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });

    const bound = timeoutS * 1000 + MARGIN_MS;
    const purchase = await buy(ticket, 1);
    const problem = expectServiceUnavailable(purchase);
    // Vacancy was gone before the purchase: unless ticket cannot tell, it says nothing was sold.
    expect(problem.detail).toMatch(problem.outcomeUnknown === true ? /Idempotency-Key/ : /nothing was sold/);
    expect(purchase.response.headers.get('retry-after')).toBeTruthy();
    expect(purchase.elapsedMs, `503 within VACANCY_TIMEOUT + ${MARGIN_MS} ms`).toBeLessThan(bound);

    const startedReady = performance.now();
    const ready = await fetch(`${ticket.url}/api/v1/ready`);
    const readyText = await ready.text();
    expect(ready.status, readyText).toBe(503);
    expect(ready.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const readyMs = performance.now() - startedReady;
    expect(readyMs).toBeLessThan(bound);
    console.info(
      `[microservices] vacancy killed: purchase 503 after ${Math.round(purchase.elapsedMs)} ms, ready 503 after ${Math.round(readyMs)} ms (bound ${bound} ms)`,
    );

    const available = await fetch(`${ticket.url}/api/v1/available`);
    expectServiceUnavailable({ status: available.status, text: await available.text(), response: available });

    // Liveness is not readiness: the ticket process itself is fine.
    const health = await getJson<{ status: string }>(`${ticket.url}/api/v1/health`);
    expect(health.status).toBe(200);
    expect(health.body.status).toBe('healthy');
  });
});

describe('when vacancy is too slow', () => {
  let slow: Server | undefined;
  const held: ServerResponse[] = [];

  afterEach(async () => {
    await stopAllServices();
    for (const response of held.splice(0)) response.destroy();
    if (slow) {
      slow.closeAllConnections();
      await new Promise<void>((resolve) => slow?.close(() => resolve()));
      slow = undefined;
    }
  });

  /**
   * The reserves a request to a fake vacancy carries, with the request id and key of each:
   * one for POST /api/v1/reserve (headers), one per item for POST /api/v1/reserve/batch (body).
   */
  async function reservesIn(request: IncomingMessage): Promise<Array<{ requestId: string; idempotencyKey: string }>> {
    let text = '';
    for await (const chunk of request) text += String(chunk);
    if (request.url === '/api/v1/reserve/batch') {
      const { reserves } = JSON.parse(text) as { reserves: Array<{ key: string; requestId?: string }> };
      return reserves.map((item) => ({ requestId: item.requestId ?? '', idempotencyKey: item.key }));
    }
    return [
      {
        requestId: String(request.headers['x-request-id'] ?? ''),
        idempotencyKey: String(request.headers['idempotency-key'] ?? ''),
      },
    ];
  }

  /** A vacancy that accepts reserves (single or batched) and never answers them, and answers /ready only after `readyDelayMs`. */
  async function startSlowVacancy(readyDelayMs: number) {
    const reserves: Array<{ requestId: string; idempotencyKey: string }> = [];
    slow = createServer((request: IncomingMessage, response: ServerResponse) => {
      const url = request.url ?? '';
      if (url.startsWith('/api/v1/reserve')) {
        held.push(response); // never answered
        void reservesIn(request).then((seen) => reserves.push(...seen));
        return;
      }
      if (url.startsWith('/api/v1/ready')) {
        const timer = setTimeout(() => {
          response.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"ready","detail":"slow"}');
        }, readyDelayMs);
        response.once('close', () => clearTimeout(timer));
        return;
      }
      held.push(response); // /available and anything else: never answered either
    });
    await new Promise<void>((resolve) => slow?.listen(0, '127.0.0.1', () => resolve()));
    const { port } = slow.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, reserves };
  }

  it('ticket gives up after VACANCY_TIMEOUT=0.5 with 503, and is not ready', async () => {
    const timeoutS = 0.5;
    const bound = timeoutS * 1000 + MARGIN_MS;
    const vacancy = await startSlowVacancy(5_000);
    const ticket = await startService({ MODE: 'ticket', VACANCY_URL: vacancy.url, VACANCY_TIMEOUT: String(timeoutS) });

    const purchases = await Promise.all(
      Array.from({ length: 5 }, (_, i) => buy(ticket, 1, { 'X-Request-Id': `slow-${i}` })),
    );
    for (const purchase of purchases) {
      const problem = expectServiceUnavailable(purchase);
      // The reserve reached vacancy and got no answer: ticket cannot know whether it was made, and says so.
      expect(problem).toMatchObject({ outcomeUnknown: true, detail: expect.stringMatching(/may or may not/) });
      expect(purchase.elapsedMs, `503 within VACANCY_TIMEOUT + ${MARGIN_MS} ms`).toBeLessThan(bound);
      // It did wait for vacancy, rather than failing for another reason.
      expect(purchase.elapsedMs).toBeGreaterThanOrEqual(timeoutS * 1000 - 50);
    }
    // Every purchase reached the slow vacancy. Should ticket try a reserve again, every attempt of one
    // purchase must carry the same idempotency key, and no two purchases may share one: otherwise a
    // retried reserve whose first answer was merely late could sell twice.
    const reached = new Set(vacancy.reserves.map((r) => r.requestId));
    expect([...reached].sort(), 'every purchase reached the slow vacancy').toEqual([
      'slow-0',
      'slow-1',
      'slow-2',
      'slow-3',
      'slow-4',
    ]);
    const keysByPurchase = new Map<string, Set<string>>();
    for (const { requestId, idempotencyKey } of vacancy.reserves) {
      keysByPurchase.set(requestId, (keysByPurchase.get(requestId) ?? new Set()).add(idempotencyKey));
    }
    const attempts = vacancy.reserves.length;
    if (attempts > purchases.length) {
      for (const [requestId, keys] of keysByPurchase) {
        expect([...keys], `retries of ${requestId} carry one idempotency key`).toHaveLength(1);
        expect([...keys][0], `retries of ${requestId} carry an idempotency key`).not.toBe('');
      }
      const allKeys = [...keysByPurchase.values()].map((keys) => [...keys][0]);
      expect(new Set(allKeys).size, 'no two purchases share an idempotency key').toBe(allKeys.length);
    }

    const startedReady = performance.now();
    const ready = await fetch(`${ticket.url}/api/v1/ready`);
    const readyText = await ready.text();
    const readyMs = performance.now() - startedReady;
    expect(ready.status, readyText).toBe(503);
    expect(ready.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(readyMs, `ready answers within VACANCY_TIMEOUT + ${MARGIN_MS} ms`).toBeLessThan(bound);
    const slowest = Math.max(...purchases.map((p) => p.elapsedMs));
    console.info(
      `[microservices] vacancy hanging: slowest purchase 503 after ${Math.round(slowest)} ms, ready 503 after ${Math.round(readyMs)} ms, ` +
        `${vacancy.reserves.length} reserve attempts for ${purchases.length} purchases (bound ${bound} ms)`,
    );

    // The ticket process stays responsive while vacancy hangs.
    const health = await getJson<{ status: string }>(`${ticket.url}/api/v1/health`);
    expect(health.status).toBe(200);
  });

  /** A vacancy that answers every reserve with 200 headers and the start of a body, then never sends the rest. */
  async function startStallingVacancy() {
    let reserves = 0;
    slow = createServer((request: IncomingMessage, response: ServerResponse) => {
      const url = request.url ?? '';
      void reservesIn(request).then((seen) => {
        if (url.startsWith('/api/v1/reserve')) reserves += seen.length;
        response.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '64' });
        response.write('{"success":true,');
        held.push(response); // the other 48 bytes never come
      });
    });
    await new Promise<void>((resolve) => slow?.listen(0, '127.0.0.1', () => resolve()));
    const { port } = slow.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, reserves: () => reserves };
  }

  it.each([
    { gc: 'ordinary garbage collection', nodeArgs: [] },
    // Collecting garbage every 20 ms makes a GC-dependent failure show on every run, not now and then.
    { gc: 'garbage collected every 20 ms', nodeArgs: FREQUENT_GC_NODE_ARGS },
  ])('ticket answers 503 within VACANCY_TIMEOUT=0.5 when vacancy stalls mid-body ($gc)', async ({ nodeArgs }) => {
    const timeoutS = 0.5;
    const bound = timeoutS * 1000 + MARGIN_MS;
    const vacancy = await startStallingVacancy();
    const ticket = await startService(
      // SHUTDOWN_TIMEOUT=1: should purchases be left hanging, cleaning up does not wait 10 s for them.
      { MODE: 'ticket', VACANCY_URL: vacancy.url, VACANCY_TIMEOUT: String(timeoutS), SHUTDOWN_TIMEOUT: '1' },
      { nodeArgs },
    );

    const purchases = await Promise.all(Array.from({ length: 3 }, () => tryBuy(ticket, 1, {}, 5_000)));
    const summary = purchases.map(
      (p) => `${p.status === 0 ? 'no answer' : p.status} after ${Math.round(p.elapsedMs)} ms`,
    );
    console.info(
      `[microservices] vacancy stalling mid-body: ${summary.join(', ')}; ${vacancy.reserves()} reserve attempts`,
    );
    expect(vacancy.reserves(), 'the reserves reached vacancy').toBeGreaterThanOrEqual(3);
    for (const purchase of purchases) {
      expect(purchase.status, `ticket must answer once VACANCY_TIMEOUT is spent: ${summary.join(', ')}`).toBe(503);
      const problem = expectServiceUnavailable(purchase);
      expect(problem.outcomeUnknown).toBe(true);
      expect(purchase.elapsedMs, `503 within VACANCY_TIMEOUT + ${MARGIN_MS} ms`).toBeLessThan(bound);
    }
    // Its /ready stalls mid-body too: that is not ready.
    const ready = await tryGet(`${ticket.url}/api/v1/ready`);
    expect(ready.status, ready.text).toBe(503);
    expect(ready.elapsedMs, `ready 503 within VACANCY_TIMEOUT + ${MARGIN_MS} ms`).toBeLessThan(bound);
  });
});
