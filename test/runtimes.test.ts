/**
 * The same app on Node (this machine's, and Node 24 as in the container
 * image), Deno and Bun: each runtime's entrypoint serves the monolith over a
 * real socket, and the API contract holds on every one of them — every
 * endpoint, the bad inputs, idempotency, a concurrent sell-out with the
 * stock invariant, the SQLite store (each runtime's own binding, and a restart
 * on what it wrote) and the Redis store, and a clean SIGTERM. Deno and
 * Bun come from the `deno` and `bun` devDependencies, Node 24 from
 * test/support/node24.ts (skipped loudly where it cannot be had, a failure
 * under CI=true).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { makeTempDir, removeDir } from './support/http-json.ts';
import { BUNDLE, childEnv, freePort, getStatus, sleep } from './support/processes.ts';
import { IN_CI, warnSkipped } from './support/loud-skip.ts';
import { NODE_24_VERSION, node24 } from './support/node24.ts';
import { deleteKeysWithPrefix, redisGate, uniquePrefix } from './support/redis.ts';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const BIN = (name: string) => resolve(ROOT, 'node_modules/.bin', name);

const DENO = [
  BIN('deno'),
  'run',
  '--allow-net',
  '--allow-env',
  '--allow-read',
  '--allow-write',
  '--allow-sys',
  resolve(ROOT, 'src/deno.ts'),
];
const BUN = [BIN('bun'), resolve(ROOT, 'src/bun.ts')];
const NODE_24 = await node24();
if ('missing' in NODE_24) {
  if (IN_CI) throw new Error(`Node ${NODE_24_VERSION} is needed under CI=true: ${NODE_24.missing}`);
  warnSkipped(`the monolith on Node ${NODE_24_VERSION}`, NODE_24.missing);
}

const RUNTIMES: Record<string, readonly string[]> = {
  [`node-${process.versions.node}`]: [process.execPath, BUNDLE],
  ...('path' in NODE_24 ? { [`node-${NODE_24_VERSION}`]: [NODE_24.path, BUNDLE] } : {}),
  deno: DENO,
  bun: BUN,
};

interface Running {
  url: string;
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
}

const running = new Set<Running>();
const dirs: string[] = [];
const gate = await redisGate('runtime Redis tests');
const prefixes: string[] = [];

afterAll(async () => {
  for (const server of running) server.child.kill('SIGKILL');
  for (const dir of dirs) removeDir(dir);
  for (const prefix of prefixes) await deleteKeysWithPrefix(gate.url, prefix);
});

async function start(runtime: string, env: Record<string, string>): Promise<Running> {
  const [command = '', ...args] = RUNTIMES[runtime] ?? [];
  if (!existsSync(command)) throw new Error(`${command} is missing: run npm ci`);
  const port = await freePort();
  const cwd = makeTempDir(`ticket-runtime-${runtime}-`);
  dirs.push(cwd);
  const child = spawn(command, args, {
    cwd,
    env: childEnv({ ...env, PORT: String(port) }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  const exit = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  const server: Running = { url: `http://127.0.0.1:${port}`, child, output: () => output, exit };
  running.add(server);
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${runtime} exited before it was healthy:\n${output}`);
    if ((await getStatus(`${server.url}/api/v1/health`).catch(() => 0)) === 200) return server;
    await sleep(100);
  }
  throw new Error(`${runtime} not healthy within 30 s:\n${output}`);
}

/** Bun has its own SQLite; Deno and Node 22.13+ have node:sqlite; older Node uses better-sqlite3. */
function expectedSqliteDriver(runtime: string): string {
  if (runtime === 'bun') return 'bun:sqlite';
  if (runtime === 'deno') return 'node:sqlite';
  const [major = 0, minor = 0] = runtime.replace('node-', '').split('.').map(Number);
  return major > 22 || (major === 22 && minor >= 13) ? 'node:sqlite' : 'better-sqlite3';
}

async function call(url: string, init: RequestInit & { json?: unknown } = {}) {
  const { json, ...rest } = init;
  const response = await fetch(url, {
    ...rest,
    ...(json === undefined ? {} : { method: rest.method ?? 'POST', body: JSON.stringify(json) }),
    headers: {
      ...(json === undefined ? {} : { 'Content-Type': 'application/json' }),
      ...(rest.headers as Record<string, string>),
    },
  });
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON (the docs page)
  }
  return { status: response.status, headers: response.headers, text, body };
}

it('starts Deno and Bun with the same commands as npm run start:deno and start:bun', () => {
  const scripts = (
    JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  ).scripts;
  const asScript = ([command = '', ...args]: readonly string[]) =>
    [command.split('/').pop(), ...args.map((arg) => arg.replace(`${ROOT}/`, ''))].join(' ');
  expect(scripts['start:deno']).toBe(asScript(DENO));
  expect(scripts['start:bun']).toBe(asScript(BUN));
});

describe.each(Object.keys(RUNTIMES))('the monolith on %s', (runtime) => {
  it('serves every endpoint, refuses every bad input without changing stock, sells out exactly, and stops cleanly', async () => {
    const dataDir = makeTempDir(`ticket-runtime-data-${runtime}-`);
    dirs.push(dataDir);
    const server = await start(runtime, {
      STOCK_STORE: 'sqlite',
      DATA_DIR: dataDir,
      INITIAL_STOCK: '300',
      BODY_LIMIT: '256',
    });
    const api = `${server.url}/api/v1`;

    expect((await call(`${server.url}/`)).body).toMatchObject({ mode: 'monolith', version: expect.any(String) });
    expect((await call(`${api}/available`)).body).toEqual({ qty: 300 });
    expect((await call(`${api}/health`)).body).toMatchObject({ status: 'healthy', service: 'monolith' });
    expect((await call(`${api}/ready`)).status).toBe(200);
    expect(String((await call(`${server.url}/openapi.json`)).body.openapi)).toMatch(/^3\.1/);
    expect((await call(`${server.url}/docs`)).text).toContain('/docs/swagger-ui-bundle.js');
    for (const [file, type] of [
      ['swagger-ui-bundle.js', 'text/javascript'],
      ['swagger-ui.css', 'text/css'],
    ] as const) {
      const asset = await call(`${server.url}/docs/${file}`);
      expect({ file, status: asset.status, type: asset.headers.get('content-type') }).toEqual({
        file,
        status: 200,
        type: expect.stringContaining(type),
      });
    }

    const bad: Array<[string, RequestInit, number]> = [
      ['malformed JSON', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"qty":' }, 400],
      ['qty 0', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"qty":0}' }, 422],
      ['qty 1.5', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"qty":1.5}' }, 422],
      ['an array', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '[1]' }, 422],
      ['text/plain', { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: '{"qty":1}' }, 415],
      [
        'a body over BODY_LIMIT',
        {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: `{"qty":1,"pad":"${'x'.repeat(400)}"}`,
        },
        413,
      ],
      [
        'an Idempotency-Key of 256 characters',
        {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'Idempotency-Key': 'k'.repeat(256) },
          body: '{"qty":1}',
        },
        400,
      ],
    ];
    for (const path of ['purchase', 'reserve']) {
      for (const [what, init, status] of bad) {
        const answer = await call(`${api}/${path}`, init);
        expect({ what, path, status: answer.status }).toEqual({ what, path, status });
        expect(answer.headers.get('content-type')).toBe('application/problem+json');
        expect(answer.body).toMatchObject({
          status,
          type: expect.any(String),
          title: expect.any(String),
          detail: expect.any(String),
        });
      }
    }
    expect((await call(`${api}/nothing`)).status).toBe(404);
    expect((await call(`${api}/available`)).body).toEqual({ qty: 300 });

    const first = await call(`${api}/purchase`, {
      json: { qty: 2 },
      headers: { 'Idempotency-Key': `order-${runtime}` },
    });
    const again = await call(`${api}/purchase`, {
      json: { qty: 2 },
      headers: { 'Idempotency-Key': `order-${runtime}` },
    });
    expect(first.body).toMatchObject({ success: true, remaining: 298, tickets: { first: 1, last: 2 } });
    expect(again.text).toBe(first.text);
    expect(again.headers.get('idempotent-replayed')).toBe('true');

    // A concurrent sell-out: more asked than there is, 40 at a time.
    const asks = Array.from({ length: 250 }, (_, i) => 1 + (i % 3));
    const answers: Array<Record<string, unknown>> = [];
    for (let i = 0; i < asks.length; i += 40) {
      const wave = await Promise.all(asks.slice(i, i + 40).map((qty) => call(`${api}/purchase`, { json: { qty } })));
      for (const answer of wave) {
        expect(answer.status).toBe(200);
        answers.push(answer.body);
      }
    }
    const soldNow = answers
      .filter((a) => a.success === true)
      .reduce(
        (sum, a) =>
          sum + ((a.tickets as { last: number; first: number }).last - (a.tickets as { first: number }).first + 1),
        0,
      );
    const remaining = (await call(`${api}/available`)).body.qty as number;
    expect(remaining).toBe(0);
    expect(soldNow + 2 + remaining).toBe(300);
    const ranges = answers
      .filter((a) => a.success === true)
      .map((a) => a.tickets as { first: number; last: number })
      .sort((a, b) => a.first - b.first);
    let next = 3;
    for (const range of ranges) {
      expect(range.first).toBe(next);
      next = range.last + 1;
    }

    // The SQLite binding this runtime has, and the sale survives a restart on it.
    const health = (await call(`${api}/health`)).body as {
      details: { vacancy: { store: { kind: string; engine: string } } };
    };
    expect(health.details.vacancy.store).toMatchObject({
      kind: 'sqlite',
      engine: expect.stringContaining(`(${expectedSqliteDriver(runtime)})`),
    });
    server.child.kill('SIGTERM');
    expect(await server.exit).toBe(0);
    running.delete(server);
    const restarted = await start(runtime, { STOCK_STORE: 'sqlite', DATA_DIR: dataDir, INITIAL_STOCK: '999' });
    expect((await call(`${restarted.url}/api/v1/available`)).body).toEqual({ qty: 0 });
    const replayed = await call(`${restarted.url}/api/v1/purchase`, {
      json: { qty: 2 },
      headers: { 'Idempotency-Key': `order-${runtime}` },
    });
    expect(replayed.text).toBe(first.text);
    restarted.child.kill('SIGTERM');
    expect(await restarted.exit).toBe(0);
    running.delete(restarted);
  });

  it.skipIf(gate.skip)('works on the Redis store', async () => {
    gate.assertReachable();
    const prefix = uniquePrefix(`runtime-${runtime}`);
    prefixes.push(prefix);
    const server = await start(runtime, {
      STOCK_STORE: 'redis',
      REDIS_URL: gate.url,
      REDIS_KEY_PREFIX: prefix,
      INITIAL_STOCK: '10',
    });
    const bought = await call(`${server.url}/api/v1/purchase`, { json: { qty: 4 } });
    expect(bought.body).toMatchObject({ success: true, remaining: 6 });
    expect((await call(`${server.url}/api/v1/ready`)).body).toMatchObject({ detail: 'redis store is writable' });
    server.child.kill('SIGTERM');
    expect(await server.exit).toBe(0);
    running.delete(server);
  });
});
