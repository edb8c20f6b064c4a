/**
 * Debian's Chromium driven by playwright-core, for the browser tests of the
 * pages the service serves (/docs, /dashboard): headless, asking nobody but
 * the service (every request to another origin is aborted and recorded), and
 * a loud skip where Chromium is missing (a failure under CI=true; .ci/run
 * installs it).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';
import { IN_CI, warnSkipped } from './loud-skip.ts';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Debian's flags for a browser that phones nobody: no background fetches, updates, sync or QUIC. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Why the browser tests of `what` cannot run here, or undefined when they can.
 * Under CI=true a missing Chromium is an error; elsewhere a loud warning.
 */
export function chromiumMissing(what: string): string | undefined {
  const missing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (Debian: apt-get install chromium)`;
  if (missing) {
    if (IN_CI) throw new Error(`Chromium is needed under CI=true: ${missing}`);
    warnSkipped(what, missing);
  }
  return missing;
}

export interface OfflineBrowser {
  context: BrowserContext;
  /** Every URL of another origin the pages asked for (each was aborted). */
  otherOrigins: string[];
  close(): Promise<void>;
}

/**
 * A fresh headless Chromium profile whose pages reach `origin` only: every
 * request elsewhere is aborted as if offline, and recorded.
 */
export async function launchOffline(origin: string, options: BrowserContextOptions = {}): Promise<OfflineBrowser> {
  const userDataDir = mkdtempSync(join(tmpdir(), 'ticket-system-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 1000 },
    ...options,
  });
  const otherOrigins: string[] = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (new URL(url).origin === origin) return route.continue();
    otherOrigins.push(url);
    return route.abort('internetdisconnected');
  });
  return {
    context,
    otherOrigins,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/**
 * What went wrong on a page while it was watched: console errors and warnings
 * (a Content-Security-Policy violation is one), uncaught errors, and answers
 * of 400 and above other than those `expected` lets through.
 */
export function watchForFailures(page: Page, expected: (status: number, url: string) => boolean = () => false) {
  const failures: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') failures.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => failures.push(`page error: ${error.message}`));
  page.on('response', (response) => {
    if (response.status() >= 400 && !expected(response.status(), response.url())) {
      failures.push(`${response.status()} ${response.url()}`);
    }
  });
  return failures;
}

/** Writes a screenshot into docs/images/ (when the screenshots are being regenerated). */
export function saveDocsImage(name: string, png: Buffer): void {
  const file = resolve(fileURLToPath(new URL(`../../docs/images/${name}`, import.meta.url)));
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, png);
}
