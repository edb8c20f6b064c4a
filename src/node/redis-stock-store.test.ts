/**
 * RedisStockStore with the StockActor in front of it, against a real Redis:
 * the shared Redis at REDIS_URL (default redis://127.0.0.1:6379) for the
 * rules, and a private `redis-server` of this file's own for freezing
 * (SIGSTOP/SIGCONT) and killing. Two store instances on one key prefix stand
 * for two (or three) vacancy replicas sharing one stock. The rules
 * themselves are held by the store contract (src/stock/store-contract.test.ts);
 * this file checks what only a shared, remote store has: replicas, the key
 * layout, one script call per event per batch, deadlines, unknown outcomes,
 * and a frozen or killed Redis.
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
  eventOfOrderId,
  eventSold,
  newOrderId,
  type EventDefinition,
  type OrderRecord,
  type ReserveResult,
  type StockCommand,
} from '../stock/model.ts';
import type { SeedEvent } from '../stock/store.ts';
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

/** How many times the server has run each command, from INFO commandstats. */
async function commandCalls(client: Redis): Promise<Map<string, number>> {
  const info = await client.info('commandstats');
  return new Map([...info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)].map((match) => [match[1]!, Number(match[2])]));
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
        expect(answer.reservationId).toBe(`default-${answer.tickets!.first}`);
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

    // Ticket ranges are disjoint and cover 1..sold exactly.
    ranges.sort((x, y) => x.first - y.first);
    let next = 1;
    for (const range of ranges) {
      expect(range.first).toBe(next);
      next = range.last + 1;
    }
    expect(next - 1).toBe(sold);

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

    // The key layout: every key of an event under {prefix:eventId}, the index outside them all.
    const keys = (await observer!.keys(`*${keyPrefix}*`)).sort();
    expect(keys).toEqual(
      [
        eventKey(keyPrefix, 'default'),
        eventKey(keyPrefix, 'gala'),
        `{${keyPrefix}:gala}:idem:k1`,
        `{${keyPrefix}:gala}:orders`,
        eventIndexKey(keyPrefix),
      ].sort(),
    );
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
        const ranges = orders
          .filter((order) => order.eventId === eventId)
          .flatMap((order) => order.items.filter((line) => line.typeId === storedType.id))
          .sort((x, y) => x.first - y.first);
        let next = 1;
        for (const range of ranges) {
          expect(range.first).toBe(next);
          expect(range.last - range.first + 1).toBe(range.qty);
          next = range.last + 1;
        }
        expect(next - 1, `${eventId}/${storedType.id}`).toBe(storedType.sold);
      }
    }
    expect(await observer!.hlen(`{${keyPrefix}:spring}:orders`)).toBe(
      orders.filter((order) => order.eventId === 'spring').length,
    );
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
        const counted = async (batch: StockCommand[]) => {
          const before = await commandCalls(privateObserver!);
          const decisions = await store.decide(batch, options);
          const after = await commandCalls(privateObserver!);
          const delta = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
          return {
            decisions,
            scripts: delta('evalsha') + delta('eval'),
            reads: delta('zrangebylex'),
            writes: delta('zadd'),
          };
        };

        // 50 purchases on a and b, a list of all three events between them, reads and reserves: a, b, c once each.
        const batch: StockCommand[] = [];
        for (let i = 0; i < 25; i++) batch.push(buy('a', `ka-${i}`), buy('b'));
        batch.push({ kind: 'list-events', after: null, limit: 10 }, buy('a'), { kind: 'get-event', eventId: 'b' });
        batch.push(
          { kind: 'reserve', eventId: 'a', typeId: 'default', qty: 1 },
          { kind: 'level', eventId: 'c', typeId: 'default' },
        );
        const mixed = await counted(batch);
        expect(mixed).toMatchObject({ scripts: 3, reads: 1, writes: 0 });
        const listed = mixed.decisions[50]!;
        expect(listed.kind === 'events' && listed.events.map((event) => [event.id, eventSold(event)])).toEqual([
          ['a', 25],
          ['b', 25],
          ['c', 0],
        ]);

        // The flash-sale batch: one event, one call, no index.
        expect(await counted(Array.from({ length: 100 }, () => buy('a')))).toMatchObject({
          scripts: 1,
          reads: 0,
          writes: 0,
        });
        // A put: its event's call, then one ZADD.
        expect(await counted([{ kind: 'put-event', eventId: 'd', definition }, buy('d'), buy('a')])).toMatchObject({
          scripts: 2,
          reads: 0,
          writes: 1,
        });
        expect(await privateObserver!.zrange(eventIndexKey(keyPrefix), 0, -1)).toEqual(['a', 'b', 'c', 'd']);
      } finally {
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
      expect(await privateObserver!.exists(`{${keyPrefix}:default}:orders`, eventKey(keyPrefix, 'frozen-new'))).toBe(0);
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
