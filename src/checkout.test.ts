/**
 * The checkout flow through app.request(): holds that expire, confirming and
 * releasing them, orders to look up and cancel, and limits per buyer, in the
 * monolith (on a clock the test moves) and in a ticket service in front of
 * an in-process vacancy. Every bad input gets its status and changes nothing.
 */
import { describe, expect, it } from 'vitest';
import { createApp } from './app.ts';
import { parseConfig } from './config.ts';
import { PROBLEM_CONTENT_TYPE, problemTypes } from './lib/problem.ts';
import { defaultEventDefinition } from './stock/model.ts';
import { MemoryStockStore } from './stock/store.ts';
import type { EventView, HoldView, OrderView } from './stock/views.ts';
import { LocalVacancyClient } from './vacancy/local-vacancy-client.ts';
import { StockActor } from './vacancy/stock-actor.ts';

const ADMIN_TOKEN = 'an-admin-token-of-some-length';
const ADMIN = { Authorization: `Bearer ${ADMIN_TOKEN}` };
type App = ReturnType<typeof createApp>;

const GALA = {
  name: 'Gala',
  capacity: 20,
  ticketTypes: [
    { id: 'general', name: 'General', capacity: 15, maxPerOrder: 6 },
    { id: 'vip', name: 'VIP', capacity: 5, maxPerOrder: 4 },
  ],
};

/** A monolith whose clock the test moves (`clock.now`), with the gala event put. */
async function monolith(env: Record<string, string> = {}, event: unknown = GALA) {
  const clock = { now: Date.parse('2026-12-01T20:00:00Z') };
  const actor = await StockActor.start(
    new MemoryStockStore(),
    [{ eventId: 'default', definition: defaultEventDefinition(10) }],
    {
      now: () => clock.now,
      sweepEveryMs: 60_000,
    },
  );
  const config = parseConfig({ MODE: 'monolith', STOCK_STORE: 'memory', ADMIN_TOKEN, ...env });
  const app = createApp({ config, actor, vacancyClient: new LocalVacancyClient(actor) });
  const put = await app.request('/api/v1/events/gala', {
    method: 'PUT',
    headers: { 'Content-Type': 'application/json', ...ADMIN },
    body: JSON.stringify(event),
  });
  expect(put.status).toBe(201);
  return { app, actor, clock };
}

function post(app: App, path: string, body?: unknown, headers: Record<string, string> = {}) {
  return app.request(path, {
    method: 'POST',
    headers: { ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
}

const hold = (app: App, body: unknown, headers: Record<string, string> = {}) =>
  post(app, '/api/v1/events/gala/holds', body, headers);

async function json<T>(res: Response, status: number): Promise<T> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  return JSON.parse(text) as T;
}

async function expectProblem(res: Response, status: number, type?: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toBe(PROBLEM_CONTENT_TYPE);
  const problem = (await res.json()) as Record<string, unknown>;
  expect(problem).toMatchObject({ status, title: expect.any(String), detail: expect.any(String) });
  if (type !== undefined) expect(problem.type).toBe(type);
  return problem;
}

async function gala(app: App): Promise<EventView> {
  return json<EventView>(await app.request('/api/v1/events/gala'), 200);
}

describe('holds', () => {
  it('take the stock out of sale; confirming sells it (201), and again answers the same order (200)', async () => {
    const { app } = await monolith();
    const held = await json<HoldView>(
      await hold(app, { items: [{ ticketType: 'vip', qty: 2 }], buyer: 'ann', ttlSeconds: 300 }),
      201,
    );
    expect(held).toEqual({
      holdId: expect.stringMatching(/^hld_[A-Za-z0-9_-]{30}gala$/),
      eventId: 'gala',
      items: [{ ticketType: 'vip', qty: 2 }],
      buyer: 'ann',
      status: 'held',
      expiresAt: '2026-12-01T20:05:00.000Z',
    });
    expect(await gala(app)).toMatchObject({
      sold: 0,
      held: 2,
      available: 18,
      ticketTypes: [{}, { held: 2, available: 3 }],
    });
    expect(await json<HoldView>(await app.request(`/api/v1/holds/${held.holdId}`), 200)).toEqual(held);

    const order = await json<OrderView>(await post(app, `/api/v1/holds/${held.holdId}/confirm`), 201);
    expect(order).toMatchObject({
      orderId: expect.stringMatching(/^ord_[A-Za-z0-9_-]{30}gala$/),
      items: [{ ticketType: 'vip', qty: 2, tickets: { first: 1, last: 2 } }],
      buyer: 'ann',
      status: 'confirmed',
      holdId: held.holdId,
    });
    expect(await json<OrderView>(await post(app, `/api/v1/holds/${held.holdId}/confirm`), 200)).toEqual(order);
    expect(await json<HoldView>(await app.request(`/api/v1/holds/${held.holdId}`), 200)).toMatchObject({
      status: 'confirmed',
      orderId: order.orderId,
    });
    expect(await json<OrderView>(await app.request(`/api/v1/orders/${order.orderId}`), 200)).toEqual(order);
    expect(await gala(app)).toMatchObject({ sold: 2, held: 0, available: 18 });
    await expectProblem(
      await app.request(`/api/v1/holds/${held.holdId}`, { method: 'DELETE' }),
      409,
      problemTypes.holdConfirmed.type,
    );
  });

  it('last HOLD_TTL unless asked, never past HOLD_TTL_MAX', async () => {
    const { app } = await monolith({ HOLD_TTL: '120', HOLD_TTL_MAX: '900' });
    const held = await json<HoldView>(await hold(app, { items: [{ ticketType: 'general', qty: 1 }] }), 201);
    expect(held.expiresAt).toBe('2026-12-01T20:02:00.000Z');
    for (const ttlSeconds of [9, 901, 10.5, '60']) {
      const problem = await expectProblem(
        await hold(app, { items: [{ ticketType: 'general', qty: 1 }], ttlSeconds }),
        422,
      );
      expect((problem.errors as Array<{ name: string }>).map((e) => e.name)).toEqual(['ttlSeconds']);
    }
    expect(await gala(app)).toMatchObject({ held: 1 });
  });

  it('released, give their stock back at once; released again, the same; never confirmable after (410)', async () => {
    const { app } = await monolith();
    const held = await json<HoldView>(await hold(app, { items: [{ ticketType: 'vip', qty: 4 }] }), 201);
    await expectProblem(
      await hold(app, { items: [{ ticketType: 'vip', qty: 2 }] }),
      409,
      problemTypes.insufficientInventory.type,
    );
    const release = () => app.request(`/api/v1/holds/${held.holdId}`, { method: 'DELETE' });
    expect(await json(await release(), 200)).toEqual({ holdId: held.holdId, status: 'released' });
    expect(await json(await release(), 200)).toEqual({ holdId: held.holdId, status: 'released' });
    await expectProblem(await post(app, `/api/v1/holds/${held.holdId}/confirm`), 410, problemTypes.holdReleased.type);
    expect(await gala(app)).toMatchObject({ sold: 0, held: 0, available: 20 });
    expect((await hold(app, { items: [{ ticketType: 'vip', qty: 4 }] })).status).toBe(201);
  });

  it('expire at expiresAt: never confirmed after it, stock back on sale, the buyer’s count down', async () => {
    const { app, clock } = await monolith({}, { ...GALA, maxPerBuyer: 2 });
    const held = await json<HoldView>(
      await hold(app, { items: [{ ticketType: 'vip', qty: 2 }], buyer: 'ann', ttlSeconds: 60 }),
      201,
    );
    clock.now += 59_999;
    expect(await json<HoldView>(await app.request(`/api/v1/holds/${held.holdId}`), 200)).toMatchObject({
      status: 'held',
    });
    clock.now += 1;
    await expectProblem(await post(app, `/api/v1/holds/${held.holdId}/confirm`), 410, problemTypes.holdExpired.type);
    expect(await json<HoldView>(await app.request(`/api/v1/holds/${held.holdId}`), 200)).toMatchObject({
      status: 'expired',
    });
    expect(await json(await app.request(`/api/v1/holds/${held.holdId}`, { method: 'DELETE' }), 200)).toEqual({
      holdId: held.holdId,
      status: 'expired',
    });
    expect(await gala(app)).toMatchObject({ sold: 0, held: 0, available: 20 });
    // Ann's expired hold no longer counts against her limit of 2.
    expect(
      (await post(app, '/api/v1/events/gala/purchase', { items: [{ ticketType: 'vip', qty: 2 }], buyer: 'ann' }))
        .status,
    ).toBe(201);
  });

  it('a keyed hold is replayed (Idempotent-Replayed); the key with another body is refused', async () => {
    const { app } = await monolith();
    const body = { items: [{ ticketType: 'vip', qty: 1 }] };
    const first = await hold(app, body, { 'Idempotency-Key': 'h-1' });
    const again = await hold(app, body, { 'Idempotency-Key': 'h-1' });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.text()).toBe(await first.text());
    await expectProblem(
      await hold(app, { ...body, ttlSeconds: 30 }, { 'Idempotency-Key': 'h-1' }),
      422,
      problemTypes.idempotencyKeyReused.type,
    );
    expect(await gala(app)).toMatchObject({ held: 1 });
  });

  it.each<[string, string, unknown, Record<string, string>, number, string | undefined]>([
    ['an unknown event', '/api/v1/events/nope/holds', { items: [{ ticketType: 'vip', qty: 1 }] }, {}, 404, undefined],
    [
      'an unknown ticket type',
      '/api/v1/events/gala/holds',
      { items: [{ ticketType: 'box', qty: 1 }] },
      {},
      422,
      'items.0.ticketType',
    ],
    [
      'more than maxPerOrder',
      '/api/v1/events/gala/holds',
      { items: [{ ticketType: 'vip', qty: 5 }] },
      {},
      422,
      'items.0.qty',
    ],
    ['no items', '/api/v1/events/gala/holds', { items: [] }, {}, 422, 'items'],
    ['malformed JSON', '/api/v1/events/gala/holds', '{"items":', {}, 400, undefined],
    ['text/plain', '/api/v1/events/gala/holds', 'x', { 'Content-Type': 'text/plain' }, 415, undefined],
  ])('refuse %s with %i, naming the field, and hold nothing', async (_what, path, body, headers, status, field) => {
    const { app } = await monolith();
    const problem = await expectProblem(await post(app, path, body, headers), status);
    if (field !== undefined) expect((problem.errors as Array<{ name: string }>).map((e) => e.name)).toContain(field);
    expect(await gala(app)).toMatchObject({ held: 0, sold: 0 });
  });

  it.each(['hld_notarealholdatallxyzgala', 'no-such-thing', 'hld_'])(
    'answer 404 for a hold %s that is not there, everywhere',
    async (holdId) => {
      const { app } = await monolith();
      await expectProblem(await app.request(`/api/v1/holds/${holdId}`), 404, problemTypes.notFound.type);
      await expectProblem(await post(app, `/api/v1/holds/${holdId}/confirm`), 404, problemTypes.notFound.type);
      await expectProblem(
        await app.request(`/api/v1/holds/${holdId}`, { method: 'DELETE' }),
        404,
        problemTypes.notFound.type,
      );
      expect(await gala(app)).toMatchObject({ held: 0, sold: 0 });
    },
  );
});

describe('orders', () => {
  it('a 1.0.0 purchase is an order too: its purchaseId finds it', async () => {
    const { app } = await monolith();
    const bought = await json<{ purchaseId: string }>(await post(app, '/api/v1/purchase', { qty: 2 }), 200);
    expect(await json<OrderView>(await app.request(`/api/v1/orders/${bought.purchaseId}`), 200)).toMatchObject({
      orderId: bought.purchaseId,
      eventId: 'default',
      items: [{ ticketType: 'default', qty: 2, tickets: { first: 1, last: 2 } }],
      status: 'confirmed',
    });
  });

  it('cancelled by an operator: tickets back on sale, numbers never handed out again; again, the same 200', async () => {
    const { app } = await monolith();
    const order = await json<OrderView>(
      await post(app, '/api/v1/events/gala/purchase', { items: [{ ticketType: 'vip', qty: 3 }] }),
      201,
    );
    await expectProblem(await post(app, `/api/v1/orders/${order.orderId}/cancel`), 401);
    const cancel = () => post(app, `/api/v1/orders/${order.orderId}/cancel`, undefined, ADMIN);
    const cancelled = await json<OrderView>(await cancel(), 200);
    expect(cancelled).toEqual({ ...order, status: 'cancelled' });
    expect(await json<OrderView>(await cancel(), 200)).toEqual(cancelled);
    expect(await json<OrderView>(await app.request(`/api/v1/orders/${order.orderId}`), 200)).toEqual(cancelled);
    expect(await gala(app)).toMatchObject({ sold: 0, available: 20 });
    const next = await json<OrderView>(
      await post(app, '/api/v1/events/gala/purchase', { items: [{ ticketType: 'vip', qty: 1 }] }),
      201,
    );
    expect(next.items[0]!.tickets).toEqual({ first: 4, last: 4 });
  });

  it('unknown orders are 404 to read and to cancel', async () => {
    const { app } = await monolith();
    await expectProblem(
      await app.request('/api/v1/orders/ord_nothingherexxxxxxxxxxgala'),
      404,
      problemTypes.notFound.type,
    );
    await expectProblem(await post(app, '/api/v1/orders/ord_nothingherexxxxxxxxxxgala/cancel', undefined, ADMIN), 404);
  });
});

describe('limits per buyer', () => {
  const LIMITED = {
    ...GALA,
    maxPerBuyer: 6,
    ticketTypes: [GALA.ticketTypes[0], { ...GALA.ticketTypes[1], maxPerBuyer: 4 }],
  };

  it('need a buyer (422), count holds and purchases alike, and answer 409 buyer-limit-reached past them', async () => {
    const { app } = await monolith({}, LIMITED);
    const noBuyer = await expectProblem(await hold(app, { items: [{ ticketType: 'general', qty: 1 }] }), 422);
    expect((noBuyer.errors as Array<{ name: string }>).map((e) => e.name)).toEqual(['buyer']);
    expect((await hold(app, { items: [{ ticketType: 'vip', qty: 3 }], buyer: 'ann' })).status).toBe(201);
    const overType = await expectProblem(
      await post(app, '/api/v1/events/gala/purchase', { items: [{ ticketType: 'vip', qty: 2 }], buyer: 'ann' }),
      409,
      problemTypes.buyerLimitReached.type,
    );
    expect(overType.errors).toEqual([
      { name: 'items.0.qty', reason: expect.stringContaining('at most 4 tickets of type vip') },
    ]);
    expect(
      (await post(app, '/api/v1/events/gala/purchase', { items: [{ ticketType: 'general', qty: 3 }], buyer: 'ann' }))
        .status,
    ).toBe(201);
    await expectProblem(
      await hold(app, { items: [{ ticketType: 'general', qty: 1 }], buyer: 'ann' }),
      409,
      problemTypes.buyerLimitReached.type,
    );
    expect((await hold(app, { items: [{ ticketType: 'general', qty: 1 }], buyer: 'bob' })).status).toBe(201);
    expect(await gala(app)).toMatchObject({ sold: 3, held: 4 });
  });

  it("one buyer's 50 concurrent holds against maxPerBuyer 4: at most 4 tickets held", async () => {
    const { app } = await monolith({}, LIMITED);
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => hold(app, { items: [{ ticketType: 'vip', qty: 1 }], buyer: 'eve' })),
    );
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 201)).toHaveLength(4);
    expect(statuses.filter((status) => status === 409)).toHaveLength(46);
    expect(await gala(app)).toMatchObject({ held: 4, ticketTypes: [{}, { held: 4 }] });
  });
});

describe('the checkout in a ticket service', () => {
  it('holds, confirms, releases and reads orders through vacancy; cancelling stays with vacancy', async () => {
    const actor = await StockActor.start(new MemoryStockStore(), [
      { eventId: 'default', definition: defaultEventDefinition(10) },
    ]);
    const ticket = createApp({ config: parseConfig({ MODE: 'ticket' }), vacancyClient: new LocalVacancyClient(actor) });
    const vacancy = createApp({ config: parseConfig({ MODE: 'vacancy', STOCK_STORE: 'memory', ADMIN_TOKEN }), actor });
    expect(
      (
        await vacancy.request('/api/v1/events/gala', {
          method: 'PUT',
          headers: { 'Content-Type': 'application/json', ...ADMIN },
          body: JSON.stringify(GALA),
        })
      ).status,
    ).toBe(201);
    const held = await json<HoldView>(await hold(ticket, { items: [{ ticketType: 'vip', qty: 1 }] }), 201);
    const order = await json<OrderView>(await post(ticket, `/api/v1/holds/${held.holdId}/confirm`), 201);
    expect(await json<OrderView>(await ticket.request(`/api/v1/orders/${order.orderId}`), 200)).toEqual(order);
    const other = await json<HoldView>(await hold(ticket, { items: [{ ticketType: 'vip', qty: 1 }] }), 201);
    expect(await json(await ticket.request(`/api/v1/holds/${other.holdId}`, { method: 'DELETE' }), 200)).toEqual({
      holdId: other.holdId,
      status: 'released',
    });
    expect((await post(ticket, `/api/v1/orders/${order.orderId}/cancel`, undefined, ADMIN)).status).toBe(404);
    expect((await post(vacancy, `/api/v1/orders/${order.orderId}/cancel`, undefined, ADMIN)).status).toBe(200);
    expect(await gala(ticket)).toMatchObject({ sold: 0, held: 0 });
  });
});
