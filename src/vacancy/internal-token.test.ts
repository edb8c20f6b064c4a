import { describe, expect, it } from 'vitest';
import { createApp } from '../app.ts';
import { parseConfig } from '../config.ts';
import { buildDependencies } from '../dependencies.ts';
import { PROBLEM_CONTENT_TYPE, problemTypes } from '../lib/problem.ts';
import { RemoteVacancyClient } from '../ticket/remote-vacancy-client.ts';

const TOKEN = 'internal-token-between-services';

async function vacancy(env: Record<string, string> = {}) {
  const deps = await buildDependencies(
    parseConfig({ MODE: 'vacancy', STOCK_STORE: 'memory', INITIAL_STOCK: '10', INTERNAL_TOKEN: TOKEN, ...env }),
  );
  return { app: createApp(deps), actor: deps.actor! };
}

function reserve(app: Awaited<ReturnType<typeof vacancy>>['app'], authorization?: string, body = '{"qty":2}') {
  return app.request('/api/v1/reserve', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(authorization ? { Authorization: authorization } : {}) },
    body,
  });
}

describe('INTERNAL_TOKEN', () => {
  it.each([
    ['no token', undefined],
    ['a wrong token', 'Bearer not-the-internal-token'],
    ['the token without the Bearer scheme', TOKEN],
  ])('refuses a reserve with %s: 401 problem, stock unchanged', async (_what, authorization) => {
    const { app, actor } = await vacancy();
    const res = await reserve(app, authorization);
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toBe(PROBLEM_CONTENT_TYPE);
    expect(await res.json()).toMatchObject({ type: problemTypes.unauthorized.type, status: 401 });
    expect(actor.snapshot()).toEqual({ remaining: 10, sold: 0 });
  });

  it('checks the token before the body: a bad body from an outsider is a 401 too', async () => {
    const { app } = await vacancy();
    expect((await reserve(app, undefined, '{"qty":')).status).toBe(401);
  });

  it('lets a reserve with the token through, and leaves reads public', async () => {
    const { app, actor } = await vacancy();
    expect((await reserve(app, `Bearer ${TOKEN}`)).status).toBe(200);
    expect(actor.snapshot()).toEqual({ remaining: 8, sold: 2 });
    expect((await app.request('/api/v1/available')).status).toBe(200);
  });

  it('keeps purchases public in the monolith while guarding its reserve', async () => {
    const deps = await buildDependencies(
      parseConfig({ MODE: 'monolith', STOCK_STORE: 'memory', INITIAL_STOCK: '10', INTERNAL_TOKEN: TOKEN }),
    );
    const app = createApp(deps);
    const purchase = await app.request('/api/v1/purchase', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{"qty":1}',
    });
    expect(purchase.status).toBe(200);
    expect((await reserve(app)).status).toBe(401);
  });

  it('is sent by the ticket service on its calls to vacancy', async () => {
    const { app, actor } = await vacancy();
    const viaApp: typeof fetch = async (input, init) => app.fetch(new Request(input, init));
    const client = new RemoteVacancyClient({
      baseUrl: 'http://vacancy',
      timeoutMs: 2_000,
      internalToken: TOKEN,
      fetch: viaApp,
    });
    await expect(client.reserve(3)).resolves.toMatchObject({ success: true, remaining: 7 });

    const outsider = new RemoteVacancyClient({ baseUrl: 'http://vacancy', timeoutMs: 2_000, fetch: viaApp });
    await expect(outsider.reserve(3)).rejects.toThrow(/status 401/);
    expect(actor.snapshot()).toEqual({ remaining: 7, sold: 3 });
  });
});
