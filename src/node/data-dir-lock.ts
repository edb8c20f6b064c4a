/**
 * One writer per data directory, on one host and across hosts that share a
 * volume. SQLite's own locks are not enough for that: they are not reliable
 * on network file systems, and two containers on one volume are both pid 1.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { open, readFile, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import process from 'node:process';

/** What the lock tells the log about taking over a lock left behind. */
export interface LockLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** A LOCK from another host is stale once untouched for this many heartbeats. */
const STALE_HEARTBEATS = 5;
const LOCK_FILE = 'LOCK';

/** Who holds a data directory: `<pid> <hostname> <boot id>` in LOCK (older versions wrote no boot id). */
interface LockHolder {
  pid: number;
  host: string | null;
  boot: string | null;
}

/**
 * The running kernel's boot id (Linux), or null elsewhere. A hostname alone does not name a
 * machine: a StatefulSet's replacement pod keeps its pod's hostname (and is pid 1 again) on
 * whichever node it lands; the boot id tells that node from the one the old pod ran on.
 */
function readBootId(): string | null {
  try {
    const id = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return /^[\w-]+$/.test(id) ? id : null;
  } catch {
    return null;
  }
}

const BOOT_ID = readBootId();

/** Whether `holder` ran on this machine, as far as LOCK can tell. */
function sameMachine(holder: LockHolder): boolean {
  if (holder.host !== null && holder.host !== hostname()) return false;
  return holder.boot === null || BOOT_ID === null || holder.boot === BOOT_ID;
}

/** Data directories this process holds: the pid in LOCK cannot tell two holders in one process apart. */
const heldInThisProcess = new Set<string>();

/**
 * `DATA_DIR/LOCK` holds `<pid> <hostname> <boot id>` of the one process that
 * writes there, touched every `heartbeatMs` while it does. On the same
 * machine (same hostname and kernel boot) a holder whose pid is gone is
 * taken over at once; a holder on another host (another container on a
 * shared volume, or a pod of the same name on another node) counts as gone
 * only once LOCK has gone untouched for five heartbeats.
 *
 * @example
 * const lock = await DataDirLock.acquire('./data', { logger, what: 'the SQLite database' });
 * // ... write ...
 * await lock.release();
 */
export class DataDirLock {
  readonly path: string;
  readonly #dir: string;
  readonly #logger: LockLogger;
  #heartbeat: ReturnType<typeof setInterval> | undefined;

  private constructor(dir: string, logger: LockLogger) {
    this.#dir = dir;
    this.path = join(dir, LOCK_FILE);
    this.#logger = logger;
  }

  /** Takes the lock of `dir` (which must exist), or throws an error saying who holds it. */
  static async acquire(dir: string, options: { logger: LockLogger; heartbeatMs?: number }): Promise<DataDirLock> {
    const heartbeatMs = options.heartbeatMs ?? 2_000;
    if (!Number.isSafeInteger(heartbeatMs) || heartbeatMs < 1) {
      throw new RangeError(`heartbeatMs must be a positive integer, got ${options.heartbeatMs}`);
    }
    if (heldInThisProcess.has(dir)) {
      throw new Error(`This process already has DATA_DIR ${dir} open; two writers can never share a database.`);
    }
    const lock = new DataDirLock(dir, options.logger);
    heldInThisProcess.add(dir);
    try {
      if (!(await lock.#create())) {
        const holder = await lock.#read();
        const why = await lock.#mayTakeOver(holder, heartbeatMs);
        options.logger.info(
          { lock: lock.path, previousPid: holder?.pid ?? null, previousHost: holder?.host ?? null },
          why,
        );
        await unlink(lock.path).catch((error: unknown) => {
          if (errorCode(error) !== 'ENOENT') throw error;
        });
        if (!(await lock.#create())) {
          throw new Error(
            `Another process (${describe(await lock.#read())}) took DATA_DIR ${dir} (lock file ${lock.path}) while this one was starting; two writers can never share a database.`,
          );
        }
      }
    } catch (error) {
      heldInThisProcess.delete(dir);
      throw error;
    }
    lock.#heartbeat = setInterval(() => void lock.#touch(), heartbeatMs);
    lock.#heartbeat.unref();
    return lock;
  }

  /** Stops the heartbeat and removes LOCK if it still names this process. */
  async release(): Promise<void> {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    try {
      const holder = await this.#read();
      if (holder?.pid === process.pid && sameMachine(holder)) await unlink(this.path);
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') {
        this.#logger.warn({ err: String(error), lock: this.path }, 'could not remove the lock');
      }
    } finally {
      heldInThisProcess.delete(this.#dir);
    }
  }

  /** Why the lock left by `holder` may be taken over (for the log); throws if it may not. */
  async #mayTakeOver(holder: LockHolder | null, heartbeatMs: number): Promise<string> {
    if (holder === null) return 'taking over a lock that names no process (a start cut short)';
    if (sameMachine(holder)) {
      if (holder.pid === process.pid) return 'taking over a lock left with this pid by an earlier run (pid reuse)';
      if (!isAlive(holder.pid)) return 'taking over a stale lock from a process that is gone';
      throw new Error(
        `Another process (pid ${holder.pid}) holds DATA_DIR ${this.#dir} (lock file ${this.path}); two writers can never share a database. Stop that process or give this one another DATA_DIR.`,
      );
    }
    // Another host, container or node on a shared volume: its pid means nothing here, its heartbeat does.
    const staleAfterMs = STALE_HEARTBEATS * heartbeatMs;
    const touchedAgoMs = Date.now() - (await stat(this.path)).mtimeMs;
    if (touchedAgoMs > staleAfterMs) {
      return `taking over a lock from host ${hostOf(holder)}, untouched for ${Math.round(touchedAgoMs / 1000)} s`;
    }
    throw new Error(
      `Another process (${describe(holder)}) holds DATA_DIR ${this.#dir} (lock file ${this.path}, touched ${Math.max(0, Math.round(touchedAgoMs))} ms ago); two writers can never share a database. Stop that process or give this one another DATA_DIR; a lock left by a host that is gone is taken over once untouched for ${staleAfterMs} ms.`,
    );
  }

  /** The heartbeat: a newer mtime on LOCK tells other hosts that its holder still writes here. */
  async #touch(): Promise<void> {
    try {
      const now = new Date();
      await utimes(this.path, now, now);
    } catch (error) {
      this.#logger.warn({ err: String(error), lock: this.path }, 'could not touch the lock');
    }
  }

  /** Creates LOCK naming this process and host; false if it already exists. */
  async #create(): Promise<boolean> {
    let handle;
    try {
      handle = await open(this.path, 'wx');
    } catch (error) {
      if (errorCode(error) === 'EEXIST') return false;
      throw error;
    }
    try {
      await handle.writeFile(`${process.pid} ${hostname()}${BOOT_ID === null ? '' : ` ${BOOT_ID}`}\n`, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    return true;
  }

  /** Who LOCK names, or null if it names no one (a starter killed between create and write). */
  async #read(): Promise<LockHolder | null> {
    for (let attempt = 0; attempt < 2; attempt++) {
      let text: string;
      try {
        text = await readFile(this.path, 'utf8');
      } catch (error) {
        if (errorCode(error) === 'ENOENT') return null;
        throw error;
      }
      const match = /^\s*(\d+)(?:[ \t]+(\S+))?(?:[ \t]+(\S+))?\s*$/.exec(text);
      if (match) {
        const pid = Number(match[1]);
        return pid > 0 && Number.isSafeInteger(pid) ? { pid, host: match[2] ?? null, boot: match[3] ?? null } : null;
      }
      // Maybe another starter is between creating LOCK and writing to it: look once more.
      await new Promise((done) => setTimeout(done, 50));
    }
    return null;
  }
}

function describe(holder: LockHolder | null): string {
  if (holder === null) return 'unknown';
  if (holder.host === null) return `pid ${holder.pid}`;
  return `pid ${holder.pid} on host ${hostOf(holder)}`;
}

/** The holder's hostname; with its boot id when that alone tells it from this machine. */
function hostOf(holder: LockHolder): string {
  const sameName = holder.host === hostname() && !sameMachine(holder);
  return `${holder.host}${sameName ? ` (boot ${holder.boot})` : ''}`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return errorCode(error) === 'EPERM';
  }
}

export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
