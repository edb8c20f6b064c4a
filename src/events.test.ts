/**
 * The events API through app.request(): creating and updating events (admin),
 * reading and listing them, and buying several ticket types at once, in the
 * monolith and in a ticket service (whose vacancy client is an in-process
 * actor here; test/events-concurrency.test.ts runs the real sockets). Every
 * bad input gets its status and changes nothing.
 */
import { describe, expect, it } from 'vitest';
import { createApp } from './app.ts';
import { parseConfig } from './config.ts';
import { buildDependencies } from './dependencies.ts';
import { PROBLEM_CONTENT_TYPE, problemTypes } from './lib/problem.ts';
import { defaultEventDefinition } from './stock/model.ts';
import { MemoryStockStore } from './stock/store.ts';
import type { EventView, OrderView } from './stock/views.ts';
import { LocalVacancyClient } from './vacancy/local-vacancy-client.ts';
import { StockActor } from './vacancy/stock-actor.ts';

const ADMIN_TOKEN = 'an-admin-token-of-some-length';
type App = ReturnType<typeof createApp>;

async function monolith(env: Record<string, string> = {}) {
  const deps = await buildDependencies(
    parseConfig({ MODE: 'monolith', STOCK_STORE: 'memory', INITIAL_STOCK: '10', ADMIN_TOKEN, ...env }),
  );
  return { app: createApp(deps), actor: deps.actor! };
}

/** A ticket service whose vacancy is an actor in this process, and the admin API of that actor. */
async function ticketWithVacancy() {
  const actor = await StockActor.start(new MemoryStockStore(), [
    { eventId: 'default', definition: defaultEventDefinition(10) },
  ]);
  const ticket = createApp({
    config: parseConfig({ MODE: 'ticket' }),
    vacancyClient: new LocalVacancyClient(actor),
  });
  const vacancy = createApp({ config: parseConfig({ MODE: 'vacancy', STOCK_STORE: 'memory', ADMIN_TOKEN }), actor });
  return { ticket, vacancy, actor };
}

const SPRING = {
  name: 'Spring Concert',
  capacity: 10,
  ticketTypes: [
    { id: 'general', name: 'General admission', capacity: 9, maxPerOrder: 4 },
    { id: 'vip', name: 'VIP', capacity: 3, maxPerOrder: 2 },
  ],
};

function putEvent(app: App, eventId: string, body: unknown, token: string | null = ADMIN_TOKEN) {
  return app.request(`/api/v1/events/${eventId}`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/json', ...(token === null ? {} : { Authorization: `Bearer ${token}` }) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

function buy(app: App, eventId: string, body: unknown, headers: Record<string, string> = {}) {
  return app.request(`/api/v1/events/${eventId}/purchase`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function getEvent(app: App, eventId: string): Promise<EventView> {
  const res = await app.request(`/api/v1/events/${eventId}`);
  expect(res.status).toBe(200);
  return (await res.json()) as EventView;
}

async function expectProblem(res: Response, status: number, type?: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toBe(PROBLEM_CONTENT_TYPE);
  const problem = (await res.json()) as Record<string, unknown>;
  expect(problem).toMatchObject({ status, title: expect.any(String), detail: expect.any(String) });
  expect(String(problem.detail)).not.toMatch(/\n\s+at /);
  if (type !== undefined) expect(problem.type).toBe(type);
  return problem;
}

describe('PUT /api/v1/events/{eventId}', () => {
  it('creates (201) and updates (200) an event, answering the event view', async () => {
    const { app } = await monolith();
    const created = await putEvent(app, 'spring', SPRING);
    expect(created.status).toBe(201);
    expect(await created.json()).toEqual({
      id: 'spring',
      name: 'Spring Concert',
      capacity: 10,
      maxPerBuyer: null,
      sold: 0,
      held: 0,
      available: 10,
      ticketTypes: [
        {
          id: 'general',
          name: 'General admission',
          capacity: 9,
          maxPerOrder: 4,
          maxPerBuyer: null,
          sold: 0,
          held: 0,
          available: 9,
        },
        { id: 'vip', name: 'VIP', capacity: 3, maxPerOrder: 2, maxPerBuyer: null, sold: 0, held: 0, available: 3 },
      ],
    });
    const updated = await putEvent(app, 'spring', {
      name: 'Spring Concert (moved)',
      ticketTypes: [...SPRING.ticketTypes, { id: 'student', name: 'Student', capacity: 5 }],
    });
    expect(updated.status).toBe(200);
    expect(await updated.json()).toMatchObject({
      name: 'Spring Concert (moved)',
      capacity: null,
      available: 17,
      ticketTypes: [{ id: 'general' }, { id: 'vip' }, { id: 'student', maxPerOrder: null, available: 5 }],
    });
  });

  it('refuses a capacity below what is sold, and removing a type that sold, with 409; nothing changes', async () => {
    const { app } = await monolith();
    await putEvent(app, 'spring', SPRING);
    expect(
      (
        await buy(app, 'spring', {
          items: [
            { ticketType: 'general', qty: 4 },
            { ticketType: 'vip', qty: 2 },
          ],
        })
      ).status,
    ).toBe(201);
    const before = await getEvent(app, 'spring');
    const below = await putEvent(app, 'spring', { ...SPRING, capacity: 5 });
    expect((await expectProblem(below, 409, problemTypes.stockConflict.type)).errors).toEqual([
      { name: 'capacity', reason: expect.stringContaining('6 tickets sold or held') },
    ]);
    const typeBelow = await putEvent(app, 'spring', {
      ...SPRING,
      ticketTypes: [{ ...SPRING.ticketTypes[0], capacity: 3 }, SPRING.ticketTypes[1]],
    });
    expect((await expectProblem(typeBelow, 409)).errors).toEqual([
      { name: 'ticketTypes.0.capacity', reason: expect.stringContaining('4 tickets sold') },
    ]);
    const removed = await putEvent(app, 'spring', { ...SPRING, ticketTypes: [SPRING.ticketTypes[0]] });
    await expectProblem(removed, 409, problemTypes.stockConflict.type);
    expect(await getEvent(app, 'spring')).toEqual(before);
  });

  it.each([
    ['no token', null, 401],
    ['a wrong token', 'not-the-admin-token-at-all', 401],
  ])('needs the admin token: %s is %i and creates nothing', async (_what, token, status) => {
    const { app } = await monolith();
    await expectProblem(await putEvent(app, 'spring', SPRING, token), status);
    expect((await app.request('/api/v1/events/spring')).status).toBe(404);
  });

  it('is absent (404) without ADMIN_TOKEN', async () => {
    const deps = await buildDependencies(parseConfig({ MODE: 'monolith', STOCK_STORE: 'memory' }));
    const app = createApp(deps);
    expect((await putEvent(app, 'spring', SPRING)).status).toBe(404);
  });

  it.each<[string, string, unknown, number, string[]]>([
    ['malformed JSON', 'spring', '{"name":', 400, []],
    ['no name', 'spring', { ticketTypes: SPRING.ticketTypes }, 422, ['name']],
    ['a name of 201 characters', 'spring', { ...SPRING, name: 'x'.repeat(201) }, 422, ['name']],
    ['a negative capacity', 'spring', { ...SPRING, capacity: -1 }, 422, ['capacity']],
    ['a capacity over 1,000,000,000', 'spring', { ...SPRING, capacity: 1_000_000_001 }, 422, ['capacity']],
    ['a fractional capacity', 'spring', { ...SPRING, capacity: 2.5 }, 422, ['capacity']],
    ['no ticket types', 'spring', { ...SPRING, ticketTypes: [] }, 422, ['ticketTypes']],
    [
      'a ticket type id with capitals',
      'spring',
      { ...SPRING, ticketTypes: [{ id: 'VIP', name: 'VIP', capacity: 1 }] },
      422,
      ['ticketTypes.0.id'],
    ],
    [
      'a ticket type listed twice',
      'spring',
      { ...SPRING, ticketTypes: [SPRING.ticketTypes[0], SPRING.ticketTypes[0]] },
      422,
      ['ticketTypes.1.id'],
    ],
    [
      'maxPerOrder 0',
      'spring',
      { ...SPRING, ticketTypes: [{ ...SPRING.ticketTypes[0], maxPerOrder: 0 }] },
      422,
      ['ticketTypes.0.maxPerOrder'],
    ],
    ['an event id that can never be', 'Spring_Gala', SPRING, 422, ['eventId']],
    ['an event id of 65 characters', 'e'.repeat(65), SPRING, 422, ['eventId']],
  ])('%s: %i, naming the field, and creates nothing', async (_what, eventId, body, status, fields) => {
    const { app } = await monolith();
    const problem = await expectProblem(await putEvent(app, eventId, body), status);
    if (fields.length > 0) {
      expect((problem.errors as Array<{ name: string }>).map((error) => error.name)).toEqual(fields);
    }
    const list = (await (await app.request('/api/v1/events')).json()) as { events: EventView[] };
    expect(list.events.map((event) => event.id)).toEqual(['default']);
  });

  it('refuses a body that is not JSON (415) or too large (413)', async () => {
    const { app } = await monolith({ BODY_LIMIT: '300' });
    const text = await app.request('/api/v1/events/spring', {
      method: 'PUT',
      headers: { 'Content-Type': 'text/plain', Authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify(SPRING),
    });
    await expectProblem(text, 415);
    await expectProblem(await putEvent(app, 'spring', { ...SPRING, name: 'x'.repeat(200), pad: 'y'.repeat(300) }), 413);
    expect((await app.request('/api/v1/events/spring')).status).toBe(404);
  });
});

describe('GET /api/v1/events and /api/v1/events/{eventId}', () => {
  it('lists events in id order, a page at a time', async () => {
    const { app } = await monolith();
    for (const id of ['c-gala', 'a-opera', 'b-jazz']) expect((await putEvent(app, id, SPRING)).status).toBe(201);
    const first = (await (await app.request('/api/v1/events?limit=2')).json()) as { events: EventView[]; next: string };
    expect(first.events.map((event) => event.id)).toEqual(['a-opera', 'b-jazz']);
    expect(first.next).toBe('b-jazz');
    const second = (await (await app.request(`/api/v1/events?limit=2&after=${first.next}`)).json()) as {
      events: EventView[];
      next?: string;
    };
    expect(second.events.map((event) => event.id)).toEqual(['c-gala', 'default']);
    expect(second).not.toHaveProperty('next');
    const all = (await (await app.request('/api/v1/events')).json()) as { events: EventView[] };
    expect(all.events).toHaveLength(4);
  });

  it.each([
    ['limit=0', /limit/],
    ['limit=101', /limit/],
    ['limit=ten', /limit/],
    ['limit=-1', /limit/],
  ])('refuses %s with 422 naming the field', async (query, detail) => {
    const { app } = await monolith();
    const problem = await expectProblem(await app.request(`/api/v1/events?${query}`), 422);
    expect(String(problem.detail)).toMatch(detail);
  });

  it('answers 404 for an event that does not exist, or cannot', async () => {
    const { app } = await monolith();
    await expectProblem(await app.request('/api/v1/events/nope'), 404, problemTypes.notFound.type);
    await expectProblem(await app.request('/api/v1/events/NOT_AN_ID'), 404, problemTypes.notFound.type);
  });

  it('shows the 1.0.0 stock as the event default with one ticket type default', async () => {
    const { app } = await monolith();
    expect(await getEvent(app, 'default')).toEqual({
      id: 'default',
      name: 'Default',
      capacity: null,
      maxPerBuyer: null,
      sold: 0,
      held: 0,
      available: 10,
      ticketTypes: [
        {
          id: 'default',
          name: 'Default',
          capacity: 10,
          maxPerOrder: null,
          maxPerBuyer: null,
          sold: 0,
          held: 0,
          available: 10,
        },
      ],
    });
  });
});

describe('POST /api/v1/events/{eventId}/purchase', () => {
  it('buys every item at once: 201 with the order, tickets numbered per type', async () => {
    const { app } = await monolith();
    await putEvent(app, 'spring', SPRING);
    const res = await buy(app, 'spring', {
      items: [
        { ticketType: 'vip', qty: 2 },
        { ticketType: 'general', qty: 1 },
      ],
      buyer: 'customer-1',
    });
    expect(res.status).toBe(201);
    const order = (await res.json()) as OrderView;
    expect(order).toEqual({
      orderId: expect.stringMatching(/^ord_[A-Za-z0-9_-]{30}spring$/),
      eventId: 'spring',
      items: [
        { ticketType: 'vip', qty: 2, tickets: { first: 1, last: 2 } },
        { ticketType: 'general', qty: 1, tickets: { first: 1, last: 1 } },
      ],
      buyer: 'customer-1',
      status: 'confirmed',
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/),
    });
    expect(await getEvent(app, 'spring')).toMatchObject({ sold: 3, available: 7 });
  });

  it('order ids are unguessable: 1,000 orders, 1,000 different random parts after the time they were made', async () => {
    const { app } = await monolith({ INITIAL_STOCK: '2000' });
    const before = Date.now();
    const tokens = await Promise.all(
      Array.from({ length: 1000 }, async () => {
        const order = (await (
          await buy(app, 'default', { items: [{ ticketType: 'default', qty: 1 }] })
        ).json()) as OrderView;
        return order.orderId.slice(4, 34);
      }),
    );
    const after = Date.now();
    // 30 characters of base64url: 8 of them the time in milliseconds, then 22 with 128 random bits
    // (132 bits of room: the last character carries 2).
    expect(tokens.every((token) => /^[A-Za-z0-9_-]{29}[AQgw]$/.test(token))).toBe(true);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    for (const token of tokens) {
      const madeAt = [...token.slice(0, 8)].reduce((time, char) => time * 64 + alphabet.indexOf(char), 0);
      expect(madeAt).toBeGreaterThanOrEqual(before);
      expect(madeAt).toBeLessThanOrEqual(after);
    }
    const randomParts = tokens.map((token) => token.slice(8, 29));
    expect(new Set(randomParts).size).toBe(1000);
    // Every character of the alphabet turns up about as often as any other (21,000 draws, ~328 each).
    const counts = new Map<string, number>();
    for (const part of randomParts) for (const char of part) counts.set(char, (counts.get(char) ?? 0) + 1);
    expect(counts.size).toBe(64);
    expect(Math.min(...counts.values())).toBeGreaterThan(200);
    expect(Math.max(...counts.values())).toBeLessThan(480);
  });

  it('takes nothing when one item does not fit: 409 insufficient-inventory with each item’s available', async () => {
    const { app } = await monolith();
    await putEvent(app, 'spring', SPRING);
    const res = await buy(app, 'spring', {
      items: [
        { ticketType: 'general', qty: 4 },
        { ticketType: 'vip', qty: 2 },
      ],
    });
    expect(res.status).toBe(201);
    const short = await buy(app, 'spring', {
      items: [
        { ticketType: 'general', qty: 4 },
        { ticketType: 'vip', qty: 2 },
      ],
    });
    const problem = await expectProblem(short, 409, problemTypes.insufficientInventory.type);
    expect(problem.items).toEqual([
      { ticketType: 'general', requested: 4, available: 4 },
      { ticketType: 'vip', requested: 2, available: 1 },
    ]);
    expect(await getEvent(app, 'spring')).toMatchObject({ sold: 6, available: 4 });
  });

  it("holds the event's cap over all types", async () => {
    const { app } = await monolith();
    await putEvent(app, 'spring', { ...SPRING, capacity: 5 });
    expect((await buy(app, 'spring', { items: [{ ticketType: 'general', qty: 4 }] })).status).toBe(201);
    expect(await getEvent(app, 'spring')).toMatchObject({
      available: 1,
      ticketTypes: [{ available: 1 }, { available: 1 }],
    });
    const problem = await expectProblem(
      await buy(app, 'spring', { items: [{ ticketType: 'vip', qty: 2 }] }),
      409,
      problemTypes.insufficientInventory.type,
    );
    expect(problem.items).toEqual([{ ticketType: 'vip', requested: 2, available: 1 }]);
  });

  it('replays a keyed purchase (201, Idempotent-Replayed) and refuses the key with another body (422)', async () => {
    const { app } = await monolith();
    await putEvent(app, 'spring', SPRING);
    const body = { items: [{ ticketType: 'vip', qty: 1 }], buyer: 'ann' };
    const first = await buy(app, 'spring', body, { 'Idempotency-Key': 'order-1' });
    const again = await buy(app, 'spring', body, { 'Idempotency-Key': 'order-1' });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.text()).toBe(await first.text());
    const other = await buy(app, 'spring', { ...body, buyer: 'bob' }, { 'Idempotency-Key': 'order-1' });
    await expectProblem(other, 422, problemTypes.idempotencyKeyReused.type);
    expect(await getEvent(app, 'spring')).toMatchObject({ sold: 1 });
    // A 409 is replayed too: the key's answer does not change once given.
    await buy(app, 'spring', { items: [{ ticketType: 'vip', qty: 2 }] });
    const short = await buy(
      app,
      'spring',
      { items: [{ ticketType: 'vip', qty: 1 }] },
      { 'Idempotency-Key': 'order-2' },
    );
    expect(short.status).toBe(409);
    const shortAgain = await buy(
      app,
      'spring',
      { items: [{ ticketType: 'vip', qty: 1 }] },
      { 'Idempotency-Key': 'order-2' },
    );
    expect(shortAgain.status).toBe(409);
    expect(shortAgain.headers.get('idempotent-replayed')).toBe('true');
  });

  it.each<[string, string, unknown, Record<string, string>, number, string | undefined]>([
    ['an unknown event', 'nope', { items: [{ ticketType: 'vip', qty: 1 }] }, {}, 404, undefined],
    ['an event id that cannot be', 'No_Such', { items: [{ ticketType: 'vip', qty: 1 }] }, {}, 404, undefined],
    ['an unknown ticket type', 'spring', { items: [{ ticketType: 'balcony', qty: 1 }] }, {}, 422, 'items.0.ticketType'],
    [
      'a ticket type listed twice',
      'spring',
      {
        items: [
          { ticketType: 'vip', qty: 1 },
          { ticketType: 'vip', qty: 1 },
        ],
      },
      {},
      422,
      'items.1.ticketType',
    ],
    ['qty 0', 'spring', { items: [{ ticketType: 'vip', qty: 0 }] }, {}, 422, 'items.0.qty'],
    ['qty 1.5', 'spring', { items: [{ ticketType: 'vip', qty: 1.5 }] }, {}, 422, 'items.0.qty'],
    ['qty "2"', 'spring', { items: [{ ticketType: 'vip', qty: '2' }] }, {}, 422, 'items.0.qty'],
    ['more than maxPerOrder', 'spring', { items: [{ ticketType: 'general', qty: 5 }] }, {}, 422, 'items.0.qty'],
    ['no items', 'spring', { items: [] }, {}, 422, 'items'],
    ['no body fields', 'spring', {}, {}, 422, 'items'],
    ['an empty buyer', 'spring', { items: [{ ticketType: 'vip', qty: 1 }], buyer: '' }, {}, 422, 'buyer'],
    ['malformed JSON', 'spring', '{"items":[', {}, 400, undefined],
    ['text/plain', 'spring', 'x', { 'Content-Type': 'text/plain' }, 415, undefined],
    [
      'an empty Idempotency-Key',
      'spring',
      { items: [{ ticketType: 'vip', qty: 1 }] },
      { 'Idempotency-Key': '' },
      400,
      undefined,
    ],
  ])('%s: %i, naming the field, and takes nothing', async (_what, eventId, body, headers, status, field) => {
    const { app } = await monolith();
    await putEvent(app, 'spring', SPRING);
    const problem = await expectProblem(await buy(app, eventId, body, headers), status);
    if (field !== undefined) expect((problem.errors as Array<{ name: string }>).map((e) => e.name)).toContain(field);
    expect(await getEvent(app, 'spring')).toMatchObject({ sold: 0, available: 10 });
  });

  it('refuses a body over BODY_LIMIT with 413 and takes nothing', async () => {
    const { app } = await monolith({ BODY_LIMIT: '200' });
    await putEvent(app, 'spring', SPRING);
    const res = await buy(app, 'spring', { items: [{ ticketType: 'vip', qty: 1 }], buyer: 'b'.repeat(200) });
    await expectProblem(res, 413);
    expect(await getEvent(app, 'spring')).toMatchObject({ sold: 0 });
  });

  it('leaves the 1.0.0 paths unchanged on the default event, sharing its ticket numbers', async () => {
    const { app } = await monolith();
    const legacy = await app.request('/api/v1/purchase', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{"qty":2}',
    });
    expect(await legacy.json()).toMatchObject({ success: true, remaining: 8, tickets: { first: 1, last: 2 } });
    const order = (await (
      await buy(app, 'default', { items: [{ ticketType: 'default', qty: 3 }] })
    ).json()) as OrderView;
    expect(order.items[0]!.tickets).toEqual({ first: 3, last: 5 });
    expect(await (await app.request('/api/v1/available')).json()).toEqual({ qty: 5 });
  });
});

describe('the events API in a ticket service', () => {
  it('reads events through vacancy and buys through it; the admin PUT stays with vacancy', async () => {
    const { ticket, vacancy } = await ticketWithVacancy();
    expect((await putEvent(vacancy, 'spring', SPRING)).status).toBe(201);
    expect((await putEvent(ticket, 'spring', SPRING)).status).toBe(404);
    expect(await getEvent(ticket, 'spring')).toMatchObject({ id: 'spring', available: 10 });
    const page = (await (await ticket.request('/api/v1/events?limit=1')).json()) as { next: string };
    expect(page.next).toBe('default');
    const order = await buy(ticket, 'spring', { items: [{ ticketType: 'vip', qty: 2 }] }, { 'Idempotency-Key': 'k' });
    expect(order.status).toBe(201);
    const replay = await buy(ticket, 'spring', { items: [{ ticketType: 'vip', qty: 2 }] }, { 'Idempotency-Key': 'k' });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    await expectProblem(await buy(ticket, 'spring', { items: [{ ticketType: 'vip', qty: 2 }] }), 409);
    await expectProblem(await ticket.request('/api/v1/events/nope'), 404);
    expect(await getEvent(vacancy, 'spring')).toMatchObject({ sold: 2 });
  });

  it('documents every events endpoint in the OpenAPI document, from the zod schemas', async () => {
    const { app } = await monolith();
    const doc = (await (await app.request('/openapi.json')).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    expect(Object.keys(doc.paths['/api/v1/events/{eventId}'] ?? {}).sort()).toEqual(['get', 'put']);
    expect(doc.paths['/api/v1/events']).toHaveProperty('get');
    expect(doc.paths['/api/v1/events/{eventId}/purchase']).toHaveProperty('post');
  });
});
