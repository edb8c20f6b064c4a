/**
 * compose.yaml's environments, run: each service's `environment:` on top of
 * the image's ENV (from Containerfile), given to the built bundle as a real
 * process — the containers minus the container. Only what a container
 * network provides is translated: service host names become 127.0.0.1 (the
 * `redis` service becomes this machine's Redis at REDIS_URL, under a key
 * prefix of its own), each PORT becomes a free port, DATA_DIR a temp
 * directory. env_file (.env) is left out: it is optional and not ours.
 *
 * Then: a purchase through ticket reaches vacancy and Redis, and
 * `node dist/main.js healthcheck` — the compose health check — exits 0 with
 * each service's environment while it runs and 1 once it is stopped.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { environmentOf, loadCompose, parseContainerfile, type ComposeService } from './support/deployment.ts';
import { requestJson, type PurchaseBody } from './support/http-json.ts';
import { BUNDLE, freePort, startService, stopAllServices, type Service } from './support/processes.ts';
import { deleteKeysWithPrefix, redisGate, uniquePrefix } from './support/redis.ts';

const IMAGE_ENV = parseContainerfile().final.env;
/** What `INTERNAL_TOKEN=... ADMIN_TOKEN=... docker compose up` would interpolate. */
const VARIABLES = { INTERNAL_TOKEN: randomBytes(24).toString('hex'), ADMIN_TOKEN: randomBytes(24).toString('hex') };
const compose = loadCompose(VARIABLES);
/** Defaults test/support/processes.ts adds for quiet tests; blanked (empty = unset) unless compose sets them. */
const TEST_DEFAULTS = ['HOST', 'ENVIRONMENT', 'LOG_LEVEL', 'STOCK_STORE'];
const tempDirs: string[] = [];

function service(name: string): ComposeService {
  const found = compose.services[name];
  if (!found) throw new Error(`compose.yaml has no service ${name}`);
  return found;
}

/** Where each compose host name is reachable from here, e.g. vacancy -> 127.0.0.1:40123. */
type HostMap = Map<string, URL>;

/**
 * The environment of compose service `name` as its container would see it, translated for a
 * process on this machine: `port` for PORT, host names through `hosts`, a temp DATA_DIR.
 */
function processEnv(name: string, port: number, hosts: HostMap, redisPrefix?: string): Record<string, string> {
  const env: Record<string, string> = { ...IMAGE_ENV, ...environmentOf(service(name)) };
  for (const key of TEST_DEFAULTS) env[key] ??= '';
  env.PORT = String(port);
  for (const [key, value] of Object.entries(env)) {
    if (!/^[a-z]+:\/\//i.test(value)) continue;
    env[key] = value
      .split(',')
      .map((one) => {
        const url = new URL(one.trim());
        const target = hosts.get(url.hostname);
        if (!target) return one;
        // http: the same path on the local port; anything else (redis://): the local server's whole URL.
        if (!/^https?:$/.test(url.protocol)) return target.href;
        url.host = target.host;
        return url.href.replace(/\/$/, '');
      })
      .join(',');
  }
  if (redisPrefix !== undefined) env.REDIS_KEY_PREFIX = redisPrefix;
  const dataDir = mkdtempSync(join(tmpdir(), `ticket-system-compose-${name}-`));
  tempDirs.push(dataDir);
  env.DATA_DIR = dataDir;
  return env;
}

/** `node dist/main.js healthcheck` with exactly `env` (and PATH): the compose/Containerfile health check. */
function healthcheck(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BUNDLE, 'healthcheck'], {
      cwd: tmpdir(),
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

async function startAs(name: string, env: Record<string, string>): Promise<Service> {
  try {
    return await startService(env, { timeoutMs: 20_000 });
  } catch (error) {
    throw new Error(
      `compose service ${name} did not start with its environment ${JSON.stringify(env)}:\n${String(error)}`,
      {
        cause: error,
      },
    );
  }
}

afterAll(async () => {
  await stopAllServices();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

const gate = await redisGate('compose.yaml environments of redis, vacancy and ticket');

describe.skipIf(gate.skip)('compose: redis, vacancy and ticket as compose.yaml configures them', () => {
  const prefix = uniquePrefix('compose');
  const hosts: HostMap = new Map();
  const envs: Record<string, Record<string, string>> = {};
  let vacancy: Service;
  let replica: Service;
  let ticket: Service;

  beforeAll(async () => {
    gate.assertReachable();
    hosts.set('redis', new URL(gate.url));
    envs.vacancy = processEnv('vacancy', await freePort(), hosts, prefix);
    vacancy = await startAs('vacancy', envs.vacancy);
    // `vacancy` is both the service and the replicas' network alias; ticket is pointed at the first.
    hosts.set('vacancy', new URL(vacancy.url));
    envs['vacancy-replica'] = processEnv('vacancy-replica', await freePort(), hosts, prefix);
    replica = await startAs('vacancy-replica', envs['vacancy-replica']);
    envs.ticket = processEnv('ticket', await freePort(), hosts);
    ticket = await startAs('ticket', envs.ticket);
  });

  afterAll(async () => {
    await stopAllServices();
    if (gate.reachable) await deleteKeysWithPrefix(gate.url, prefix);
  });

  it('runs each service in the MODE and with the store compose gives it', async () => {
    const modes = await Promise.all(
      [vacancy, replica, ticket].map(async (s) => (await requestJson<{ mode: string }>(`${s.url}/`)).body.mode),
    );
    expect(modes).toEqual(['vacancy', 'vacancy', 'ticket']);
    const health = await requestJson<{ details: { store: { kind?: string } | string } }>(
      `${vacancy.url}/api/v1/health`,
    );
    expect(JSON.stringify(health.body.details.store)).toMatch(/redis/);
    expect((await requestJson(`${ticket.url}/api/v1/ready`)).status).toBe(200);
  });

  it('sells through ticket -> vacancy -> Redis: 200 success, and the replica sees the same stock', async () => {
    const before = (await requestJson<{ qty: number }>(`${replica.url}/api/v1/available`)).body.qty;
    const reply = await requestJson<PurchaseBody>(`${ticket.url}/api/v1/purchase`, {
      json: { qty: 2 },
      headers: { 'Idempotency-Key': `compose-${prefix}` },
    });
    expect(reply.status, reply.text).toBe(200);
    expect(reply.body).toMatchObject({ success: true });
    expect((await requestJson<{ qty: number }>(`${replica.url}/api/v1/available`)).body.qty).toBe(before - 2);
  });

  it('shares INTERNAL_TOKEN: vacancy refuses a reserve without it, and ticket (which sold above) sends it', async () => {
    expect(envs.vacancy?.INTERNAL_TOKEN).toBe(VARIABLES.INTERNAL_TOKEN);
    const anonymous = await requestJson(`${vacancy.url}/api/v1/reserve`, { json: { qty: 1 } });
    expect(anonymous.status, anonymous.text).toBe(401);
  });

  it('healthcheck exits 0 with each running service`s environment, and 1 once the service is stopped', async () => {
    for (const name of ['vacancy', 'vacancy-replica', 'ticket']) {
      const result = await healthcheck(envs[name] as Record<string, string>);
      expect(result.code, `${name}: ${result.output}`).toBe(0);
    }
    await ticket.stop('SIGTERM');
    const stopped = await healthcheck(envs.ticket as Record<string, string>);
    expect(stopped.code, stopped.output).toBe(1);
  });
});

describe('compose: the monolith profile', () => {
  let monolith: Service;
  let env: Record<string, string>;

  beforeAll(async () => {
    env = processEnv('monolith', await freePort(), new Map());
    monolith = await startAs('monolith', env);
  });

  it('sells from the file store in DATA_DIR (the volume in compose)', async () => {
    const reply = await requestJson<PurchaseBody>(`${monolith.url}/api/v1/purchase`, { json: { qty: 1 } });
    expect(reply.status, reply.text).toBe(200);
    expect(reply.body).toMatchObject({ success: true });
    expect(env.STOCK_STORE).toBe('file');
    expect(
      existsSync(env.DATA_DIR as string) && readdirSync(env.DATA_DIR as string).length,
      'journal written to DATA_DIR',
    ).toBeGreaterThan(0);
  });

  it('healthcheck exits 0 while it runs and 1 once it is stopped', async () => {
    const running = await healthcheck(env);
    expect(running.code, running.output).toBe(0);
    const exit = await monolith.stop('SIGTERM');
    expect(exit.code, monolith.output()).toBe(0);
    const stopped = await healthcheck(env);
    expect(stopped.code, stopped.output).toBe(1);
  });
});
