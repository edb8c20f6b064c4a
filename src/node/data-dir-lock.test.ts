import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DataDirLock } from './data-dir-lock.ts';

const dirs: string[] = [];
const locks: DataDirLock[] = [];

afterEach(async () => {
  for (const lock of locks.splice(0)) await lock.release();
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'data-dir-lock-'));
  dirs.push(dir);
  return dir;
}

function captureLogger() {
  const infos: string[] = [];
  return { infos, info: (_obj: object, msg?: string) => void infos.push(msg ?? ''), warn: () => {} };
}

async function acquire(dir: string, heartbeatMs?: number) {
  const logger = captureLogger();
  const lock = await DataDirLock.acquire(dir, { logger, heartbeatMs });
  locks.push(lock);
  return { lock, logger };
}

const lockText = (dir: string) => readFile(join(dir, 'LOCK'), 'utf8');

/** What LOCK says when this process holds it: pid, hostname and this kernel's boot id. */
const BOOT_ID = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
const OURS = `${process.pid} ${hostname()} ${BOOT_ID}\n`;

describe('DataDirLock', () => {
  it('refuses a DATA_DIR held by a live process and takes it over once that process is gone', async () => {
    const dir = await tempDir();
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    const exited = once(sleeper, 'exit');
    try {
      await once(sleeper, 'spawn');
      await writeFile(join(dir, 'LOCK'), `${sleeper.pid} ${hostname()}\n`);
      const refused = acquire(dir);
      await expect(refused).rejects.toThrow(`Another process (pid ${sleeper.pid}) holds DATA_DIR ${dir}`);
      await expect(refused).rejects.toThrow(/two writers can never share a database/);
      expect(await lockText(dir)).toBe(`${sleeper.pid} ${hostname()}\n`);
    } finally {
      sleeper.kill('SIGKILL');
      await exited;
    }
    const { lock, logger } = await acquire(dir);
    expect(await lockText(dir)).toBe(OURS);
    expect(logger.infos.some((msg) => /stale lock/.test(msg))).toBe(true);
    await lock.release();
    expect(await readdir(dir)).not.toContain('LOCK');
  });

  it('takes over a lock naming its own pid (a container restarted as pid 1) but refuses a second holder in one process', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'LOCK'), `${process.pid}\n`);
    const { lock } = await acquire(dir);
    await expect(acquire(dir)).rejects.toThrow(/already has DATA_DIR .* open/);
    await lock.release();
    await acquire(dir);
  });

  describe('on a volume shared between hosts', () => {
    const OTHER_HOST = 'vacancy-7f9c4b-other';

    it('refuses a DATA_DIR whose LOCK another host keeps touching, whatever pid it names', async () => {
      const dir = await tempDir();
      // Pid 1, this process's pid: on another host neither says anything about who is alive here.
      for (const pid of [1, process.pid]) {
        await writeFile(join(dir, 'LOCK'), `${pid} ${OTHER_HOST}\n`);
        const refused = acquire(dir, 60_000);
        await expect(refused).rejects.toThrow(
          `Another process (pid ${pid} on host ${OTHER_HOST}) holds DATA_DIR ${dir}`,
        );
        await expect(refused).rejects.toThrow(/untouched for 300000 ms/);
        expect(await lockText(dir)).toBe(`${pid} ${OTHER_HOST}\n`);
      }
    });

    it('takes over a LOCK from another host once it has gone untouched for five heartbeats', async () => {
      const dir = await tempDir();
      await writeFile(join(dir, 'LOCK'), `1 ${OTHER_HOST}\n`);
      const longAgo = new Date(Date.now() - 6_000);
      await utimes(join(dir, 'LOCK'), longAgo, longAgo);
      const { logger } = await acquire(dir, 1_000);
      expect(await lockText(dir)).toBe(OURS);
      expect(logger.infos.some((msg) => msg.includes(`from host ${OTHER_HOST}, untouched for 6 s`))).toBe(true);
    });

    it('takes a pod of the same name and pid on another node for another host (its kernel booted apart)', async () => {
      const dir = await tempDir();
      const otherBoot = '0f8e2c4a-1b3d-4e5f-8a9b-0c1d2e3f4a5b';
      await writeFile(join(dir, 'LOCK'), `${process.pid} ${hostname()} ${otherBoot}\n`);
      const refused = acquire(dir, 60_000);
      await expect(refused).rejects.toThrow(
        `Another process (pid ${process.pid} on host ${hostname()} (boot ${otherBoot})) holds DATA_DIR ${dir}`,
      );
      expect(await lockText(dir)).toBe(`${process.pid} ${hostname()} ${otherBoot}\n`);
      const longAgo = new Date(Date.now() - 6_000);
      await utimes(join(dir, 'LOCK'), longAgo, longAgo);
      await acquire(dir, 1_000);
      expect(await lockText(dir)).toBe(OURS);
    });

    it('takes over at once a LOCK its own machine left (same hostname and boot), as a restarted container does', async () => {
      const dir = await tempDir();
      await writeFile(join(dir, 'LOCK'), `${process.pid} ${hostname()} ${BOOT_ID}\n`);
      const { logger } = await acquire(dir, 60_000);
      expect(await lockText(dir)).toBe(OURS);
      expect(logger.infos.some((msg) => /earlier run/.test(msg))).toBe(true);
    });

    it('touches its LOCK while held and stops when released', async () => {
      const dir = await tempDir();
      const { lock } = await acquire(dir, 20);
      const longAgo = new Date(Date.now() - 60_000);
      await utimes(join(dir, 'LOCK'), longAgo, longAgo);
      const deadline = Date.now() + 5_000;
      while ((await stat(join(dir, 'LOCK'))).mtimeMs < longAgo.getTime() + 1_000 && Date.now() < deadline)
        await new Promise((done) => setTimeout(done, 10));
      expect((await stat(join(dir, 'LOCK'))).mtimeMs, 'the heartbeat moved the mtime forward').toBeGreaterThan(
        Date.now() - 5_000,
      );
      await lock.release();
      expect(await readdir(dir)).not.toContain('LOCK');
    });
  });
});
