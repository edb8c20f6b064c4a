/**
 * Rendering the dashboard must not leave promise hooks on for the rest of the
 * process (Node before 24: an AsyncLocalStorage that has run once does). Seen
 * from inside a fresh child process, since the test runner may use
 * AsyncLocalStorage itself: with hooks on, a promise's continuation runs with
 * that promise as its async resource.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

const HOOKS_ON = `
import { executionAsyncResource } from 'node:async_hooks';
const hooksOn = () => new Promise((resolve) => Promise.resolve().then(() => resolve(executionAsyncResource() instanceof Promise)));
`;

/** Runs `body` (ESM, top-level await) in a fresh node with tsx, and answers what it printed. */
async function inFreshNode(body: string): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', HOOKS_ON + body], {
    cwd: here('../..'),
    env: { ...process.env, LOG_LEVEL: 'silent' },
  });
  return stdout.trim();
}

describe('the dashboard render context', () => {
  it('leaves no promise hooks on after the page and the live sections are rendered', async () => {
    const printed = await inFreshNode(`
      const { createApp } = await import(${JSON.stringify(here('../app.ts'))});
      const { parseConfig } = await import(${JSON.stringify(here('../config.ts'))});
      const { buildDependencies } = await import(${JSON.stringify(here('../dependencies.ts'))});
      const token = 'a-dashboard-admin-token-0123';
      const deps = await buildDependencies(parseConfig({ MODE: 'monolith', STOCK_STORE: 'memory', ADMIN_TOKEN: token }));
      const app = createApp(deps);
      const headers = { Authorization: 'Basic ' + Buffer.from('admin:' + token).toString('base64') };
      const page = await app.request('/dashboard', { headers });
      const html = await page.text();
      const stream = await app.request('/dashboard/stream', { headers });
      const reader = stream.body.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      await reader.cancel();
      console.log(JSON.stringify({ status: page.status, rendered: html.includes('<main'), streamed: first.includes('data:'), hooksOn: await hooksOn() }));
      await deps.close?.();
      process.exit(0);
    `);
    expect(JSON.parse(printed.split('\n').at(-1)!)).toEqual({
      status: 200,
      rendered: true,
      streamed: true,
      hooksOn: false,
    });
  });

  it.runIf(NODE_MAJOR < 24)('is needed: a plain hono/jsx render leaves them on (Node before 24)', async () => {
    const printed = await inFreshNode(`
      const { jsx } = await import('hono/jsx');
      const before = await hooksOn();
      String(jsx('p', {}, 'hello'));
      console.log(JSON.stringify({ before, after: await hooksOn() }));
    `);
    expect(JSON.parse(printed)).toEqual({ before: false, after: true });
  });
});
