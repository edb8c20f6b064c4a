/**
 * RedisStockStore with the StockActor in front of it, against a real Redis:
 * the shared Redis at REDIS_URL (default redis://127.0.0.1:6379) for the
 * rules, and a private `redis-server` of this file's own for freezing
 * (SIGSTOP/SIGCONT) and killing. Two store instances on one key prefix stand
 * for two (or three) vacancy replicas sharing one stock. The rules
 * themselves are held by the store contract (src/stock/store-contract.test.ts);
 * this file checks what only a shared, remote store has: replicas, the key
 * layout, one script call per event per batch, deadlines, unknown outcomes,
 * and a frozen or killed Redis; and of holds: expiry by Redis's clock, the
 * periodic sweep by one replica at a time (and two at once), the hold index,
 * a storm through three replicas, and a buyer's limit across them.
 *
 * No Redis reachable: skipped with a loud warning, except under CI=true,
 * where it fails.
 */
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom, testSeed } from '../../test/support/http-json.ts';
import { freePort, sleep } from '../../test/support/processes.ts';
import {
  deleteKeysWithPrefix,
  eventIndexKey,
  eventKey,
  crossEventKey,
  readEvent,
  readStock,
  redisGate,
  SlowReplyProxy,
  startPrivateRedis,
  testClient,
  uniquePrefix,
  type PrivateRedis,
} from '../../test/support/redis.ts';
import {
  IdempotencyKeyInFlightError,
  IdempotencyKeyReusedError,
  InsufficientInventoryError,
  StockConflictError,
  StoreUnavailableError,
  UnknownEventError,
} from '../stock/errors.ts';
import {
  defaultEventDefinition,
  eventAvailable,
  eventOfHoldId,
  eventOfOrderId,
  eventSold,
  newHoldId,
  newOrderId,
  type EventDefinition,
  type OrderRecord,
  type ReserveResult,
  type StockCommand,
  type StockDecision,
} from '../stock/model.ts';
import { MemoryStockStore, type SeedEvent } from '../stock/store.ts';
import { StockActor, type StockActorOptions } from '../vacancy/stock-actor.ts';
import { RedisStockStore } from './redis-stock-store.ts';

const gate = await redisGate('src/node/redis-stock-store.test.ts', { needServerBinary: true });
const PREFIX = uniquePrefix('redis-store');
const SEED = testSeed();

const seed = (capacity: number): SeedEvent[] => [{ eventId: 'default', definition: defaultEventDefinition(capacity) }];

/** Actors opened by a test, closed (with their stores) after it. */
const opened: StockActor[] = [];
let observer: Redis | undefined;

async function replica(
  options: { url?: string; keyPrefix: string; timeoutMs?: number; initial: number } & StockActorOptions,
): Promise<{ actor: StockActor; store: RedisStockStore }> {
  const { url = gate.url, keyPrefix, timeoutMs = 5_000, initial, ...actorOptions } = options;
  const store = await RedisStockStore.create({ url, keyPrefix, timeoutMs });
  const actor = await StockActor.start(store, seed(initial), actorOptions);
  opened.push(actor);
  return { actor, store };
}

/** Stores a test opened without an actor, closed after it. */
const openedStores: RedisStockStore[] = [];

async function openStore(
  options: { keyPrefix: string; sweepLeaseMs?: number; sweeperId?: string },
  seedEvents: SeedEvent[],
): Promise<RedisStockStore> {
  const store = await RedisStockStore.create({ url: gate.url, timeoutMs: 5_000, ...options });
  openedStores.push(store);
  await store.open(seedEvents);
  return store;
}

/** One command decided alone, with `now` as the replica's clock (which Redis does not go by). */
async function decideOne(store: RedisStockStore, command: StockCommand, now = Date.now()): Promise<StockDecision> {
  const [decision] = await store.decide([command], { now, idempotencyTtlMs: 60_000 });
  return decision!;
}

/** A hold of `qty` default tickets that lasts `ttlMs` from now. */
function holdCommand(
  eventId: string,
  qty: number,
  ttlMs: number,
  buyer: string | null = null,
): Extract<StockCommand, { kind: 'hold' }> {
  return {
    kind: 'hold',
    eventId,
    items: [{ typeId: 'default', qty }],
    buyer,
    holdId: newHoldId(eventId),
    at: Date.now(),
    ttlMs,
  };
}

/** Ticket ranges of one type are disjoint and cover 1..sold exactly: every ticket sold was handed out once. */
function expectNumbersOnce(ranges: ReadonlyArray<{ first: number; last: number }>, sold: number, what: string): void {
  let next = 1;
  for (const range of [...ranges].sort((x, y) => x.first - y.first)) {
    expect(range.first, what).toBe(next);
    next = range.last + 1;
  }
  expect(next - 1, what).toBe(sold);
}

/** The settled value or error of a promise, so a test can look at both. */
async function settle<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown; ms: number }> {
  const started = performance.now();
  try {
    return { value: await promise, ms: performance.now() - started };
  } catch (error) {
    return { error, ms: performance.now() - started };
  }
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    if (await check()) return performance.now() - started;
    await sleep(50);
  }
  throw new Error(`${what} did not happen within ${timeoutMs} ms`);
}

/** How many scripts (EVALSHA + EVAL) the server has run, from INFO commandstats. */
async function scriptCalls(client: Redis): Promise<number> {
  const info = await client.info('commandstats');
  let calls = 0;
  for (const match of info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) calls += Number(match[1]);
  return calls;
}

describe.skipIf(gate.skip)(`RedisStockStore on a real Redis (seed ${SEED})`, () => {
  beforeAll(async () => {
    gate.assertReachable();
    observer = testClient(gate.url);
    await observer.ping();
  });

  afterEach(async () => {
    await Promise.allSettled(opened.splice(0).map((actor) => actor.close()));
    await Promise.allSettled(openedStores.splice(0).map((store) => store.close()));
  });

  afterAll(async () => {
    observer?.disconnect();
    if (gate.reachable) await deleteKeysWithPrefix(gate.url, PREFIX);
  });

  it('seeds an event only when it is absent: start-up never resets stock', async () => {
    const keyPrefix = `${PREFIX}-seed`;
    const first = await replica({ keyPrefix, initial: 100 });
    expect(await first.actor.level()).toEqual({ remaining: 100, sold: 0 });
    expect((await first.actor.reserve(7)).success).toBe(true);
    await first.actor.close();

    // A second start (a restart, or another replica) with another seed keeps what Redis holds.
    const second = await replica({ keyPrefix, initial: 5_000 });
    expect(second.actor.snapshot()).toEqual({ remaining: 93, sold: 7 });
    expect(await second.actor.level()).toEqual({ remaining: 93, sold: 7 });
    expect(await readStock(observer!, keyPrefix)).toEqual({ remaining: 93, sold: 7 });
  });

  it('two replicas sharing one stock under 5,000 concurrent reserves never oversell and hand out every ticket once', async () => {
    const keyPrefix = `${PREFIX}-load`;
    const initial = 6_000;
    const a = await replica({ keyPrefix, initial });
    const b = await replica({ keyPrefix, initial });
    const random = seededRandom(SEED);

    const asks: Array<{ qty: number; via: 'a' | 'b'; answer: Promise<ReserveResult> }> = [];
    for (let i = 0; i < 5_000; i++) {
      const qty = 1 + Math.floor(random() * 4);
      const via = random() < 0.5 ? 'a' : 'b';
      asks.push({ qty, via, answer: (via === 'a' ? a : b).actor.reserve(qty) });
      // Let each actor send what it has, so the two replicas' batches interleave at Redis.
      if (i % 40 === 39) await new Promise((resolve) => setImmediate(resolve));
    }
    const answers = await Promise.all(asks.map((ask) => ask.answer));

    const level = await readStock(observer!, keyPrefix);
    expect(level).not.toBeNull();
    const { remaining, sold } = level!;
    let acknowledged = 0;
    const ranges: Array<{ first: number; last: number }> = [];
    const soldBy = { a: 0, b: 0 };
    answers.forEach((answer, index) => {
      const ask = asks[index]!;
      expect(answer.remaining).toBeGreaterThanOrEqual(0);
      expect(answer.replayed).toBe(false);
      if (answer.success) {
        acknowledged += ask.qty;
        soldBy[ask.via] += ask.qty;
        expect(answer.tickets).toBeDefined();
        expect(answer.tickets!.last - answer.tickets!.first + 1).toBe(ask.qty);
        // A 1.0.0 reserve makes an order: its reservation id is the order's, which names the event.
        expect(eventOfOrderId(answer.reservationId!)).toBe('default');
        ranges.push(answer.tickets!);
      } else {
        // A reserve is refused only when it does not fit in what is left.
        expect(answer.remaining).toBeLessThan(ask.qty);
      }
    });

    expect(remaining).toBeGreaterThanOrEqual(0);
    expect(sold + remaining).toBe(initial);
    expect(acknowledged).toBe(sold);
    // ~12,500 tickets asked for 6,000, with ~1,250 asks of one ticket: it sells out.
    expect(remaining).toBe(0);
    expect(soldBy.a).toBeGreaterThan(0);
    expect(soldBy.b).toBeGreaterThan(0);

    expectNumbersOnce(ranges, sold, 'default');

    // Both replicas read the same level.
    expect(await a.actor.level()).toEqual({ remaining, sold });
    expect(await b.actor.level()).toEqual({ remaining, sold });
  });

  it('an idempotency key used on one replica is replayed by the other, and refused with another qty', async () => {
    const keyPrefix = `${PREFIX}-idem`;
    const a = await replica({ keyPrefix, initial: 50 });
    const b = await replica({ keyPrefix, initial: 50 });

    const first = await a.actor.reserve(3, { idempotencyKey: 'order-1' });
    expect(first).toMatchObject({ success: true, remaining: 47, tickets: { first: 1, last: 3 }, replayed: false });
    const before = await readStock(observer!, keyPrefix);

    const replay = await b.actor.reserve(3, { idempotencyKey: 'order-1' });
    expect(replay).toEqual({ ...first, replayed: true });
    expect(await readStock(observer!, keyPrefix)).toEqual(before);

    await expect(b.actor.reserve(4, { idempotencyKey: 'order-1' })).rejects.toBeInstanceOf(IdempotencyKeyReusedError);
    await expect(a.actor.reserve(2, { idempotencyKey: 'order-1' })).rejects.toBeInstanceOf(IdempotencyKeyReusedError);
    expect(await readStock(observer!, keyPrefix)).toEqual(before);

    // A refused reserve is recorded too, and replayed as refused.
    const tooMany = await a.actor.reserve(1_000, { idempotencyKey: 'order-2' });
    expect(tooMany).toEqual({ success: false, remaining: 47, replayed: false });
    expect(await b.actor.reserve(1_000, { idempotencyKey: 'order-2' })).toEqual({ ...tooMany, replayed: true });
    expect(await readStock(observer!, keyPrefix)).toEqual(before);
  });

  it('the same key twice in one batch: the second is in flight and takes nothing', async () => {
    const keyPrefix = `${PREFIX}-inflight`;
    const { actor } = await replica({ keyPrefix, initial: 10 });
    // Posted in the same tick, so both are decided by one script call.
    const [first, second] = await Promise.all([
      settle(actor.reserve(2, { idempotencyKey: 'twice' })),
      settle(actor.reserve(2, { idempotencyKey: 'twice' })),
    ]);
    expect(first.value).toMatchObject({ success: true, remaining: 8, replayed: false });
    expect(second.error).toBeInstanceOf(IdempotencyKeyInFlightError);
    expect(await readStock(observer!, keyPrefix)).toEqual({ remaining: 8, sold: 2 });
    // Once decided, the key replays.
    expect(await actor.reserve(2, { idempotencyKey: 'twice' })).toEqual({ ...first.value, replayed: true });
  });

  it('an idempotency key lives idempotencyTtlMs in Redis; after that the same key gets a new decision', async () => {
    const keyPrefix = `${PREFIX}-ttl`;
    const { actor } = await replica({ keyPrefix, initial: 10, idempotencyTtlMs: 200 });
    const first = await actor.reserve(1, { idempotencyKey: 'short' });
    expect(first).toMatchObject({ success: true, tickets: { first: 1, last: 1 }, replayed: false });
    expect(await actor.reserve(1, { idempotencyKey: 'short' })).toEqual({ ...first, replayed: true });

    const idemKeys = await observer!.keys(`{${keyPrefix}:default}:idem:*`);
    expect(idemKeys).toHaveLength(1);
    const ttl = await observer!.pttl(idemKeys[0]!);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(200);

    await sleep(400);
    expect(await observer!.exists(idemKeys[0]!)).toBe(0);
    const again = await actor.reserve(1, { idempotencyKey: 'short' });
    expect(again).toMatchObject({ success: true, tickets: { first: 2, last: 2 }, replayed: false });
    // An expired key no longer binds its qty either.
    await sleep(400);
    expect(await actor.reserve(3, { idempotencyKey: 'short' })).toMatchObject({ success: true, replayed: false });
    expect(await readStock(observer!, keyPrefix)).toEqual({ remaining: 5, sold: 5 });
  });

  it('adjusts the stock (set, add, take away) for every replica, and refuses to go below zero', async () => {
    const keyPrefix = `${PREFIX}-adjust`;
    const a = await replica({ keyPrefix, initial: 20 });
    const b = await replica({ keyPrefix, initial: 20 });
    expect((await a.actor.reserve(5)).success).toBe(true);

    expect(await a.actor.adjust('set', 50)).toEqual({ remaining: 50, sold: 5 });
    expect(await b.actor.level()).toEqual({ remaining: 50, sold: 5 });
    expect(await b.actor.adjust('add', 10)).toEqual({ remaining: 60, sold: 5 });
    expect(await a.actor.adjust('add', -15)).toEqual({ remaining: 45, sold: 5 });
    expect(await readStock(observer!, keyPrefix)).toEqual({ remaining: 45, sold: 5 });

    await expect(a.actor.adjust('add', -46)).rejects.toBeInstanceOf(StockConflictError);
    await expect(b.actor.adjust('set', -1)).rejects.toBeInstanceOf(StockConflictError);
    expect(await readStock(observer!, keyPrefix)).toEqual({ remaining: 45, sold: 5 });

    // Ticket numbers already sold are not handed out again after a set.
    expect(await b.actor.reserve(2)).toMatchObject({ success: true, tickets: { first: 6, last: 7 } });
    expect(await a.actor.adjust('add', -43)).toEqual({ remaining: 0, sold: 7 });
    expect(await b.actor.reserve(1)).toEqual({ success: false, remaining: 0, replayed: false });
  });

  it('refuses an unknown event and changes nothing', async () => {
    const keyPrefix = `${PREFIX}-unknown`;
    const { actor } = await replica({ keyPrefix, initial: 10 });
    await expect(actor.reserve(1, { eventId: 'no-such-event' })).rejects.toBeInstanceOf(UnknownEventError);
    await expect(actor.reserve(1, { eventId: 'no-such-event', idempotencyKey: 'k' })).rejects.toBeInstanceOf(
      UnknownEventError,
    );
    await expect(actor.level('no-such-event')).rejects.toBeInstanceOf(UnknownEventError);
    await expect(actor.adjust('add', 5, 'no-such-event')).rejects.toBeInstanceOf(UnknownEventError);
    expect(await observer!.keys(`*${keyPrefix}:no-such-event*`)).toEqual([]);
    expect(await readStock(observer!, keyPrefix)).toEqual({ remaining: 10, sold: 0 });
  });

  it('events live in Redis: one put is served by every replica, under one hash tag per event, found from an order id alone', async () => {
    const keyPrefix = `${PREFIX}-events`;
    const a = await replica({ keyPrefix, initial: 10 });
    const b = await replica({ keyPrefix, initial: 10 });
    const gala: EventDefinition = {
      name: 'Gala | "2026"\nnight',
      capacity: 5,
      ticketTypes: [
        { id: 'general', name: 'General', capacity: 4, maxPerOrder: 3 },
        { id: 'vip', name: 'VIP', capacity: 2, maxPerOrder: null },
      ],
    };
    expect((await a.actor.putEvent('gala', gala)).created).toBe(true);
    expect((await b.actor.putEvent('gala', gala)).created).toBe(false);

    // A keyed purchase on one replica is replayed by another, with the order as it was made.
    const first = await a.actor.purchase(
      'gala',
      [
        { typeId: 'vip', qty: 2 },
        { typeId: 'general', qty: 1 },
      ],
      { buyer: 'ann', idempotencyKey: 'k1' },
    );
    expect(first.replayed).toBe(false);
    const replay = await b.actor.purchase(
      'gala',
      [
        { typeId: 'vip', qty: 2 },
        { typeId: 'general', qty: 1 },
      ],
      { buyer: 'ann', idempotencyKey: 'k1' },
    );
    expect(replay).toEqual({ order: first.order, replayed: true });
    // The cap leaves 2: a purchase of 3 general (within maxPerOrder) does not fit, and says what each item had.
    const short = await settle(b.actor.purchase('gala', [{ typeId: 'general', qty: 3 }]));
    expect(short.error).toBeInstanceOf(InsufficientInventoryError);
    expect((short.error as InsufficientInventoryError).items).toEqual([
      { typeId: 'general', requested: 3, available: 2 },
    ]);

    const event = await b.actor.getEvent('gala');
    expect(event).toEqual(await readEvent(observer!, keyPrefix, 'gala'));
    expect(event).toMatchObject({ name: gala.name, capacity: 5 });
    expect(event.types.map((type) => [type.id, type.sold, type.issued])).toEqual([
      ['general', 1, 1],
      ['vip', 2, 2],
    ]);
    expect(await a.actor.listEvents(null, 10)).toEqual({
      events: [await a.actor.getEvent('default'), event],
      next: null,
    });

    // The key layout: every key of an event under {prefix:eventId}, the index outside them all (and the
    // sweep lease, which the replicas' sweepers take as they run, under {prefix}).
    const keys = (await observer!.keys(`*${keyPrefix}*`)).filter((key) => key !== crossEventKey(keyPrefix, 'sweeper'));
    expect(keys.sort()).toEqual(
      [
        eventKey(keyPrefix, 'default'),
        eventKey(keyPrefix, 'gala'),
        `{${keyPrefix}:gala}:idem:k1`,
        `{${keyPrefix}:gala}:orders`,
        `{${keyPrefix}:gala}:order-times`,
        `{${keyPrefix}:gala}:buyers`,
        eventIndexKey(keyPrefix),
        crossEventKey(keyPrefix, 'order-events'),
      ].sort(),
    );
    expect(await observer!.hget(`{${keyPrefix}:gala}:buyers`, 'ann')).toMatch(/^(vip 2 general 1|general 1 vip 2)$/);
    expect(await observer!.zrange(eventIndexKey(keyPrefix), 0, -1)).toEqual(['default', 'gala']);
    // An order id names its event, so its id alone finds it.
    const orderEvent = eventOfOrderId(first.order.id);
    expect(orderEvent).toBe('gala');
    expect(await observer!.hget(`{${keyPrefix}:${orderEvent}}:orders`, first.order.id)).toMatch(
      /^c \d+ vip 2 1 general 1 1\nann$/,
    );
    // A small event stays a compact hash.
    expect(['listpack', 'ziplist']).toContain(await observer!.object('ENCODING', eventKey(keyPrefix, 'gala')));
  });

  it('three replicas, concurrent purchases over events whose caps are below the sum of their types: never oversold, every ticket once', async () => {
    const keyPrefix = `${PREFIX}-purchases`;
    const replicas = [
      await replica({ keyPrefix, initial: 10 }),
      await replica({ keyPrefix, initial: 10 }),
      await replica({ keyPrefix, initial: 10 }),
    ];
    const type = (id: string, capacity: number, maxPerOrder: number | null = null) => ({
      id,
      name: id,
      capacity,
      maxPerOrder,
    });
    const events: Record<string, EventDefinition> = {
      spring: { name: 'Spring', capacity: 40, ticketTypes: [type('general', 30, 4), type('vip', 15, 2)] },
      summer: {
        name: 'Summer',
        capacity: 25,
        ticketTypes: [type('general', 20), type('vip', 10), type('student', 5, 1)],
      },
      autumn: { name: 'Autumn', capacity: null, ticketTypes: [type('general', 15), type('vip', 5)] },
    };
    for (const [eventId, definition] of Object.entries(events)) await replicas[0]!.actor.putEvent(eventId, definition);

    const random = seededRandom(SEED);
    const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)]!;
    const asks: Array<Promise<{ order: OrderRecord; replayed: boolean } | 'short'>> = [];
    for (let i = 0; i < 3_000; i++) {
      const eventId = pick(Object.keys(events));
      const types = events[eventId]!.ticketTypes.filter(() => random() < 0.6);
      if (types.length === 0) types.push(pick(events[eventId]!.ticketTypes));
      const items = types.map((t) => ({ typeId: t.id, qty: 1 + Math.floor(random() * (t.maxPerOrder ?? 3)) }));
      asks.push(
        pick(replicas)
          .actor.purchase(eventId, items, random() < 0.3 ? { idempotencyKey: `p-${i}` } : {})
          .catch((error: unknown) => {
            if (error instanceof InsufficientInventoryError) return 'short' as const;
            throw error;
          }),
      );
      if (i % 40 === 39) await new Promise((resolve) => setImmediate(resolve));
    }
    const answers = await Promise.all(asks);
    const orders = answers.flatMap((answer) => (answer === 'short' ? [] : [answer.order]));
    expect(answers.every((answer) => answer === 'short' || !answer.replayed)).toBe(true);
    expect(new Set(orders.map((order) => order.id)).size).toBe(orders.length);

    for (const [eventId, definition] of Object.entries(events)) {
      const stored = (await readEvent(observer!, keyPrefix, eventId))!;
      // Every replica reads what Redis holds.
      for (const { actor } of replicas) expect(await actor.getEvent(eventId)).toEqual(stored);
      const sold = eventSold(stored);
      if (definition.capacity !== null) expect(sold).toBeLessThanOrEqual(definition.capacity);
      // ~1,000 asks per event for at most 45 tickets: each sells out.
      expect(eventAvailable(stored)).toBe(0);
      for (const storedType of stored.types) {
        expect(storedType.sold).toBeLessThanOrEqual(storedType.capacity);
        expect(storedType.issued).toBe(storedType.sold);
        // The acknowledged orders hold exactly the tickets sold: 1..sold, each once.
        const lines = orders
          .filter((order) => order.eventId === eventId)
          .flatMap((order) => order.items.filter((line) => line.typeId === storedType.id));
        for (const line of lines) expect(line.last - line.first + 1).toBe(line.qty);
        expectNumbersOnce(lines, storedType.sold, `${eventId}/${storedType.id}`);
      }
    }
    expect(await observer!.hlen(`{${keyPrefix}:spring}:orders`)).toBe(
      orders.filter((order) => order.eventId === 'spring').length,
    );
  });

  it("holds and orders live under their event's tag: made on one replica, they are found, confirmed and cancelled on another by their id alone", async () => {
    const keyPrefix = `${PREFIX}-holds`;
    const a = await replica({ keyPrefix, initial: 10 });
    const b = await replica({ keyPrefix, initial: 10 });
    const gala: EventDefinition = {
      name: 'Gala',
      capacity: 6,
      maxPerBuyer: 5,
      ticketTypes: [
        { id: 'general', name: 'General', capacity: 6, maxPerOrder: null, maxPerBuyer: null },
        { id: 'vip', name: 'VIP', capacity: 4, maxPerOrder: 2, maxPerBuyer: 3 },
      ],
    };
    await a.actor.putEvent('gala', gala);

    const { hold } = await a.actor.hold('gala', [{ typeId: 'vip', qty: 2 }], { buyer: 'ann', ttlMs: 60_000 });
    expect(eventOfHoldId(hold.id)).toBe('gala');
    expect(await b.actor.getHold(hold.id)).toEqual(hold);
    expect((await b.actor.getEvent('gala')).types.map((type) => [type.id, type.sold, type.held])).toEqual([
      ['general', 0, 0],
      ['vip', 0, 2],
    ]);
    expect(await observer!.hget(`{${keyPrefix}:gala}:holds`, hold.id)).toBe(
      `h ${hold.createdAt} ${hold.expiresAt} vip 2\nann`,
    );
    expect(await observer!.zscore(`{${keyPrefix}:gala}:deadlines`, hold.id)).toBe(String(hold.expiresAt));
    expect(await observer!.zscore(crossEventKey(keyPrefix, 'hold-deadlines'), 'gala')).toBe(String(hold.expiresAt));

    // The buyer's count is shared: ann holds 2 vip of her 3 on either replica.
    await expect(b.actor.purchase('gala', [{ typeId: 'vip', qty: 2 }], { buyer: 'ann' })).rejects.toMatchObject({
      name: 'BuyerLimitError',
      field: 'items.0.qty',
    });

    const { order } = await b.actor.confirm(hold.id);
    expect(order).toMatchObject({ eventId: 'gala', holdId: hold.id, buyer: 'ann', status: 'confirmed' });
    expect(order.items).toEqual([{ typeId: 'vip', qty: 2, first: 1, last: 2 }]);
    expect(await a.actor.confirm(hold.id)).toEqual({ order, replayed: true });
    expect(await a.actor.getHold(hold.id)).toEqual({ ...hold, status: 'confirmed', orderId: order.id });
    expect(await a.actor.getOrder(order.id)).toEqual(order);
    expect(await observer!.zcard(`{${keyPrefix}:gala}:deadlines`)).toBe(0);

    const cancelled = await a.actor.cancel(order.id);
    expect(cancelled).toEqual({ order: { ...order, status: 'cancelled' }, replayed: false });
    expect(await b.actor.cancel(order.id)).toEqual({ ...cancelled, replayed: true });
    expect(await observer!.hget(`{${keyPrefix}:gala}:orders`, order.id)).toBe(
      `x:${hold.id} ${order.createdAt} vip 2 1\nann`,
    );
    // Cancelled: ann's count is back to 0 (her entry gone), the tickets are on sale, numbers are never reused.
    expect(await observer!.hexists(`{${keyPrefix}:gala}:buyers`, 'ann')).toBe(0);
    const again = await b.actor.purchase('gala', [{ typeId: 'vip', qty: 2 }], { buyer: 'ann' });
    expect(again.order.items).toEqual([{ typeId: 'vip', qty: 2, first: 3, last: 4 }]);
    expect(await readEvent(observer!, keyPrefix, 'gala')).toEqual(await a.actor.getEvent('gala'));
  });

  it("whether a hold has expired is decided by Redis TIME, never by a replica's clock: replicas whose clocks disagree decide alike", async () => {
    const keyPrefix = `${PREFIX}-time`;
    const a = await openStore({ keyPrefix }, [{ eventId: 'gala', definition: defaultEventDefinition(10) }]);
    const b = await openStore({ keyPrefix }, []);
    const hold = holdCommand('gala', 2, 800);
    expect(await decideOne(a, hold)).toMatchObject({ kind: 'hold', hold: { status: 'held' } });

    // A replica whose clock runs an hour ahead does not expire it...
    const hourAhead = Date.now() + 3_600_000;
    expect(await decideOne(b, { kind: 'get-hold', holdId: hold.holdId }, hourAhead)).toMatchObject({
      hold: { status: 'held' },
    });
    expect(await decideOne(b, { kind: 'expire', limit: 10 }, hourAhead)).toEqual({ kind: 'expired', count: 0 });
    // ...and once Redis's clock has passed expiresAt, one an hour behind cannot confirm it.
    await sleep(1_000);
    const hourBehind = Date.now() - 3_600_000;
    const confirm: StockCommand = { kind: 'confirm', holdId: hold.holdId, orderId: newOrderId('gala'), at: Date.now() };
    expect(await decideOne(a, confirm, hourBehind)).toEqual({ kind: 'refused', reason: 'hold-expired' });
    expect(await decideOne(b, { kind: 'level', eventId: 'gala', typeId: 'default' }, hourBehind)).toEqual({
      kind: 'level',
      level: { remaining: 10, sold: 0 },
    });
  });

  it('the periodic sweep is run by one replica at a time: the others answer 0, and take over once its lease lapses', async () => {
    const keyPrefix = `${PREFIX}-lease`;
    const events = Array.from({ length: 6 }, (_, n) => `e-${n}`);
    const seedEvents = events.map((eventId) => ({ eventId, definition: defaultEventDefinition(10) }));
    const a = await openStore({ keyPrefix, sweepLeaseMs: 500 }, seedEvents);
    const b = await openStore({ keyPrefix, sweepLeaseMs: 500 }, []);
    const sweep: StockCommand = { kind: 'expire', limit: 100 };

    // Each event: a hold due soon, and one due in an hour.
    const soon = events.map((eventId) => holdCommand(eventId, 1, 200));
    const late = events.map((eventId) => holdCommand(eventId, 1, 3_600_000));
    await a.decide([...soon, ...late], { now: Date.now(), idempotencyTtlMs: 60_000 });
    const index = crossEventKey(keyPrefix, 'hold-deadlines');
    expect(await observer!.zrange(index, 0, -1, 'WITHSCORES')).toEqual(
      events.flatMap((eventId, n) => [eventId, String(soon[n]!.at + 200)]),
    );

    await sleep(300);
    expect(await decideOne(a, sweep)).toEqual({ kind: 'expired', count: events.length });
    expect(await decideOne(b, sweep)).toEqual({ kind: 'expired', count: 0 });
    // The swept events' entries moved on to their next deadline.
    expect(await observer!.zrange(index, 0, -1, 'WITHSCORES')).toEqual(
      events.flatMap((eventId, n) => [eventId, String(late[n]!.at + 3_600_000)]),
    );

    // While a holds the lease, b leaves due holds to it...
    const more = holdCommand('e-0', 1, 50);
    await decideOne(b, more);
    await sleep(100);
    expect(await decideOne(b, sweep)).toEqual({ kind: 'expired', count: 0 });
    expect(await observer!.hget(`{${keyPrefix}:e-0}:holds`, more.holdId)).toMatch(/^h /);
    // ...and once a stops sweeping and its lease lapses, b sweeps.
    await a.close();
    await sleep(600);
    expect(await decideOne(b, sweep)).toEqual({ kind: 'expired', count: 1 });
    expect(await observer!.hget(`{${keyPrefix}:e-0}:holds`, more.holdId)).toMatch(/^e /);
    expect(await decideOne(b, { kind: 'get-event', eventId: 'e-0' })).toMatchObject({
      event: { types: [{ sold: 0, held: 1 }] },
    });
  });

  it('two replicas sweeping at once (a lease that lapsed mid-sweep) expire each due hold exactly once', async () => {
    const keyPrefix = `${PREFIX}-two-sweeps`;
    const events = Array.from({ length: 40 }, (_, n) => `e-${String(n).padStart(2, '0')}`);
    const seedEvents = events.map((eventId) => ({ eventId, definition: defaultEventDefinition(10) }));
    // The same name on the lease: both hold it, as two replicas do for a moment when it lapses mid-sweep.
    const a = await openStore({ keyPrefix, sweeperId: 'both' }, seedEvents);
    const b = await openStore({ keyPrefix, sweeperId: 'both' }, []);
    const due = events.map((eventId) => holdCommand(eventId, 2, 200, 'ann'));
    const late = events.map((eventId) => holdCommand(eventId, 1, 3_600_000, 'ann'));
    await a.decide([...due, ...late], { now: Date.now(), idempotencyTtlMs: 60_000 });
    await sleep(300);

    let counted = 0;
    // What the stores tell the actor's metrics: each expired hold once, with its tickets.
    const told = { holds: 0, tickets: 0 };
    const options = {
      now: Date.now(),
      idempotencyTtlMs: 60_000,
      expired: (holds: number, tickets: number) => {
        told.holds += holds;
        told.tickets += tickets;
      },
    };
    for (let round = 0; round < 3; round++) {
      const answers = await Promise.all([
        a.decide([{ kind: 'expire', limit: 100 }], options),
        b.decide([{ kind: 'expire', limit: 100 }], options),
      ]);
      for (const [answer] of answers) counted += answer!.kind === 'expired' ? answer!.count : Number.NaN;
    }
    expect(counted).toBe(events.length);
    expect(told).toEqual({ holds: events.length, tickets: 2 * events.length });
    for (const [n, eventId] of events.entries()) {
      const tag = `{${keyPrefix}:${eventId}}`;
      expect(await observer!.hget(`${tag}:holds`, due[n]!.holdId)).toMatch(/^e /);
      expect(await observer!.hget(`${tag}:holds`, late[n]!.holdId)).toMatch(/^h /);
      expect(await readStock(observer!, keyPrefix, eventId)).toEqual({ remaining: 9, sold: 0 });
      expect(await observer!.hget(`${tag}:buyers`, 'ann')).toBe('default 1');
      expect(await observer!.zscore(crossEventKey(keyPrefix, 'hold-deadlines'), eventId)).toBe(
        String(late[n]!.at + 3_600_000),
      );
    }
  });

  it('a storm through three replicas: holds confirmed, released or left to expire never take more than the capacities, and every ticket sold is in one acknowledged order', async () => {
    const keyPrefix = `${PREFIX}-storm`;
    const replicas = [
      await replica({ keyPrefix, initial: 10, sweepEveryMs: 100 }),
      await replica({ keyPrefix, initial: 10, sweepEveryMs: 100 }),
      await replica({ keyPrefix, initial: 10, sweepEveryMs: 100 }),
    ];
    const storm: EventDefinition = {
      name: 'Storm',
      capacity: 1_000,
      ticketTypes: [
        { id: 'general', name: 'General', capacity: 900, maxPerOrder: 4 },
        { id: 'vip', name: 'VIP', capacity: 250, maxPerOrder: 2 },
      ],
    };
    await replicas[0]!.actor.putEvent('storm', storm);
    const random = seededRandom(SEED);
    const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)]!;

    // Polled without touching the event (list-events expires nothing): the invariants hold at every poll.
    let polls = 0;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const { events } = await pick(replicas).actor.listEvents(null, 10);
        const event = events.find((candidate) => candidate.id === 'storm')!;
        for (const type of event.types) {
          expect(type.held).toBeGreaterThanOrEqual(0);
          expect(type.sold + type.held).toBeLessThanOrEqual(type.capacity);
        }
        expect(eventSold(event) + event.types.reduce((sum, type) => sum + type.held, 0)).toBeLessThanOrEqual(1_000);
        polls += 1;
        await sleep(20);
      }
    })();

    const orders: OrderRecord[] = [];
    const outcomes = { held: 0, short: 0, confirmed: 0, expiredFirst: 0, released: 0, abandoned: 0 };
    const clients = Array.from({ length: 1_500 }, async (_, i) => {
      await sleep(random() * 1_500);
      const items = [{ typeId: 'general', qty: 1 + Math.floor(random() * 4) }];
      if (random() < 0.4) items.push({ typeId: 'vip', qty: 1 + Math.floor(random() * 2) });
      const ttlMs = 200 + Math.floor(random() * 600);
      let hold: { id: string };
      try {
        ({ hold } = await pick(replicas).actor.hold('storm', items, { ttlMs, idempotencyKey: `h-${i}` }));
      } catch (error) {
        if (!(error instanceof InsufficientInventoryError)) throw error;
        outcomes.short += 1;
        return;
      }
      outcomes.held += 1;
      const choice = random();
      await sleep(random() * 700);
      if (choice < 0.45) {
        try {
          orders.push((await pick(replicas).actor.confirm(hold.id)).order);
          outcomes.confirmed += 1;
        } catch (error) {
          // It outlived its time to live: never confirmed.
          expect(error).toMatchObject({ name: 'HoldGoneError', status: 'expired' });
          outcomes.expiredFirst += 1;
        }
      } else if (choice < 0.75) {
        const released = await pick(replicas).actor.release(hold.id);
        expect(['released', 'expired']).toContain(released.status);
        outcomes.released += 1;
      } else {
        outcomes.abandoned += 1;
      }
    });
    await Promise.all(clients);

    // The sweepers (one replica at a time) give back every abandoned hold, with nobody touching the event.
    await waitUntil(
      'every hold to be confirmed, released or expired',
      async () => {
        const event = (await replicas[0]!.actor.listEvents(null, 10)).events.find((e) => e.id === 'storm')!;
        return event.types.every((type) => type.held === 0);
      },
      5_000,
    );
    polling = false;
    await poller;
    // ~1,500 holds of ~3.5 tickets, ~45 % confirmed, for 1,000 tickets: it sells out while holds come and go.
    expect(polls).toBeGreaterThan(20);
    expect(outcomes.held).toBeGreaterThan(400);
    expect(outcomes.short).toBeGreaterThan(0);
    expect(outcomes.confirmed).toBeGreaterThan(150);
    expect(outcomes.released + outcomes.abandoned).toBeGreaterThan(150);

    const event = (await readEvent(observer!, keyPrefix, 'storm'))!;
    expect(eventSold(event) + eventAvailable(event)).toBe(1_000);
    for (const type of event.types) {
      expect(type.held).toBe(0);
      // Sold is exactly what the acknowledged orders hold: numbers 1..sold, each once.
      expectNumbersOnce(
        orders.flatMap((order) => order.items.filter((line) => line.typeId === type.id)),
        type.sold,
        type.id,
      );
      expect(type.issued).toBe(type.sold);
    }
    expect(await observer!.zcard(`{${keyPrefix}:storm}:deadlines`)).toBe(0);
  });

  it('a failed call of the hold deadline index: the batch is an unknown outcome (its hold was made), and the entry goes with the next batch', async () => {
    const keyPrefix = `${PREFIX}-index-retry`;
    const store = await openStore({ keyPrefix }, [
      { eventId: 'gala', definition: defaultEventDefinition(10) },
      { eventId: 'club', definition: defaultEventDefinition(10) },
    ]);
    const index = crossEventKey(keyPrefix, 'hold-deadlines');
    // A key of the wrong type makes the index script fail (as a lost connection would, after the batch's script).
    await observer!.set(crossEventKey(keyPrefix, 'hold-versions'), 'not a hash');
    const hold = holdCommand('gala', 1, 60_000);
    const failed = await settle(decideOne(store, hold));
    expect(failed.error).toMatchObject({ outcomeUnknown: true });
    expect(await observer!.hget(`{${keyPrefix}:gala}:holds`, hold.holdId)).toMatch(/^h /);
    expect(await observer!.zscore(index, 'gala')).toBeNull();

    await observer!.del(crossEventKey(keyPrefix, 'hold-versions'));
    expect(await decideOne(store, { kind: 'level', eventId: 'club', typeId: 'default' })).toMatchObject({
      kind: 'level',
    });
    expect(await observer!.zscore(index, 'gala')).toBe(String(hold.at + 60_000));
    // The retry with the same hold (a caller that got 503) finds it as made: its id answers it.
    expect(await decideOne(store, { kind: 'get-hold', holdId: hold.holdId })).toMatchObject({
      kind: 'hold',
      hold: { status: 'held', expiresAt: hold.at + 60_000 },
    });
  });

  it("a buyer's 50 concurrent holds through three replicas against maxPerBuyer 4: at most 4 tickets held or sold", async () => {
    const keyPrefix = `${PREFIX}-buyer`;
    const replicas = [
      await replica({ keyPrefix, initial: 10 }),
      await replica({ keyPrefix, initial: 10 }),
      await replica({ keyPrefix, initial: 10 }),
    ];
    await replicas[0]!.actor.putEvent('gala', {
      name: 'Gala',
      capacity: null,
      maxPerBuyer: 4,
      ticketTypes: [{ id: 'general', name: 'General', capacity: 1_000, maxPerOrder: null }],
    });
    const attempts = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        settle(
          replicas[i % 3]!.actor.hold('gala', [{ typeId: 'general', qty: 1 + (i % 2) }], {
            buyer: 'ann',
            ttlMs: 60_000,
          }),
        ),
      ),
    );
    const held = attempts.flatMap((attempt) => (attempt.value ? [attempt.value.hold] : []));
    for (const attempt of attempts) {
      if (attempt.error) expect(attempt.error).toMatchObject({ name: 'BuyerLimitError', field: 'items' });
    }
    const tickets = held.reduce((sum, hold) => sum + hold.items[0]!.qty, 0);
    expect(tickets).toBeLessThanOrEqual(4);
    expect(tickets).toBeGreaterThanOrEqual(3);
    expect(await observer!.hget(`{${keyPrefix}:gala}:buyers`, 'ann')).toBe(`general ${tickets}`);
    // Confirming changes nothing of the count; releasing frees it.
    await replicas[1]!.actor.confirm(held[0]!.id);
    await expect(
      replicas[2]!.actor.purchase('gala', [{ typeId: 'general', qty: 5 - tickets }], { buyer: 'ann' }),
    ).rejects.toMatchObject({ name: 'BuyerLimitError' });
    for (const hold of held.slice(1)) await replicas[0]!.actor.release(hold.id);
    expect(await observer!.hget(`{${keyPrefix}:gala}:buyers`, 'ann')).toBe(`general ${held[0]!.items[0]!.qty}`);
  });

  it('decides random batches of every command exactly as the rules do on the memory store, refusal details included', async () => {
    const keyPrefix = `${PREFIX}-differential`;
    const random = seededRandom(SEED);
    const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)]!;
    const int = (low: number, high: number) => low + Math.floor(random() * (high - low + 1));
    const type = (id: string, capacity: number, maxPerOrder: number | null, maxPerBuyer: number | null) => ({
      id,
      name: id.toUpperCase(),
      capacity,
      maxPerOrder,
      maxPerBuyer,
    });
    const definitions: Record<string, EventDefinition[]> = {
      gala: [
        { name: 'Gala', capacity: 30, ticketTypes: [type('general', 25, 5, null), type('vip', 10, 3, 4)] },
        { name: 'Gala II', capacity: 24, ticketTypes: [type('general', 20, 5, null), type('vip', 12, 3, 4)] },
      ],
      fair: [
        {
          name: 'Fair',
          capacity: null,
          maxPerBuyer: 6,
          ticketTypes: [type('day', 20, null, null), type('night', 8, 2, null)],
        },
        { name: 'Fair', capacity: null, maxPerBuyer: null, ticketTypes: [type('day', 22, null, null)] },
      ],
      late: [{ name: 'Late', capacity: 5, ticketTypes: [type('general', 6, null, 3)] }],
    };
    const seedEvents: SeedEvent[] = [
      { eventId: 'default', definition: defaultEventDefinition(40) },
      { eventId: 'gala', definition: definitions.gala![0]! },
      { eventId: 'fair', definition: definitions.fair![0]! },
    ];
    const memory = new MemoryStockStore();
    await memory.open(seedEvents);
    const redis = await openStore({ keyPrefix }, seedEvents);

    const buyers = [null, null, 'ann', 'bob', 'cy', 'Ann\nSmith | "x"'];
    const holdIds: string[] = ['hld_bad', newHoldId('gala')];
    const orderIds: string[] = ['ord_bad', newOrderId('fair')];
    const base = Date.now();
    let clock = 0;
    const command = (): StockCommand => {
      // Every `at` later than the one before, and expiresAt unique: the stores order dashboards alike.
      const at = base + 1_000 * ++clock;
      const eventId = pick(['default', 'gala', 'gala', 'fair', 'fair', 'late', 'nope']);
      const own: Record<string, string[]> = { default: ['default'], gala: ['general', 'vip'], fair: ['day', 'night'] };
      const typeId = () => (random() < 0.1 ? 'nope' : pick(own[eventId] ?? ['general']));
      const items = () => Array.from({ length: int(1, 2) }, () => ({ typeId: typeId(), qty: int(1, 4) }));
      const key = random() < 0.3 ? { key: pick(['k1', 'k2', 'k3', 'k4']) } : {};
      switch (
        pick(['purchase', 'purchase', 'hold', 'hold', 'confirm', 'release', 'cancel', 'read', 'admin', 'reserve'])
      ) {
        case 'purchase':
          return {
            kind: 'purchase',
            eventId,
            items: items(),
            buyer: pick(buyers),
            orderId: newOrderId(eventId),
            at,
            ...key,
          };
        case 'hold':
          return {
            kind: 'hold',
            eventId,
            items: items(),
            buyer: pick(buyers),
            holdId: newHoldId(eventId),
            at,
            ttlMs: 3_600_000 + int(0, 999),
            ...key,
          };
        case 'confirm': {
          const holdId = pick(holdIds);
          return { kind: 'confirm', holdId, orderId: newOrderId(eventOfHoldId(holdId) ?? 'none'), at };
        }
        case 'release':
          return random() < 0.5
            ? { kind: 'release', holdId: pick(holdIds) }
            : { kind: 'get-hold', holdId: pick(holdIds) };
        case 'cancel':
          return random() < 0.5
            ? { kind: 'cancel', orderId: pick(orderIds) }
            : { kind: 'get-order', orderId: pick(orderIds) };
        case 'read':
          return pick<StockCommand>([
            { kind: 'get-event', eventId },
            { kind: 'list-events', after: pick([null, 'fair']), limit: int(0, 3) },
            { kind: 'recent-orders', eventId: pick([null, eventId]), limit: int(0, 6) },
            { kind: 'expiring-holds', eventId: pick([null, eventId]), limit: int(0, 6) },
            { kind: 'expire', limit: int(0, 50) },
            { kind: 'level', eventId, typeId: typeId() },
          ]);
        case 'admin':
          return random() < 0.5 && definitions[eventId]
            ? { kind: 'put-event', eventId, definition: pick(definitions[eventId]!) }
            : { kind: 'adjust', eventId, typeId: typeId(), op: pick(['set', 'add'] as const), qty: int(-5, 10) };
        default:
          return {
            kind: 'reserve',
            eventId,
            typeId: typeId(),
            qty: int(1, 5),
            orderId: newOrderId(eventId),
            at,
            ...key,
          };
      }
    };

    const kinds = new Map<string, number>();
    for (let round = 0; round < 60; round++) {
      const batch = Array.from({ length: int(1, 25) }, command);
      const options = { now: Date.now(), idempotencyTtlMs: 3_600_000 };
      const expected = await memory.decide(batch, options);
      const decided = await redis.decide(batch, options);
      expect(decided, `round ${round}: ${JSON.stringify(batch)}`).toEqual(expected);
      for (const decision of expected) {
        const kind = decision.kind === 'refused' ? `refused ${decision.reason}` : decision.kind;
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
        if (decision.kind === 'hold') holdIds.push(decision.hold.id);
        if (decision.kind === 'order') orderIds.push(decision.order.id);
        if (decision.kind === 'reserved' && decision.outcome.reservationId)
          orderIds.push(decision.outcome.reservationId);
      }
    }
    // The run went through what matters: sales, holds and their ends, refusals of each kind.
    for (const kind of [
      'order',
      'hold',
      'insufficient',
      'reserved',
      'event',
      'events',
      'orders',
      'holds',
      'refused buyer-limit-reached',
      'refused buyer-required',
      'refused key-reused',
      'refused unknown-hold',
      'refused hold-confirmed',
    ]) {
      expect(kinds.get(kind) ?? 0, `${kind} in ${JSON.stringify([...kinds])}`).toBeGreaterThan(0);
    }
  });

  it('with no Redis listening, open rejects with a message naming REDIS_URL', async () => {
    const port = await freePort();
    const store = await RedisStockStore.create({
      url: `redis://127.0.0.1:${port}/0`,
      keyPrefix: `${PREFIX}-nowhere`,
      timeoutMs: 300,
    });
    const started = performance.now();
    const opening = settle(StockActor.start(store, seed(10)));
    const { error } = await opening;
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/REDIS_URL/);
    expect((error as Error).message).toContain(`127.0.0.1:${port}`);
    expect(performance.now() - started).toBeLessThan(3_000);
    await store.close();
  });

  it('a batch Redis ran in time but whose answer came after timeoutMs is an unknown outcome, not "nothing happened"', async () => {
    // The other side of the deadline rule: the deadline only stops batches that START late. One that ran
    // in time and sold, but whose answer was slow (the network; a Redis frozen between running the
    // script and writing its answer), is rejected by the client after timeoutMs. The actor must then
    // not claim that nothing happened: StoreUnavailableError carries outcomeUnknown, and a retry with
    // the same key tells the outcome.
    const keyPrefix = `${PREFIX}-slow-reply`;
    const proxy = await SlowReplyProxy.start(gate.url);
    try {
      const { actor } = await replica({ url: proxy.url, keyPrefix, timeoutMs: 300, initial: 100 });
      expect(await readStock(observer!, keyPrefix)).toEqual({ remaining: 100, sold: 0 });

      proxy.replyDelayMs = 800;
      const slow = await settle(actor.reserve(2, { idempotencyKey: 'slow-reply' }));
      proxy.replyDelayMs = 0;
      await sleep(1_000); // the late answer passes and is dropped by the client

      expect(slow.error, 'the answer came after timeoutMs: the reserve cannot have been acknowledged').toBeInstanceOf(
        StoreUnavailableError,
      );
      // Redis did run it in time, and sold.
      expect(await readStock(observer!, keyPrefix)).toEqual({ remaining: 98, sold: 2 });
      expect(
        (slow.error as StoreUnavailableError).outcomeUnknown,
        'rejected as if nothing happened ("nothing in that batch happened"; HTTP 503 "nothing was sold"), yet Redis sold 2 tickets',
      ).toBe(true);

      // The retry with the same key gets the sale that was made, and takes nothing more.
      expect(await actor.reserve(2, { idempotencyKey: 'slow-reply' })).toMatchObject({
        success: true,
        remaining: 98,
        tickets: { first: 1, last: 2 },
        replayed: true,
      });
      expect(await readStock(observer!, keyPrefix)).toEqual({ remaining: 98, sold: 2 });
    } finally {
      await proxy.close();
    }
  });

  describe('with a private redis-server', () => {
    let server: PrivateRedis | undefined;
    let privateObserver: Redis | undefined;

    beforeAll(async () => {
      server = await startPrivateRedis();
      privateObserver = testClient(server.url);
      await privateObserver.ping();
    });

    afterAll(async () => {
      privateObserver?.disconnect();
      await server?.stop();
    });

    it('one script call per event per batch, a list-events included; the index read only to list, written only after a put', async () => {
      const keyPrefix = `${PREFIX}-calls`;
      const store = await RedisStockStore.create({ url: server!.url, keyPrefix, timeoutMs: 2_000 });
      // What clients send, as MONITOR shows it (commands the scripts run are marked and left out).
      const monitor = await privateObserver!.monitor();
      let sent: string[][] = [];
      monitor.on('monitor', (_time: string, args: string[], source: string) => {
        if (source !== 'lua') sent.push(args.map(String));
      });
      try {
        const definition = defaultEventDefinition(100);
        await store.open(['a', 'b', 'c'].map((eventId) => ({ eventId, definition })));
        const options = { now: Date.now(), idempotencyTtlMs: 60_000 };
        const buy = (eventId: string, key?: string): StockCommand => ({
          kind: 'purchase',
          eventId,
          items: [{ typeId: 'default', qty: 1 }],
          buyer: null,
          orderId: newOrderId(eventId),
          at: Date.now(),
          ...(key === undefined ? {} : { key }),
        });
        /** What `decide` sent: script calls, index reads, event index writes, order index hints. */
        const caughtUp = async () => {
          const marker = `marker-${Math.random()}`;
          await privateObserver!.echo(marker);
          await waitUntil('MONITOR to catch up', async () => sent.some((args) => args[1] === marker), 2_000);
        };
        const counted = async (batch: StockCommand[], by = store) => {
          await caughtUp();
          sent = [];
          const decisions = await by.decide(batch, options);
          await caughtUp();
          const count = (name: string, key?: string) =>
            sent.filter((args) => args[0]!.toLowerCase() === name && (key === undefined || args[1] === key)).length;
          return {
            decisions,
            scripts: count('evalsha') + count('eval'),
            reads: count('zrangebylex'),
            writes: count('zadd', eventIndexKey(keyPrefix)),
            hints: count('zadd', crossEventKey(keyPrefix, 'order-events')),
            others: sent.length - count('evalsha') - count('eval') - count('zrangebylex') - count('zadd') - 1,
          };
        };

        // 50 purchases on a and b, a list of all three events between them, reads and reserves: a, b, c once each.
        const batch: StockCommand[] = [];
        for (let i = 0; i < 25; i++) batch.push(buy('a', `ka-${i}`), buy('b'));
        batch.push({ kind: 'list-events', after: null, limit: 10 }, buy('a'), { kind: 'get-event', eventId: 'b' });
        batch.push(
          { kind: 'reserve', eventId: 'a', typeId: 'default', qty: 1, orderId: newOrderId('a'), at: Date.now() },
          { kind: 'level', eventId: 'c', typeId: 'default' },
        );
        const mixed = await counted(batch);
        // (and, sent with the scripts, the order index's bounds: the batch may make orders on a and b)
        expect(mixed).toMatchObject({ scripts: 3, reads: 1, writes: 0, hints: 1, others: 0 });
        const listed = mixed.decisions[50]!;
        expect(listed.kind === 'events' && listed.events.map((event) => [event.id, eventSold(event)])).toEqual([
          ['a', 25],
          ['b', 25],
          ['c', 0],
        ]);

        // The flash-sale batch: one event, one call, no index (but the order index's bound, sent with it).
        expect(await counted(Array.from({ length: 100 }, () => buy('a')))).toMatchObject({
          scripts: 1,
          reads: 0,
          writes: 0,
          hints: 1,
          others: 0,
        });
        // A put: its event's call, then one ZADD.
        expect(await counted([{ kind: 'put-event', eventId: 'd', definition }, buy('d'), buy('a')])).toMatchObject({
          scripts: 2,
          reads: 0,
          writes: 1,
          hints: 1,
          others: 0,
        });
        expect(await privateObserver!.zrange(eventIndexKey(keyPrefix), 0, -1)).toEqual(['a', 'b', 'c', 'd']);

        // Holds: a call whose new hold is its event's earliest deadline is followed by one call of the hold
        // index script for all such events; later deadlines, confirms and releases need none.
        const hold = (eventId: string, ttlMs: number): Extract<StockCommand, { kind: 'hold' }> => ({
          kind: 'hold',
          eventId,
          items: [{ typeId: 'default', qty: 1 }],
          buyer: null,
          holdId: newHoldId(eventId),
          at: Date.now(),
          ttlMs,
        });
        const [soon, later, other] = [hold('c', 300), hold('c', 60_000), hold('d', 60_000)];
        const holds = await counted([soon, later, other, buy('b')]);
        expect(holds).toMatchObject({ scripts: 3 + 1, reads: 0, writes: 0, hints: 1, others: 0 });
        expect(holds.decisions.map((decision) => decision.kind)).toEqual(['hold', 'hold', 'hold', 'order']);
        const deadlines = crossEventKey(keyPrefix, 'hold-deadlines');
        expect(await privateObserver!.zrange(deadlines, 0, -1, 'WITHSCORES')).toEqual([
          'c',
          String(soon.at + 300),
          'd',
          String(other.at + 60_000),
        ]);
        const confirm: StockCommand = {
          kind: 'confirm',
          holdId: later.holdId,
          orderId: newOrderId('c'),
          at: Date.now(),
        };
        const unindexed = await counted([hold('c', 120_000), confirm, { kind: 'release', holdId: other.holdId }]);
        expect(unindexed).toMatchObject({ scripts: 2, hints: 1, others: 0 });
        expect(unindexed.decisions.map((decision) => decision.kind)).toEqual(['hold', 'order', 'hold']);

        // A sweep: the lease script (which also reads the due events), one call per due event, one index call.
        await sleep(400);
        const sweep = await counted([{ kind: 'expire', limit: 100 }]);
        expect(sweep).toMatchObject({
          decisions: [{ kind: 'expired', count: 1 }],
          scripts: 1 + 1 + 1,
          hints: 0,
          others: 0,
        });
        // c's entry moved on to its next deadline; d's stays until a sweep finds it due (its hold was released).
        expect(await privateObserver!.zrange(deadlines, 0, -1)).toEqual(['d', 'c']);
        expect(Number(await privateObserver!.zscore(deadlines, 'c'))).toBeGreaterThan(soon.at + 100_000);
        // Another replica's sweep while this one holds the lease: one small call, nothing visited.
        const second = await RedisStockStore.create({ url: server!.url, keyPrefix, timeoutMs: 2_000 });
        try {
          await second.open([]);
          expect(await counted([{ kind: 'expire', limit: 100 }], second)).toMatchObject({
            decisions: [{ kind: 'expired', count: 0 }],
            scripts: 1,
            others: 0,
          });
        } finally {
          await second.close();
        }

        // The dashboard's reads: plain reads before the scripts, none of them a script call.
        const dashboard = await counted([
          { kind: 'recent-orders', eventId: null, limit: 3 },
          { kind: 'expiring-holds', eventId: 'c', limit: 5 },
        ]);
        expect(dashboard).toMatchObject({ scripts: 0, writes: 0, hints: 0 });
        expect(dashboard.decisions).toMatchObject([
          { kind: 'orders', orders: [{ eventId: 'c' }, {}, {}] },
          {
            kind: 'holds',
            holds: [{ eventId: 'c', expiresAt: Number(await privateObserver!.zscore(deadlines, 'c')) }],
          },
        ]);
      } finally {
        monitor.disconnect();
        await store.close();
      }
    });

    it('frozen (SIGSTOP): reserves fail within about timeoutMs; the commands Redis runs after SIGCONT take nothing; it recovers', async () => {
      const keyPrefix = `${PREFIX}-frozen`;
      const { actor, store } = await replica({ url: server!.url, keyPrefix, timeoutMs: 300, initial: 100 });
      expect((await actor.reserve(2)).success).toBe(true);
      const before = await readStock(privateObserver!, keyPrefix);
      expect(before).toEqual({ remaining: 98, sold: 2 });
      const scriptsBefore = await scriptCalls(privateObserver!);

      server!.freeze();
      const frozen: Array<Awaited<ReturnType<typeof settle>>> = [];
      try {
        // Three batches while frozen, each a script call sitting in the frozen server's socket.
        for (let round = 0; round < 3; round++) {
          const started = performance.now();
          const batch = await Promise.all([
            ...Array.from({ length: 5 }, (_, i) =>
              settle(actor.reserve(1, { idempotencyKey: `frozen-${round}-${i}` })),
            ),
            settle(actor.reserve(3)),
            settle(actor.adjust('add', 1_000)),
            settle(actor.purchase('default', [{ typeId: 'default', qty: 2 }], { idempotencyKey: `order-${round}` })),
            settle(actor.putEvent('frozen-new', defaultEventDefinition(5))),
          ]);
          const elapsed = performance.now() - started;
          expect(elapsed, `round ${round} took ${elapsed} ms`).toBeLessThan(3_000);
          frozen.push(...batch);
        }
        for (const result of frozen) {
          expect(result.error, `answered ${JSON.stringify(result.value)}`).toBeInstanceOf(StoreUnavailableError);
        }
        expect(actor.storeHealth().writable).toBe(false);
        expect(await store.checkWritable()).toBe(false);
      } finally {
        server!.thaw();
      }

      // Redis now runs the frozen scripts, in order, before anything sent after them on that connection
      // (checkWritable's TIME): once it answers, every late script has run, and found its deadline passed.
      await waitUntil('checkWritable() after SIGCONT', () => store.checkWritable(), 5_000);
      expect(actor.storeHealth().writable).toBe(true);
      // The three frozen batches did reach Redis and run (late)...
      expect(await scriptCalls(privateObserver!)).toBeGreaterThanOrEqual(scriptsBefore + 3);
      // ...and took nothing: not the reserves, not the +1000, no order, no new event, no idempotency key.
      expect(await readStock(privateObserver!, keyPrefix)).toEqual(before);
      expect(await privateObserver!.keys(`*${keyPrefix}*idem*`)).toEqual([]);
      // (The one order is the reserve's before the freeze: 1.0.0 reserves are orders.)
      expect(await privateObserver!.hlen(`{${keyPrefix}:default}:orders`)).toBe(1);
      expect(await privateObserver!.exists(eventKey(keyPrefix, 'frozen-new'))).toBe(0);
      expect(await privateObserver!.zrange(eventIndexKey(keyPrefix), 0, -1)).toEqual(['default']);

      // Recovered: reserves succeed, and a key first sent while frozen gets a fresh decision.
      expect(await actor.reserve(1, { idempotencyKey: 'frozen-0-0' })).toMatchObject({
        success: true,
        remaining: 97,
        tickets: { first: 3, last: 3 },
        replayed: false,
      });
      expect(await actor.level()).toEqual({ remaining: 97, sold: 3 });
    });

    it('killed (SIGKILL): reserves fail fast; restarted on the same port, the store reconnects by itself', async () => {
      const keyPrefix = `${PREFIX}-killed`;
      const { actor, store } = await replica({ url: server!.url, keyPrefix, timeoutMs: 300, initial: 100 });
      expect((await actor.reserve(1)).success).toBe(true);

      await server!.kill();
      // The first command may be written before the client sees the close; it still fails within the timeout.
      const firstAfterKill = await settle(actor.reserve(1));
      expect(firstAfterKill.error).toBeInstanceOf(StoreUnavailableError);
      expect(firstAfterKill.ms).toBeLessThan(2_000);
      await waitUntil('the store to notice the lost connection', async () => !actor.storeHealth().writable, 2_000);
      // Disconnected: no offline queue, no waiting for a reconnect.
      for (let i = 0; i < 5; i++) {
        const attempt = await settle(actor.reserve(1, { idempotencyKey: `dead-${i}` }));
        expect(attempt.error).toBeInstanceOf(StoreUnavailableError);
        expect(attempt.ms, 'a reserve with Redis down should not wait').toBeLessThan(1_000);
      }
      expect(await store.checkWritable()).toBe(false);

      await server!.restart();
      const recoveredIn = await waitUntil('checkWritable() after the restart', () => store.checkWritable(), 10_000);
      expect(recoveredIn).toBeLessThan(10_000);
      expect(actor.storeHealth().writable).toBe(true);

      // The new server holds no data: the event is unknown, and nothing is decided from local memory.
      await expect(actor.reserve(1)).rejects.toBeInstanceOf(UnknownEventError);
      // Another replica starting seeds it again; this one serves it at once.
      const reseeding = await RedisStockStore.create({ url: server!.url, keyPrefix, timeoutMs: 1_000 });
      await reseeding.open(seed(50));
      await reseeding.close();
      expect(await actor.reserve(2)).toMatchObject({ success: true, remaining: 48, tickets: { first: 1, last: 2 } });
      expect(await readStock(privateObserver!, keyPrefix)).toEqual({ remaining: 48, sold: 2 });
    });
  });
});
