/**
 * Readiness and reserves when the SQLite store's database cannot be written,
 * with a real process on a real file system that really fails:
 *
 * - a full disk: a small tmpfs as DATA_DIR, filled up while the monolith runs;
 * - a read-only file system: ext4 on a loop device (errors=remount-ro) turned
 *   read-only under the running service by a file system error. (Linux refuses
 *   `mount -o remount,ro` with EBUSY while a process holds a file open for
 *   writing, as the service holds its database and WAL, so a running service only ever
 *   meets a read-only DATA_DIR this way.) A DATA_DIR remounted read-only while
 *   the service is stopped is covered too: it must refuse to start, clearly.
 *
 * While the database cannot be written a purchase is 503 (problem+json,
 * Retry-After) and sells nothing, /api/v1/ready is 503 naming the store, and
 * /api/v1/health is 200 with store.writable false; once the file system can
 * take writes again readiness comes back and every acknowledged sale is there.
 *
 * Needs root (mount). Not root, or mount not permitted: under CI=true the
 * tests fail; elsewhere they are skipped with a loud warning.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, openSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, type TestContext } from 'vitest';
import {
  available,
  makeTempDir,
  purchase,
  removeDir,
  requestJson,
  stockHealth,
  type JsonReply,
} from './support/http-json.ts';
import { IN_CI, warnSkipped } from './support/loud-skip.ts';
import { freePort, runBundle, sleep, startService, stopAllServices, type Service } from './support/processes.ts';

const INITIAL_STOCK = 100;
const tempRoots: string[] = [];
/** Mount points made by this file, unmounted (after the services are killed) whatever happens. */
const mounts: string[] = [];

/** Under CI=true a missing capability is a failure; elsewhere a loudly reported skip. */
function unavailable(ctx: TestContext, reason: string): never {
  if (IN_CI) throw new Error(`${reason}. Under CI=true this test must run, not skip (CI runs it as root).`);
  warnSkipped(ctx.task.name, reason);
  ctx.skip(reason);
}

function requireRoot(ctx: TestContext): void {
  if (process.getuid?.() !== 0) {
    unavailable(
      ctx,
      `not running as root (uid ${process.getuid?.()}): mounting a tmpfs/ext4 DATA_DIR needs root; chmod cannot take write access from an open fd`,
    );
  }
}

function run(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
  } catch (error) {
    const e = error as { status?: number; stderr?: string; message: string };
    throw new Error(`${command} ${args.join(' ')} failed (status ${e.status}): ${e.stderr?.trim() || e.message}`, {
      cause: error,
    });
  }
}

async function unmountAll(): Promise<void> {
  await stopAllServices(2_000);
  while (mounts.length > 0) {
    const dir = mounts.pop()!;
    try {
      run('umount', [dir]);
    } catch (error) {
      console.warn(`could not unmount ${dir}: ${String(error)}; detaching it lazily`);
      try {
        run('umount', ['-l', dir]);
      } catch (lazyError) {
        console.warn(String(lazyError));
      }
    }
  }
  while (tempRoots.length > 0) removeDir(tempRoots.pop());
}

/** A fresh tmpfs of `size` as the DATA_DIR, or a skip/failure if mounting is not possible here. */
function mountTmpfs(ctx: TestContext, size: string): string {
  requireRoot(ctx);
  const root = makeTempDir('ticket-system-unwritable');
  tempRoots.push(root);
  const dir = join(root, 'data');
  run('mkdir', [dir]);
  try {
    run('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir]);
  } catch (error) {
    unavailable(ctx, `running as root but mount -t tmpfs is not permitted here: ${String(error)}`);
  }
  mounts.push(dir);
  return dir;
}

/** A fresh ext4 file system on a loop device, with errors=remount-ro, as the DATA_DIR. */
function mountExt4(ctx: TestContext): { dir: string; image: string; device: string } {
  requireRoot(ctx);
  const root = makeTempDir('ticket-system-readonly');
  tempRoots.push(root);
  const image = join(root, 'fs.img');
  const dir = join(root, 'data');
  run('mkdir', [dir]);
  try {
    run('truncate', ['-s', '16M', image]);
    run('mkfs.ext4', ['-q', '-F', image]);
    run('mount', ['-o', 'loop,errors=remount-ro', image, dir]);
  } catch (error) {
    unavailable(ctx, `running as root but an ext4 loop mount is not possible here: ${String(error)}`);
  }
  mounts.push(dir);
  const device = run('findmnt', ['-n', '-o', 'SOURCE', '--target', dir]).trim();
  return { dir, image, device };
}

function monolithEnv(dataDir: string): Record<string, string> {
  return { MODE: 'monolith', STOCK_STORE: 'sqlite', DATA_DIR: dataDir, INITIAL_STOCK: String(INITIAL_STOCK) };
}

function expectUnavailableProblem(reply: JsonReply, what: string): { detail: string } {
  expect(reply.status, `${what}: ${reply.text}`).toBe(503);
  expect(reply.headers.get('content-type'), what).toMatch(/^application\/problem\+json/);
  expect(reply.headers.get('retry-after'), `${what} carries Retry-After`).toMatch(/^\d+$/);
  expect(reply.body, what).toMatchObject({
    type: expect.stringContaining('service-unavailable'),
    title: 'Service unavailable',
    status: 503,
    detail: expect.any(String),
  });
  return reply.body as { detail: string };
}

/** sold and available as health and /available report them; they must add up. */
async function expectStock(service: Service, sold: number): Promise<void> {
  const { stock } = await stockHealth(service.url);
  expect(stock).toEqual({ available: INITIAL_STOCK - sold, sold });
  expect(await available(service.url)).toBe(INITIAL_STOCK - sold);
}

async function ready(service: Service): Promise<JsonReply> {
  return requestJson(`${service.url}/api/v1/ready`);
}

async function pollReady(service: Service, timeoutMs: number): Promise<JsonReply> {
  const deadline = Date.now() + timeoutMs;
  let last = await ready(service);
  while (last.status !== 200 && Date.now() < deadline) {
    await sleep(100);
    last = await ready(service);
  }
  return last;
}

/** Writes `path` until the file system is full; returns the error that stopped it (ENOSPC). */
function fillDisk(path: string): NodeJS.ErrnoException {
  const fd = openSync(path, 'w');
  try {
    for (const size of [1024 * 1024, 64 * 1024, 4096, 512, 1]) {
      const chunk = Buffer.alloc(size, 0x61);
      for (;;) {
        try {
          if (writeSync(fd, chunk) === 0) break;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
          break;
        }
      }
    }
    try {
      writeSync(fd, Buffer.alloc(4096, 0x61));
    } catch (error) {
      return error as NodeJS.ErrnoException;
    }
    throw new Error(`${path}: the file system still takes writes after filling it`);
  } finally {
    fsyncSync(fd);
    closeSync(fd);
  }
}

describe('SQLite store that cannot write', () => {
  afterEach(unmountAll);
  afterAll(unmountAll);

  it('full disk: 503 and nothing sold, ready 503, health says not writable; freeing space brings it back, durably', async (ctx) => {
    // 4 MiB: after ENOSPC the store wants 1 MiB free before it calls itself ready again (1 MiB: next test).
    const dir = mountTmpfs(ctx, '4m');
    let service = await startService(monolithEnv(dir));
    let sold = 0;

    const first = await purchase(service.url, 1, `ok-${crypto.randomUUID()}`);
    expect(first.status, first.text).toBe(200);
    expect(first.body.success).toBe(true);
    sold += 1;
    expect((await ready(service)).status).toBe(200);

    const filler = join(dir, 'filler');
    expect(fillDisk(filler).code).toBe('ENOSPC');

    // The WAL may still have room for a few commits: buy until a purchase cannot be recorded.
    let refused: { reply: JsonReply; key: string } | undefined;
    for (let i = 0; i < 200 && !refused; i++) {
      const key = `full-${i}-${crypto.randomUUID()}`;
      const reply = await purchase(service.url, 1, key);
      if (reply.status === 200 && reply.body.success) sold += 1;
      else refused = { reply, key };
    }
    expect(refused, 'a purchase is refused once the disk is full').toBeDefined();
    const problem = expectUnavailableProblem(refused!.reply, 'purchase on a full disk');
    expect(problem.detail).toMatch(/nothing was sold/);
    await expectStock(service, sold);

    const notReady = expectUnavailableProblem(await ready(service), 'ready on a full disk');
    expect(notReady.detail).toMatch(/store/i);
    expect(notReady.detail).toMatch(/ENOSPC|SQLITE_FULL|disk is full/i);

    const health = await requestJson<{ status: string }>(`${service.url}/api/v1/health`);
    expect(health.status, 'health is liveness: still 200').toBe(200);
    const { store } = await stockHealth(service.url);
    expect(store).toMatchObject({
      kind: 'sqlite',
      writable: false,
      error: expect.stringMatching(/ENOSPC|SQLITE_FULL/),
    });

    // Still refused, still nothing sold (also for a bigger qty), until space comes back.
    expectUnavailableProblem(await purchase(service.url, 3), 'second purchase on a full disk');
    await expectStock(service, sold);

    unlinkSync(filler);
    const back = await pollReady(service, 5_000);
    expect(back.status, `ready after freeing space: ${back.text}`).toBe(200);
    expect((await stockHealth(service.url)).store).toMatchObject({ writable: true });

    // The refused key recorded nothing: sent again it is decided now, not replayed.
    const retried = await purchase(service.url, 1, refused!.key);
    expect(retried.status, retried.text).toBe(200);
    expect(retried.headers.get('idempotent-replayed')).toBeNull();
    expect(retried.body).toMatchObject({ success: true, tickets: { first: sold + 1, last: sold + 1 } });
    sold += 1;
    await expectStock(service, sold);

    // Durable: kill -9 and start again on the same directory.
    await service.stop('SIGKILL');
    service = await startService(monolithEnv(dir));
    await expectStock(service, sold);
    const replay = await purchase(service.url, 1, refused!.key);
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual(retried.body);

    // A DATA_DIR that is read-only at start: the service refuses to start and says why.
    const stopped = await service.stop('SIGTERM');
    expect(stopped.code, service.output()).toBe(0);
    run('mount', ['-o', 'remount,ro', dir]);
    const refusedStart = await runBundle({ ...monolithEnv(dir), PORT: String(await freePort()) }, 15_000);
    expect(refusedStart.timedOut, refusedStart.stderr).toBe(false);
    expect(refusedStart.code, `${refusedStart.stdout}\n${refusedStart.stderr}`).not.toBe(0);
    expect(refusedStart.stderr).toMatch(/EROFS|read-only/i);
    expect(refusedStart.stderr).toContain(dir);

    // Remounted read-write, it starts with every sale.
    run('mount', ['-o', 'remount,rw', dir]);
    service = await startService(monolithEnv(dir));
    await expectStock(service, sold);
    expect((await ready(service)).status).toBe(200);
  });

  it('full disk on a small (1 MiB) volume: readiness comes back once the space is freed', async (ctx) => {
    const dir = mountTmpfs(ctx, '1m');
    const service = await startService(monolithEnv(dir));
    const first = await purchase(service.url, 1);
    expect(first.status, first.text).toBe(200);
    let sold = 1;

    const filler = join(dir, 'filler');
    expect(fillDisk(filler).code).toBe('ENOSPC');
    let refused: JsonReply | undefined;
    for (let i = 0; i < 200 && !refused; i++) {
      const reply = await purchase(service.url, 1);
      if (reply.status === 200 && reply.body.success) sold += 1;
      else refused = reply;
    }
    expectUnavailableProblem(refused!, 'purchase on a full 1 MiB disk');
    expectUnavailableProblem(await ready(service), 'ready on a full 1 MiB disk');
    await expectStock(service, sold);

    // Everything but the store's own few KiB is free again, and a commit would succeed; readiness,
    // which keeps the service out of rotation (so no purchase will come to clear it), must say so.
    unlinkSync(filler);
    const back = await pollReady(service, 5_000);
    expect(back.status, `ready 5 s after deleting the filler of a 1 MiB DATA_DIR: ${back.text}`).toBe(200);
  });

  it('read-only file system under a running service: 503 and nothing sold, ready 503; repaired, every sale is kept', async (ctx) => {
    const { dir, image, device } = mountExt4(ctx);
    let service = await startService(monolithEnv(dir));
    let sold = 0;
    const first = await purchase(service.url, 2, `ok-${crypto.randomUUID()}`);
    expect(first.status, first.text).toBe(200);
    expect(first.body.success).toBe(true);
    sold += 2;
    expect((await ready(service)).status).toBe(200);

    // An ext4 error with errors=remount-ro: from now on every write fails with EROFS, open fds included.
    const trigger = `/sys/fs/ext4/${basename(device)}/trigger_fs_error`;
    if (!existsSync(trigger))
      unavailable(ctx, `${trigger} does not exist: cannot make ext4 read-only under a running process`);
    writeFileSync(trigger, '1');

    const key = `ro-${crypto.randomUUID()}`;
    const problem = expectUnavailableProblem(
      await purchase(service.url, 1, key),
      'purchase on a read-only file system',
    );
    expect(problem.detail).toMatch(/nothing was sold/);
    await expectStock(service, sold);

    const notReady = expectUnavailableProblem(await ready(service), 'ready on a read-only file system');
    expect(notReady.detail).toMatch(/store/i);
    expect(notReady.detail).toMatch(/EROFS|read-only/i);
    // Readiness keeps saying so: it retries the repair and fails again, it does not flap back to 200.
    await sleep(300);
    expectUnavailableProblem(await ready(service), 'ready on a read-only file system, asked again');
    const health = await requestJson(`${service.url}/api/v1/health`);
    expect(health.status).toBe(200);
    expect((await stockHealth(service.url)).store).toMatchObject({
      writable: false,
      error: expect.stringMatching(/EROFS|read-only/i),
    });
    expectUnavailableProblem(await purchase(service.url, 5), 'second purchase on a read-only file system');
    await expectStock(service, sold);

    // What an operator does: stop the service, check the file system, mount it read-write again, start.
    const stopped = await service.stop('SIGTERM');
    expect(stopped.signal, `SIGTERM on a read-only DATA_DIR still exits\n${service.output()}`).toBeNull();
    run('umount', [dir]);
    mounts.pop();
    try {
      run('e2fsck', ['-f', '-y', image]);
    } catch (error) {
      // Exit status 1: errors were corrected (the injected error); anything higher is a real problem.
      expect(String(error)).toMatch(/status 1\)/);
    }
    run('mount', ['-o', 'loop,errors=remount-ro', image, dir]);
    mounts.push(dir);

    service = await startService(monolithEnv(dir));
    await expectStock(service, sold);
    expect((await ready(service)).status).toBe(200);
    // The refused key recorded nothing: decided now.
    const retried = await purchase(service.url, 1, key);
    expect(retried.status, retried.text).toBe(200);
    expect(retried.headers.get('idempotent-replayed')).toBeNull();
    expect(retried.body).toMatchObject({ success: true, tickets: { first: sold + 1, last: sold + 1 } });
    sold += 1;

    await service.stop('SIGKILL');
    service = await startService(monolithEnv(dir));
    await expectStock(service, sold);
  });
});
