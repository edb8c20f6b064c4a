import { describe, expect, it } from 'vitest';
import { createApp } from '../app.ts';
import { parseConfig } from '../config.ts';
import { buildDependencies } from '../dependencies.ts';
import { PROBLEM_CONTENT_TYPE, problemTypes } from '../lib/problem.ts';
import { MAX_RESERVE_BATCH } from '../lib/schemas.ts';
import { RemoteVacancyClient } from '../ticket/remote-vacancy-client.ts';
import { VacancyUnavailableError } from '../stock/vacancy-client.ts';
import type { StockStore } from '../stock/store.ts';
import { ControlledStore } from '../../test/support/controlled-store.ts';

const TOKEN = 'between-services';

async function vacancy(env: Record<string, string> = {}, store?: StockStore) {
  const deps = await buildDependencies(
    parseConfig({ MODE: 'vacancy', STOCK_STORE: 'memory', INITIAL_STOCK: '10', ...env }),
    store ? { store } : {},
  );
  return { app: createApp(deps), actor: deps.actor! };
}

type App = Awaited<ReturnType<typeof vacancy>>['app'];

function batch(app: App, body: unknown, headers: Record<string, string> = {}) {
  return app.request('/api/v1/reserve/batch', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function results(res: Response): Promise<Array<Record<string, unknown>>> {
  expect(res.status).toBe(200);
  return ((await res.json()) as { results: Array<Record<string, unknown>> }).results;
}

function failingStore(): ControlledStore {
  const store = new ControlledStore();
  store.failing = true;
  return store;
}

describe('POST /api/v1/reserve/batch', () => {
  it('decides every reserve in the order sent, as single reserves would', async () => {
    const { app, actor } = await vacancy();
    const answer = await results(
      await batch(app, {
        reserves: [
          { qty: 3, key: 'a' },
          { qty: 4, key: 'b' },
          { qty: 5, key: 'c' },
        ],
      }),
    );
    expect(answer).toEqual([
      {
        status: 200,
        success: true,
        remaining: 7,
        message: 'Reserved 3 tickets',
        reservationId: expect.stringMatching(/^ord_[A-Za-z0-9_-]{30}default$/),
        tickets: { first: 1, last: 3 },
        replayed: false,
      },
      {
        status: 200,
        success: true,
        remaining: 3,
        message: 'Reserved 4 tickets',
        reservationId: expect.stringMatching(/^ord_[A-Za-z0-9_-]{30}default$/),
        tickets: { first: 4, last: 7 },
        replayed: false,
      },
      { status: 200, success: false, remaining: 3, message: 'Insufficient inventory', replayed: false },
    ]);
    expect(actor.snapshot()).toEqual({ remaining: 3, sold: 7 });
  });

  it('replays a retried batch without selling again', async () => {
    const { app, actor } = await vacancy();
    const body = {
      reserves: [
        { qty: 2, key: 'x' },
        { qty: 1, key: 'y' },
      ],
    };
    const first = await results(await batch(app, body));
    const again = await results(await batch(app, body));
    expect(again).toEqual(first.map((result) => ({ ...result, replayed: true })));
    expect(actor.snapshot()).toEqual({ remaining: 7, sold: 3 });
  });

  it('shares keys with POST /api/v1/reserve: a key first used there is replayed in a batch', async () => {
    const { app } = await vacancy();
    const single = await app.request('/api/v1/reserve', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Idempotency-Key': 'k1' },
      body: '{"qty":2}',
    });
    const sale = (await single.json()) as Record<string, unknown>;
    const [replay] = await results(await batch(app, { reserves: [{ qty: 2, key: 'k1' }] }));
    expect(replay).toEqual({ status: 200, ...sale, replayed: true });
  });

  it('answers a key reused with another qty, or twice in one batch, for that reserve alone', async () => {
    const { app, actor } = await vacancy();
    await results(await batch(app, { reserves: [{ qty: 1, key: 'used' }] }));
    const answer = await results(
      await batch(app, {
        reserves: [
          { qty: 5, key: 'used' },
          { qty: 1, key: 'twice' },
          { qty: 1, key: 'twice' },
          { qty: 1, key: 'fresh' },
        ],
      }),
    );
    expect(answer[0]).toMatchObject({ status: 422, type: problemTypes.idempotencyKeyReused.type });
    expect(answer[1]).toMatchObject({ status: 200, success: true });
    expect(answer[2]).toMatchObject({ status: 409, type: problemTypes.idempotencyKeyInFlight.type });
    expect(answer[3]).toMatchObject({ status: 200, success: true });
    expect(actor.snapshot()).toEqual({ remaining: 7, sold: 3 });
  });

  it('answers a store failure as a 503 result per reserve, nothing sold', async () => {
    const { app, actor } = await vacancy({}, failingStore());
    const answer = await results(
      await batch(app, {
        reserves: [
          { qty: 1, key: 'a' },
          { qty: 2, key: 'b' },
        ],
      }),
    );
    for (const result of answer)
      expect(result).toMatchObject({ status: 503, type: problemTypes.serviceUnavailable.type });
    expect(actor.snapshot()).toEqual({ remaining: 10, sold: 0 });
  });

  it.each([
    ['no reserves', { reserves: [] }, 422],
    ['a reserve without a key', { reserves: [{ qty: 1 }] }, 422],
    ['an empty key', { reserves: [{ qty: 1, key: '' }] }, 422],
    ['a zero qty', { reserves: [{ qty: 0, key: 'a' }] }, 422],
    [
      'too many reserves',
      { reserves: Array.from({ length: MAX_RESERVE_BATCH + 1 }, (_, i) => ({ qty: 1, key: `k${i}` })) },
      422,
    ],
    ['no body object', '[]', 422],
    ['malformed JSON', '{"reserves":', 400],
  ])('refuses %s with a problem and changes nothing', async (_what, body, status) => {
    const { app, actor } = await vacancy();
    const res = await batch(app, body);
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toBe(PROBLEM_CONTENT_TYPE);
    expect(actor.snapshot()).toEqual({ remaining: 10, sold: 0 });
  });

  it('refuses a body that is not JSON with 415', async () => {
    const { app } = await vacancy();
    const res = await batch(app, 'reserves', { 'Content-Type': 'text/plain' });
    expect(res.status).toBe(415);
  });

  it('needs INTERNAL_TOKEN when one is configured: 401 and nothing sold without it', async () => {
    const { app, actor } = await vacancy({ INTERNAL_TOKEN: TOKEN });
    const body = {
      reserves: [
        { qty: 1, key: 'a' },
        { qty: 1, key: 'b' },
      ],
    };
    const refused = await batch(app, body);
    expect(refused.status).toBe(401);
    expect(actor.snapshot()).toEqual({ remaining: 10, sold: 0 });
    expect(await results(await batch(app, body, { Authorization: `Bearer ${TOKEN}` }))).toHaveLength(2);
  });

  it('is described in the OpenAPI document', async () => {
    const { app } = await vacancy();
    const doc = (await (await app.request('/openapi.json')).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toContain('/api/v1/reserve/batch');
  });
});

describe('RemoteVacancyClient with VACANCY_BATCH_MAX', () => {
  /** The client talking to the vacancy app in this process, recording the paths and batch sizes it sent. */
  function clientOf(app: App, batchMax: number, options: { internalToken?: string } = {}) {
    const calls: Array<{ path: string; items: number }> = [];
    const viaApp: typeof fetch = async (input, init) => {
      const request = new Request(input, init);
      const path = new URL(request.url).pathname;
      const body = (request.method === 'POST' ? await request.clone().json() : {}) as { reserves?: unknown[] };
      calls.push({ path, items: body.reserves?.length ?? 1 });
      return app.fetch(request);
    };
    const client = new RemoteVacancyClient({
      baseUrl: 'http://vacancy',
      timeoutMs: 5_000,
      batchMax,
      fetch: viaApp,
      ...options,
    });
    return { client, calls };
  }

  it('coalesces concurrent reserves into batch calls and sells each exactly once', async () => {
    const { app, actor } = await vacancy({ INITIAL_STOCK: '100', INTERNAL_TOKEN: TOKEN });
    const { client, calls } = clientOf(app, 16, { internalToken: TOKEN });
    const outcomes = await Promise.all(Array.from({ length: 60 }, () => client.reserve(1)));
    expect(outcomes.every((outcome) => outcome.success && !outcome.replayed)).toBe(true);
    const tickets = outcomes.map((outcome) => outcome.tickets!.first).sort((a, b) => a - b);
    expect(new Set(tickets).size).toBe(60);
    expect(actor.snapshot()).toEqual({ remaining: 40, sold: 60 });
    expect(calls.some((call) => call.path === '/api/v1/reserve/batch' && call.items > 1)).toBe(true);
    expect(Math.max(...calls.map((call) => call.items))).toBeLessThanOrEqual(16);
    expect(calls.reduce((sum, call) => sum + call.items, 0)).toBe(60);
  });

  it("replays a caller's keyed reserve that travelled in a batch", async () => {
    const { app, actor } = await vacancy({ INITIAL_STOCK: '100' });
    const { client } = clientOf(app, 50);
    const keys = Array.from({ length: 20 }, (_, i) => `purchase:caller-${i}`);
    const first = await Promise.all(keys.map((key) => client.reserve(2, { idempotencyKey: key })));
    const again = await Promise.all(keys.map((key) => client.reserve(2, { idempotencyKey: key })));
    expect(again).toEqual(first.map((outcome) => ({ ...outcome, replayed: true })));
    expect(actor.snapshot()).toEqual({ remaining: 60, sold: 40 });
  });

  it('shares availability reads among concurrent callers, never answering a level older than the read', async () => {
    const { app } = await vacancy({ INITIAL_STOCK: '100' });
    const { client, calls } = clientOf(app, 50);
    const levels = await Promise.all(Array.from({ length: 40 }, () => client.available()));
    expect(levels).toEqual(levels.map(() => 100));
    const reads = calls.filter((call) => call.path === '/api/v1/available').length;
    expect(reads).toBeGreaterThanOrEqual(1);
    expect(reads).toBeLessThan(40);
    // A read asked after a reserve was answered sees it, even while an older read is still under way.
    const older = client.available();
    await client.reserve(7);
    expect(await client.available()).toBe(93);
    expect([100, 93]).toContain(await older);
  });

  it('splits a batch vacancy refuses as larger than its BODY_LIMIT, and sells each reserve once', async () => {
    const { app, actor } = await vacancy({ INITIAL_STOCK: '100', BODY_LIMIT: '400' });
    const { client, calls } = clientOf(app, 50);
    const outcomes = await Promise.all(Array.from({ length: 24 }, () => client.reserve(1)));
    expect(outcomes.every((outcome) => outcome.success)).toBe(true);
    expect(new Set(outcomes.map((outcome) => outcome.tickets!.first)).size).toBe(24);
    expect(actor.snapshot()).toEqual({ remaining: 76, sold: 24 });
    expect(calls[0]).toEqual({ path: '/api/v1/reserve/batch', items: 24 });
    expect(calls.some((call) => call.path === '/api/v1/reserve/batch' && call.items < 24)).toBe(true);
  });

  it('sends every reserve alone with VACANCY_BATCH_MAX=1', async () => {
    const { app } = await vacancy({ INITIAL_STOCK: '100' });
    const { client, calls } = clientOf(app, 1);
    await Promise.all(Array.from({ length: 10 }, () => client.reserve(1)));
    await Promise.all(Array.from({ length: 5 }, () => client.available()));
    expect(calls).toEqual([
      ...Array.from({ length: 10 }, () => ({ path: '/api/v1/reserve', items: 1 })),
      ...Array.from({ length: 5 }, () => ({ path: '/api/v1/available', items: 1 })),
    ]);
  });

  it('sends batched reserves answered 409 (key still in flight) again under the same keys, and sells each once', async () => {
    const { app, actor } = await vacancy({ INITIAL_STOCK: '100' });
    const sent: string[][] = [];
    // The first batch is made by vacancy, but its answer says every key is still in flight,
    // as when a retried batch meets its first attempt still being decided.
    const viaApp: typeof fetch = async (input, init) => {
      const request = new Request(input, init);
      const body = (await request.clone().json()) as { reserves?: Array<{ key: string }> };
      const response = await app.fetch(request);
      if (!body.reserves) return response;
      sent.push(body.reserves.map((item) => item.key));
      if (sent.length > 1) return response;
      const inFlight = {
        status: 409,
        type: problemTypes.idempotencyKeyInFlight.type,
        title: 'In flight',
        detail: 'in flight',
      };
      return Response.json({ results: body.reserves.map(() => inFlight) });
    };
    const client = new RemoteVacancyClient({
      baseUrl: 'http://vacancy',
      timeoutMs: 5_000,
      batchMax: 50,
      fetch: viaApp,
    });
    const first = client.reserve(1);
    const rest = Array.from({ length: 9 }, () => client.reserve(1));
    const outcomes = await Promise.all([first, ...rest]);
    expect(outcomes.every((outcome) => outcome.success)).toBe(true);
    expect(new Set(outcomes.map((outcome) => outcome.tickets!.first)).size).toBe(10);
    expect(actor.snapshot()).toEqual({ remaining: 90, sold: 10 });
    const batches = sent.filter((keys) => keys.length > 1);
    expect(batches.length).toBeGreaterThanOrEqual(2);
    expect(batches[1]).toEqual(batches[0]);
  });

  it('gives up on a batched reserve still answered 409 once the retries are spent', async () => {
    const { app, actor } = await vacancy({ INITIAL_STOCK: '100' });
    const inFlight = {
      status: 409,
      type: problemTypes.idempotencyKeyInFlight.type,
      title: 'In flight',
      detail: 'in flight',
    };
    const alwaysInFlight: typeof fetch = async (input, init) => {
      const request = new Request(input, init);
      const body = (await request.clone().json()) as { reserves?: unknown[] };
      if (!body.reserves) return app.fetch(request);
      return Response.json({ results: body.reserves.map(() => inFlight) });
    };
    const client = new RemoteVacancyClient({
      baseUrl: 'http://vacancy',
      timeoutMs: 5_000,
      retries: 1,
      batchMax: 50,
      fetch: alwaysInFlight,
    });
    const outcomes = await Promise.allSettled(Array.from({ length: 6 }, () => client.reserve(1)));
    const refused = outcomes.filter((outcome) => outcome.status === 'rejected');
    expect(refused.length).toBeGreaterThan(0);
    for (const outcome of refused)
      expect(String((outcome as PromiseRejectedResult).reason)).toMatch(/still being processed/);
    expect(actor.snapshot()).toEqual({ remaining: 100, sold: 0 });
  });

  it('fails a batched reserve the store could not make with VacancyUnavailableError, nothing sold', async () => {
    const { app, actor } = await vacancy({}, failingStore());
    const { client } = clientOf(app, 10);
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => client.reserve(1)));
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(VacancyUnavailableError);
    }
    expect(actor.snapshot()).toEqual({ remaining: 10, sold: 0 });
  });
});
