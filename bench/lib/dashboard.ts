/**
 * A live dashboard watching a target while it is measured (`--dashboard`):
 * what an organizer's open browser tab costs the service. One stream of
 * GET /dashboard/stream on the process that owns the stock, read to the end
 * of the run, as EventSource would read it.
 */
import { SseReader } from '../../test/support/sse.ts';

/** What the watcher saw of the run. */
export interface DashboardWatch {
  /** Live updates received. */
  updates: number;
  bytes: number;
}

export interface OpenDashboard {
  /** Closes the stream and tells what came through it. */
  close(): Promise<DashboardWatch>;
}

/**
 * Opens the dashboard's stream of `baseUrl` as user admin with `adminToken`,
 * and waits for its first update (so the run is measured with the dashboard
 * already live); it is read until {@link OpenDashboard.close}.
 *
 * @example
 * const dashboard = await openDashboard(target.adminUrl, BENCH_ADMIN_TOKEN);
 * await runLoad(...);
 * const { updates } = await dashboard.close();
 */
export async function openDashboard(baseUrl: string, adminToken: string): Promise<OpenDashboard> {
  const abort = new AbortController();
  const response = await fetch(`${baseUrl}/dashboard/stream`, {
    headers: { Authorization: `Basic ${btoa(`admin:${adminToken}`)}`, Accept: 'text/event-stream' },
    signal: abort.signal,
  });
  if (response.status !== 200 || !response.body) {
    abort.abort();
    throw new Error(`GET ${baseUrl}/dashboard/stream answered ${response.status}: is ADMIN_TOKEN set?`);
  }
  const reader = new SseReader(response.body);
  let updates = 0;
  const first = await reader.nextOf('snapshot', 10_000);
  if (!first) throw new Error(`${baseUrl}/dashboard/stream ended before its first update`);
  updates += 1;
  let closing = false;
  const reading = (async () => {
    while (!closing) {
      const message = await reader.next(60_000).catch(() => undefined);
      if (message === null) return;
      if (message?.event === 'snapshot') updates += 1;
    }
  })();
  return {
    async close() {
      closing = true;
      await reader.cancel();
      abort.abort();
      await reading;
      return { updates, bytes: reader.bytes };
    },
  };
}
