/**
 * The contract every store keeps: one table of cases, each a sequence of
 * batches with the decisions they must get, run against the memory store,
 * the SQLite store and the Redis store (whose batch script mirrors
 * rules.ts). A store that decides differently from the rules fails here.
 * The Redis store runs it three ways: on the shared Redis; on a Redis
 * Cluster of three primaries of this file's own (every script and command
 * on one slot, or the Cluster refuses it: CROSSSLOT); and on a primary with
 * a replica, waiting for the replica after each batch (REDIS_WAIT_REPLICAS=1,
 * where every write goes in a pipeline that ends with WAIT).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/logger.ts';
import { RedisStockStore } from '../node/redis-stock-store.ts';
import { SqliteStockStore } from '../node/sqlite-stock-store.ts';
import { deleteKeysWithPrefix, redisGate, uniquePrefix } from '../../test/support/redis.ts';
import {
  startRedisCluster,
  startReplicatedRedis,
  type RedisClusterUnderTest,
  type ReplicatedRedisUnderTest,
} from '../../test/support/redis-topologies.ts';
import { makeTempDir, removeDir } from '../../test/support/http-json.ts';
import { CONTRACT_CASES } from './store-contract.cases.ts';
import type { StockDecision } from './model.ts';
import { MemoryStockStore, type StockStore } from './store.ts';

interface StoreUnderTest {
  name: string;
  skip?: boolean;
  make(): Promise<StockStore>;
  cleanup?(): Promise<void>;
}

const redis = await redisGate('the store contract on Redis', { needServerBinary: true });
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
  {
    name: 'redis cluster',
    skip: redis.skip,
    async make() {
      cluster ??= await startRedisCluster({ primaries: 3 });
      return RedisStockStore.create({
        cluster: cluster.nodes.map((node) => ({ host: '127.0.0.1', port: node.port })),
        keyPrefix: `${redisPrefix}-${redisStores++}`,
        timeoutMs: 2_000,
      });
    },
    async cleanup() {
      await cluster?.stop();
    },
  },
  {
    name: 'redis with WAIT for a replica',
    skip: redis.skip,
    async make() {
      replicated ??= await startReplicatedRedis();
      return RedisStockStore.create({
        url: replicated.url,
        keyPrefix: `${redisPrefix}-${redisStores++}`,
        timeoutMs: 2_000,
        waitReplicas: 1,
        waitTimeoutMs: 2_000,
      });
    },
    async cleanup() {
      await replicated?.stop();
    },
  },
];
let cluster: RedisClusterUnderTest | undefined;
let replicated: ReplicatedRedisUnderTest | undefined;

describe.each(STORES)('the store contract on $name', (under) => {
  beforeAll(() => {
    if (under.name.startsWith('redis')) redis.assertReachable();
  });
  afterAll(() => under.cleanup?.());

  it.skipIf(under.skip).each(CONTRACT_CASES)('$name', async (contractCase) => {
    const store = await under.make();
    await store.open(contractCase.seed);
    const start = Date.now();
    try {
      for (const [index, step] of contractCase.steps.entries()) {
        if (step.afterMs) await new Promise((resolve) => setTimeout(resolve, step.afterMs));
        const decisions = await store.decide(shiftTimes(step.batch, start), {
          now: Date.now(),
          idempotencyTtlMs: contractCase.ttlMs ?? 3_600_000,
        });
        expect(decisions.map(withoutDetail), `step ${index + 1}`).toEqual(shiftTimes(step.expect, start));
      }
    } finally {
      await store.close();
    }
  });
});

/** A refusal's reason and field are the contract; its detail is wording each store may phrase. */
function withoutDetail(decision: StockDecision): StockDecision {
  if (decision.kind !== 'refused') return decision;
  const { detail: _detail, ...rest } = decision;
  return rest;
}

/** The cases' times are ms after the case's start: `at`, `createdAt` and `expiresAt` moved onto the clock. */
function shiftTimes<T>(value: T, start: number): T {
  if (Array.isArray(value)) return value.map((item: unknown) => shiftTimes(item, start)) as T;
  if (value === null || typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) return value;
  return Object.fromEntries(
    Object.entries(value).map(([name, field]) => [
      name,
      ['at', 'createdAt', 'expiresAt'].includes(name) && typeof field === 'number'
        ? field + start
        : shiftTimes(field, start),
    ]),
  ) as T;
}
