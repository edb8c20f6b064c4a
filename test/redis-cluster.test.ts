/**
 * The Redis store on a Redis Cluster, with real processes on loopback: three
 * primaries, each with a replica (`redis-cli --cluster create … --cluster-yes`),
 * three vacancy replicas (STOCK_STORE=redis, REDIS_CLUSTER_NODES,
 * REDIS_WAIT_REPLICAS=1) behind one ticket service, 300 events created
 * through the admin API, and concurrent purchases and holds over all of them.
 *
 * - Every event's keys share its hash tag, so events spread over the shards:
 *   every primary holds some of the 300, ran batch scripts and WAITs, and its
 *   replica has the keys.
 * - Per event, the invariants hold: each type's sold + held within its
 *   capacity, all types within the event's cap, sold and held exactly what
 *   was acknowledged, ticket numbers 1..sold each handed out once.
 * - Listing pages through all 301 events (the index is one key); a hold
 *   confirmed and an order cancelled on events of every shard change their
 *   event as they should.
 *
 * The figures (events, keys and commands per shard) are printed to stderr
 * (`[redis-cluster]`). `redis-server` and `redis-cli` not installed: skipped
 * with a loud warning, except under CI=true, where it fails.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, stopAllServices, type Service } from './support/processes.ts';
import {
  commandCalls,
  redisProcessesGate,
  startRedisCluster,
  type RedisClusterUnderTest,
  type RedisNode,
} from './support/redis-topologies.ts';
import { call, type Reply } from './support/topologies.ts';

const gate = redisProcessesGate('test/redis-cluster.test.ts');

const ADMIN_TOKEN = `admin-${randomBytes(16).toString('hex')}`;
const PREFIX = `cluster-${randomBytes(4).toString('hex')}`;
const EVENTS = Array.from({ length: 300 }, (_, i) => `show-${String(i).padStart(3, '0')}`);
/** Each event: two types whose capacities (30 + 20) are above its cap (40). */
const DEFINITION = {
  capacity: 40,
  ticketTypes: [
    { id: 'stalls', name: 'Stalls', capacity: 30 },
    { id: 'circle', name: 'Circle', capacity: 20 },
  ],
};
const REQUESTS = 3_000;
const CONCURRENCY = 48;

interface Sent {
  kind: 'purchase' | 'hold';
  eventId: string;
  key: string;
  body: { items: Array<{ ticketType: string; qty: number }>; ttlSeconds?: number };
  reply: Reply;
}

interface EventView {
  id: string;
  capacity: number | null;
  sold: number;
  held: number;
  ticketTypes: Array<{ id: string; capacity: number; sold: number; held: number; available: number }>;
}

type Items = Array<{ ticketType: string; qty: number; tickets?: { first: number; last: number } }>;

function report(line: string): void {
  // Past vitest's capture of a passing test's output: quoted in docs/deployment.md.
  process.stderr.write(`[redis-cluster] ${line}\n`);
}

/** A deterministic pseudo-random sequence, so a failing run can be told apart from another. */
function sequence(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1_664_525 + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

describe.skipIf(gate.skip)('the Redis store on a 3-primary Redis Cluster, three vacancy replicas', () => {
  let cluster: RedisClusterUnderTest | undefined;
  const vacancies: Service[] = [];
  let ticket: Service | undefined;
  const sent: Sent[] = [];
  /** Answers to 503s asked again with their keys. */
  const retried = new Map<Sent, Reply>();

  beforeAll(async () => {
    gate.assertRunnable();
    cluster = await startRedisCluster({ primaries: 3, replicasPerPrimary: 1 });
    const env = {
      MODE: 'vacancy',
      STOCK_STORE: 'redis',
      REDIS_CLUSTER_NODES: cluster.nodesVariable,
      REDIS_KEY_PREFIX: PREFIX,
      REDIS_TIMEOUT: '2',
      REDIS_WAIT_REPLICAS: '1',
      REDIS_WAIT_TIMEOUT: '2',
      ADMIN_TOKEN,
    };
    vacancies.push(...(await Promise.all([startService(env), startService(env), startService(env)])));
    ticket = await startService({
      MODE: 'ticket',
      VACANCY_URL: vacancies.map((vacancy) => vacancy.url).join(','),
      VACANCY_TIMEOUT: '30',
    });
  }, 90_000);

  afterAll(async () => {
    await stopAllServices(3_000);
    await cluster?.stop();
  });

  it('300 events created through three replicas spread over all three shards', async () => {
    for (let start = 0; start < EVENTS.length; start += 30) {
      const created = await Promise.all(
        EVENTS.slice(start, start + 30).map((eventId, i) =>
          call(
            `${vacancies[(start + i) % 3]!.url}/api/v1/events/${eventId}`,
            'PUT',
            { name: `Show ${eventId}`, ...DEFINITION },
            { authorization: `Bearer ${ADMIN_TOKEN}` },
          ),
        ),
      );
      for (const reply of created) expect(reply.status, reply.text).toBe(201);
    }
    const perShard = new Map<RedisNode, number>();
    for (const eventId of EVENTS) {
      const primary = await cluster!.primaryOf(`{${PREFIX}:${eventId}}:event`);
      perShard.set(primary, (perShard.get(primary) ?? 0) + 1);
    }
    report(`events per shard: ${cluster!.primaries.map((p) => `${p.address} ${perShard.get(p) ?? 0}`).join(', ')}`);
    expect(cluster!.primaries.every((primary) => (perShard.get(primary) ?? 0) > 0)).toBe(true);
  });

  it(`${REQUESTS} concurrent purchases and holds over the 300 events: each event within its capacities, sold and held exactly what was acknowledged, every ticket number once`, async () => {
    const random = sequence(20);
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let i = next++; i < REQUESTS; i = next++) {
          const eventId = EVENTS[Math.floor(random() * EVENTS.length)]!;
          const kind = random() < 0.6 ? 'purchase' : 'hold';
          const both = random() < 0.3;
          const items = (both ? ['stalls', 'circle'] : [random() < 0.5 ? 'stalls' : 'circle']).map((ticketType) => ({
            ticketType,
            qty: 1 + Math.floor(random() * 3),
          }));
          const body = { items, ...(kind === 'hold' ? { ttlSeconds: 3_600 } : {}) };
          const key = `${PREFIX}-${i}`;
          const reply = await call(
            `${ticket!.url}/api/v1/events/${eventId}/${kind === 'hold' ? 'holds' : 'purchase'}`,
            'POST',
            body,
            { 'idempotency-key': key },
          );
          sent.push({ kind, eventId, key, body, reply });
        }
      }),
    );
    const odd = sent.filter((s) => ![201, 409, 503].includes(s.reply.status));
    expect(odd.map((s) => `${s.reply.status} ${s.reply.text.slice(0, 200)}`).slice(0, 5)).toEqual([]);
    const refusals = sent.filter((s) => s.reply.status === 409);
    for (const s of refusals) expect(s.reply.body.type, s.reply.text).toMatch(/insufficient-inventory$/);
    // A batch whose WAIT the replicas did not confirm in time is a 503 with outcomeUnknown; its retry tells.
    for (const s of sent.filter((u) => u.reply.status === 503)) {
      expect(s.reply.body.outcomeUnknown, s.reply.text).toBe(true);
      const again = await call(
        `${ticket!.url}/api/v1/events/${s.eventId}/${s.kind === 'hold' ? 'holds' : 'purchase'}`,
        'POST',
        s.body,
        { 'idempotency-key': s.key },
      );
      expect([201, 409], again.text).toContain(again.status);
      retried.set(s, again);
    }
    const answered = (s: Sent) => retried.get(s) ?? s.reply;
    const made = sent.filter((s) => answered(s).status === 201);
    expect(made.length).toBeGreaterThan(REQUESTS / 3);
    expect(refusals.length, 'the load sells some events out').toBeGreaterThan(0);

    let checked = 0;
    for (const eventId of EVENTS) {
      const reply = await call(`${ticket!.url}/api/v1/events/${eventId}`, 'GET');
      expect(reply.status, reply.text).toBe(200);
      const event = reply.body as unknown as EventView;
      expect(event.sold + event.held, eventId).toBeLessThanOrEqual(event.capacity!);
      for (const type of event.ticketTypes) {
        expect(type.sold + type.held, `${eventId}/${type.id}`).toBeLessThanOrEqual(type.capacity);
        const ofType = (kind: Sent['kind']) =>
          made
            .filter((s) => s.eventId === eventId && s.kind === kind)
            .flatMap((s) => s.body.items.filter((item) => item.ticketType === type.id))
            .reduce((sum, item) => sum + item.qty, 0);
        expect(type.sold, `${eventId}/${type.id} sold`).toBe(ofType('purchase'));
        expect(type.held, `${eventId}/${type.id} held`).toBe(ofType('hold'));
        const ranges = made
          .filter((s) => s.eventId === eventId && s.kind === 'purchase')
          .flatMap((s) => (answered(s).body.items as Items).filter((item) => item.ticketType === type.id))
          .map((item) => item.tickets!)
          .sort((a, b) => a.first - b.first);
        let expected = 1;
        for (const range of ranges) {
          expect(range.first, `${eventId}/${type.id}: ticket numbers`).toBe(expected);
          expected = range.last + 1;
        }
        expect(expected - 1, `${eventId}/${type.id}: every number sold once`).toBe(type.sold);
      }
      checked += 1;
    }
    expect(checked).toBe(EVENTS.length);
    report(
      `${REQUESTS} requests at ${CONCURRENCY} at once: ${made.filter((s) => s.kind === 'purchase').length} orders and ` +
        `${made.filter((s) => s.kind === 'hold').length} holds made, ${refusals.length} refused (sold out), ` +
        `${retried.size} answered 503 outcomeUnknown first (a WAIT not confirmed in time)`,
    );
  });

  it('lists all 301 events a page at a time; confirms a hold and cancels an order on every shard', async () => {
    const listed: string[] = [];
    let after: string | undefined;
    do {
      const page = await call(`${ticket!.url}/api/v1/events?limit=100${after ? `&after=${after}` : ''}`, 'GET');
      expect(page.status, page.text).toBe(200);
      listed.push(...(page.body.events as Array<{ id: string }>).map((event) => event.id));
      after = page.body.next as string | undefined;
    } while (after);
    expect(listed).toEqual(['default', ...EVENTS]);

    const answered = (s: Sent) => retried.get(s) ?? s.reply;
    const touched = new Set<RedisNode>();
    for (const eventId of EVENTS.slice(0, 60)) {
      const hold = sent.find((s) => s.eventId === eventId && s.kind === 'hold' && answered(s).status === 201);
      const order = sent.find((s) => s.eventId === eventId && s.kind === 'purchase' && answered(s).status === 201);
      if (!hold || !order) continue;
      const before = (await call(`${ticket!.url}/api/v1/events/${eventId}`, 'GET')).body as unknown as EventView;
      const confirmed = await call(`${ticket!.url}/api/v1/holds/${String(answered(hold).body.holdId)}/confirm`, 'POST');
      expect(confirmed.status, confirmed.text).toBe(201);
      const cancelled = await call(
        `${vacancies[1]!.url}/api/v1/orders/${String(answered(order).body.orderId)}/cancel`,
        'POST',
        undefined,
        { authorization: `Bearer ${ADMIN_TOKEN}` },
      );
      expect(cancelled.status, cancelled.text).toBe(200);
      const afterwards = (await call(`${ticket!.url}/api/v1/events/${eventId}`, 'GET')).body as unknown as EventView;
      const qty = (items: Array<{ qty: number }>) => items.reduce((sum, item) => sum + item.qty, 0);
      expect(afterwards.held).toBe(before.held - qty(hold.body.items));
      expect(afterwards.sold).toBe(before.sold + qty(hold.body.items) - qty(order.body.items));
      touched.add(await cluster!.primaryOf(`{${PREFIX}:${eventId}}:event`));
    }
    expect(touched.size, 'events of every shard confirmed and cancelled').toBe(3);
  });

  it('every shard took traffic: its primary ran batch scripts and WAITs, its replica has its keys', async () => {
    const figures = await Promise.all(
      cluster!.primaries.map(async (primary) => {
        const calls = await commandCalls(primary.client());
        const keys = Number(await primary.client().dbsize());
        return {
          primary,
          scripts: (calls.evalsha ?? 0) + (calls.eval ?? 0),
          waits: calls.wait ?? 0,
          keys,
        };
      }),
    );
    const replicaKeys = await Promise.all(
      cluster!.replicas.map(async (replica) => Number(await replica.client().dbsize())),
    );
    report(
      `per shard: ${figures
        .map((f) => `${f.primary.address} ${f.scripts} script calls, ${f.waits} WAITs, ${f.keys} keys`)
        .join('; ')}; replicas' keys: ${replicaKeys.join(', ')}`,
    );
    for (const figure of figures) {
      expect(figure.scripts, figure.primary.address).toBeGreaterThan(0);
      expect(figure.waits, figure.primary.address).toBeGreaterThan(0);
      expect(figure.keys, figure.primary.address).toBeGreaterThan(100);
    }
    expect(replicaKeys.reduce((sum, keys) => sum + keys, 0)).toBe(figures.reduce((sum, f) => sum + f.keys, 0));
  });
});
