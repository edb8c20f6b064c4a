import { describe, expect, it } from 'vitest';
import { monolith, purchase } from '../../test/support/in-process-app.ts';
import { createApp } from '../app.ts';
import { parseConfig } from '../config.ts';
import { PROBLEM_CONTENT_TYPE, problemTypes } from './problem.ts';
import type { ReserveResult } from '../stock/model.ts';
import { fakeVacancyClient } from '../../test/support/fake-vacancy.ts';

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
  const hanging = fakeVacancyClient({
    available: () => new Promise<number>(() => {}),
    reserve: () => new Promise<ReserveResult>(() => {}),
  });

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
