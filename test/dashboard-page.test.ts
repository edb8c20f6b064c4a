/**
 * /dashboard in a real browser with no network but the service's own:
 * Debian's Chromium, driven by playwright-core, opens the dashboard of a
 * monolith started from the built bundle, with HTTP Basic credentials, and
 * sees its events; a purchase and a hold made through the API show up within
 * 2 s without a reload; a wrong password gets 401; it reads on a phone and in
 * dark mode, works from the keyboard, and picks up again by itself after the
 * service restarts. `npm run docs:screenshots` runs this file with
 * DOCS_SCREENSHOTS=update, which also sells for half a minute (so the chart
 * has bars) and saves docs/images/dashboard-desktop.png and
 * docs/images/dashboard-phone-dark.png. Without Chromium it skips loudly (a
 * failure under CI=true).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chromiumMissing,
  launchOffline,
  saveDocsImage,
  watchForFailures,
  type OfflineBrowser,
} from './support/chromium.ts';
import type { Page } from 'playwright-core';
import { sleep, startService, stopAllServices, type Service } from './support/processes.ts';

const UPDATE_SCREENSHOTS = process.env.DOCS_SCREENSHOTS === 'update';
const ADMIN_TOKEN = 'a-browser-test-admin-token';
const CREDENTIALS = { username: 'admin', password: ADMIN_TOKEN };
/** Fixed, so that times on the screenshots read alike wherever they are made. */
const BROWSER_LOCALE = { locale: 'en-GB', timezoneId: 'UTC' } as const;
const missing = chromiumMissing('the /dashboard browser tests');

const EVENTS = {
  'spring-gala': {
    name: 'Spring gala',
    capacity: 400,
    ticketTypes: [
      { id: 'standing', name: 'Standing', capacity: 300, maxPerOrder: 8 },
      { id: 'seated', name: 'Seated', capacity: 120, maxPerOrder: 6 },
      { id: 'vip', name: 'VIP lounge', capacity: 20, maxPerOrder: 4 },
    ],
  },
  'jazz-night': {
    name: 'Jazz night',
    capacity: null,
    ticketTypes: [{ id: 'door', name: 'At the door', capacity: 80, maxPerOrder: 6 }],
  },
};

async function api<T>(service: Service, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${service.url}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${ADMIN_TOKEN}` },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
  return JSON.parse(text) as T;
}

const purchase = (service: Service, eventId: string, ticketType: string, qty: number) =>
  api<{ orderId: string }>(service, 'POST', `/api/v1/events/${eventId}/purchase`, { items: [{ ticketType, qty }] });
const hold = (service: Service, eventId: string, ticketType: string, qty: number) =>
  api<{ holdId: string }>(service, 'POST', `/api/v1/events/${eventId}/holds`, {
    items: [{ ticketType, qty }],
    ttlSeconds: 900,
  });

async function startMonolith(port?: number): Promise<Service> {
  const service = await startService({
    MODE: 'monolith',
    INITIAL_STOCK: '500',
    ADMIN_TOKEN,
    // Far beyond what a shutdown takes: one held up by an open dashboard would show.
    SHUTDOWN_TIMEOUT: '30',
    ...(port === undefined ? {} : { PORT: String(port) }),
  });
  for (const [id, definition] of Object.entries(EVENTS)) await api(service, 'PUT', `/api/v1/events/${id}`, definition);
  return service;
}

/** Sales spread over `seconds`, so that the sales chart has something to show. */
async function sellFor(service: Service, seconds: number): Promise<void> {
  const until = Date.now() + seconds * 1000;
  for (let i = 0; Date.now() < until; i++) {
    await purchase(service, i % 3 === 0 ? 'jazz-night' : 'spring-gala', i % 3 === 0 ? 'door' : 'standing', 1 + (i % 2));
    await sleep(400 + ((i * 37) % 5) * 150);
  }
}

describe.skipIf(missing !== undefined)('/dashboard in headless Chromium, offline', () => {
  let service: Service;
  let browser: OfflineBrowser;

  beforeAll(async () => {
    service = await startMonolith();
    await purchase(service, 'spring-gala', 'seated', 4);
    await purchase(service, 'jazz-night', 'door', 2);
    await hold(service, 'spring-gala', 'vip', 2);
    if (UPDATE_SCREENSHOTS) await sellFor(service, 35);
    browser = await launchOffline(service.url, { httpCredentials: CREDENTIALS, ...BROWSER_LOCALE });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await stopAllServices();
  });

  it('shows the events, and a purchase and a hold made through the API within 2 s, without a reload', async () => {
    const page = await browser.context.newPage();
    const failures = watchForFailures(page);
    const response = await page.goto(`${service.url}/dashboard`);
    expect(response?.status()).toBe(200);
    await expect(page.title()).resolves.toBe('Live sales · ticket-system-monolith');
    for (const name of ['Spring gala', 'Jazz night', 'Default']) {
      await page.getByRole('heading', { name, level: 3 }).waitFor({ timeout: 5_000 });
    }
    await page.locator('[data-connection="live"]').waitFor({ timeout: 5_000 });
    await page.evaluate(() => ((window as unknown as Record<string, unknown>).notReloaded = true));
    const galaBar = page.getByRole('img', { name: /^Spring gala: \d+ sold/ });
    const before = parseBar(await galaBar.getAttribute('aria-label'));

    // Within 2 s of each answer of the API, the page shows the sale: the order, the hold, the figures.
    const order = await purchase(service, 'spring-gala', 'vip', 3);
    const sold = Date.now();
    const held = await hold(service, 'spring-gala', 'seated', 2);
    const holding = Date.now();
    const within2s = (since: number) => ({ timeout: Math.max(1, 2_000 - (Date.now() - since)) });
    await page
      .locator('[data-live="orders"] code', { hasText: `ord_${order.orderId.slice(12, 20)}` })
      .waitFor(within2s(sold));
    await page
      .locator('[data-live="holds"] code', { hasText: `hld_${held.holdId.slice(12, 20)}` })
      .waitFor(within2s(holding));
    await page
      .getByRole('img', { name: `Spring gala: ${before.sold + 3} sold, ${before.held + 2} held`, exact: false })
      .waitFor(within2s(holding));
    expect(await page.evaluate(() => (window as unknown as Record<string, unknown>).notReloaded)).toBe(true);

    expect(await overflowing(page), 'nothing sticks out of its box').toEqual([]);
    // The charts say in words what they show.
    await expect(page.locator('#sales figcaption').textContent()).resolves.toMatch(
      /\d+ tickets? sold in the last 5 minutes/,
    );
    expect(browser.otherOrigins).toEqual([]);
    expect(failures).toEqual([]);

    if (UPDATE_SCREENSHOTS) {
      await sleep(600);
      saveDocsImage('dashboard-desktop.png', await page.screenshot({ fullPage: true }));
    }
    await page.close();
  });

  it('answers a wrong password, and none, with 401', async () => {
    const wrong = await launchOffline(service.url, {
      httpCredentials: { username: 'admin', password: 'not-the-token' },
    });
    try {
      const page = await wrong.context.newPage();
      expect((await page.goto(`${service.url}/dashboard`))?.status()).toBe(401);
      expect((await page.goto(`${service.url}/dashboard/stream`))?.status()).toBe(401);
    } finally {
      await wrong.close();
    }
    const anonymous = await fetch(`${service.url}/dashboard`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
  });

  it('reads on a phone in dark mode, and works from the keyboard', async () => {
    const page = await browser.context.newPage();
    const failures = watchForFailures(page);
    await page.setViewportSize({ width: 390, height: 844 });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.goto(`${service.url}/dashboard`);
    await page.locator('[data-connection="live"]').waitFor({ timeout: 5_000 });

    const layout = await page.evaluate(() => ({
      overflow: document.documentElement.scrollWidth - window.innerWidth,
      background: getComputedStyle(document.body).backgroundColor,
      text: getComputedStyle(document.body).color,
    }));
    expect(layout.overflow, 'nothing wider than the phone').toBeLessThanOrEqual(0);
    expect(await overflowing(page), 'nothing sticks out of its box').toEqual([]);
    expect(layout.background).toBe('rgb(13, 17, 23)');
    expect(layout.text).toBe('rgb(230, 237, 243)');

    if (UPDATE_SCREENSHOTS) {
      await sleep(600);
      saveDocsImage('dashboard-phone-dark.png', await page.screenshot());
    }

    // Tab reaches the skip link first, shown once focused; it takes the focus to the events.
    await page.keyboard.press('Tab');
    const skip = await page.evaluate(() => {
      const active = document.activeElement as HTMLElement;
      return { text: active.textContent, top: active.getBoundingClientRect().top };
    });
    expect(skip.text).toBe('Skip to the events');
    expect(skip.top).toBeGreaterThanOrEqual(0);
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('events');
    // Then the search, typed and sent from the keyboard: the events whose ids start with it.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('q');
    await page.keyboard.type('jazz');
    await Promise.all([page.waitForURL(/\/dashboard\?q=jazz/), page.keyboard.press('Enter')]);
    await page.locator('[data-connection="live"]').waitFor({ timeout: 5_000 });
    const headings = await page.locator('[data-live="events"] h3').allTextContents();
    expect(headings.map((text) => text.replace(/\s+/g, ' ').trim())).toEqual(['Jazz night jazz-night']);
    expect(await page.locator('body').getAttribute('data-stream')).toBe('/dashboard/stream?q=jazz');

    expect(browser.otherOrigins).toEqual([]);
    expect(failures).toEqual([]);
    await page.close();
  });

  it('picks up again by itself, without a reload, when the service restarts', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${service.url}/dashboard`);
    await page.locator('[data-connection="live"]').waitFor({ timeout: 5_000 });
    await page.evaluate(() => ((window as unknown as Record<string, unknown>).notReloaded = true));

    const port = service.port;
    const stopped = Date.now();
    expect(await service.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    // An open dashboard does not hold the shutdown up.
    expect(Date.now() - stopped).toBeLessThan(5_000);
    await page.locator('[data-connection="reconnecting"]').waitFor({ timeout: 5_000 });

    service = await startMonolith(port);
    await api(service, 'PUT', '/api/v1/events/after-restart', {
      name: 'After the restart',
      capacity: null,
      ticketTypes: [{ id: 'general', name: 'General', capacity: 10, maxPerOrder: null }],
    });
    await page.getByRole('heading', { name: 'After the restart', level: 3 }).waitFor({ timeout: 15_000 });
    await page.locator('[data-connection="live"]').waitFor({ timeout: 5_000 });
    expect(await page.evaluate(() => (window as unknown as Record<string, unknown>).notReloaded)).toBe(true);
    await page.close();
  });
});

/** The panels and event cards whose content is wider than they are. */
function overflowing(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>('.panel, .event')]
      .filter((box) => box.scrollWidth > box.clientWidth + 1)
      .map(
        (box) =>
          `${box.className} ${box.id || box.getAttribute('aria-labelledby')}: ${box.scrollWidth} > ${box.clientWidth}`,
      ),
  );
}

/** "Spring gala: 7 sold, 2 held, …" → its figures. */
function parseBar(label: string | null): { sold: number; held: number } {
  const match = /: (\d+) sold, (\d+) held/.exec(label ?? '');
  if (!match) throw new Error(`not a stock bar label: ${label}`);
  return { sold: Number(match[1]), held: Number(match[2]) };
}
