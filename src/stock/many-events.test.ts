/**
 * A store holds any number of events: 100,000 of them, created in batches of
 * 1,000, are listed back in id order a page at a time, and stay apart when
 * sold from. On every store.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/logger.ts';
import { RedisStockStore } from '../node/redis-stock-store.ts';
import { SqliteStockStore } from '../node/sqlite-stock-store.ts';
import { makeTempDir, removeDir } from '../../test/support/http-json.ts';
import { deleteKeysWithPrefix, redisGate, uniquePrefix } from '../../test/support/redis.ts';
import type { EventDefinition, StockCommand, StockDecision } from './model.ts';
import { MemoryStockStore, type StockStore } from './store.ts';

const EVENTS = 100_000;
const redis = await redisGate('100,000 events on Redis');
const redisPrefix = uniquePrefix('many-events');
const dirs: string[] = [];

afterAll(async () => {
  for (const dir of dirs) removeDir(dir);
  if (redis.reachable) await deleteKeysWithPrefix(redis.url, redisPrefix);
});

const definition = (n: number): EventDefinition => ({
  name: `Event ${n}`,
  capacity: 10,
  ticketTypes: [
    { id: 'general', name: 'General', capacity: 8, maxPerOrder: null },
    { id: 'vip', name: 'VIP', capacity: 4, maxPerOrder: 2 },
  ],
});
const idOf = (n: number) => `event-${String(n).padStart(6, '0')}`;
const options = () => ({ now: Date.now(), idempotencyTtlMs: 60_000 });

const STORES: Array<{ name: string; skip?: boolean; make(): Promise<StockStore> }> = [
  { name: 'memory', make: async () => new MemoryStockStore() },
  {
    name: 'sqlite',
    make: async () => {
      const dir = makeTempDir('ticket-system-many-events');
      dirs.push(dir);
      return new SqliteStockStore({ dataDir: dir, maxKeys: 1_000, logger: silentLogger });
    },
  },
  {
    name: 'redis',
    skip: redis.skip,
    make: () => RedisStockStore.create({ url: redis.url, keyPrefix: redisPrefix, timeoutMs: 10_000 }),
  },
];

describe.each(STORES)('$name store', (under) => {
  it.skipIf(under.skip)(
    `creates ${EVENTS} events, lists them all in id order and sells from each apart`,
    async () => {
      if (under.name === 'redis') redis.assertReachable();
      const store = await under.make();
      await store.open([]);
      try {
        // Created out of id order: the listing's order is the ids', not creation's.
        const order = Array.from({ length: EVENTS }, (_, n) => (n * 7_919) % EVENTS);
        for (let start = 0; start < EVENTS; start += 1_000) {
          const batch: StockCommand[] = order
            .slice(start, start + 1_000)
            .map((n) => ({ kind: 'put-event', eventId: idOf(n), definition: definition(n) }));
          const decisions = await store.decide(batch, options());
          expect(decisions.every((decision) => decision.kind === 'event' && decision.created)).toBe(true);
        }

        let listed = 0;
        let after: string | null = null;
        let previous = '';
        for (;;) {
          const [page] = (await store.decide([{ kind: 'list-events', after, limit: 100 }], options())) as [
            Extract<StockDecision, { kind: 'events' }>,
          ];
          for (const event of page.events) {
            expect(event.id > previous, `${event.id} after ${previous}`).toBe(true);
            previous = event.id;
          }
          listed += page.events.length;
          if (page.next === null) break;
          after = page.next;
        }
        expect(listed).toBe(EVENTS);
        expect(previous).toBe(idOf(EVENTS - 1));

        const sold = await store.decide(
          [0, 50_000, 99_999, 50_000].map((n, index): StockCommand => ({
            kind: 'purchase',
            eventId: idOf(n),
            items: [{ typeId: 'vip', qty: 2 }],
            buyer: null,
            orderId: `ord_manyeventstest${String(index).padStart(6, '0')}${idOf(n)}`,
            at: Date.now(),
          })),
          options(),
        );
        expect(
          sold.map((decision) => (decision.kind === 'order' ? decision.order.items[0]!.first : decision.kind)),
        ).toEqual([1, 1, 1, 3]);
        const [untouched] = await store.decide([{ kind: 'get-event', eventId: idOf(12_345) }], options());
        expect(untouched).toMatchObject({ kind: 'event', event: { types: [{ sold: 0 }, { sold: 0 }] } });
      } finally {
        await store.close();
      }
    },
    180_000,
  );
});
