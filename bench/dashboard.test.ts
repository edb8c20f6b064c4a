/**
 * The benchmark's --dashboard: the plan takes it, and the watcher keeps a
 * dashboard stream of a real monolith open and counts its updates.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { sleep, startService, stopAllServices } from '../test/support/processes.ts';
import { openDashboard } from './lib/dashboard.ts';
import { parsePlan, type Plan } from './lib/plan.ts';

const ADMIN_TOKEN = 'a-bench-dashboard-admin-token';

afterAll(async () => {
  await stopAllServices();
});

describe('--dashboard', () => {
  it('is off unless asked for', () => {
    expect((parsePlan([]) as Plan).dashboard).toBe(false);
    expect((parsePlan(['--dashboard']) as Plan).dashboard).toBe(true);
  });

  it('keeps a dashboard open on a target until closed, counting its updates', async () => {
    const service = await startService({ MODE: 'monolith', INITIAL_STOCK: '100', ADMIN_TOKEN });
    const dashboard = await openDashboard(service.url, ADMIN_TOKEN);
    for (let i = 0; i < 5; i++) {
      await fetch(`${service.url}/api/v1/purchase`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: '{"qty":1}',
      }).then((response) => response.arrayBuffer());
      await sleep(300);
    }
    const watched = await dashboard.close();
    expect(watched.updates).toBeGreaterThanOrEqual(2);
    expect(watched.updates).toBeLessThanOrEqual(6);
    expect(watched.bytes).toBeGreaterThan(1_000);

    await expect(openDashboard(service.url, 'not-the-token')).rejects.toThrow(/answered 401/);
  });
});
