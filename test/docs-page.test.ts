/**
 * /docs in a real browser with no network but the service's own: Debian's
 * Chromium, driven by playwright-core, loads the page from the built bundle
 * with every request to another origin aborted, and the API's operations
 * render. `npm run docs:screenshots` runs this file with
 * DOCS_SCREENSHOTS=update, which also saves the page to
 * docs/images/api-reference.png. Without Chromium the test skips loudly
 * (a failure under CI=true); .ci/run installs it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chromiumMissing,
  launchOffline,
  saveDocsImage,
  watchForFailures,
  type OfflineBrowser,
} from './support/chromium.ts';
import { startService, stopAllServices, type Service } from './support/processes.ts';

const UPDATE_SCREENSHOT = process.env.DOCS_SCREENSHOTS === 'update';
const missing = chromiumMissing('the /docs browser test');

describe.skipIf(missing !== undefined)('/docs in headless Chromium, offline', () => {
  let service: Service;
  let browser: OfflineBrowser;

  beforeAll(async () => {
    service = await startService({ MODE: 'monolith', INITIAL_STOCK: '100' });
    browser = await launchOffline(service.url);
  });

  afterAll(async () => {
    await browser?.close();
    await stopAllServices();
  });

  it('renders the operations, asking no other origin for anything and breaking no policy', async () => {
    const { otherOrigins } = browser;
    const page = await browser.context.newPage();
    const failures = watchForFailures(page);

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
    if (UPDATE_SCREENSHOT) saveDocsImage('api-reference.png', screenshot);

    expect(otherOrigins).toEqual([]);
    expect(failures).toEqual([]);
  });
});
