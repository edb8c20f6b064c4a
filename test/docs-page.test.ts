/**
 * /docs in a real browser with no network but the service's own: Debian's
 * Chromium, driven by playwright-core, loads the page from the built bundle
 * with every request to another origin aborted, and the API's operations
 * render. `npm run docs:screenshots` runs this file with
 * DOCS_SCREENSHOTS=update, which also saves the page to
 * docs/images/api-reference.png. Without Chromium the test skips loudly
 * (a failure under CI=true); .ci/run installs it.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IN_CI, warnSkipped } from './support/loud-skip.ts';
import { startService, stopAllServices, type Service } from './support/processes.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOT = resolve(fileURLToPath(new URL('../docs/images/api-reference.png', import.meta.url)));
const UPDATE_SCREENSHOT = process.env.DOCS_SCREENSHOTS === 'update';

/** Debian's flags for a browser that phones nobody: no background fetches, updates, sync or QUIC. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const missing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (Debian: apt-get install chromium)`;
if (missing) {
  if (IN_CI) throw new Error(`Chromium is needed under CI=true: ${missing}`);
  warnSkipped('the /docs browser test', missing);
}

describe.skipIf(missing !== undefined)('/docs in headless Chromium, offline', () => {
  let service: Service;
  let browser: BrowserContext;
  let userDataDir: string;

  beforeAll(async () => {
    service = await startService({ MODE: 'monolith', INITIAL_STOCK: '100' });
    userDataDir = mkdtempSync(join(tmpdir(), 'ticket-system-chromium-'));
    browser = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 1000 },
    });
  });

  afterAll(async () => {
    await browser?.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
    await stopAllServices();
  });

  it('renders the operations, asking no other origin for anything and breaking no policy', async () => {
    const otherOrigins: string[] = [];
    const failures: string[] = [];
    await browser.route('**/*', (route) => {
      const url = route.request().url();
      if (new URL(url).origin === service.url) return route.continue();
      otherOrigins.push(url);
      return route.abort('internetdisconnected');
    });
    const page = await browser.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') failures.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => failures.push(`page error: ${error.message}`));
    page.on('response', (response) => {
      if (response.status() >= 400) failures.push(`${response.status()} ${response.url()}`);
    });

    await page.goto(`${service.url}/docs`);
    await page
      .locator('.opblock-summary-path', { hasText: '/api/v1/purchase' })
      .first()
      .waitFor({ timeout: 20_000 })
      .catch((error: Error) => {
        throw new Error(`${error.message}\nasked of other origins: ${otherOrigins.join(', ')}\n${failures.join('\n')}`);
      });
    const paths = await page.locator('.opblock-summary-path').allTextContents();
    expect(paths.map((path) => path.trim())).toEqual(
      expect.arrayContaining(['/api/v1/purchase', '/api/v1/available', '/api/v1/reserve', '/api/v1/health']),
    );
    await expect(page.title()).resolves.toBe('ticket-system (monolith)');

    const screenshot = await page.screenshot({ fullPage: true });
    expect(screenshot.byteLength).toBeGreaterThan(10_000);
    if (UPDATE_SCREENSHOT) {
      mkdirSync(dirname(SCREENSHOT), { recursive: true });
      writeFileSync(SCREENSHOT, screenshot);
    }

    expect(otherOrigins).toEqual([]);
    expect(failures).toEqual([]);
  });
});
