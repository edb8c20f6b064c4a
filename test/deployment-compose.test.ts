/**
 * compose.yaml's topology run in real containers, read from the file itself
 * (test/support/containers.ts runs each service as compose would: its image,
 * command, environment, hardening, health check, volumes and network
 * aliases): redis, vacancy, one `vacancy-replica` answering to the same name,
 * and ticket, on one network, with INTERNAL_TOKEN and ADMIN_TOKEN set as a
 * user would in the shell. Each service is started once the one it depends
 * on passes its health check, as `depends_on: condition: service_healthy`
 * asks.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Agent, fetch as undiciFetch } from 'undici';
import { loadCompose } from './support/deployment.ts';
import {
  buildImage,
  ContainerScope,
  podman,
  podmanGate,
  podmanResult,
  report,
  runComposeService,
  waitForExit,
  waitUntilHealthy,
  type RunningService,
} from './support/containers.ts';
import { requestJson, type PurchaseBody } from './support/http-json.ts';

const gate = podmanGate('the compose topology in containers (podman)');
// Each test starts containers and waits for their health checks: seconds alone, more beside a whole suite.
vi.setConfig({ testTimeout: 180_000 });
const BUILD_TIMEOUT_MS = 20 * 60_000;
const CONCURRENT_PURCHASES = 2_000;
/** What `INTERNAL_TOKEN=... ADMIN_TOKEN=... docker compose up` would interpolate. */
const VARIABLES = { INTERNAL_TOKEN: randomBytes(24).toString('hex'), ADMIN_TOKEN: randomBytes(24).toString('hex') };
const compose = loadCompose(VARIABLES);

/** GET `path` on the service's own port from inside its container (for a replica that publishes none). */
async function getInside(service: RunningService, path: string): Promise<unknown> {
  const url = `http://127.0.0.1:${service.env.PORT}${path}`;
  const script = `fetch(${JSON.stringify(url)}).then((r) => r.text()).then((t) => console.log(t))`;
  return JSON.parse(await podman(['exec', service.container, '/nodejs/bin/node', '-e', script])) as unknown;
}

describe.skipIf(gate.skip)('compose.yaml in containers: redis, two vacancy replicas and ticket on one network', () => {
  const scope = new ContainerScope('compose');
  let image: string;
  let redis: RunningService;
  let vacancy: RunningService;
  let replica: RunningService;
  let ticket: RunningService;

  beforeAll(async () => {
    gate.assertReady();
    image = await buildImage('runtime');
    expect(compose.services.vacancy?.image).toBe(image);
    redis = await runComposeService(compose, 'redis', { scope });
    await waitUntilHealthy(redis.container);
    vacancy = await runComposeService(compose, 'vacancy', { scope });
    replica = await runComposeService(compose, 'vacancy-replica', { scope });
    await Promise.all([waitUntilHealthy(vacancy.container), waitUntilHealthy(replica.container)]);
    ticket = await runComposeService(compose, 'ticket', { scope });
    await waitUntilHealthy(ticket.container);
  }, BUILD_TIMEOUT_MS);

  afterAll(() => scope.removeAll(), 120_000);

  it('runs each service in the MODE and with the store compose gives it, ticket ready behind vacancy', async () => {
    const ticketUrl = ticket.urls.get(8002) as string;
    const vacancyUrl = vacancy.urls.get(8001) as string;
    expect((await requestJson<{ mode: string }>(`${ticketUrl}/`)).body.mode).toBe('ticket');
    expect((await requestJson<{ mode: string }>(`${vacancyUrl}/`)).body.mode).toBe('vacancy');
    expect(((await getInside(replica, '/')) as { mode: string }).mode).toBe('vacancy');
    for (const health of [
      (await requestJson(`${vacancyUrl}/api/v1/health`)).body,
      await getInside(replica, '/api/v1/health'),
    ]) {
      expect(health).toMatchObject({ status: 'healthy', details: { store: { kind: 'redis' } } });
    }
    expect((await requestJson(`${ticketUrl}/api/v1/ready`)).status).toBe(200);
    // INTERNAL_TOKEN from the shell reaches vacancy: a reserve without it is refused.
    const anonymous = await requestJson(`${vacancyUrl}/api/v1/reserve`, { json: { qty: 1 } });
    expect(anonymous.status, anonymous.text).toBe(401);
  });

  it(`sells exactly what it acknowledges of ${CONCURRENT_PURCHASES} concurrent purchases through ticket, never beyond the stock`, async () => {
    const ticketUrl = ticket.urls.get(8002) as string;
    const vacancyUrl = vacancy.urls.get(8001) as string;
    const before = (await requestJson<{ qty: number }>(`${vacancyUrl}/api/v1/available`)).body.qty;
    expect(before).toBeGreaterThan(0);
    // Every purchase on a connection of its own, all in flight at once.
    const dispatcher = new Agent({ connections: CONCURRENT_PURCHASES, pipelining: 1 });
    const started = performance.now();
    const replies = await Promise.all(
      Array.from({ length: CONCURRENT_PURCHASES }, async () => {
        const response = await undiciFetch(`${ticketUrl}/api/v1/purchase`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ qty: 1 }),
          signal: AbortSignal.timeout(60_000),
          dispatcher,
        });
        return { status: response.status, body: (await response.json()) as PurchaseBody };
      }),
    );
    const elapsedMs = performance.now() - started;
    await dispatcher.close();

    const statuses = replies.reduce<Record<number, number>>((counts, reply) => {
      counts[reply.status] = (counts[reply.status] ?? 0) + 1;
      return counts;
    }, {});
    expect(statuses, 'every purchase is answered 200 (insufficient stock is a 200 too)').toEqual({
      200: CONCURRENT_PURCHASES,
    });
    const sold = replies.filter((reply) => reply.body.success);
    const refused = replies.filter((reply) => !reply.body.success);
    for (const reply of refused) expect(reply.body.message).toBe('Insufficient inventory');

    const afterOnVacancy = (await requestJson<{ qty: number }>(`${vacancyUrl}/api/v1/available`)).body.qty;
    const afterOnReplica = ((await getInside(replica, '/api/v1/available')) as { qty: number }).qty;
    expect(afterOnReplica, 'both replicas read the one stock in Redis').toBe(afterOnVacancy);
    expect(before - afterOnVacancy, 'tickets gone from the stock = purchases acknowledged').toBe(sold.length);
    expect(sold.length).toBe(Math.min(before, CONCURRENT_PURCHASES));
    const tickets = sold.map((reply) => reply.body.tickets?.first);
    expect(new Set(tickets).size, 'no ticket handed out twice').toBe(sold.length);
    report(
      `${CONCURRENT_PURCHASES} concurrent purchases through ticket in ${Math.round(elapsedMs)} ms: ` +
        `${sold.length} sold of ${before}, ${refused.length} refused (Insufficient inventory)`,
    );
  });

  it('answers the healthcheck command with 0 in every app container, and with 1 once its server has stopped', async () => {
    const apps = [ticket, vacancy, replica];
    for (const app of apps) {
      const check = await podmanResult(['exec', app.container, '/nodejs/bin/node', 'dist/main.js', 'healthcheck']);
      expect(check.code, `${app.service}: ${check.stdout}${check.stderr}`).toBe(0);
    }
    for (const app of apps) {
      await podman(['stop', app.container]);
      expect(await waitForExit(app.container), `${app.service} exits 0 on SIGTERM`).toBe(0);
      // The same command, image and environment, in the stopped server's network namespace (its pod).
      const env = Object.entries(app.env).flatMap(([key, value]) => ['-e', `${key}=${value}`]);
      const check = await podmanResult(['run', '--rm', '--pod', app.pod, ...env, image, 'healthcheck']);
      expect(check.code, `${app.service} after it stopped: ${check.stdout}${check.stderr}`).toBe(1);
    }
  });
});
