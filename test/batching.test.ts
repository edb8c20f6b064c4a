/**
 * Group commit across sockets, on a real process: purchases that arrive on
 * many connections in one turn of the event loop are decided by the stock
 * actor in one batch (and answered together), which is what makes the
 * memory-store monolith fast under load. Seen from outside through
 * ticket_actor_batch_size on /metrics; no timing is asserted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Agent } from 'undici';
import { startService, stopAllServices } from './support/processes.ts';
import { parseScrape } from './support/prometheus.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'ticket-system-batching-'));

afterAll(async () => {
  await stopAllServices();
  rmSync(dataDir, { recursive: true, force: true });
});

const CONNECTIONS = 50;

/** The histogram's sum (messages decided) and count (batches), from the Prometheus text. */
async function batchSizes(url: string): Promise<{ messages: number; batches: number }> {
  const samples = parseScrape(await (await fetch(`${url}/metrics`)).text());
  return {
    messages: samples.get('ticket_actor_batch_size_sum') ?? Number.NaN,
    batches: samples.get('ticket_actor_batch_size_count') ?? Number.NaN,
  };
}

describe.each(['memory', 'sqlite'])('the stock actor on the %s store', (store) => {
  it(`decides purchases that arrive together on ${CONNECTIONS} connections in shared batches, each once`, async () => {
    const service = await startService({
      MODE: 'monolith',
      STOCK_STORE: store,
      DATA_DIR: dataDir,
      INITIAL_STOCK: '100000',
    });
    const agent = new Agent({ connections: CONNECTIONS, pipelining: 1 });
    try {
      const before = await batchSizes(service.url);
      let purchases = 0;
      let after = before;
      // Whether requests land in one turn is up to the scheduler: send bursts until one shared a batch.
      // Besides purchases the actor decides its own sweep for due holds every 250 ms: each is one
      // message more, and at most one batch more.
      const sweeps = () => after.messages - before.messages - purchases;
      for (let burst = 0; burst < 10 && after.batches - before.batches - sweeps() >= purchases; burst++) {
        const answers = await Promise.all(
          Array.from({ length: CONNECTIONS }, () =>
            fetch(`${service.url}/api/v1/purchase`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ qty: 1 }),
              dispatcher: agent,
            } as RequestInit).then((response) => response.status),
          ),
        );
        expect(answers).toEqual(answers.map(() => 200));
        purchases += CONNECTIONS;
        after = await batchSizes(service.url);
      }
      const decided = after.messages - before.messages;
      const batches = after.batches - before.batches;
      console.info(`[batching] ${store}: ${purchases} purchases decided in ${batches} batches`);
      expect(decided, 'every purchase decided').toBeGreaterThanOrEqual(purchases);
      expect(sweeps(), 'besides purchases, only a few sweeps').toBeLessThan(40);
      expect(batches - sweeps(), 'some purchases shared a batch').toBeLessThan(purchases);
      const health = (await (await fetch(`${service.url}/api/v1/health`)).json()) as {
        details: { vacancy: { stock: { sold: number } } };
      };
      expect(health.details.vacancy.stock.sold, 'every purchase sold once').toBe(purchases);
    } finally {
      await agent.close();
      await service.stop('SIGTERM');
    }
  });
});
