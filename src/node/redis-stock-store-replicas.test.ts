/**
 * RedisStockStore with `waitReplicas` (REDIS_WAIT_REPLICAS) on a primary and
 * its replica of this file's own (redis-server processes on free ports, see
 * test/support/redis-topologies.ts), with the replica frozen (SIGSTOP) or
 * killed:
 *
 * - a batch that only replays or reads is answered only once the replica has
 *   everything it read: the replay of an order or a hold whose own WAIT timed
 *   out is 503 `outcomeUnknown` from another store (another vacancy process)
 *   too, not a success that a failover could undo (on Redis 7.2 and later,
 *   where WAIT covers only a connection's own last write, it was one);
 * - readiness (checkStore, as /api/v1/ready calls it) is 503 on every check
 *   while the replica is gone or silent, whatever else succeeds meanwhile,
 *   and 200 again once it is back;
 * - starting on a fresh Redis without the replica names REDIS_WAIT_REPLICAS.
 *
 * `redis-server` not installed: skipped with a loud warning, except under
 * CI=true, where it fails.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../../test/support/processes.ts';
import {
  DURABLE_ARGS,
  redisProcessesGate,
  startRedisNode,
  startRedisCluster,
  startReplicatedRedis,
  waitFor,
  type ReplicatedRedisUnderTest,
} from '../../test/support/redis-topologies.ts';
import {
  defaultEventDefinition,
  newHoldId,
  newOrderId,
  type StockCommand,
  type StockDecision,
} from '../stock/model.ts';
import type { SeedEvent } from '../stock/store.ts';
import { StockActor } from '../vacancy/stock-actor.ts';
import type { RedisTopology } from './redis-connection.ts';
import { RedisStockStore, ReplicaWaitError } from './redis-stock-store.ts';

const gate = redisProcessesGate('src/node/redis-stock-store-replicas.test.ts');

const seed = (capacity: number): SeedEvent[] => [{ eventId: 'default', definition: defaultEventDefinition(capacity) }];

/** The settled value or error of a promise, so a test can look at both. */
async function settle<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  try {
    return { value: await promise };
  } catch (error) {
    return { error };
  }
}

/** A keyed hold of one ticket of the default event for 10 minutes. */
function keyedHold(key: string): Extract<StockCommand, { kind: 'hold' }> {
  return {
    kind: 'hold',
    eventId: 'default',
    items: [{ typeId: 'default', qty: 1 }],
    buyer: null,
    holdId: newHoldId('default'),
    at: Date.now(),
    ttlMs: 600_000,
    key,
  };
}

/** A retry of `hold`: the same key and request, a new id (the first one's is kept). */
function retryOf(hold: Extract<StockCommand, { kind: 'hold' }>): StockCommand {
  return { ...hold, holdId: newHoldId('default'), at: Date.now() };
}

/** Expects `answer` to fail as a batch the replicas did not confirm: 503 outcomeUnknown, never a success. */
async function expectUnconfirmed(answer: Promise<unknown>, what: string): Promise<void> {
  const { value, error } = await settle(answer);
  expect(error, `${what} answered ${JSON.stringify(value)}`).toBeInstanceOf(ReplicaWaitError);
  expect(error).toMatchObject({ outcomeUnknown: true });
}

describe.skipIf(gate.skip)('RedisStockStore with waitReplicas, on a primary and its replica', () => {
  let redis: ReplicatedRedisUnderTest | undefined;
  const stores: RedisStockStore[] = [];
  const actors: StockActor[] = [];
  let prefixes = 0;

  /** A store (a vacancy process), by default on the primary, with WAIT for one replica. */
  async function openStore(
    keyPrefix: string,
    waitTimeoutMs: number,
    seedEvents: SeedEvent[],
    where: RedisTopology = { url: redis!.url },
  ) {
    const store = await RedisStockStore.create({
      ...where,
      keyPrefix,
      timeoutMs: 2_000,
      waitReplicas: 1,
      waitTimeoutMs,
    });
    stores.push(store);
    await store.open(seedEvents);
    return store;
  }

  async function decideOne(store: RedisStockStore, command: StockCommand): Promise<StockDecision> {
    const [decision] = await store.decide([command], { now: Date.now(), idempotencyTtlMs: 60_000 });
    return decision!;
  }

  beforeAll(async () => {
    gate.assertRunnable();
    redis = await startReplicatedRedis();
    // A replica just online can take up to its 1 s ACK period to answer the first WAIT.
    const primary = redis.primary.client();
    await primary.set('warm-up', '1');
    await waitFor('the replica to confirm a write', async () => (await primary.wait(1, 2_000)) >= 1);
  });

  afterEach(async () => {
    redis?.replica.thaw();
    await Promise.all(actors.splice(0).map((actor) => actor.close()));
    await Promise.all(stores.splice(0).map((store) => store.close()));
  });

  afterAll(async () => {
    await redis?.stop();
  });

  it('the replay of an order or hold the replica does not have yet is 503 outcomeUnknown from another store too, and the order or hold once the replica has it', async () => {
    const keyPrefix = `replay-${prefixes++}`;
    const [orders, holds] = ['orders', 'holds'].map((name) => `{${keyPrefix}:default}:${name}`) as [string, string];
    const primary = redis!.primary.client();
    // Vacancy process A, and B whose connection is older than A's writes (it has served a batch).
    const writer = await openStore(keyPrefix, 1_000, seed(10));
    const replayer = await openStore(keyPrefix, 300, []);
    expect(await decideOne(replayer, { kind: 'get-event', eventId: 'default' })).toMatchObject({ kind: 'event' });

    const purchase = {
      kind: 'purchase',
      eventId: 'default',
      items: [{ typeId: 'default', qty: 2 }],
      buyer: null,
      orderId: newOrderId('default'),
      at: Date.now(),
      key: 'purchase-retried-after-503',
    } satisfies StockCommand;
    const hold = keyedHold('hold-retried-after-503');
    // Retries carry the same keys and requests, with new ids (the first ones' are kept). The purchase's comes
    // from a process whose clock is not ahead of A's: its order index hint (ZADD GT) then changes nothing,
    // and B's batch writes nothing at all; a hold has no hint.
    const retries = (): StockCommand[] => [{ ...purchase, orderId: newOrderId('default') }, retryOf(hold)];

    redis!.replica.freeze();
    try {
      // A's batch writes the order and the hold; the replica cannot confirm them: 503 outcomeUnknown.
      await expectUnconfirmed(writer.decide([purchase, hold], { now: Date.now(), idempotencyTtlMs: 60_000 }), 'A');
      expect([await primary.hexists(orders, purchase.orderId), await primary.hexists(holds, hold.holdId)]).toEqual([
        1, 1,
      ]);

      // The caller retries on B: B's script finds each key and replays, writing nothing of its own. The
      // answer must wait for the replica all the same (it lacks the order and the hold), and cannot.
      await primary.del(`{${keyPrefix}}:synced`);
      for (const command of retries()) await expectUnconfirmed(decideOne(replayer, command), command.kind);
      // What makes B's WAIT cover A's writes: a marker written after the script. (Redis 7.0 moves a
      // connection's WAIT offset on any command, 7.2 and later only on a write: without the marker both
      // replays above are successes there.)
      expect(await primary.exists(`{${keyPrefix}}:synced`)).toBe(1);

      // Nor does B answer reads of what the replica lacks: the order, the hold, the event, the dashboard.
      for (const command of [
        { kind: 'get-order', orderId: purchase.orderId },
        { kind: 'get-hold', holdId: hold.holdId },
        { kind: 'get-event', eventId: 'default' },
        { kind: 'recent-orders', eventId: null, limit: 5 },
      ] satisfies StockCommand[]) {
        await expectUnconfirmed(decideOne(replayer, command), command.kind);
      }
    } finally {
      redis!.replica.thaw();
    }

    // The replica catches up; the retries now get the first order and hold, replayed, and nothing more is taken.
    await waitFor(
      'the replica to have the order and the hold',
      async () => (await redis!.replica.client().hexists(holds, hold.holdId)) === 1,
      10_000,
    );
    const [order, held] = await replayer.decide(retries(), { now: Date.now(), idempotencyTtlMs: 60_000 });
    expect(order).toMatchObject({ kind: 'order', replayed: true, order: { id: purchase.orderId } });
    expect(held).toMatchObject({ kind: 'hold', replayed: true, hold: { id: hold.holdId } });
    expect(await decideOne(replayer, { kind: 'level', eventId: 'default', typeId: 'default' })).toMatchObject({
      level: { remaining: 7, sold: 2 },
    });
  });

  it('readiness is 503 on every check while the replica is killed or frozen, under traffic and sweeps, and 200 once it is back', async () => {
    const keyPrefix = `ready-${prefixes++}`;
    const store = await RedisStockStore.create({
      url: redis!.url,
      keyPrefix,
      timeoutMs: 2_000,
      waitReplicas: 1,
      waitTimeoutMs: 300,
    });
    stores.push(store);
    // (Opened by the actor.) Its sweeps run every 50 ms and, with nothing due, read and write nothing: they succeed without replicas.
    const actor = await StockActor.start(store, seed(1_000_000), { sweepEveryMs: 50 });
    actors.push(actor);

    // Traffic through a second process, as another vacancy replica's purchases and reads.
    const other = await openStore(keyPrefix, 300, []);
    let traffic = true;
    const load = (async () => {
      for (let i = 0; traffic; i++) {
        await settle(
          decideOne(
            other,
            i % 2 === 0
              ? {
                  kind: 'purchase',
                  eventId: 'default',
                  items: [{ typeId: 'default', qty: 1 }],
                  buyer: null,
                  orderId: newOrderId('default'),
                  at: Date.now(),
                }
              : { kind: 'get-event', eventId: 'default' },
          ),
        );
        await sleep(10);
      }
    })();

    /**
     * Waits (within `withinMs`) for readiness to turn `ready`, then asks it `times` times more, 100 ms
     * apart: `ready` on every one. Answers what each said.
     */
    const readiness = async (ready: boolean, withinMs: number, times: number) => {
      const check = async () => (await actor.checkStore()).writable === ready;
      await waitFor(`readiness to turn ${ready ? 200 : 503}`, check, withinMs);
      const seen: Array<{ writable: boolean; error?: string }> = [];
      for (let i = 0; i < times; i++) {
        const { writable, error } = await actor.checkStore();
        seen.push({ writable, ...(error === undefined ? {} : { error }) });
        await sleep(100);
      }
      expect(
        seen.filter((answer) => answer.writable !== ready),
        JSON.stringify(seen),
      ).toEqual([]);
      return seen;
    };

    try {
      await readiness(true, 1_000, 3);

      // Killed: the primary drops it at once.
      await redis!.replica.kill();
      const killed = await readiness(false, 5_000, 15);
      expect(killed[0]!.error).toMatch(/0 replicas online, fewer than the 1 REDIS_WAIT_REPLICAS waits for/);
      expect(actor.storeHealth()).toMatchObject({ writable: false });

      await redis!.replica.restart();
      await readiness(true, 20_000, 10);

      // Frozen: still connected for Redis, but silent; 503 once its last acknowledgement is over 3 s old.
      redis!.replica.freeze();
      const frozen = await readiness(false, 8_000, 15);
      expect(frozen[0]!.error).toMatch(/\(1 more connected but silent for over 3 s\)/);

      redis!.replica.thaw();
      await readiness(true, 10_000, 10);
      expect(await actor.level()).toMatchObject({ sold: expect.any(Number) });
    } finally {
      traffic = false;
      await load;
    }
  });

  it('on a Redis Cluster too: a replay on a shard whose replica is frozen is 503 outcomeUnknown, and so are the dashboard reads of that shard', async () => {
    const cluster = await startRedisCluster({ primaries: 3, replicasPerPrimary: 1 });
    try {
      const keyPrefix = `cluster-${prefixes++}`;
      const where = { cluster: cluster.nodes.map((node) => ({ host: '127.0.0.1', port: node.port })) };
      const writer = await openStore(keyPrefix, 2_000, seed(10), where);
      const replayer = await openStore(keyPrefix, 300, [], where);
      expect(await decideOne(replayer, { kind: 'get-event', eventId: 'default' })).toMatchObject({ kind: 'event' });
      // The event's shard, and its replica.
      const primary = await cluster.primaryOf(`{${keyPrefix}:default}:event`);
      const replicaPort = Number(/^slave0:.*port=(\d+)/m.exec(await primary.client().info('replication'))?.[1]);
      const replica = cluster.replicas.find((node) => node.port === replicaPort)!;
      expect(replica).toBeDefined();

      const hold = keyedHold('cluster-hold');
      replica.freeze();
      try {
        await expectUnconfirmed(decideOne(writer, hold), 'A');
        await expectUnconfirmed(decideOne(replayer, retryOf(hold)), 'the replay');
        expect(await primary.client().exists(`{${keyPrefix}:default}:synced`)).toBe(1);
        // The dashboard's reads are plain reads on the event's shard: they wait for its replica too.
        await expectUnconfirmed(
          decideOne(replayer, { kind: 'expiring-holds', eventId: 'default', limit: 5 }),
          'a read',
        );
        // An id naming no event makes no marker key.
        expect(await decideOne(replayer, { kind: 'get-order', orderId: newOrderId('no-such-event') })).toMatchObject({
          kind: 'refused',
        });
        const nowhere = `{${keyPrefix}:no-such-event}:synced`;
        expect(await (await cluster.primaryOf(nowhere)).client().exists(nowhere)).toBe(0);
      } finally {
        replica.thaw();
      }
      await waitFor(
        'the replica to have the hold',
        async () => {
          await replica.client().call('READONLY'); // a Cluster replica answers reads only after READONLY
          return (await replica.client().hexists(`{${keyPrefix}:default}:holds`, hold.holdId)) === 1;
        },
        10_000,
      );
      expect(await decideOne(replayer, retryOf(hold))).toMatchObject({
        kind: 'hold',
        replayed: true,
        hold: { id: hold.holdId },
      });
    } finally {
      await Promise.all(stores.splice(0).map((store) => store.close()));
      await cluster.stop();
    }
  });

  it('starting on a fresh Redis whose replica is missing fails naming REDIS_WAIT_REPLICAS', async () => {
    const lone = await startRedisNode({ label: 'lone-primary', args: () => DURABLE_ARGS });
    try {
      // REDIS_TIMEOUT and REDIS_WAIT_TIMEOUT at their defaults (1 s each).
      const store = await RedisStockStore.create({
        url: `redis://127.0.0.1:${lone.port}`,
        keyPrefix: `fresh-${prefixes++}`,
        timeoutMs: 1_000,
        waitReplicas: 1,
        waitTimeoutMs: 1_000,
      });
      stores.push(store);
      const opened = await settle(store.open(seed(10)));
      expect(opened.error).toBeInstanceOf(Error);
      expect((opened.error as Error).message).toMatch(
        /could not create the seed events: ReplicaWaitError: 0 of the 1 replicas asked for \(REDIS_WAIT_REPLICAS\) confirmed the writes within 1000 ms \(REDIS_WAIT_TIMEOUT\)/,
      );
    } finally {
      await lone.stop();
    }
  });
});
