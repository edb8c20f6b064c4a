import { describe, expect, it } from 'vitest';
import { monolith, purchase, type App } from '../../test/support/in-process-app.ts';
import { createApp } from '../app.ts';
import { parseConfig } from '../config.ts';
import { buildDependencies } from '../dependencies.ts';
import { MeasuredVacancyClient } from '../ticket/measured-vacancy-client.ts';
import { VacancyUnavailableError } from '../stock/vacancy-client.ts';
import { Metrics } from './metrics.ts';
import { PROBLEM_CONTENT_TYPE } from './problem.ts';
import type { ReserveResult } from '../stock/model.ts';
import { parseScrape } from '../../test/support/prometheus.ts';
import { fakeVacancyClient } from '../../test/support/fake-vacancy.ts';

const METRICS_TOKEN = 'metrics-token-0123456789';

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
    const failing = fakeVacancyClient({
      available: async () => 5,
      reserve: async (): Promise<ReserveResult> => {
        throw new VacancyUnavailableError('down', { outcomeUnknown: true });
      },
    });
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
