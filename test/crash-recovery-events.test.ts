/**
 * Crash recovery of orders over many events, with real processes: a monolith
 * on STOCK_STORE=sqlite is killed with SIGKILL at a random moment while 40
 * buyers make keyed purchases of random items over three capped events,
 * several rounds on one DATA_DIR. After every restart each acknowledged
 * order is still there with the same ticket numbers (its key replays it byte
 * for byte), no ticket number was handed out twice, and no type or event
 * sold beyond its capacity. And holds: killed with holds outstanding, some of
 * which expire while the process is down, a restarted service has given the
 * expired ones' tickets back and still confirms the live ones.
 *
 * Replay a failing run with TEST_SEED=<seed printed in the failure>.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { makeTempDir, removeDir, requestJson, seededRandom, testSeed } from './support/http-json.ts';
import { sleep, startService, stopAllServices, type Service } from './support/processes.ts';

const SEED = testSeed();
const random = seededRandom(SEED);
const DATA_DIR = makeTempDir('ticket-system-crash-events');
const ADMIN_TOKEN = 'an-admin-token-for-the-crash-test';
const ROUNDS = 4;
const BUYERS = 40;
const seedNote = `(TEST_SEED=${SEED}, DATA_DIR=${DATA_DIR})`;

const EVENTS = ['north', 'south', 'west'].map((id) => ({
  id,
  definition: {
    name: `Stage ${id}`,
    capacity: 20_000,
    ticketTypes: [
      { id: 'general', name: 'General', capacity: 15_000 },
      { id: 'vip', name: 'VIP', capacity: 8_000, maxPerOrder: 4 },
    ],
  },
}));

interface Ack {
  eventId: string;
  key: string;
  body: unknown;
  text: string;
  items: Array<{ ticketType: string; qty: number; tickets: { first: number; last: number } }>;
}

const acks: Ack[] = [];
const env = { MODE: 'monolith', STOCK_STORE: 'sqlite', DATA_DIR, ADMIN_TOKEN };

/** Every acknowledged order replays as first answered; tickets never overlap; nothing sold beyond capacity. */
async function expectOrdersKept(service: Service): Promise<number> {
  for (let i = 0; i < acks.length; i += 40) {
    await Promise.all(
      acks.slice(i, i + 40).map(async (ack) => {
        const reply = await requestJson(`${service.url}/api/v1/events/${ack.eventId}/purchase`, {
          json: ack.body,
          headers: { 'Idempotency-Key': ack.key },
        });
        const where = `order under key ${ack.key} ${seedNote}`;
        expect(reply.status, `${where}: ${reply.text}`).toBe(201);
        expect(reply.headers.get('idempotent-replayed'), where).toBe('true');
        expect(reply.text, `${where}: the same order, the same tickets`).toBe(ack.text);
      }),
    );
  }
  let sold = 0;
  for (const { id, definition } of EVENTS) {
    const event = (await requestJson(`${service.url}/api/v1/events/${id}`)).body as {
      sold: number;
      ticketTypes: Array<{ id: string; sold: number; capacity: number }>;
    };
    expect(event.sold, `event ${id} ${seedNote}`).toBeLessThanOrEqual(definition.capacity);
    for (const type of event.ticketTypes) {
      const tickets = acks
        .filter((ack) => ack.eventId === id)
        .flatMap((ack) => ack.items.filter((item) => item.ticketType === type.id))
        .flatMap((item) => Array.from({ length: item.qty }, (_, n) => item.tickets.first + n));
      const where = `event ${id} type ${type.id} ${seedNote}`;
      expect(new Set(tickets).size, `${where}: no ticket acknowledged twice`).toBe(tickets.length);
      expect(type.sold, `${where}: every acknowledged ticket is sold`).toBeGreaterThanOrEqual(tickets.length);
      expect(type.sold, `${where}: within capacity`).toBeLessThanOrEqual(type.capacity);
      expect(Math.max(0, ...tickets), `${where}: numbers within what is sold`).toBeLessThanOrEqual(type.sold);
    }
    sold += event.sold;
  }
  return sold;
}

/** 40 buyers of keyed random orders until, a random 50–400 ms after the first acknowledgement, SIGKILL. */
async function buyUntilKilled(service: Service, round: number): Promise<number> {
  let killed = false;
  let stop = false;
  let acked = 0;
  const unexpected: string[] = [];
  let markRunning: () => void = () => {};
  const running = new Promise<void>((resolve) => (markRunning = resolve));
  const buyer = async (index: number) => {
    for (let n = 0; !stop; n++) {
      const event = EVENTS[Math.floor(random() * EVENTS.length)]!;
      const items =
        random() < 0.5
          ? [{ ticketType: 'general', qty: 1 + Math.floor(random() * 3) }]
          : [
              { ticketType: 'vip', qty: 1 + Math.floor(random() * 2) },
              { ticketType: 'general', qty: 1 },
            ];
      const body = { items, buyer: `buyer-${index}` };
      const key = `crash-${SEED}-${round}-${index}-${n}`;
      let reply;
      try {
        reply = await requestJson(`${service.url}/api/v1/events/${event.id}/purchase`, {
          json: body,
          headers: { 'Idempotency-Key': key },
          timeoutMs: 5_000,
        });
      } catch (error) {
        if (!killed) unexpected.push(`buyer ${index}: ${String(error)}`);
        return;
      }
      if (reply.status !== 201) {
        unexpected.push(`buyer ${index}: ${reply.status} ${reply.text}`);
        return;
      }
      acks.push({ eventId: event.id, key, body, text: reply.text, items: (reply.body as unknown as Ack).items });
      acked += 1;
      markRunning();
    }
  };
  const buyers = Array.from({ length: BUYERS }, (_, index) => buyer(index));
  await Promise.race([running, sleep(10_000)]);
  await sleep(50 + Math.floor(random() * 351));
  killed = true;
  service.child.kill('SIGKILL');
  const exit = await service.exited;
  stop = true;
  await Promise.all(buyers);
  expect(exit.signal).toBe('SIGKILL');
  expect(unexpected, `round ${round}: unexpected answers before the kill ${seedNote}`).toEqual([]);
  expect(acked, `round ${round}: orders were acknowledged before the kill ${seedNote}`).toBeGreaterThan(0);
  return acked;
}

describe('SQLite store: SIGKILL during purchases over several events', () => {
  afterEach(() => stopAllServices());
  afterAll(async () => {
    await stopAllServices();
    removeDir(DATA_DIR);
  });

  it('keeps every acknowledged order with its ticket numbers, across kill -9 rounds', async () => {
    let service = await startService(env);
    for (const { id, definition } of EVENTS) {
      const put = await requestJson(`${service.url}/api/v1/events/${id}`, {
        method: 'PUT',
        json: definition,
        headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      expect(put.status, put.text).toBe(201);
    }
    const log: string[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const acked = await buyUntilKilled(service, round);
      service = await startService(env);
      const sold = await expectOrdersKept(service);
      log.push(
        `round ${round}: ${acked} orders acknowledged, ${acks.length} replayed after the restart, ${sold} tickets sold`,
      );
    }
    console.info(`crash-recovery-events ${seedNote}: ${log.join('; ')}`);
    await service.stop('SIGTERM');
  });

  it('holds outlive a kill -9: the ones that expired while down are back in stock, the live ones confirmable', async () => {
    const dataDir = makeTempDir('ticket-system-crash-holds');
    const holdsEnv = { ...env, DATA_DIR: dataDir };
    try {
      let service = await startService(holdsEnv);
      const put = await requestJson(`${service.url}/api/v1/events/matinee`, {
        method: 'PUT',
        json: { name: 'Matinee', capacity: 10, ticketTypes: [{ id: 'seat', name: 'Seat', capacity: 10 }] },
        headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      expect(put.status, put.text).toBe(201);
      const hold = async (qty: number, ttlSeconds: number) => {
        const reply = await requestJson<{ holdId: string; expiresAt: string }>(
          `${service.url}/api/v1/events/matinee/holds`,
          { json: { items: [{ ticketType: 'seat', qty }], ttlSeconds } },
        );
        expect(reply.status, reply.text).toBe(201);
        return reply.body;
      };
      const short = [await hold(3, 10), await hold(2, 10)];
      const long = [await hold(4, 3600)];
      const before = (await requestJson(`${service.url}/api/v1/events/matinee`)).body;
      expect(before).toMatchObject({ held: 9, available: 1 });

      service.child.kill('SIGKILL');
      await service.exited;
      // Down for longer than the short holds last.
      await sleep(Math.max(0, Date.parse(short[1]!.expiresAt) - Date.now()) + 500);
      service = await startService(holdsEnv);

      const after = (await requestJson(`${service.url}/api/v1/events/matinee`)).body;
      expect(after, `expired while down: back in stock at start ${seedNote}`).toMatchObject({
        held: 4,
        sold: 0,
        available: 6,
      });
      for (const { holdId } of short) {
        expect((await requestJson(`${service.url}/api/v1/holds/${holdId}`)).body).toMatchObject({ status: 'expired' });
        const confirm = await requestJson(`${service.url}/api/v1/holds/${holdId}/confirm`, { method: 'POST' });
        expect(confirm.status, confirm.text).toBe(410);
      }
      const confirmed = await requestJson(`${service.url}/api/v1/holds/${long[0]!.holdId}/confirm`, { method: 'POST' });
      expect(confirmed.status, confirmed.text).toBe(201);
      expect((await requestJson(`${service.url}/api/v1/events/matinee`)).body).toMatchObject({
        held: 0,
        sold: 4,
        available: 6,
      });
      await service.stop('SIGTERM');
    } finally {
      removeDir(dataDir);
    }
  });
});
