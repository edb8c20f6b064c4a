import { describe, expect, it } from 'vitest';
import { createApp } from './app.ts';
import { parseConfig } from './config.ts';
import { buildDependencies } from './dependencies.ts';
import { PROBLEM_CONTENT_TYPE, problemTypes } from './lib/problem.ts';
import type { CallContext, VacancyClient, VacancyProbe } from './ticket/vacancy-client.ts';
import type { ReserveResult } from './vacancy/stock-actor.ts';
import { parseScrape } from '../test/support/prometheus.ts';

const METRICS_TOKEN = 'metrics-token-0123456789';

async function monolith(env: Record<string, string> = {}) {
  const deps = await buildDependencies(
    parseConfig({ MODE: 'monolith', STOCK_STORE: 'memory', INITIAL_STOCK: '10', ...env }),
  );
  return { app: createApp(deps), actor: deps.actor! };
}

type App = Awaited<ReturnType<typeof monolith>>['app'];

function purchase(app: App, body = '{"qty":1}', headers: Record<string, string> = {}, env?: object) {
  return app.request(
    '/api/v1/purchase',
    { method: 'POST', body, headers: { 'Content-Type': 'application/json', ...headers } },
    env,
  );
}

async function scrape(app: App, headers: Record<string, string> = {}): Promise<Map<string, number>> {
  const res = await app.request('/metrics', { headers });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseScrape(await res.text());
}

const value = (samples: Map<string, number>, name: string) => samples.get(name) ?? 0;

describe('GET /metrics', () => {
  it('parses, and counts exactly the requests and purchases made, by route, status and outcome', async () => {
    const { app } = await monolith();
    const before = await scrape(app);

    for (let i = 0; i < 3; i++) expect((await purchase(app)).status).toBe(200);
    expect((await purchase(app, '{"qty":1}', { 'Idempotency-Key': 'k' })).status).toBe(200);
    expect((await purchase(app, '{"qty":1}', { 'Idempotency-Key': 'k' })).headers.get('idempotent-replayed')).toBe(
      'true',
    );
    expect((await purchase(app, '{"qty":50}')).status).toBe(200); // insufficient
    expect((await purchase(app, '{"qty":0}')).status).toBe(422);
    expect((await purchase(app, '{"qty":')).status).toBe(400);
    expect((await app.request('/api/v1/available')).status).toBe(200);
    expect((await app.request('/no/such/path')).status).toBe(404);

    const after = await scrape(app);
    const delta = (name: string) => value(after, name) - value(before, name);
    const http = (method: string, route: string, status: number) =>
      `http_requests_total{method="${method}",route="${route}",status="${status}"}`;
    expect(delta(http('POST', '/api/v1/purchase', 200))).toBe(6);
    expect(delta(http('POST', '/api/v1/purchase', 422))).toBe(1);
    expect(delta(http('POST', '/api/v1/purchase', 400))).toBe(1);
    expect(delta(http('GET', '/api/v1/available', 200))).toBe(1);
    expect(delta(http('GET', 'unmatched', 404))).toBe(1);
    expect(delta('http_request_duration_seconds_count{method="POST",route="/api/v1/purchase",status="200"}')).toBe(6);
    expect(
      delta('http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/api/v1/purchase",status="200"}'),
    ).toBe(6);
    expect(delta('ticket_purchases_total{outcome="sold"}')).toBe(4);
    expect(delta('ticket_purchases_total{outcome="replayed"}')).toBe(1);
    expect(delta('ticket_purchases_total{outcome="insufficient"}')).toBe(1);
    expect(delta('ticket_purchases_total{outcome="rejected"}')).toBe(2);
    expect(delta('ticket_tickets_sold_total')).toBe(4);
    expect(value(after, 'ticket_stock_remaining')).toBe(6);
    expect(value(after, 'ticket_stock_sold')).toBe(4);
    expect(value(after, 'ticket_idempotency_keys')).toBe(1);
    expect(value(after, 'ticket_actor_mailbox_depth')).toBe(0);
    expect(delta('ticket_store_commit_duration_seconds_count{result="ok"}')).toBeGreaterThanOrEqual(4);
    expect(delta('ticket_actor_batch_size_count')).toBeGreaterThanOrEqual(4);
  });

  it('counts reserves by outcome in vacancy mode, batches item by item', async () => {
    const deps = await buildDependencies(parseConfig({ MODE: 'vacancy', STOCK_STORE: 'memory', INITIAL_STOCK: '3' }));
    const app = createApp(deps);
    const post = (path: string, body: unknown) =>
      app.request(path, {
        method: 'POST',
        body: JSON.stringify(body),
        headers: { 'Content-Type': 'application/json' },
      });
    await post('/api/v1/reserve', { qty: 2 });
    await post('/api/v1/reserve/batch', {
      reserves: [
        { qty: 1, key: 'a' },
        { qty: 1, key: 'b' },
        { qty: 1, key: 'a' },
      ],
    });
    const samples = await scrape(app);
    expect(value(samples, 'ticket_reservations_total{outcome="sold"}')).toBe(2);
    expect(value(samples, 'ticket_reservations_total{outcome="insufficient"}')).toBe(1);
    expect(value(samples, 'ticket_reservations_total{outcome="rejected"}')).toBe(1); // key "a" twice in one batch: in flight
    expect(value(samples, 'ticket_stock_remaining')).toBe(0);
  });

  it('times calls to vacancy and counts their failures by reason in ticket mode', async () => {
    const failing: VacancyClient = {
      available: async () => 5,
      reserve: async (): Promise<ReserveResult> => {
        const { VacancyUnavailableError } = await import('./ticket/vacancy-client.ts');
        throw new VacancyUnavailableError('down', { outcomeUnknown: true });
      },
      probe: async (): Promise<VacancyProbe> => ({ ready: true, detail: 'fake' }),
      close: async () => {},
    };
    const { MeasuredVacancyClient } = await import('./ticket/measured-vacancy-client.ts');
    const { Metrics } = await import('./lib/metrics.ts');
    const metrics = new Metrics();
    const config = parseConfig({ MODE: 'ticket' });
    const app = createApp({ config, vacancyClient: new MeasuredVacancyClient(failing, metrics), metrics });
    expect((await purchase(app)).status).toBe(503);
    expect((await app.request('/api/v1/available')).status).toBe(200);
    const samples = await scrape(app);
    expect(value(samples, 'ticket_vacancy_call_failures_total{operation="reserve",reason="outcome_unknown"}')).toBe(1);
    expect(value(samples, 'ticket_vacancy_call_duration_seconds_count{operation="reserve",result="error"}')).toBe(1);
    expect(value(samples, 'ticket_vacancy_call_duration_seconds_count{operation="available",result="ok"}')).toBe(1);
    expect(value(samples, 'ticket_purchases_total{outcome="rejected"}')).toBe(1);
  });

  it('is absent with METRICS=false (404), and the service works without it', async () => {
    const { app } = await monolith({ METRICS: 'false' });
    expect((await purchase(app)).status).toBe(200);
    expect((await app.request('/metrics')).status).toBe(404);
  });

  it('needs METRICS_TOKEN when one is set: 401 problem without it', async () => {
    const { app } = await monolith({ METRICS_TOKEN });
    for (const authorization of [undefined, 'Bearer wrong-token-0123456789', METRICS_TOKEN]) {
      const res = await app.request('/metrics', { headers: authorization ? { Authorization: authorization } : {} });
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toBe(PROBLEM_CONTENT_TYPE);
      expect(await res.text()).not.toContain(METRICS_TOKEN);
    }
    await scrape(app, { Authorization: `Bearer ${METRICS_TOKEN}` });
  });
});

describe('RATE_LIMIT', () => {
  const client = (address: string) => ({ incoming: { socket: { remoteAddress: address } } });

  it('answers 429 problem+json with Retry-After past the limit, per client, and sells nothing more', async () => {
    const { app, actor } = await monolith({ RATE_LIMIT: '3', RATE_LIMIT_WINDOW: '60' });
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await purchase(app, '{"qty":1}', {}, client('10.0.0.1'))).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    const limited = await purchase(app, '{"qty":1}', {}, client('10.0.0.1'));
    expect(limited.headers.get('content-type')).toBe(PROBLEM_CONTENT_TYPE);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    expect(await limited.json()).toMatchObject({ type: problemTypes.tooManyRequests.type, status: 429 });
    expect(actor.snapshot()).toEqual({ remaining: 7, sold: 3 });
    // Another client has its own budget; probes and scrapes are never limited.
    expect((await purchase(app, '{"qty":1}', {}, client('10.0.0.2'))).status).toBe(200);
    for (const path of ['/api/v1/health', '/api/v1/ready', '/metrics']) {
      expect((await app.request(path, {}, client('10.0.0.1'))).status).toBe(200);
    }
  });

  it('takes the client from X-Forwarded-For only with TRUST_PROXY=true', async () => {
    const behindProxy = await monolith({ RATE_LIMIT: '1', TRUST_PROXY: 'true' });
    const proxy = client('10.9.9.9');
    expect(
      (await purchase(behindProxy.app, '{"qty":1}', { 'X-Forwarded-For': '203.0.113.1, 10.9.9.9' }, proxy)).status,
    ).toBe(200);
    expect((await purchase(behindProxy.app, '{"qty":1}', { 'X-Forwarded-For': '203.0.113.2' }, proxy)).status).toBe(
      200,
    );
    expect((await purchase(behindProxy.app, '{"qty":1}', { 'X-Forwarded-For': '203.0.113.1' }, proxy)).status).toBe(
      429,
    );

    const direct = await monolith({ RATE_LIMIT: '1' });
    expect((await purchase(direct.app, '{"qty":1}', { 'X-Forwarded-For': '203.0.113.1' }, proxy)).status).toBe(200);
    expect((await purchase(direct.app, '{"qty":1}', { 'X-Forwarded-For': '203.0.113.2' }, proxy)).status).toBe(429);
  });

  it('is off by default', async () => {
    const { app } = await monolith({ INITIAL_STOCK: '1000' });
    for (let i = 0; i < 200; i++) expect((await purchase(app)).status).toBe(200);
  });
});

describe('REQUEST_TIMEOUT', () => {
  /** A vacancy client whose reserves never finish. */
  const hanging: VacancyClient = {
    available: () => new Promise<number>(() => {}),
    reserve: (_qty: number, _context?: CallContext) => new Promise<ReserveResult>(() => {}),
    probe: async () => ({ ready: true, detail: 'fake' }),
    close: async () => {},
  };

  it('answers 503 problem+json with Retry-After, saying a purchase may still be made', async () => {
    const app = createApp({ config: parseConfig({ MODE: 'ticket', REQUEST_TIMEOUT: '0.2' }), vacancyClient: hanging });
    const res = await purchase(app);
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toBe(PROBLEM_CONTENT_TYPE);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(await res.json()).toMatchObject({
      outcomeUnknown: true,
      detail: expect.stringMatching(/within 0\.2 s.*Idempotency-Key/),
    });

    const read = await app.request('/api/v1/available');
    expect(read.status).toBe(503);
    expect(await read.json()).not.toHaveProperty('outcomeUnknown');
  });

  it('is off by default', async () => {
    const app = createApp({ config: parseConfig({ MODE: 'ticket' }), vacancyClient: hanging });
    const outcome = await Promise.race([
      Promise.resolve(purchase(app)).then(() => 'answered'),
      new Promise((r) => setTimeout(() => r('still waiting'), 400)),
    ]);
    expect(outcome).toBe('still waiting');
  });
});
