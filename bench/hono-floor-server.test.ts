/**
 * The Hono floor answers like the baseline, so that its ratio is the same
 * JSON work on Hono; and both yardsticks, bundled as the runner bundles them,
 * run on bare node from anywhere.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, getStatus, sleep } from '../test/support/processes.ts';
import { createHonoFloorApp } from './hono-floor-server.ts';
import { buildBenchServers, type BenchServers } from './lib/servers.ts';

describe('the Hono floor app', () => {
  const purchase = (app: ReturnType<typeof createHonoFloorApp>, body: string, contentType = 'application/json') =>
    app.request('/api/v1/purchase', { method: 'POST', headers: { 'content-type': contentType }, body });

  it('sells while the stock lasts, then answers "Insufficient inventory", and reports the stock', async () => {
    const app = createHonoFloorApp(3);
    const sold = await purchase(app, '{"qty":2}');
    expect(sold.status).toBe(200);
    expect(sold.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await sold.json()).toEqual({ success: true, remaining: 1, message: 'Purchased 2 tickets' });
    expect(await (await purchase(app, '{"qty":2}')).json()).toEqual({
      success: false,
      remaining: 1,
      message: 'Insufficient inventory',
    });
    expect(await (await app.request('/api/v1/available')).json()).toEqual({ qty: 1 });
    expect(await (await app.request('/stats')).json()).toEqual({ sold: 2, remaining: 1 });
    expect((await app.request('/api/v1/health')).status).toBe(200);
  });

  it('answers bad input as the baseline does and sells nothing', async () => {
    const app = createHonoFloorApp(10);
    expect((await purchase(app, '{"qty": ')).status).toBe(400);
    expect((await purchase(app, '{"qty":0}')).status).toBe(422);
    expect((await purchase(app, '{"qty":"1"}')).status).toBe(422);
    expect((await purchase(app, 'qty=1', 'text/plain')).status).toBe(415);
    const large = await app.request('/api/v1/purchase', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': String(1024 * 1024 + 1) },
      body: '{"qty":1}',
    });
    expect(large.status).toBe(413);
    expect((await app.request('/nothing')).status).toBe(404);
    expect(await (await app.request('/stats')).json()).toEqual({ sold: 0, remaining: 10 });
  });
});

describe('the bundled yardsticks (bench/lib/servers.ts)', () => {
  let dir = '';
  let servers: BenchServers;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ticket-bench-servers-'));
    servers = await buildBenchServers(dir);
  }, 60_000);
  afterAll(() => {
    for (const child of children) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts a bundle on bare node, from a directory with no node_modules, and returns its base URL. */
  async function start(script: string, initialStock: number): Promise<string> {
    const port = await freePort();
    const child = spawn(process.execPath, [script], {
      cwd: tmpdir(),
      env: { PATH: process.env.PATH, PORT: String(port), HOST: '127.0.0.1', INITIAL_STOCK: String(initialStock) },
      stdio: 'ignore',
    });
    children.push(child);
    const url = `http://127.0.0.1:${port}`;
    for (let waited = 0; waited < 10_000; waited += 50) {
      if ((await getStatus(`${url}/api/v1/health`).catch(() => 0)) === 200) return url;
      if (child.exitCode !== null) break;
      await sleep(50);
    }
    throw new Error(`${script} did not start`);
  }

  it('both start on bare node and give the same answers to the same purchases', async () => {
    const answers = async (url: string) => {
      const results: unknown[] = [];
      for (const body of ['{"qty":2}', '{"qty":2}', '{"qty":0}', '{"qty":1}']) {
        const response = await fetch(`${url}/api/v1/purchase`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        results.push([
          response.status,
          response.status === 200 ? await response.json() : (await response.json()).status,
        ]);
      }
      results.push(await (await fetch(`${url}/stats`)).json());
      return results;
    };
    const [baseline, floor] = await Promise.all([start(servers.baseline, 3), start(servers.honoFloor, 3)]);
    const fromBaseline = await answers(baseline);
    expect(fromBaseline).toEqual([
      [200, { success: true, remaining: 1, message: 'Purchased 2 tickets' }],
      [200, { success: false, remaining: 1, message: 'Insufficient inventory' }],
      [422, 422],
      [200, { success: true, remaining: 0, message: 'Purchased 1 ticket' }],
      { sold: 3, remaining: 0 },
    ]);
    expect(await answers(floor)).toEqual(fromBaseline);
  }, 30_000);
});
