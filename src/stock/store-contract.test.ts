/**
 * The contract every store keeps: one table of cases, each a sequence of
 * batches with the decisions they must get, run against the memory store,
 * the SQLite store and the Redis store (whose batch script mirrors
 * rules.ts). A store that decides differently from the rules fails here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/logger.ts';
import { RedisStockStore } from '../node/redis-stock-store.ts';
import { SqliteStockStore } from '../node/sqlite-stock-store.ts';
import { deleteKeysWithPrefix, redisGate, uniquePrefix } from '../../test/support/redis.ts';
import { makeTempDir, removeDir } from '../../test/support/http-json.ts';
import type { StockCommand, StockDecision } from './model.ts';
import { MemoryStockStore, type SeedStock, type StockStore } from './store.ts';

interface Step {
  batch: StockCommand[];
  expect: StockDecision[];
  /** Wait this long before the batch (for key expiry, on the store's own clock). */
  afterMs?: number;
}

interface ContractCase {
  name: string;
  seed: SeedStock[];
  /** Idempotency key TTL; default one hour. */
  ttlMs?: number;
  steps: Step[];
}

const stock = (capacity: number, eventId = 'default', typeId = 'default'): SeedStock => ({ eventId, typeId, capacity });
const reserve = (qty: number, key?: string, eventId = 'default', typeId = 'default'): StockCommand => ({
  kind: 'reserve',
  eventId,
  typeId,
  qty,
  ...(key === undefined ? {} : { key }),
});
const level = (eventId = 'default', typeId = 'default'): StockCommand => ({ kind: 'level', eventId, typeId });
const adjust = (op: 'set' | 'add', qty: number, eventId = 'default', typeId = 'default'): StockCommand => ({
  kind: 'adjust',
  eventId,
  typeId,
  op,
  qty,
});
const sold = (remaining: number, first: number, last: number, id = `default-${first}`): StockDecision => ({
  kind: 'reserved',
  outcome: { success: true, remaining, reservationId: id, tickets: { first, last } },
  replayed: false,
});
const replayed = (decision: StockDecision): StockDecision => ({ ...decision, replayed: true }) as StockDecision;
const insufficient = (remaining: number): StockDecision => ({
  kind: 'reserved',
  outcome: { success: false, remaining },
  replayed: false,
});
const levelIs = (remaining: number, soldCount: number): StockDecision => ({
  kind: 'level',
  level: { remaining, sold: soldCount },
});
const adjusted = (remaining: number, soldCount: number): StockDecision => ({
  kind: 'adjusted',
  level: { remaining, sold: soldCount },
});
const refused = (reason: Extract<StockDecision, { kind: 'refused' }>['reason']): StockDecision => ({
  kind: 'refused',
  reason,
});

const CASES: ContractCase[] = [
  {
    name: 'a reserve takes all it asks for or nothing, in arrival order, numbering tickets from 1',
    seed: [stock(5)],
    steps: [
      {
        batch: [reserve(2), reserve(4), reserve(3), reserve(1), level()],
        expect: [sold(3, 1, 2), insufficient(3), sold(0, 3, 5), insufficient(0), levelIs(0, 5)],
      },
      { batch: [reserve(1)], expect: [insufficient(0)] },
    ],
  },
  {
    name: 'a read sees exactly the commands before it in the batch',
    seed: [stock(10)],
    steps: [
      {
        batch: [level(), reserve(3), level(), reserve(2), level()],
        expect: [levelIs(10, 0), sold(7, 1, 3), levelIs(7, 3), sold(5, 4, 5), levelIs(5, 5)],
      },
    ],
  },
  {
    name: 'an adjustment sets or adds to what remains, never below what is sold, and numbers continue',
    seed: [stock(4)],
    steps: [
      {
        batch: [reserve(3), adjust('add', 2), adjust('add', -4), adjust('set', 0)],
        expect: [sold(1, 1, 3), adjusted(3, 3), refused('negative-stock'), adjusted(0, 3)],
      },
      {
        batch: [reserve(1), adjust('set', 2), reserve(2), level()],
        expect: [insufficient(0), adjusted(2, 3), sold(0, 4, 5), levelIs(0, 5)],
      },
      { batch: [adjust('add', Number.MAX_SAFE_INTEGER)], expect: [refused('negative-stock')] },
    ],
  },
  {
    name: 'commands for a stock the store does not hold are refused, and the others decided',
    seed: [stock(3)],
    steps: [
      {
        batch: [reserve(1, undefined, 'nope'), level('default', 'vip'), adjust('set', 5, 'nope'), reserve(1)],
        expect: [refused('unknown-stock'), refused('unknown-stock'), refused('unknown-stock'), sold(2, 1, 1)],
      },
    ],
  },
  {
    name: 'stocks are apart: each numbers its own tickets',
    seed: [stock(3), stock(2, 'gala')],
    steps: [
      {
        batch: [reserve(2, undefined, 'gala'), reserve(2), reserve(1, undefined, 'gala'), level('gala')],
        expect: [sold(0, 1, 2, 'gala.default-1'), sold(1, 1, 2), insufficient(0), levelIs(0, 2)],
      },
    ],
  },
  {
    name: 'a key replays its first answer, success or not, and sells nothing more',
    seed: [stock(3)],
    steps: [
      { batch: [reserve(2, 'a'), reserve(5, 'big')], expect: [sold(1, 1, 2), insufficient(1)] },
      {
        batch: [reserve(2, 'a'), reserve(1), reserve(5, 'big')],
        expect: [replayed(sold(1, 1, 2)), sold(0, 3, 3), replayed(insufficient(1))],
      },
      { batch: [level()], expect: [levelIs(0, 3)] },
    ],
  },
  {
    name: 'a key with another request is refused; a key twice in one batch is in flight',
    seed: [stock(10)],
    steps: [
      { batch: [reserve(1, 'k')], expect: [sold(9, 1, 1)] },
      {
        batch: [reserve(2, 'k'), reserve(1, 'twice'), reserve(1, 'twice'), level()],
        expect: [refused('key-reused'), sold(8, 2, 2), refused('key-in-flight'), levelIs(8, 2)],
      },
      { batch: [reserve(1, 'twice')], expect: [replayed(sold(8, 2, 2))] },
    ],
  },
  {
    name: 'keys are per event: one key on two events is two keys',
    seed: [stock(5), stock(5, 'gala')],
    steps: [
      {
        batch: [reserve(1, 'same'), reserve(2, 'same', 'gala')],
        expect: [sold(4, 1, 1), sold(3, 1, 2, 'gala.default-1')],
      },
      {
        batch: [reserve(2, 'same', 'gala'), reserve(1, 'same')],
        expect: [replayed(sold(3, 1, 2, 'gala.default-1')), replayed(sold(4, 1, 1))],
      },
    ],
  },
  {
    name: 'a key is forgotten once its TTL has passed, and decided afresh',
    seed: [stock(10)],
    ttlMs: 1_000,
    steps: [
      { batch: [reserve(1, 'short')], expect: [sold(9, 1, 1)] },
      { batch: [reserve(1, 'short')], expect: [replayed(sold(9, 1, 1))] },
      { batch: [reserve(1, 'short'), reserve(2, 'short2')], afterMs: 1_300, expect: [sold(8, 2, 2), sold(6, 3, 4)] },
    ],
  },
];

interface StoreUnderTest {
  name: string;
  skip?: boolean;
  make(): Promise<StockStore>;
  cleanup?(): Promise<void>;
}

const redis = await redisGate('the store contract on Redis');
const redisPrefix = uniquePrefix('contract');
const dataDirs: string[] = [];
let redisStores = 0;

const STORES: StoreUnderTest[] = [
  { name: 'memory', make: async () => new MemoryStockStore() },
  {
    name: 'sqlite',
    make: async () => {
      const dir = makeTempDir('ticket-system-contract');
      dataDirs.push(dir);
      return new SqliteStockStore({ dataDir: dir, maxKeys: 1_000, logger: silentLogger });
    },
    async cleanup() {
      for (const dir of dataDirs.splice(0)) removeDir(dir);
    },
  },
  {
    name: 'redis',
    skip: redis.skip,
    // A prefix per case: every case starts on an empty stock.
    make: () =>
      RedisStockStore.create({ url: redis.url, keyPrefix: `${redisPrefix}-${redisStores++}`, timeoutMs: 2_000 }),
    async cleanup() {
      await deleteKeysWithPrefix(redis.url, redisPrefix);
    },
  },
];

describe.each(STORES)('the store contract on $name', (under) => {
  beforeAll(() => {
    if (under.name === 'redis') redis.assertReachable();
  });
  afterAll(() => under.cleanup?.());

  it.skipIf(under.skip).each(CASES)('$name', async (contractCase) => {
    const store = await under.make();
    await store.open(contractCase.seed);
    try {
      for (const [index, step] of contractCase.steps.entries()) {
        if (step.afterMs) await new Promise((resolve) => setTimeout(resolve, step.afterMs));
        const decisions = await store.decide(step.batch, {
          now: Date.now(),
          idempotencyTtlMs: contractCase.ttlMs ?? 3_600_000,
        });
        expect(decisions, `step ${index + 1}`).toEqual(step.expect);
      }
    } finally {
      await store.close();
    }
  });
});
