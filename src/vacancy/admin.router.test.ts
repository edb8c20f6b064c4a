import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp } from '../app.ts';
import { parseConfig } from '../config.ts';
import { buildDependencies } from '../dependencies.ts';
import { PROBLEM_CONTENT_TYPE, problemTypes } from '../lib/problem.ts';
import { silentLogger } from '../lib/logger.ts';
import { SqliteStockStore } from '../node/sqlite-stock-store.ts';
import type { StockStore } from '../stock/store.ts';

const TOKEN = 'an-admin-token-of-some-length';

async function appWith(env: Record<string, string>, store?: StockStore) {
  const config = parseConfig({ STOCK_STORE: 'memory', INITIAL_STOCK: '10', ...env });
  const deps = await buildDependencies(config, store ? { store } : {});
  return { app: createApp(deps), deps };
}

function adjust(app: Awaited<ReturnType<typeof appWith>>['app'], body: unknown, token: string | null = TOKEN) {
  return app.request('/api/v1/admin/stock', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token === null ? {} : { Authorization: `Bearer ${token}` }) },
    body: JSON.stringify(body),
  });
}

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe.each(['monolith', 'vacancy'])('POST /api/v1/admin/stock (%s)', (mode) => {
  it('adds and sets stock with the admin token, keeping the sale sequence', async () => {
    const { app, deps } = await appWith({ MODE: mode, ADMIN_TOKEN: TOKEN });
    await deps.actor!.reserve(4);

    const added = await adjust(app, { op: 'add', qty: 5 });
    expect(added.status).toBe(200);
    expect(await added.json()).toEqual({ remaining: 11, sold: 4 });

    const set = await adjust(app, { op: 'set', qty: 2 });
    expect(await set.json()).toEqual({ remaining: 2, sold: 4 });
    expect(await deps.actor!.available()).toBe(2);
    // Ticket numbers go on from where sales stopped.
    expect(await deps.actor!.reserve(1)).toMatchObject({ tickets: { first: 5, last: 5 } });
  });

  it.each([
    ['no Authorization header', null],
    ['a wrong token', 'not-the-admin-token-at-all'],
    ['a prefix of the token', TOKEN.slice(0, -1)],
    ['an empty bearer token', ''],
  ])('refuses %s with 401 problem and changes nothing', async (_what, token) => {
    const { app, deps } = await appWith({ MODE: mode, ADMIN_TOKEN: TOKEN });
    const res = await adjust(app, { op: 'set', qty: 1000 }, token);
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toBe(PROBLEM_CONTENT_TYPE);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await res.json()).toMatchObject({ type: problemTypes.unauthorized.type, status: 401 });
    expect(deps.actor!.snapshot()).toEqual({ remaining: 10, sold: 0 });
  });

  it.each([
    ['an unknown op', { op: 'multiply', qty: 2 }],
    ['a negative set', { op: 'set', qty: -1 }],
    ['a fractional qty', { op: 'add', qty: 1.5 }],
    ['a missing qty', { op: 'add' }],
    ['a string qty', { op: 'add', qty: '5' }],
  ])('answers 422 problem for %s and changes nothing', async (_what, body) => {
    const { app, deps } = await appWith({ MODE: mode, ADMIN_TOKEN: TOKEN });
    const res = await adjust(app, body);
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toBe(PROBLEM_CONTENT_TYPE);
    expect(deps.actor!.snapshot()).toEqual({ remaining: 10, sold: 0 });
  });

  it('answers 409 problem when an add would take the stock below zero', async () => {
    const { app, deps } = await appWith({ MODE: mode, ADMIN_TOKEN: TOKEN });
    const res = await adjust(app, { op: 'add', qty: -11 });
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ type: problemTypes.stockConflict.type });
    expect(deps.actor!.snapshot()).toEqual({ remaining: 10, sold: 0 });
  });

  it('is absent (404) when no ADMIN_TOKEN is configured', async () => {
    const { app, deps } = await appWith({ MODE: mode });
    const res = await adjust(app, { op: 'set', qty: 1000 });
    expect(res.status).toBe(404);
    expect(deps.actor!.snapshot()).toEqual({ remaining: 10, sold: 0 });
    const doc = (await (await app.request('/openapi.json')).json()) as { paths: Record<string, unknown> };
    expect(doc.paths['/api/v1/admin/stock']).toBeUndefined();
  });
});

it('is not served by the ticket service, which owns no stock', async () => {
  const config = parseConfig({ MODE: 'ticket', ADMIN_TOKEN: TOKEN });
  const deps = await buildDependencies(config);
  const res = await adjust(createApp(deps), { op: 'set', qty: 1 });
  expect(res.status).toBe(404);
});

it('records adjustments in the SQLite store like any sale: they survive a restart', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ticket-admin-'));
  dirs.push(dataDir);
  const store = () => new SqliteStockStore({ dataDir, maxKeys: 100, logger: silentLogger });
  const first = await appWith({ ADMIN_TOKEN: TOKEN, STOCK_STORE: 'sqlite' }, store());
  await first.deps.actor!.reserve(3);
  expect(await (await adjust(first.app, { op: 'add', qty: 100 })).json()).toEqual({ remaining: 107, sold: 3 });
  await first.deps.close();

  const second = await appWith({ ADMIN_TOKEN: TOKEN, STOCK_STORE: 'sqlite' }, store());
  expect(second.deps.actor!.snapshot()).toEqual({ remaining: 107, sold: 3 });
  await second.deps.close();
});
