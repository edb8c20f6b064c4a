/**
 * The dashboard through app.request(): off without ADMIN_TOKEN and in the
 * ticket service, HTTP Basic in front of everything, the page's headers and
 * contents, search and pages over many events, the served files, and the
 * stream: snapshots with what changed, coalesced, stopped when the stream
 * closes or the service shuts down. Sales made every way count once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SseReader } from '../../test/support/sse.ts';
import { parseScrape } from '../../test/support/prometheus.ts';
import { createApp } from '../app.ts';
import { parseConfig } from '../config.ts';
import { buildDependencies } from '../dependencies.ts';
import type { Lifecycle } from '../lib/lifecycle.ts';
import { Metrics } from '../lib/metrics.ts';
import { PROBLEM_CONTENT_TYPE, problemTypes } from '../lib/problem.ts';
import { StoreUnavailableError } from '../stock/errors.ts';
import { DASHBOARD_ASSETS } from './assets.ts';
import { createDashboardRouter, DASHBOARD_CONTENT_SECURITY_POLICY } from './dashboard.router.ts';
import { EVENTS_PER_PAGE, type DashboardStock } from './snapshot.ts';

const TOKEN = 'a-dashboard-admin-token-0123';
const basic = (user: string, password: string) => ({
  Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
});
const ADMIN = basic('admin', TOKEN);

const GALA = {
  name: 'Gala <night>',
  capacity: 20,
  ticketTypes: [
    { id: 'general', name: 'General', capacity: 15, maxPerOrder: 6 },
    { id: 'vip', name: 'VIP', capacity: 5, maxPerOrder: 4 },
  ],
};

const open: SseReader[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((reader) => reader.cancel()));
});

async function service(env: Record<string, string> = {}) {
  const config = parseConfig({
    MODE: 'monolith',
    STOCK_STORE: 'memory',
    INITIAL_STOCK: '10',
    ADMIN_TOKEN: TOKEN,
    ...env,
  });
  const deps = await buildDependencies(config);
  const lifecycle: Lifecycle = { shuttingDown: false };
  const app = createApp({ ...deps, lifecycle });
  return { app, actor: deps.actor!, metrics: deps.metrics!, lifecycle };
}

type App = Awaited<ReturnType<typeof service>>['app'];

async function stream(app: App, path = '/dashboard/stream'): Promise<SseReader> {
  const res = await app.request(path, { headers: ADMIN });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/event-stream');
  const reader = new SseReader(res.body!);
  open.push(reader);
  return reader;
}

async function nextSnapshot(reader: SseReader, timeoutMs = 3_000) {
  const message = await reader.nextOf('snapshot', timeoutMs);
  if (!message) throw new Error('the stream ended');
  return { ...message, parsed: JSON.parse(message.data) as { at: number; sections: Record<string, string> } };
}

async function scrape(app: App): Promise<Map<string, number>> {
  return parseScrape(await (await app.request('/metrics')).text());
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('GET /dashboard: who gets it', () => {
  it.each(['monolith', 'vacancy'])('is not there without ADMIN_TOKEN (%s)', async (mode) => {
    const config = parseConfig({ MODE: mode, STOCK_STORE: 'memory', INITIAL_STOCK: '10' });
    const app = createApp(await buildDependencies(config));
    for (const path of ['/dashboard', '/dashboard/stream', '/dashboard/assets/dashboard.js']) {
      const res = await app.request(path, { headers: ADMIN });
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type')).toBe(PROBLEM_CONTENT_TYPE);
    }
  });

  it('is not in the ticket service, which owns no stock', async () => {
    const config = parseConfig({ MODE: 'ticket', ADMIN_TOKEN: TOKEN, VACANCY_URL: 'http://127.0.0.1:9' });
    const app = createApp(await buildDependencies(config));
    expect((await app.request('/dashboard', { headers: ADMIN })).status).toBe(404);
  });

  it.each([
    ['no Authorization header', {}],
    ['a wrong password', basic('admin', 'not-the-token')],
    ['a prefix of the token', basic('admin', TOKEN.slice(0, -1))],
    ['another user', basic('root', TOKEN)],
    ['the token as a bearer token', { Authorization: `Bearer ${TOKEN}` }],
    ['a header that is not base64', { Authorization: 'Basic ***' }],
    ['credentials without a colon', { Authorization: `Basic ${Buffer.from(TOKEN).toString('base64')}` }],
  ])('answers %s with 401 and a Basic challenge, on every path', async (_what, headers) => {
    const { app } = await service();
    for (const path of ['/dashboard', '/dashboard/stream', '/dashboard/assets/dashboard.js', '/dashboard/nothing']) {
      const res = await app.request(path, { headers });
      expect(res.status, path).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Basic realm="ticket-system dashboard", charset="UTF-8"');
      expect(res.headers.get('content-type')).toBe(PROBLEM_CONTENT_TYPE);
      expect(await res.json()).toMatchObject({ type: problemTypes.unauthorized.type, status: 401 });
      expect(res.headers.get('x-frame-options')).toBe('DENY');
    }
  });

  it('is there in vacancy mode too', async () => {
    const { app } = await service({ MODE: 'vacancy' });
    const res = await app.request('/dashboard', { headers: ADMIN });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('<dd>vacancy</dd>');
  });
});

describe('GET /dashboard: the page', () => {
  it('shows each event with its figures and types, the latest orders and holds, and the service', async () => {
    const { app, actor } = await service();
    await actor.putEvent('gala', GALA);
    const { order } = await actor.purchase('gala', [{ typeId: 'general', qty: 3 }]);
    const { hold } = await actor.hold('gala', [{ typeId: 'vip', qty: 2 }], { ttlMs: 90_000 });

    const res = await app.request('/dashboard', { headers: ADMIN });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=UTF-8');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('x-request-id')).toBeTruthy();
    expect(res.headers.get('content-security-policy')).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    );
    const html = await res.text();
    expect(html.startsWith('<!doctype html><html lang="en">')).toBe(true);

    // The event, escaped, with its figures: 20 capacity, 3 sold, 2 held, 15 available.
    expect(html).toContain('Gala &lt;night&gt; <code>gala</code>');
    expect(html).toContain('aria-label="Gala &lt;night&gt;: 3 sold, 2 held, 15 available of 20"');
    expect(html).toMatch(
      /<th scope="row">General <code>general<\/code><\/th><td>15<\/td><td>3<\/td><td>0<\/td><td>12<\/td>/,
    );
    expect(html).toMatch(/<th scope="row">VIP <code>vip<\/code><\/th><td>5<\/td><td>0<\/td><td>2<\/td><td>3<\/td>/);
    // The default event of the 1.0.0 paths is an event like any other.
    expect(html).toContain('<code>default</code>');
    // Orders and holds, their ids cut short (a hold's id is the right to confirm it).
    expect(html).toContain(`<code>ord_${order.id.slice(12, 20)}…</code>`);
    expect(html).toContain(`<code>hld_${hold.id.slice(12, 20)}…</code>`);
    expect(html).not.toContain(hold.id.slice(12, 21));
    expect(html).not.toContain(hold.id);
    expect(html).toContain('3 × general');
    expect(html).toContain('2 × vip');
    expect(html).toMatch(/in 90 s \(<time datetime="/);
    // The service, and the sales chart with its text alternative.
    expect(html).toContain('<dd>monolith</dd>');
    expect(html).toContain('<dd>memory (not durable)</dd>');
    expect(html).toContain('role="img" aria-label="3 tickets sold in the last 5 minutes, 3 in the last minute');
    // The stream it listens to, and its one script, a served file: nothing inline.
    expect(html).toContain('<body data-stream="/dashboard/stream">');
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html).toContain('<script src="/dashboard/assets/dashboard.js" defer="">');
    expect(html).not.toMatch(/\sstyle=|<style|\son[a-z]+=/);
    expect(html).not.toMatch(/https?:\/\//);
  });

  it('is compressed for a browser that asks', async () => {
    const { app } = await service();
    const res = await app.request('/dashboard', { headers: { ...ADMIN, 'Accept-Encoding': 'gzip' } });
    expect(res.headers.get('content-encoding')).toBe('gzip');
  });

  it('pages through thousands of events in id order, and finds them by the start of their id', async () => {
    const { app, actor } = await service();
    const definition = {
      name: 'Club night',
      capacity: null,
      ticketTypes: [{ id: 'door', name: 'Door', capacity: 50, maxPerOrder: null }],
    };
    for (let i = 0; i < 2_000; i++) await actor.putEvent(`club-${String(i).padStart(4, '0')}`, definition);
    await actor.putEvent('opera', { ...definition, name: 'Opera' });

    const ids = (html: string) => [...html.matchAll(/<h3 id="event-([a-z0-9-]+)"/g)].map((m) => m[1]);
    const next = (html: string) =>
      /<a href="([^"]+)" rel="next">Next page<\/a>/.exec(html)?.[1]?.replaceAll('&amp;', '&');

    const first = await (await app.request('/dashboard', { headers: ADMIN })).text();
    expect(ids(first)).toHaveLength(EVENTS_PER_PAGE);
    expect(ids(first)[0]).toBe('club-0000');
    const secondUrl = next(first)!;
    expect(secondUrl).toBe(`/dashboard?after=club-${String(EVENTS_PER_PAGE - 1).padStart(4, '0')}#events`);
    const second = await (await app.request(secondUrl.replace('#events', ''), { headers: ADMIN })).text();
    expect(ids(second)[0]).toBe(`club-${String(EVENTS_PER_PAGE).padStart(4, '0')}`);
    expect(second).toContain('>First page</a>');
    expect(second).toContain(
      `data-stream="/dashboard/stream?after=club-${String(EVENTS_PER_PAGE - 1).padStart(4, '0')}"`,
    );

    // By prefix: exactly the events whose ids start with it, the exact id first, pages as before.
    const found = await (await app.request('/dashboard?q=club-19', { headers: ADMIN })).text();
    expect(ids(found)).toEqual(Array.from({ length: 20 }, (_, i) => `club-19${String(i).padStart(2, '0')}`));
    const rest = await (await app.request(next(found)!.replace('#events', ''), { headers: ADMIN })).text();
    expect(ids(rest)).toEqual(Array.from({ length: 20 }, (_, i) => `club-19${String(i + 20)}`));

    expect(ids(await (await app.request('/dashboard?q=OPERA', { headers: ADMIN })).text())).toEqual(['opera']);
    expect(ids(await (await app.request('/dashboard?q=club-1999', { headers: ADMIN })).text())).toEqual(['club-1999']);
    const none = await (await app.request('/dashboard?q=zzz', { headers: ADMIN })).text();
    expect(ids(none)).toEqual([]);
    expect(none).toContain('No event id starts with “zzz”.');
    const odd = await app.request(
      `/dashboard?q=${encodeURIComponent('<x y="1">')}&after=${encodeURIComponent('../x')}`,
      {
        headers: ADMIN,
      },
    );
    expect(odd.status).toBe(200);
    expect(await odd.text()).toContain('value="&lt;x y=&quot;1&quot;&gt;"');
  });

  it('still answers, saying what cannot be read, when the store fails', async () => {
    const failing = new StoreUnavailableError(new Error('disk full'));
    const stock: DashboardStock = {
      listEvents: () => Promise.reject(failing),
      getEvent: () => Promise.reject(failing),
      recentOrders: () => Promise.reject(failing),
      expiringHolds: () => Promise.reject(failing),
      storeHealth: () => ({ kind: 'sqlite', durable: true, writable: false, lastCommitAgeMs: 5, error: 'disk full' }),
      storeKind: 'sqlite',
      stats: () => ({ mailboxDepth: 3, lastBatchSize: 1, idempotencyKeys: 0 }),
    };
    const router = createDashboardRouter({
      stock,
      metrics: new Metrics(),
      requestMetrics: false,
      adminToken: TOKEN,
      service: { name: 'svc', mode: 'vacancy', version: '1.2.3' },
      lifecycle: { shuttingDown: false },
    });
    const res = await router.request('/dashboard', { headers: ADMIN });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('<dd>cannot write: disk full</dd>');
    expect(html).toContain('The events cannot be read now');
    expect(html).toContain('Orders cannot be read now');
    expect(html).toContain('Request figures need METRICS=true.');
  });
});

describe('GET /dashboard/assets/*', () => {
  it.each(Object.entries(DASHBOARD_ASSETS))('serves %s with its type, revalidated by ETag', async (file, asset) => {
    const { app } = await service();
    const res = await app.request(`/dashboard/assets/${file}`, { headers: ADMIN });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(asset.type);
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(await res.text()).toBe(asset.body);
    const etag = res.headers.get('etag')!;
    expect(etag).toBeTruthy();
    const again = await app.request(`/dashboard/assets/${file}`, { headers: { ...ADMIN, 'If-None-Match': etag } });
    expect(again.status).toBe(304);
  });

  it('answers 404 for any other file', async () => {
    const { app } = await service();
    expect((await app.request('/dashboard/assets/../../etc/passwd', { headers: ADMIN })).status).toBe(404);
    expect((await app.request('/dashboard/assets/constructor', { headers: ADMIN })).status).toBe(404);
  });

  it('serves a script that parses, names no other origin and uses no eval', () => {
    const script = DASHBOARD_ASSETS['dashboard.js']!.body;
    expect(() => new Function(script)).not.toThrow();
    expect(script).not.toMatch(/https?:\/\/|eval\(|new Function/);
    expect(DASHBOARD_ASSETS['dashboard.css']!.body).toContain('@media (prefers-color-scheme: dark)');
    expect(DASHBOARD_CONTENT_SECURITY_POLICY.scriptSrc).toEqual(["'self'"]);
  });
});

describe('GET /dashboard/stream', () => {
  it('sends every section first, then what changed after a sale and a hold, and stops when the stream closes', async () => {
    const { app, actor } = await service();
    await actor.putEvent('gala', GALA);
    const reader = await stream(app);

    const first = await nextSnapshot(reader);
    expect(first.retry).toBe(1000);
    expect(Object.keys(first.parsed.sections)).toEqual([
      'events',
      'status',
      'service',
      'sales',
      'orders',
      'holds',
      'event:default',
      'event:gala',
    ]);
    // The list holds the cards' places; each card comes as a section of its own.
    expect(first.parsed.sections.events).toContain(
      '<article class="event" aria-labelledby="event-gala" data-live="event:gala"></article>',
    );
    expect(first.parsed.sections['event:gala']).toContain(
      'aria-label="Gala &lt;night&gt;: 0 sold, 0 held, 20 available of 20"',
    );
    expect(first.parsed.sections.orders).toContain('No orders yet.');

    await actor.purchase('gala', [{ typeId: 'general', qty: 4 }]);
    await actor.hold('gala', [{ typeId: 'vip', qty: 1 }], { ttlMs: 60_000 });
    let update = await nextSnapshot(reader);
    while (!update.parsed.sections['event:gala']?.includes('4 sold, 1 held')) update = await nextSnapshot(reader);
    // Only what changed: the gala's card, not the default event's nor the list.
    expect(update.parsed.sections).not.toHaveProperty('event:default');
    expect(update.parsed.sections).not.toHaveProperty('events');
    expect(update.retry).toBeUndefined();
    expect(Number(update.id)).toBeGreaterThan(Number(first.id));

    const before = await scrape(app);
    expect(before.get('ticket_dashboard_streams')).toBe(1);
    await reader.cancel();
    await sleep(50);
    const after = await scrape(app);
    expect(after.get('ticket_dashboard_streams')).toBe(0);
    await sleep(1_200);
    // Nobody watches: no snapshot is read any more.
    expect((await scrape(app)).get('ticket_dashboard_snapshots_total')).toBe(
      after.get('ticket_dashboard_snapshots_total'),
    );
  });

  it('sends the list and every card again when which events are on the page changes', async () => {
    const { app, actor } = await service();
    const reader = await stream(app);
    const first = await nextSnapshot(reader);
    expect(Object.keys(first.parsed.sections).filter((name) => name.startsWith('event:'))).toEqual(['event:default']);

    await actor.putEvent('gala', GALA);
    let update = await nextSnapshot(reader);
    while (!update.parsed.sections.events) update = await nextSnapshot(reader);
    expect(Object.keys(update.parsed.sections).filter((name) => name.startsWith('event:'))).toEqual([
      'event:default',
      'event:gala',
    ]);
  });

  it('coalesces: however fast tickets sell, at most two snapshots a second, read once for every viewer', async () => {
    const { app, actor } = await service({ INITIAL_STOCK: '100000' });
    const readers = await Promise.all([stream(app), stream(app), stream(app, '/dashboard/stream?q=def')]);
    await Promise.all(readers.map((reader) => nextSnapshot(reader)));
    const started = (await scrape(app)).get('ticket_dashboard_snapshots_total')!;

    const counts = readers.map(() => 0);
    const reading = readers.map(async (reader, i) => {
      const until = Date.now() + 2_000;
      while (Date.now() < until) {
        const message = await reader.next(Math.max(1, until - Date.now())).catch(() => null);
        if (message?.event === 'snapshot') counts[i]! += 1;
      }
    });
    const selling = (async () => {
      const until = Date.now() + 2_000;
      while (Date.now() < until) await Promise.all(Array.from({ length: 50 }, () => actor.reserve(1)));
    })();
    await Promise.all([...reading, selling]);

    const snapshots = (await scrape(app)).get('ticket_dashboard_snapshots_total')! - started;
    expect(snapshots).toBeGreaterThanOrEqual(2);
    expect(snapshots).toBeLessThanOrEqual(5);
    for (const count of counts) {
      expect(count).toBeGreaterThanOrEqual(2);
      expect(count).toBeLessThanOrEqual(5);
    }
  });

  it('tells each stream the service is shutting down and ends it; a new one gets 503', async () => {
    const { app, lifecycle } = await service();
    const reader = await stream(app);
    await nextSnapshot(reader);
    lifecycle.shuttingDown = true;
    const closing = await reader.nextOf('closing', 3_000);
    expect(closing?.data).toContain('shutting down');
    expect(await reader.next(1_000)).toBeNull();
    const res = await app.request('/dashboard/stream', { headers: ADMIN });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('2');
  });
});

describe('the sales rate', () => {
  const sold = (metrics: Metrics, eventId?: string) => metrics.sales.rate(eventId).steps.reduce((a, b) => a + b, 0);

  it('counts each sale of the monolith once, however it was made, and no replay', async () => {
    const { app, metrics, actor } = await service({ INITIAL_STOCK: '100' });
    await actor.putEvent('gala', GALA);
    const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      app.request(path, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });

    expect((await post('/api/v1/purchase', { qty: 2 })).status).toBe(200);
    expect((await post('/api/v1/purchase', { qty: 3 }, { 'Idempotency-Key': 'k1' })).status).toBe(200);
    expect(
      (await post('/api/v1/purchase', { qty: 3 }, { 'Idempotency-Key': 'k1' })).headers.get('idempotent-replayed'),
    ).toBe('true');
    expect((await post('/api/v1/purchase', { qty: 1000 })).status).toBe(200); // insufficient: nothing sold
    const items = [{ ticketType: 'general', qty: 2 }];
    expect((await post('/api/v1/events/gala/purchase', { items })).status).toBe(201);
    const held = await post('/api/v1/events/gala/holds', { items: [{ ticketType: 'vip', qty: 1 }] });
    const { holdId } = (await held.json()) as { holdId: string };
    expect((await post(`/api/v1/holds/${holdId}/confirm`, {})).status).toBe(201);
    expect((await post(`/api/v1/holds/${holdId}/confirm`, {})).status).toBe(200); // the same order again

    expect(sold(metrics)).toBe(2 + 3 + 2 + 1);
    expect(sold(metrics, 'default')).toBe(5);
    expect(sold(metrics, 'gala')).toBe(3);
  });

  it('counts each sale vacancy decides once: single reserves, batches of reserves, batches of commands', async () => {
    const { app, metrics, actor } = await service({ MODE: 'vacancy', INITIAL_STOCK: '100' });
    await actor.putEvent('gala', GALA);
    const post = (path: string, body: unknown) =>
      app.request(path, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });

    expect((await post('/api/v1/reserve', { qty: 2 })).status).toBe(200);
    const batch = {
      reserves: [
        { qty: 1, key: 'a' },
        { qty: 4, key: 'b' },
        { qty: 1, key: 'a' },
      ],
    };
    expect((await post('/api/v1/reserve/batch', batch)).status).toBe(200);
    expect((await post('/api/v1/reserve/batch', batch)).status).toBe(200); // replays, all of them
    const commands = {
      commands: [
        { op: 'purchase', eventId: 'gala', key: 'p1', items: [{ ticketType: 'general', qty: 3 }] },
        { op: 'hold', eventId: 'gala', key: 'h1', ttlSeconds: 60, items: [{ ticketType: 'vip', qty: 2 }] },
      ],
    };
    const answered = (await (await post('/api/v1/batch', commands)).json()) as {
      results: Array<{ hold?: { holdId: string } }>;
    };
    await post('/api/v1/batch', commands); // replays
    const holdId = answered.results[1]!.hold!.holdId;
    expect((await post('/api/v1/batch', { commands: [{ op: 'confirm', holdId }] })).status).toBe(200);

    expect(sold(metrics, 'default')).toBe(2 + 1 + 4);
    expect(sold(metrics, 'gala')).toBe(3 + 2);
    expect(sold(metrics)).toBe(12);
  });
});
