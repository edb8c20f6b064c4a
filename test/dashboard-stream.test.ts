/**
 * The dashboard's stream on a real monolith process (the built bundle) over
 * real sockets: a client that goes away stops the work at once, and SIGTERM
 * with streams open tells each one, ends it, and exits 0 without waiting for
 * SHUTDOWN_TIMEOUT.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseScrape } from './support/prometheus.ts';
import { sleep, startService, stopAllServices, type Service } from './support/processes.ts';
import { SseReader } from './support/sse.ts';

const ADMIN_TOKEN = 'a-stream-test-admin-token';
const SHUTDOWN_TIMEOUT_S = 30;

afterEach(async () => {
  await stopAllServices();
});

async function openStream(service: Service) {
  const abort = new AbortController();
  const response = await fetch(`${service.url}/dashboard/stream`, {
    headers: { Authorization: `Basic ${btoa(`admin:${ADMIN_TOKEN}`)}` },
    signal: abort.signal,
  });
  expect(response.status).toBe(200);
  const reader = new SseReader(response.body!);
  const first = await reader.nextOf('snapshot');
  expect(first?.retry).toBe(1000);
  return { reader, abort };
}

async function dashboardMetrics(service: Service) {
  const samples = parseScrape(await (await fetch(`${service.url}/metrics`)).text());
  return {
    streams: samples.get('ticket_dashboard_streams'),
    snapshots: samples.get('ticket_dashboard_snapshots_total'),
  };
}

describe('the dashboard stream of a real process', () => {
  it('stops reading snapshots as soon as its client goes away', async () => {
    const service = await startService({ MODE: 'monolith', INITIAL_STOCK: '10', ADMIN_TOKEN });
    const { reader, abort } = await openStream(service);
    await reader.nextOf('snapshot', 3_000);
    expect((await dashboardMetrics(service)).streams).toBe(1);

    abort.abort();
    await sleep(300);
    const after = await dashboardMetrics(service);
    expect(after.streams).toBe(0);
    await sleep(1_500);
    expect((await dashboardMetrics(service)).snapshots).toBe(after.snapshots);
  });

  it('ends every open stream on SIGTERM and exits 0 long before the shutdown deadline', async () => {
    const service = await startService({
      MODE: 'monolith',
      INITIAL_STOCK: '10',
      ADMIN_TOKEN,
      SHUTDOWN_TIMEOUT: String(SHUTDOWN_TIMEOUT_S),
    });
    const streams = await Promise.all([openStream(service), openStream(service), openStream(service)]);

    const signalled = performance.now();
    service.child.kill('SIGTERM');
    const endings = await Promise.all(
      streams.map(async ({ reader }) => {
        const closing = await reader.nextOf('closing', 5_000);
        return { closing: closing?.data, end: await reader.next(5_000) };
      }),
    );
    const exit = await service.waitForExit(SHUTDOWN_TIMEOUT_S * 1000 + 10_000);
    const seconds = (performance.now() - signalled) / 1000;

    expect(exit, service.output()).toEqual({ code: 0, signal: null });
    expect(seconds, 'an open dashboard must not hold the shutdown up').toBeLessThan(3);
    for (const ending of endings) {
      expect(ending.closing).toContain('shutting down');
      expect(ending.end).toBeNull();
    }
    expect(service.output()).not.toMatch(/shutdown deadline passed/);
  });
});
