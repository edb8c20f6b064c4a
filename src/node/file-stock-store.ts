import { mkdir, open, readFile, rename, rm, stat, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import { KeyTable } from '../vacancy/key-table.ts';
import { journalLines } from './journal-lines.ts';
import { scanSnapshot } from './snapshot-scan.ts';
import {
  applyEvent,
  type IdempotencyRecord,
  type StockEvent,
  type StockLevel,
  type StockState,
  type StockStore,
  type StoreHealth,
} from '../vacancy/stock-store.ts';

/** Where the store reports what it repaired or noticed; pino's logger fits. */
export interface StoreLogger {
  warn(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
}

export interface FileStockStoreOptions {
  /** The directory that holds LOCK, journal.log and snapshot.json. Created if missing. */
  dataDir: string;
  /** Committed batches between two snapshots (after each, the journal keeps only the batches since). Default 10,000. */
  snapshotEvery?: number;
  /** At most this many idempotency keys are kept in a snapshot (oldest go first). Default 1,000,000. */
  maxKeys?: number;
  /**
   * How often the holder touches LOCK, in ms. A LOCK from another host untouched
   * for five of these is taken to be left by a holder that is gone. Default 2,000.
   */
  lockHeartbeatMs?: number;
  /** Bytes of the journal read at a time during recovery. Default 1 MiB (tests make it tiny). */
  journalReadBytes?: number;
  logger?: StoreLogger;
}

/** O_DSYNC where the platform has it (0 elsewhere: the journal then syncs with fdatasync after each write). */
const JOURNAL_DSYNC = typeof fsConstants.O_DSYNC === 'number' ? fsConstants.O_DSYNC : 0;
const LOCK_FILE = 'LOCK';
const JOURNAL_FILE = 'journal.log';
const JOURNAL_TMP_FILE = 'journal.log.tmp';
const SNAPSHOT_FILE = 'snapshot.json';
const SNAPSHOT_TMP_FILE = 'snapshot.json.tmp';
const SNAPSHOT_VERSION = 1;
const NEWLINE = 0x0a;
/**
 * After ENOSPC, readiness comes back once a probe of this size can be written
 * and synced: a real write, so the answer holds on any size of volume.
 */
const WRITE_PROBE_BYTES = 64 * 1024;
const WRITE_PROBE_FILE = 'write-probe.tmp';

/** A LOCK from another host is stale once untouched for this many heartbeats. */
const LOCK_STALE_HEARTBEATS = 5;

/** Who holds a data directory: `<pid> <hostname>` in LOCK (older versions wrote only the pid). */
type LockHolder = { pid: number; host: string | null };

/** Data directories this process holds open: the pid in LOCK cannot tell two stores of one process apart. */
const openInThisProcess = new Set<string>();

const consoleLogger: StoreLogger = {
  warn: (obj, msg) => console.warn(msg ?? '', obj),
  info: (obj, msg) => console.info(msg ?? '', obj),
};

/** The journal and snapshot checksum: zlib's CRC-32 as 8 lowercase hex digits. */
function crcHex(data: string | Uint8Array): string {
  return crc32(data).toString(16).padStart(8, '0');
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function describeError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = errorCode(error);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isLevel(value: unknown): value is StockLevel {
  return isObject(value) && isCount(value.remaining) && isCount(value.sold);
}

function isIdempotencyRecord(value: unknown): value is IdempotencyRecord {
  return (
    isObject(value) &&
    typeof value.key === 'string' &&
    typeof value.inventoryId === 'string' &&
    isCount(value.qty) &&
    typeof value.success === 'boolean' &&
    isCount(value.remaining) &&
    isCount(value.firstTicket) &&
    typeof value.expiresAt === 'number'
  );
}

function isEvent(value: unknown): value is StockEvent {
  if (!isObject(value)) return false;
  if (value.type === 'reserved') {
    return typeof value.inventoryId === 'string' && isCount(value.qty) && isLevel(value.level);
  }
  if (value.type === 'adjusted') {
    return typeof value.inventoryId === 'string' && (value.op === 'set' || value.op === 'add') && isLevel(value.level);
  }
  return value.type === 'key' && isIdempotencyRecord(value.record);
}

type JournalRecord = { seq: number; events: StockEvent[] };

/** Parses one journal line (without its newline): `<crc32 hex> <json>`. Returns why it is bad, if it is. */
function parseRecord(line: Buffer): JournalRecord | string {
  if (line.length < 10 || line[8] !== 0x20) return 'not of the form "<crc32> <json>"';
  const crcText = line.toString('latin1', 0, 8);
  if (!/^[0-9a-f]{8}$/.test(crcText)) return 'the checksum is not 8 lowercase hex digits';
  const json = line.subarray(9);
  if (crcHex(json) !== crcText) return 'checksum mismatch';
  let parsed: unknown;
  try {
    parsed = JSON.parse(json.toString('utf8'));
  } catch {
    return 'checksum matches but the JSON does not parse';
  }
  if (!isObject(parsed) || !Number.isSafeInteger(parsed.seq) || (parsed.seq as number) < 1) return 'no valid seq';
  if (!Array.isArray(parsed.events) || parsed.events.length === 0 || !parsed.events.every(isEvent)) {
    return 'events are missing or malformed';
  }
  return { seq: parsed.seq as number, events: parsed.events as StockEvent[] };
}

/** The bytes of `file` from `offset` to `size` (its size when it was opened). */
async function readFrom(file: FileHandle, offset: number, size: number): Promise<Buffer> {
  const bytes = Buffer.alloc(Math.max(0, size - offset));
  let filled = 0;
  while (filled < bytes.length) {
    const { bytesRead } = await file.read(bytes, filled, bytes.length - filled, offset + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return bytes.subarray(0, filled);
}

/** Makes a rename or a new file in `dir` durable. Platforms that cannot sync a directory are let off. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (error) {
    const code = errorCode(error);
    if (code === 'EISDIR' || code === 'EINVAL' || (code === 'EPERM' && process.platform === 'win32')) return;
    throw error;
  } finally {
    await handle?.close();
  }
}

function describeHolder(holder: LockHolder | null): string {
  if (holder === null) return 'unknown';
  return holder.host === null ? `pid ${holder.pid}` : `pid ${holder.pid} on host ${holder.host}`;
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

/** Text is written out in pieces of about this many characters. */
const SNAPSHOT_CHUNK_CHARS = 256 * 1024;

/**
 * Writes the snapshot text, `{"version":1,"seq":n,"levels":{...},"keys":[...],"crc":"xxxxxxxx"}\n`,
 * in pieces as it goes, with the CRC-32 carried from piece to piece: with a
 * million keys the whole text is about 150 MB, which as one string (and the
 * array of records behind it) took about 2 GB of memory at once.
 */
async function writeSnapshotText(
  file: FileHandle,
  seq: number,
  levels: ReadonlyMap<string, StockLevel>,
  keys: Iterable<IdempotencyRecord>,
): Promise<void> {
  let crc = 0;
  let pending = '';
  const flush = async () => {
    const bytes = Buffer.from(pending, 'utf8');
    pending = '';
    crc = crc32(bytes, crc);
    await file.write(bytes);
  };
  pending = `{"version":${SNAPSHOT_VERSION},"seq":${seq},"levels":${JSON.stringify(Object.fromEntries(levels))},"keys":[`;
  let first = true;
  for (const record of keys) {
    pending += (first ? '' : ',') + JSON.stringify(record);
    first = false;
    if (pending.length >= SNAPSHOT_CHUNK_CHARS) await flush();
  }
  pending += ']';
  await flush();
  // The checksum covers the text as if it ended right here, with its closing brace.
  const checksum = crc32('}', crc).toString(16).padStart(8, '0');
  await file.write(`,"crc":"${checksum}"}\n`);
}

/** Fresh levels for the caller; the key table is the one the store records committed keys in. */
function callerState(state: StockState): StockState {
  return { levels: structuredClone(state.levels), keys: state.keys };
}

/**
 * The durable default store: an append-only journal, one checksummed line per
 * committed batch, made durable with one O_DSYNC write, plus a
 * snapshot every `snapshotEvery` batches, written behind the commits, after
 * which the journal is cut to the batches committed since.
 *
 * On disk, in `dataDir`:
 * - `LOCK`: `<pid> <hostname>` of the one process that writes here, touched
 *   every `lockHeartbeatMs` while it does. On the same host a holder's pid is
 *   checked for life; a holder on another host (a container on a shared
 *   volume) counts as gone only once LOCK has gone untouched for five beats.
 * - `journal.log`: lines `<crc32 of json, 8 lowercase hex> {"seq":n,"events":[...]}\n`,
 *   seq going up by one per batch, across restarts and snapshots.
 * - `snapshot.json`: `{"version":1,"seq":n,"levels":{...},"keys":[...],"crc":"xxxxxxxx"}` where
 *   crc is the CRC-32 of the same text without its `,"crc":"xxxxxxxx"` member; it holds every
 *   batch up to and including seq. Replaced atomically (write tmp, fsync, rename, fsync dir).
 * - `journal.log.tmp`, `snapshot.json.tmp`: a cut journal or a snapshot being written; one
 *   found at open was cut short by a crash and is removed (the files it would replace are whole).
 *
 * Recovery reads the snapshot, replays journal records past its seq, drops a
 * torn last record (a crash mid-write) and refuses anything else that looks
 * damaged rather than guess at the stock.
 *
 * @example
 * const store = new FileStockStore({ dataDir: './data', logger });
 * const actor = await StockActor.start(store, new Map([['default', 100]]));
 */
export class FileStockStore implements StockStore {
  readonly kind = 'file';
  readonly durable = true;
  readonly recordsKeys = true;

  readonly #dataDir: string;
  readonly #lockPath: string;
  readonly #journalPath: string;
  readonly #journalReadBytes: number;
  readonly #journalTmpPath: string;
  readonly #snapshotPath: string;
  readonly #snapshotTmpPath: string;
  readonly #snapshotEvery: number;
  readonly #maxKeys: number;
  readonly #lockHeartbeatMs: number;
  readonly #logger: StoreLogger;
  #lockHeartbeat: ReturnType<typeof setInterval> | undefined;

  #journal: FileHandle | undefined;
  #state: 'new' | 'opening' | 'open' | 'closed' = 'new';
  /**
   * What every committed batch added up to: the source of the next snapshot.
   * Its key table is also the caller's (see `recordsKeys`); its levels are not.
   */
  #mirror: StockState = { levels: new Map(), keys: new KeyTable() };
  /** The seq of the last committed batch. */
  #seq = 0;
  /** The journal's length up to the end of its last committed record. */
  #goodSize = 0;
  /** True when the journal may hold bytes past #goodSize that must go before the next write. */
  #needsRepair = false;
  /** Why the last attempt to write failed; null once a write or repair succeeds. */
  #failure: { message: string; code: string | undefined } | null = null;
  #batchesSinceSnapshot = 0;
  /** The snapshot being written behind the commits, if one is. */
  #snapshotting: Promise<void> | null = null;
  /** True when the journal was replaced by rename but the directory is not yet known to be synced. */
  #needsDirectorySync = false;
  #lastCommitAt: number | null = null;
  /** File operations run one at a time (commit, readiness checks, close). */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: FileStockStoreOptions) {
    this.#dataDir = resolve(options.dataDir);
    this.#lockPath = join(this.#dataDir, LOCK_FILE);
    this.#journalPath = join(this.#dataDir, JOURNAL_FILE);
    this.#journalReadBytes = options.journalReadBytes ?? 1024 * 1024;
    this.#journalTmpPath = join(this.#dataDir, JOURNAL_TMP_FILE);
    this.#snapshotPath = join(this.#dataDir, SNAPSHOT_FILE);
    this.#snapshotTmpPath = join(this.#dataDir, SNAPSHOT_TMP_FILE);
    this.#snapshotEvery = options.snapshotEvery ?? 10_000;
    this.#maxKeys = options.maxKeys ?? 1_000_000;
    this.#lockHeartbeatMs = options.lockHeartbeatMs ?? 2_000;
    this.#logger = options.logger ?? consoleLogger;
    if (!Number.isSafeInteger(this.#snapshotEvery) || this.#snapshotEvery < 1) {
      throw new RangeError(`snapshotEvery must be a positive integer, got ${options.snapshotEvery}`);
    }
    if (!Number.isSafeInteger(this.#maxKeys) || this.#maxKeys < 0) {
      throw new RangeError(`maxKeys must be a non-negative integer, got ${options.maxKeys}`);
    }
    if (!Number.isSafeInteger(this.#lockHeartbeatMs) || this.#lockHeartbeatMs < 1) {
      throw new RangeError(`lockHeartbeatMs must be a positive integer, got ${options.lockHeartbeatMs}`);
    }
  }

  async open(seed: ReadonlyMap<string, number>, now: number = Date.now()): Promise<StockState> {
    if (this.#state !== 'new') throw new Error(`FileStockStore for ${this.#dataDir} was already opened`);
    this.#state = 'opening';
    await mkdir(this.#dataDir, { recursive: true });
    await this.#takeLock();
    try {
      const state = await this.#recover(seed, now);
      this.#state = 'open';
      return state;
    } catch (error) {
      await this.#journal?.close().catch(() => {});
      this.#journal = undefined;
      await this.#releaseLock();
      this.#state = 'closed';
      throw error;
    }
  }

  commit(events: readonly StockEvent[]): Promise<void> {
    return this.#exclusive(() => this.#commit(events));
  }

  /**
   * Whether the journal can take the next batch. After a failed write it retries
   * the repair (truncate back to the last good record and sync), so readiness can
   * come back without traffic. Cheap when nothing failed.
   */
  checkWritable(): Promise<boolean> {
    if (this.#state === 'open' && this.#failure === null) return Promise.resolve(true);
    return this.#exclusive(async () => {
      if (this.#state !== 'open') return false;
      if (this.#failure === null) return true;
      try {
        if (this.#needsDirectorySync) {
          await syncDirectory(this.#dataDir);
          this.#needsDirectorySync = false;
        }
        if (this.#needsRepair) await this.#repair();
        if (this.#failure?.code === 'ENOSPC') await this.#ensureFreeSpace();
        this.#failure = null;
        return true;
      } catch (error) {
        this.#fail(error);
        return false;
      }
    });
  }

  health(): StoreHealth {
    const writable = this.#state === 'open' && this.#failure === null;
    const health: StoreHealth = {
      kind: this.kind,
      durable: this.durable,
      writable,
      lastCommitAgeMs: this.#lastCommitAt === null ? null : Date.now() - this.#lastCommitAt,
      location: this.#dataDir,
    };
    if (this.#failure) health.error = this.#failure.message;
    else if (!writable) health.error = this.#state === 'closed' ? 'the store is closed' : 'the store is not open yet';
    return health;
  }

  /** Lets commits already handed over finish, then closes the journal and releases the lock. */
  async close(): Promise<void> {
    if (this.#state !== 'open') {
      this.#state = 'closed';
      return;
    }
    await this.snapshotSettled();
    let closedHere = false;
    try {
      await this.#exclusive(async () => {
        if (this.#state !== 'open') return;
        this.#state = 'closed';
        closedHere = true;
        try {
          await this.#journal?.close();
        } finally {
          this.#journal = undefined;
        }
      });
    } finally {
      if (closedHere) {
        // A snapshot started by a commit queued before close finishes its file; its cut finds the store closed.
        await this.snapshotSettled();
        await this.#releaseLock();
      }
    }
  }

  /**
   * Appends one record and makes it durable: one write to a journal opened
   * with O_DSYNC (each write returns once its data is on disk, as after an
   * fdatasync), or one write and one fdatasync where the platform has no
   * O_DSYNC. A hook so tests can stand in for a disk that fails half-way; it
   * must throw if the record may not be durable.
   */
  protected async writeRecord(handle: FileHandle, record: Buffer): Promise<void> {
    let written = 0;
    while (written < record.length) {
      // One write in practice; a short write (disk filling up) continues where it stopped.
      const { bytesWritten } = await handle.write(record, written, record.length - written);
      if (bytesWritten <= 0) throw Object.assign(new Error('the journal write made no progress'), { code: 'EIO' });
      written += bytesWritten;
    }
    if (JOURNAL_DSYNC === 0) await handle.datasync();
  }

  /** Cuts the journal to `size` bytes and makes that durable. A hook for tests, like writeRecord. */
  protected async truncateJournal(handle: FileHandle, size: number): Promise<void> {
    await handle.truncate(size);
    await handle.datasync();
  }

  // ---- commit path ---------------------------------------------------------------------------

  async #commit(events: readonly StockEvent[]): Promise<void> {
    if (this.#state !== 'open' || !this.#journal) {
      throw new Error(`FileStockStore for ${this.#dataDir} is ${this.#state === 'closed' ? 'closed' : 'not open'}`);
    }
    if (events.length === 0) return;
    const journal = this.#journal;
    const seq = this.#seq + 1;
    const json = JSON.stringify({ seq, events });
    const record = Buffer.from(`${crcHex(json)} ${json}\n`, 'utf8');
    try {
      if (this.#needsDirectorySync) {
        // Until the journal's new name is durable, a batch written to it could vanish with a crash.
        await syncDirectory(this.#dataDir);
        this.#needsDirectorySync = false;
      }
      if (this.#needsRepair) await this.#repair();
      this.#needsRepair = true; // until the write is known to be complete and durable
      await this.writeRecord(journal, record);
      this.#needsRepair = false;
    } catch (error) {
      this.#fail(error);
      throw error;
    }
    this.#goodSize += record.length;
    this.#seq = seq;
    for (const event of events) applyEvent(this.#mirror, event);
    this.#failure = null;
    this.#lastCommitAt = Date.now();
    this.#batchesSinceSnapshot += 1;
    if (this.#batchesSinceSnapshot >= this.#snapshotEvery && this.#snapshotting === null) this.#startSnapshot();
  }

  /** Removes whatever a failed write left past the last good record. */
  async #repair(): Promise<void> {
    if (!this.#journal) throw new Error('the journal is not open');
    await this.truncateJournal(this.#journal, this.#goodSize);
    this.#needsRepair = false;
  }

  async #ensureFreeSpace(): Promise<void> {
    const probePath = join(this.#dataDir, WRITE_PROBE_FILE);
    try {
      const probe = await open(probePath, 'w');
      try {
        await probe.write(Buffer.alloc(WRITE_PROBE_BYTES));
        await probe.datasync();
      } finally {
        await probe.close();
      }
    } finally {
      await rm(probePath, { force: true });
    }
  }

  #fail(error: unknown): void {
    this.#failure = { message: `${this.#journalPath}: ${describeError(error)}`, code: errorCode(error) };
  }

  /**
   * Starts a snapshot of everything committed so far, written behind the
   * commits: batches go on being committed to the journal meanwhile, so a
   * snapshot of a million keys (a second or two of JSON) never holds up a
   * sale. Once the snapshot is durable, the journal is cut to the records
   * after it. It never makes a batch fail: every batch is in the journal.
   */
  #startSnapshot(): void {
    this.#mirror.keys.prune(Date.now(), this.#maxKeys);
    const seq = this.#seq;
    const levels = structuredClone(this.#mirror.levels);
    const keys = this.#mirror.keys.view();
    // The records after `seq` start here in the journal; commits only ever append past it.
    const cutAt = this.#goodSize;
    this.#batchesSinceSnapshot = 0;
    this.#snapshotting = (async () => {
      try {
        await this.#writeSnapshotFile(seq, levels, keys);
        await this.#exclusive(() => this.#cutJournal(cutAt));
      } catch (error) {
        // Tried again after another full round of batches; the journal keeps everything meanwhile.
        this.#logger.warn(
          { err: describeError(error), dataDir: this.#dataDir, seq },
          'file store: snapshot failed; the journal still holds every batch',
        );
      } finally {
        this.#snapshotting = null;
      }
    })();
  }

  /** Resolves once no snapshot is being written (close waits for it; so can tests). */
  async snapshotSettled(): Promise<void> {
    while (this.#snapshotting) await this.#snapshotting;
  }

  /**
   * Writes snapshot.json for everything up to #seq and empties the journal,
   * with nothing else going on (at open, to make a seed durable).
   */
  async #writeSnapshot(): Promise<void> {
    this.#mirror.keys.prune(Date.now(), this.#maxKeys);
    await this.#writeSnapshotFile(this.#seq, this.#mirror.levels, this.#mirror.keys.values());
    await this.#cutJournal(this.#goodSize);
    this.#batchesSinceSnapshot = 0;
  }

  /**
   * Writes snapshot.json: a temporary file, synced, renamed over the old one,
   * directory synced. A crash in here leaves the old snapshot (and the
   * journal, which holds every batch since).
   */
  async #writeSnapshotFile(
    seq: number,
    levels: ReadonlyMap<string, StockLevel>,
    keys: Iterable<IdempotencyRecord>,
  ): Promise<void> {
    const tmp = await open(this.#snapshotTmpPath, 'w');
    try {
      await writeSnapshotText(tmp, seq, levels, keys);
      await tmp.datasync();
    } finally {
      await tmp.close();
    }
    await rename(this.#snapshotTmpPath, this.#snapshotPath);
    await syncDirectory(this.#dataDir);
  }

  /**
   * Drops the journal's records before byte `cutAt`, which a durable
   * snapshot holds; run between commits. With nothing after them the journal
   * starts over. Otherwise the records after them (committed while the
   * snapshot was written) go to a new file, synced, that replaces the journal
   * by rename. A crash before the rename leaves the whole journal, whose first
   * records recovery skips as already in the snapshot.
   */
  async #cutJournal(cutAt: number): Promise<void> {
    if (this.#state === 'closed' || !this.#journal) return;
    if (cutAt >= this.#goodSize) {
      this.#goodSize = 0;
      this.#needsRepair = true;
      try {
        await this.truncateJournal(this.#journal, 0);
        this.#needsRepair = false;
      } catch (error) {
        // The next write truncates to 0 first; until then the store reports itself unwritable.
        this.#fail(error);
        throw error;
      }
      return;
    }
    const source = await open(this.#journalPath, 'r');
    let rest: Buffer;
    try {
      rest = await readFrom(source, cutAt, this.#goodSize);
    } finally {
      await source.close();
    }
    const tmp = await open(this.#journalTmpPath, 'w');
    try {
      await tmp.writeFile(rest);
      await tmp.datasync();
    } finally {
      await tmp.close();
    }
    const next = await open(this.#journalTmpPath, fsConstants.O_WRONLY | fsConstants.O_APPEND | JOURNAL_DSYNC);
    try {
      await rename(this.#journalTmpPath, this.#journalPath);
    } catch (error) {
      await next.close();
      throw error;
    }
    // From here on the journal is the new file, whatever happens next.
    const previous = this.#journal;
    this.#journal = next;
    this.#goodSize = rest.length;
    this.#needsRepair = false;
    await previous.close().catch(() => {});
    try {
      await syncDirectory(this.#dataDir);
    } catch (error) {
      this.#needsDirectorySync = true;
      this.#fail(error);
    }
  }

  #exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task, task);
    this.#queue = run.catch(() => {});
    return run;
  }

  // ---- lock ----------------------------------------------------------------------------------

  async #takeLock(): Promise<void> {
    if (openInThisProcess.has(this.#dataDir)) {
      throw new Error(
        `This process already has DATA_DIR ${this.#dataDir} open in another file store; two writers can never share a journal.`,
      );
    }
    openInThisProcess.add(this.#dataDir);
    try {
      if (!(await this.#createLock())) {
        const holder = await this.#readLock();
        const takeOver = await this.#mayTakeOver(holder);
        this.#logger.info(
          { lock: this.#lockPath, previousPid: holder?.pid ?? null, previousHost: holder?.host ?? null },
          takeOver,
        );
        await unlink(this.#lockPath).catch((error: unknown) => {
          if (errorCode(error) !== 'ENOENT') throw error;
        });
        if (!(await this.#createLock())) {
          const now = await this.#readLock();
          throw new Error(
            `Another process (${describeHolder(now)}) took DATA_DIR ${this.#dataDir} (lock file ${this.#lockPath}) while this one was starting; two writers can never share a journal.`,
          );
        }
      }
      this.#lockHeartbeat = setInterval(() => void this.#touchLock(), this.#lockHeartbeatMs);
      this.#lockHeartbeat.unref();
    } catch (error) {
      openInThisProcess.delete(this.#dataDir);
      throw error;
    }
  }

  /** Why the lock left by `holder` may be taken over (for the log); throws if it may not. */
  async #mayTakeOver(holder: LockHolder | null): Promise<string> {
    if (holder === null) return 'file store: taking over a lock that names no process (a start cut short)';
    const host = hostname();
    if (holder.host === null || holder.host === host) {
      if (holder.pid === process.pid)
        return 'file store: taking over a lock left with this pid by an earlier run (pid reuse)';
      if (!isAlive(holder.pid)) return 'file store: taking over a stale lock from a process that is gone';
      throw new Error(
        `Another process (pid ${holder.pid}) holds DATA_DIR ${this.#dataDir} (lock file ${this.#lockPath}); two writers can never share a journal. Stop that process or give this one another DATA_DIR.`,
      );
    }
    // Another host (or container) on a shared volume: its pid means nothing here, its heartbeat does.
    const staleAfterMs = LOCK_STALE_HEARTBEATS * this.#lockHeartbeatMs;
    const touchedAgoMs = Date.now() - (await stat(this.#lockPath)).mtimeMs;
    if (touchedAgoMs > staleAfterMs) {
      return `file store: taking over a lock from host ${holder.host}, untouched for ${Math.round(touchedAgoMs / 1000)} s`;
    }
    throw new Error(
      `Another process (pid ${holder.pid} on host ${holder.host}) holds DATA_DIR ${this.#dataDir} (lock file ${this.#lockPath}, touched ${Math.max(0, Math.round(touchedAgoMs))} ms ago); two writers can never share a journal. Stop that process or give this one another DATA_DIR; a lock left by a host that is gone is taken over once untouched for ${staleAfterMs} ms.`,
    );
  }

  /** The heartbeat: a newer mtime on LOCK tells other hosts that its holder still writes here. */
  async #touchLock(): Promise<void> {
    try {
      const now = new Date();
      await utimes(this.#lockPath, now, now);
    } catch (error) {
      this.#logger.warn({ err: describeError(error), lock: this.#lockPath }, 'file store: could not touch the lock');
    }
  }

  /** Creates LOCK naming this process and host; false if it already exists. */
  async #createLock(): Promise<boolean> {
    let handle: FileHandle;
    try {
      handle = await open(this.#lockPath, 'wx');
    } catch (error) {
      if (errorCode(error) === 'EEXIST') return false;
      throw error;
    }
    try {
      await handle.writeFile(`${process.pid} ${hostname()}\n`, 'utf8');
    } finally {
      await handle.close();
    }
    return true;
  }

  /** Who LOCK names, or null if it names no one (a starter killed between create and write). */
  async #readLock(): Promise<LockHolder | null> {
    for (let attempt = 0; attempt < 2; attempt++) {
      let text: string;
      try {
        text = await readFile(this.#lockPath, 'utf8');
      } catch (error) {
        if (errorCode(error) === 'ENOENT') return null;
        throw error;
      }
      const match = /^\s*(\d+)(?:[ \t]+(\S+))?\s*$/.exec(text);
      if (match) {
        const pid = Number(match[1]);
        return pid > 0 && Number.isSafeInteger(pid) ? { pid, host: match[2] ?? null } : null;
      }
      // Maybe another starter is between creating LOCK and writing to it: look once more.
      await new Promise((done) => setTimeout(done, 50));
    }
    return null;
  }

  async #releaseLock(): Promise<void> {
    clearInterval(this.#lockHeartbeat);
    this.#lockHeartbeat = undefined;
    try {
      const holder = await this.#readLock();
      if (holder?.pid === process.pid && (holder.host === null || holder.host === hostname()))
        await unlink(this.#lockPath);
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') {
        this.#logger.warn({ err: describeError(error), lock: this.#lockPath }, 'file store: could not remove the lock');
      }
    } finally {
      openInThisProcess.delete(this.#dataDir);
    }
  }

  // ---- recovery ------------------------------------------------------------------------------

  async #recover(seed: ReadonlyMap<string, number>, now: number): Promise<StockState> {
    await unlink(this.#snapshotTmpPath).then(
      () => this.#logger.info({ file: this.#snapshotTmpPath }, 'file store: removed an unfinished snapshot'),
      (error: unknown) => {
        if (errorCode(error) !== 'ENOENT') throw error;
      },
    );

    await unlink(this.#journalTmpPath).then(
      () => this.#logger.info({ file: this.#journalTmpPath }, 'file store: removed an unfinished cut of the journal'),
      (error: unknown) => {
        if (errorCode(error) !== 'ENOENT') throw error;
      },
    );

    const snapshot = await this.#readSnapshot();
    const state: StockState = snapshot?.state ?? { levels: new Map(), keys: new KeyTable() };
    const snapshotSeq = snapshot?.seq ?? 0;

    let seq = snapshotSeq;
    type Previous = { seq: number; offset: number; line: number } | null;
    let previous = null as Previous; // assigned in the callback below, which TypeScript does not follow
    // Each record is checked and applied as it is read, so that only one is ever parsed at a time.
    const {
      records,
      goodEnd,
      size: journalSize,
    } = await this.#scanJournal((record, offset, line) => {
      if (previous !== null && record.seq !== previous.seq + 1) {
        throw this.#corrupt(
          offset,
          line,
          `its seq ${record.seq} does not follow seq ${previous.seq} of the record before it`,
        );
      }
      if (previous === null && record.seq > snapshotSeq + 1) {
        throw this.#corrupt(
          offset,
          line,
          snapshot
            ? `it starts at seq ${record.seq} but ${this.#snapshotPath} ends at seq ${snapshotSeq}, so batches are missing`
            : `it starts at seq ${record.seq} but there is no ${this.#snapshotPath} holding the batches before it`,
        );
      }
      previous = { seq: record.seq, offset, line };
      if (record.seq <= snapshotSeq) return; // already in the snapshot (a crash before the journal was emptied)
      for (const event of record.events) applyEvent(state, event);
      seq = record.seq;
    });

    // O_DSYNC: the sync rides on the write, one trip to the thread pool per batch instead of two.
    const journal = await open(
      this.#journalPath,
      fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_APPEND | JOURNAL_DSYNC,
    );
    this.#journal = journal;
    await syncDirectory(this.#dataDir); // journal.log may have just been created
    let keepBytes = goodEnd;
    if (goodEnd < journalSize) {
      this.#logger.warn(
        { file: this.#journalPath, offset: goodEnd, droppedBytes: journalSize - goodEnd },
        `file store: dropped a torn last record at byte offset ${goodEnd} (a write cut short by a crash; it was never acknowledged)`,
      );
    }
    if (previous !== null && previous.seq <= snapshotSeq) {
      // Every record is already in the snapshot (a crash before the journal was emptied): start it over,
      // so that the next record's seq follows the snapshot's without a gap.
      this.#logger.info(
        { file: this.#journalPath, snapshotSeq, lastJournalSeq: previous.seq },
        'file store: emptied a journal the snapshot already holds',
      );
      keepBytes = 0;
    }
    if (keepBytes < journalSize) await this.truncateJournal(journal, keepBytes);

    let added = false;
    for (const [id, initial] of seed) {
      if (!state.levels.has(id)) {
        state.levels.set(id, { remaining: initial, sold: 0 });
        added = true;
      }
    }
    state.keys.dropExpired(now);
    state.keys.prune(now, this.#maxKeys);

    this.#mirror = state;
    this.#seq = seq;
    this.#goodSize = keepBytes;
    this.#batchesSinceSnapshot = keepBytes === 0 ? 0 : records;
    if ((snapshot === null && records === 0) || added) {
      // A new data dir (or new inventories): make the seed itself durable before anything is sold.
      await this.#writeSnapshot();
    }
    this.#logger.info(
      {
        dataDir: this.#dataDir,
        snapshotSeq,
        seq,
        replayed: seq - Math.min(seq, snapshotSeq),
        inventories: state.levels.size,
        keys: state.keys.size,
      },
      'file store: recovered',
    );
    return callerState(state);
  }

  async #readSnapshot(): Promise<{ seq: number; state: StockState } | null> {
    const damaged = (why: string) =>
      new Error(
        `The snapshot ${this.#snapshotPath} is damaged (${why}). The file store refuses to guess at the stock: restore ${SNAPSHOT_FILE} from a backup, or investigate the data directory before starting again.`,
      );
    // Records go into the table as they are read; if anything turns out damaged, the table is dropped.
    const keys = new KeyTable();
    let recordSyntaxError: string | null = null;
    let malformedRecord = false;
    const scan = await scanSnapshot(this.#snapshotPath, (text) => {
      if (recordSyntaxError !== null || malformedRecord) return;
      let record: unknown;
      try {
        record = JSON.parse(text);
      } catch (error) {
        recordSyntaxError = describeError(error);
        return;
      }
      if (isIdempotencyRecord(record)) keys.set(record.key, record);
      else malformedRecord = true;
    });
    if (scan === null) return null;
    if (!scan.trailer) throw damaged('it does not end with its crc member');
    if (scan.computedCrc !== scan.expectedCrc)
      throw damaged(`checksum mismatch: expected ${scan.expectedCrc}, computed ${scan.computedCrc}`);
    let parsed: unknown;
    try {
      const syntaxError = scan.syntaxError ?? recordSyntaxError;
      if (syntaxError !== null) throw new Error(syntaxError);
      parsed = JSON.parse(scan.skeleton);
    } catch (error) {
      throw damaged(`its checksum matches but it is not valid JSON: ${describeError(error)}`);
    }
    if (!isObject(parsed)) throw damaged('it is not a JSON object');
    if (parsed.version !== SNAPSHOT_VERSION) throw damaged(`unknown version ${JSON.stringify(parsed.version)}`);
    if (!isCount(parsed.seq)) throw damaged('no valid seq');
    if (!isObject(parsed.levels)) throw damaged('no levels object');
    if (!Array.isArray(parsed.keys)) throw damaged('no keys array');
    const levels = new Map<string, StockLevel>();
    for (const [id, level] of Object.entries(parsed.levels)) {
      if (!isLevel(level)) throw damaged(`the level of inventory ${JSON.stringify(id)} is malformed`);
      levels.set(id, { remaining: level.remaining, sold: level.sold });
    }
    if (malformedRecord) throw damaged('an idempotency key record is malformed');
    return { seq: parsed.seq, state: { levels, keys } };
  }

  /**
   * Reads the journal a piece at a time, handing each good record to
   * `onRecord` as it is read. A bad record at the very end (maybe followed by
   * NUL bytes) is a write cut short by a crash; anything bad before the end is
   * corruption, which is refused. No journal is an empty one.
   */
  async #scanJournal(
    onRecord: (record: JournalRecord, offset: number, line: number) => void,
  ): Promise<{ records: number; goodEnd: number; size: number }> {
    let file: FileHandle;
    try {
      file = await open(this.#journalPath, 'r');
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') throw error;
      return { records: 0, goodEnd: 0, size: 0 };
    }
    try {
      const { size } = await file.stat();
      let records = 0;
      let line = 0;
      let goodEnd = 0;
      for await (const { bytes, offset, ended } of journalLines(file, this.#journalReadBytes)) {
        line += 1;
        const parsed = ended ? parseRecord(bytes) : 'no trailing newline';
        if (typeof parsed === 'string') {
          this.#checkTornTail(await readFrom(file, offset, size), offset, line, parsed);
          return { records, goodEnd: offset, size };
        }
        onRecord(parsed, offset, line);
        records += 1;
        goodEnd = offset + bytes.length + 1;
      }
      return { records, goodEnd, size };
    } finally {
      await file.close();
    }
  }

  /**
   * Throws unless `tail` (the journal from byte `offset` to its end) is one
   * bad record, possibly padded with NUL bytes.
   */
  #checkTornTail(tail: Buffer, offset: number, line: number, reason: string): void {
    let end = tail.length;
    while (end > 0 && tail[end - 1] === 0) end -= 1;
    const newline = tail.subarray(0, end).indexOf(NEWLINE);
    if (newline === -1 || newline === end - 1) return; // one torn record (or only NULs)

    // More lines follow the bad one: find out whether a good record is among them.
    let next = newline + 1;
    let nextLine = line + 1;
    while (next < end) {
      const nl = tail.indexOf(NEWLINE, next);
      if (nl !== -1 && typeof parseRecord(tail.subarray(next, nl)) !== 'string') {
        throw this.#corrupt(
          offset,
          line,
          `${reason}, yet a good record follows it at line ${nextLine} (byte offset ${offset + next})`,
        );
      }
      if (nl === -1) break;
      next = nl + 1;
      nextLine += 1;
    }
    throw this.#corrupt(
      offset,
      line,
      `${reason}, and more damaged lines follow it; a crash can only cut short the last record`,
    );
  }

  #corrupt(offset: number, line: number, why: string): Error {
    return new Error(
      `The journal ${this.#journalPath} is corrupt at byte offset ${offset} (line ${line}): ${why}. The file store refuses to guess at the stock: restore the data directory from a backup or investigate ${this.#journalPath} before starting again.`,
    );
  }
}
