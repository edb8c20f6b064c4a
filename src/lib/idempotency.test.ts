import { describe, expect, it } from 'vitest';
import { createApp } from '../app.ts';
import { parseConfig } from '../config.ts';
import { buildDependencies } from '../dependencies.ts';
import { PROBLEM_CONTENT_TYPE, problemTypes } from './problem.ts';
import type { StockStore } from '../stock/store.ts';
import { ControlledStore } from '../../test/support/controlled-store.ts';

async function monolith(store?: StockStore) {
  const config = parseConfig({ MODE: 'monolith', STOCK_STORE: 'memory', INITIAL_STOCK: '10' });
  const deps = await buildDependencies(config, store ? { store } : {});
  return { app: createApp(deps), actor: deps.actor! };
}

function post(app: Awaited<ReturnType<typeof monolith>>['app'], path: string, qty: unknown, key?: string) {
  return app.request(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(key === undefined ? {} : { 'Idempotency-Key': key }) },
    body: JSON.stringify({ qty }),
  });
}

describe.each(['/api/v1/purchase', '/api/v1/reserve'])('Idempotency-Key on POST %s', (path) => {
  it('replays the first answer exactly, with Idempotent-Replayed: true, and sells nothing more', async () => {
    const { app, actor } = await monolith();
    const first = await post(app, path, 3, 'order-1');
    const firstBody = await first.text();
    expect(first.status).toBe(200);
    expect(first.headers.get('Idempotent-Replayed')).toBeNull();

    const again = await post(app, path, 3, 'order-1');
    expect(again.status).toBe(200);
    expect(await again.text()).toBe(firstBody);
    expect(again.headers.get('Idempotent-Replayed')).toBe('true');
    expect(actor.snapshot()).toEqual({ remaining: 7, sold: 3 });

    // Without a key, the same body is a new sale.
    const unkeyed = await post(app, path, 3);
    expect(await unkeyed.json()).toMatchObject({ success: true, remaining: 4 });
  });

  it('replays an insufficient answer as it was', async () => {
    const { app, actor } = await monolith();
    const first = await post(app, path, 50, 'too-many');
    const again = await post(app, path, 50, 'too-many');
    expect(await again.text()).toBe(await first.text());
    expect(again.headers.get('Idempotent-Replayed')).toBe('true');
    expect(actor.snapshot()).toEqual({ remaining: 10, sold: 0 });
  });

  it('refuses the same key with a different body: 422 problem, stock untouched', async () => {
    const { app, actor } = await monolith();
    await post(app, path, 1, 'k');
    const res = await post(app, path, 2, 'k');
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toBe(PROBLEM_CONTENT_TYPE);
    expect(await res.json()).toMatchObject({ type: problemTypes.idempotencyKeyReused.type, status: 422 });
    expect(actor.snapshot()).toEqual({ remaining: 9, sold: 1 });
  });

  it('answers 409 while the first request with the key is still being decided', async () => {
    const store = new ControlledStore();
    const { app, actor } = await monolith(store);
    store.hold();
    const first = post(app, path, 2, 'slow');
    await new Promise((resolve) => setTimeout(resolve, 10));

    const second = await post(app, path, 2, 'slow');
    expect(second.status).toBe(409);
    expect(second.headers.get('content-type')).toBe(PROBLEM_CONTENT_TYPE);
    expect(second.headers.get('Retry-After')).toBe('1');
    expect(await second.json()).toMatchObject({ type: problemTypes.idempotencyKeyInFlight.type, status: 409 });

    store.release();
    expect((await first).status).toBe(200);
    const third = await post(app, path, 2, 'slow');
    expect(third.headers.get('Idempotent-Replayed')).toBe('true');
    expect(actor.snapshot()).toEqual({ remaining: 8, sold: 2 });
  });

  it.each([
    ['longer than 255 characters', 'k'.repeat(256)],
    ['empty', ''],
    ['holding a control character', 'abc\u0001def'],
    ['holding DEL', 'abc\u007f'],
  ])('answers 400 for a key %s and changes nothing', async (_what, key) => {
    const { app, actor } = await monolith();
    const res = await post(app, path, 1, key);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe(PROBLEM_CONTENT_TYPE);
    expect(await res.json()).toMatchObject({ type: problemTypes.invalidIdempotencyKey.type, status: 400 });
    expect(actor.snapshot()).toEqual({ remaining: 10, sold: 0 });
  });

  it('accepts a key of exactly 255 characters', async () => {
    const { app } = await monolith();
    expect((await post(app, path, 1, 'k'.repeat(255))).status).toBe(200);
  });
});

describe('purchase records', () => {
  it('gives each successful purchase an id and the ticket numbers it bought', async () => {
    const { app } = await monolith();
    const bodies = await Promise.all([1, 2, 3].map(async (qty) => (await post(app, '/api/v1/purchase', qty)).json()));
    expect(bodies.map((b) => b.tickets)).toEqual([
      { first: 1, last: 1 },
      { first: 2, last: 3 },
      { first: 4, last: 6 },
    ]);
    expect(new Set(bodies.map((b) => b.purchaseId)).size).toBe(3);
    const none = await (await post(app, '/api/v1/purchase', 5)).json();
    expect(none).toEqual({ success: false, remaining: 4, message: 'Insufficient inventory' });
  });

  it('keeps purchase keys and reserve keys apart', async () => {
    const { app, actor } = await monolith();
    await post(app, '/api/v1/purchase', 1, 'same');
    const reserve = await post(app, '/api/v1/reserve', 1, 'same');
    expect(reserve.headers.get('Idempotent-Replayed')).toBeNull();
    expect(actor.snapshot()).toEqual({ remaining: 8, sold: 2 });
  });
});
