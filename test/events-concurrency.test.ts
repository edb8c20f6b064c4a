/**
 * Many events under load, with real processes on real sockets: 10,000
 * concurrent purchases of random items over several events whose caps are
 * smaller than the sum of their ticket types' capacities, until they sell
 * out. After the storm, for every event: per type sold ≤ capacity, Σ sold ≤
 * the event's cap, every acknowledged order's tickets distinct, and what is
 * sold equals what the acknowledged orders hold (no sale lost, none made
 * twice). In the monolith (SQLite), in ticket + vacancy (SQLite), and on
 * Redis with three vacancy replicas behind one ticket service.
 *
 * Replay a failing run with TEST_SEED=<seed printed in the failure>.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { seededRandom, testSeed } from './support/http-json.ts';
import { stopAllServices } from './support/processes.ts';
import { call, topologies } from './support/topologies.ts';

const SEED = testSeed();
const ADMIN_TOKEN = 'an-admin-token-for-the-events-test';
const PURCHASES = 10_000;
/** Events whose caps are below the sum of their types' capacities, so both limits bind. */
const EVENTS = ['arena', 'club', 'hall', 'opera', 'park'].map((id, index) => ({
  id,
  definition: {
    name: `Event ${id}`,
    capacity: 250 + index * 50,
    ticketTypes: [
      { id: 'general', name: 'General', capacity: 200 + index * 20, maxPerOrder: 5 },
      { id: 'vip', name: 'VIP', capacity: 60 + index * 10, maxPerOrder: 3 },
      { id: 'student', name: 'Student', capacity: 80 },
    ],
  },
}));

interface Ack {
  eventId: string;
  items: Array<{ ticketType: string; qty: number; tickets: { first: number; last: number } }>;
  orderId: string;
  key?: string;
  request: unknown;
  text: string;
}

const { topologies: TOPOLOGIES, cleanup } = await topologies('events-load', ADMIN_TOKEN);
afterAll(cleanup);

describe.each(TOPOLOGIES)(`events under load: $name (seed ${SEED})`, (topology) => {
  it.skipIf(topology.skip)(
    `${PURCHASES} concurrent purchases of random items over ${EVENTS.length} capped events never oversell, lose or repeat a ticket`,
    async () => {
      const { admin, buyers } = await topology.start();
      for (const { id, definition } of EVENTS) {
        const put = await call(`${admin.url}/api/v1/events/${id}`, 'PUT', definition, {
          Authorization: `Bearer ${ADMIN_TOKEN}`,
        });
        expect(put.status, put.text).toBe(201);
      }

      const random = seededRandom(SEED);
      const acks: Ack[] = [];
      const unexpected: string[] = [];
      let refused = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: PURCHASES }, async (_, n) => {
          const event = EVENTS[Math.floor(random() * EVENTS.length)]!;
          const types = [...event.definition.ticketTypes]
            .sort(() => random() - 0.5)
            .slice(0, 1 + Math.floor(random() * 2));
          const body = {
            items: types.map((type) => ({ ticketType: type.id, qty: 1 + Math.floor(random() * 3) })),
            buyer: `buyer-${n % 500}`,
          };
          const key = n % 2 === 0 ? `load-${SEED}-${n}` : undefined;
          const reply = await call(
            `${buyers.url}/api/v1/events/${event.id}/purchase`,
            'POST',
            body,
            key === undefined ? {} : { 'Idempotency-Key': key },
          );
          if (reply.status === 201) {
            acks.push({
              eventId: event.id,
              items: reply.body.items as Ack['items'],
              orderId: String(reply.body.orderId),
              ...(key === undefined ? {} : { key }),
              request: body,
              text: reply.text,
            });
          } else if (reply.status === 409 && String(reply.body.type).endsWith('/insufficient-inventory')) {
            refused += 1;
          } else {
            unexpected.push(`${reply.status} ${reply.text.slice(0, 300)}`);
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      expect(unexpected.slice(0, 5), `answers other than 201 and 409 (seed ${SEED})`).toEqual([]);
      expect(acks.length + refused).toBe(PURCHASES);

      let soldAll = 0;
      for (const { id, definition } of EVENTS) {
        const reply = await call(`${buyers.url}/api/v1/events/${id}`, 'GET');
        expect(reply.status).toBe(200);
        const event = reply.body as {
          sold: number;
          available: number;
          ticketTypes: Array<{ id: string; capacity: number; sold: number; available: number }>;
        };
        const where = `event ${id} (seed ${SEED})`;
        expect(event.sold, `${where}: Σ sold within the event's cap`).toBeLessThanOrEqual(definition.capacity);
        expect(event.sold).toBe(event.ticketTypes.reduce((sum, type) => sum + type.sold, 0));
        for (const type of event.ticketTypes) {
          expect(type.sold, `${where} ${type.id}: sold within capacity`).toBeLessThanOrEqual(type.capacity);
          const lines = acks
            .filter((ack) => ack.eventId === id)
            .flatMap((ack) => ack.items.filter((item) => item.ticketType === type.id));
          const tickets = lines.flatMap((line) => {
            expect(line.tickets.last - line.tickets.first + 1).toBe(line.qty);
            return Array.from({ length: line.qty }, (_, i) => line.tickets.first + i);
          });
          expect(new Set(tickets).size, `${where} ${type.id}: no ticket acknowledged twice`).toBe(tickets.length);
          expect(tickets.length, `${where} ${type.id}: sold equals what acknowledged orders hold`).toBe(type.sold);
          expect(Math.max(0, ...tickets)).toBeLessThanOrEqual(type.sold);
        }
        soldAll += event.sold;
      }
      expect(new Set(acks.map((ack) => ack.orderId)).size, 'order ids are never repeated').toBe(acks.length);

      // A sample of acknowledged keyed purchases, retried: replayed, byte for byte, and nothing more sold.
      const sample = acks.filter((ack) => ack.key !== undefined).slice(0, 50);
      for (const ack of sample) {
        const again = await call(`${buyers.url}/api/v1/events/${ack.eventId}/purchase`, 'POST', ack.request, {
          'Idempotency-Key': ack.key!,
        });
        expect(again.status).toBe(201);
        expect(again.replayed).toBe(true);
        expect(again.text).toBe(ack.text);
      }
      const after = await Promise.all(
        EVENTS.map(async ({ id }) => (await call(`${buyers.url}/api/v1/events/${id}`, 'GET')).body.sold as number),
      );
      expect(
        after.reduce((sum, sold) => sum + sold, 0),
        'replays sold nothing',
      ).toBe(soldAll);
      console.info(
        `[events-concurrency] ${topology.name}: ${PURCHASES} purchases in ${seconds.toFixed(1)} s, ${acks.length} orders, ${refused} refused (409), ${soldAll} tickets sold, ${sample.length} replays checked (seed ${SEED})`,
      );
      await stopAllServices(3_000);
    },
  );
});
