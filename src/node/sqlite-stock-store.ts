import { existsSync } from 'node:fs';
import { mkdir, open, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type {
  EventRecord,
  HoldRecord,
  HoldStatus,
  IdempotencyRecord,
  OrderRecord,
  OrderStatus,
  StockCommand,
  StockDecision,
} from '../stock/model.ts';
import type { DecideOptions, StockChanges, StockView } from '../stock/rules.ts';
import {
  decideAndRecord,
  eventFromDefinition,
  type SeedEvent,
  type StockStore,
  type StoreHealth,
} from '../stock/store.ts';
import { DataDirLock, type LockLogger } from './data-dir-lock.ts';
import { openSqlite, type SqliteDatabase, type SqliteDriver, type SqliteStatement } from './sqlite-binding.ts';

/** The database file in DATA_DIR. */
export const DATABASE_FILE = 'ticket-system.db';

/** What the file store (never released) left in a DATA_DIR: refused, never reset, or the same tickets sell twice. */
const JOURNAL_STORE_FILES = ['journal.log', 'snapshot.json'];

/** The schema, one step per version (PRAGMA user_version counts the steps applied). */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE ticket_types (
     event_id TEXT NOT NULL,
     type_id TEXT NOT NULL,
     capacity INTEGER NOT NULL CHECK (capacity >= sold),
     sold INTEGER NOT NULL CHECK (sold >= 0),
     issued INTEGER NOT NULL CHECK (issued >= sold),
     PRIMARY KEY (event_id, type_id)
   ) WITHOUT ROWID;
   CREATE TABLE idempotency_keys (
     key TEXT PRIMARY KEY,
     request TEXT NOT NULL,
     outcome TEXT NOT NULL,
     expires_at INTEGER NOT NULL
   ) WITHOUT ROWID;
   CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);`,
  `CREATE TABLE events (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     capacity INTEGER CHECK (capacity IS NULL OR capacity >= 0)
   ) WITHOUT ROWID;
   INSERT INTO events (id, name, capacity) SELECT DISTINCT event_id, 'Default', NULL FROM ticket_types;
   ALTER TABLE ticket_types ADD COLUMN name TEXT NOT NULL DEFAULT 'Default';
   ALTER TABLE ticket_types ADD COLUMN max_per_order INTEGER;
   ALTER TABLE ticket_types ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
   CREATE TABLE orders (
     id TEXT PRIMARY KEY,
     event_id TEXT NOT NULL,
     buyer TEXT,
     items TEXT NOT NULL,
     created_at INTEGER NOT NULL
   ) WITHOUT ROWID;
   CREATE INDEX orders_by_event ON orders (event_id, created_at);`,
  `ALTER TABLE events ADD COLUMN max_per_buyer INTEGER;
   ALTER TABLE ticket_types ADD COLUMN max_per_buyer INTEGER;
   ALTER TABLE ticket_types ADD COLUMN held INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0);
   ALTER TABLE orders ADD COLUMN status TEXT NOT NULL DEFAULT 'confirmed';
   ALTER TABLE orders ADD COLUMN hold_id TEXT;
   CREATE TABLE holds (
     id TEXT PRIMARY KEY,
     event_id TEXT NOT NULL,
     buyer TEXT,
     items TEXT NOT NULL,
     status TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     order_id TEXT
   ) WITHOUT ROWID;
   CREATE INDEX holds_due_by_event ON holds (event_id, expires_at) WHERE status = 'held';
   CREATE INDEX holds_due ON holds (expires_at) WHERE status = 'held';
   CREATE TABLE buyer_tickets (
     event_id TEXT NOT NULL,
     buyer TEXT NOT NULL,
     type_id TEXT NOT NULL,
     qty INTEGER NOT NULL CHECK (qty > 0),
     PRIMARY KEY (event_id, buyer, type_id)
   ) WITHOUT ROWID;`,
  `CREATE INDEX orders_by_time ON orders (created_at);`,
  // Tickets held over all events is read at every metrics scrape: only the types holding any.
  `CREATE INDEX ticket_types_holding ON ticket_types (held) WHERE held > 0;`,
];

/** Events kept in memory at most; the others are read from the database when a batch needs them. */
const CACHED_EVENTS = 10_000;
/** Idempotency keys deleted at most per batch, so that a wave of expiries never makes one batch slow. */
const PRUNE_PER_BATCH = 1_000;
/** After a failed write, readiness comes back once a probe of this size can be written and synced. */
const WRITE_PROBE_BYTES = 64 * 1024;
const WRITE_PROBE_FILE = 'write-probe.tmp';

export interface SqliteStockStoreOptions {
  /** The directory that holds the database and LOCK; created if missing. */
  dataDir: string;
  /** How many idempotency keys are remembered at most; the oldest go first. */
  maxKeys: number;
  logger: LockLogger;
  /** How often the holder touches LOCK, in ms (default 2 s); another host takes over after five missed beats. */
  lockHeartbeatMs?: number;
  /** WAL pages after which a commit checkpoints the WAL into the database (SQLite's default: 1000). */
  walAutocheckpoint?: number;
  /** The binding to use; default: the runtime's own (see sqlite-binding.ts). */
  driver?: SqliteDriver;
}

interface Statements {
  event: SqliteStatement;
  types: SqliteStatement;
  eventIdsAfter: SqliteStatement;
  firstEventIds: SqliteStatement;
  putEvent: SqliteStatement;
  putType: SqliteStatement;
  typeIds: SqliteStatement;
  deleteType: SqliteStatement;
  updateLevels: SqliteStatement;
  order: SqliteStatement;
  putOrder: SqliteStatement;
  hold: SqliteStatement;
  putHold: SqliteStatement;
  updateHold: SqliteStatement;
  dueHoldsOf: SqliteStatement;
  dueHolds: SqliteStatement;
  buyerTickets: SqliteStatement;
  recentOrdersOf: SqliteStatement;
  recentOrders: SqliteStatement;
  heldHoldsOf: SqliteStatement;
  heldHolds: SqliteStatement;
  putBuyerTickets: SqliteStatement;
  deleteBuyerTickets: SqliteStatement;
  key: SqliteStatement;
  putKey: SqliteStatement;
  pruneExpiredKeys: SqliteStatement;
  pruneOldestKeys: SqliteStatement;
}

/**
 * The embedded default store: one SQLite database in DATA_DIR, in WAL mode
 * with `synchronous=FULL`. The stock actor's batch is decided by the rules
 * (src/stock/rules.ts) against what the database holds, and what it changed
 * is written in one transaction, committed (one fsync of the WAL) before any
 * caller hears of it. Stock levels, ticket sequences and idempotency keys
 * live in tables; memory holds only a bounded cache of stocks, which is
 * updated only after a commit.
 *
 * One process writes a DATA_DIR: a LOCK file (see data-dir-lock.ts) refuses
 * a second one, on this host and on others sharing the volume.
 *
 * @example
 * const store = new SqliteStockStore({ dataDir: './data', maxKeys: 1_000_000, logger });
 * const actor = await StockActor.start(store, [{ eventId: 'default', typeId: 'default', capacity: 1000 }]);
 */
export class SqliteStockStore implements StockStore {
  readonly kind = 'sqlite';
  readonly #options: SqliteStockStoreOptions;
  readonly #dataDir: string;
  readonly #path: string;
  #db: SqliteDatabase | undefined;
  #sql: Statements | undefined;
  #lock: DataDirLock | undefined;
  /** The committed state of recently used events, newest last (updated only once a batch has committed). */
  readonly #events = new Map<string, EventRecord>();
  #keyCount = 0;
  #failure: string | null = null;
  #lastCommitAt: number | null = null;
  #engine: string | undefined;

  constructor(options: SqliteStockStoreOptions) {
    this.#options = options;
    this.#dataDir = resolve(options.dataDir);
    this.#path = join(this.#dataDir, DATABASE_FILE);
  }

  /** The database file. */
  get path(): string {
    return this.#path;
  }

  /** The binding in use, once open. */
  get driver(): SqliteDriver | undefined {
    return this.#db?.driver;
  }

  async open(seed: readonly SeedEvent[]): Promise<void> {
    await mkdir(this.#dataDir, { recursive: true });
    const journal = JOURNAL_STORE_FILES.find((file) => existsSync(join(this.#dataDir, file)));
    if (journal !== undefined) {
      throw new Error(
        `DATA_DIR ${this.#dataDir} holds ${journal}, the journal of the file store, which this version no longer reads; starting on it empty would sell its tickets again. Give this version another DATA_DIR (and keep the old one for the records), or run the version that wrote it until the sale is over.`,
      );
    }
    this.#lock = await DataDirLock.acquire(this.#dataDir, {
      logger: this.#options.logger,
      heartbeatMs: this.#options.lockHeartbeatMs,
    });
    try {
      await this.#connect();
      this.#transaction(() => {
        for (const { eventId, definition } of seed) {
          if (this.#event(eventId) === undefined) this.#writeEvent(eventFromDefinition(eventId, definition), true);
        }
      });
      this.#keyCount = Number(this.#db!.prepare('SELECT count(*) AS n FROM idempotency_keys').get()!.n);
      this.#lastCommitAt = Date.now();
    } catch (error) {
      this.#disconnect();
      await this.#lock.release();
      throw error;
    }
  }

  async decide(commands: readonly StockCommand[], options: DecideOptions): Promise<StockDecision[]> {
    const sql = this.#statements();
    /** Keys of this batch that the database already holds (their record is replaced, not added). */
    const known = new Set<string>();
    /** Holds the batch read from the database: only their status and order change. */
    const knownHolds = new Set<string>();
    const readHold = (row: Record<string, unknown>) => {
      const hold = holdFromRow(row);
      knownHolds.add(hold.id);
      return hold;
    };
    const view: StockView = {
      event: (eventId) => this.#event(eventId),
      eventsAfter: (after, limit) =>
        (after === null ? sql.firstEventIds.all(limit) : sql.eventIdsAfter.all(after, limit)).map((row) =>
          this.#event(String(row.id))!,
        ),
      order: (orderId) => {
        const row = sql.order.get(orderId);
        return row === undefined ? undefined : orderFromRow(orderId, row);
      },
      hold: (holdId) => {
        const row = sql.hold.get(holdId);
        return row === undefined ? undefined : readHold(row);
      },
      dueHolds: (eventId, now, limit) =>
        (eventId === null ? sql.dueHolds.all(now, limit) : sql.dueHoldsOf.all(eventId, now, limit)).map(readHold),
      recentOrders: (eventId, limit) =>
        (eventId === null ? sql.recentOrders.all(limit) : sql.recentOrdersOf.all(eventId, limit)).map((row) =>
          orderFromRow(String(row.id), row),
        ),
      heldHolds: (eventId, limit) =>
        (eventId === null ? sql.heldHolds.all(limit) : sql.heldHoldsOf.all(eventId, limit)).map(holdFromRow),
      buyerTickets: (eventId, buyer) =>
        new Map(sql.buyerTickets.all(eventId, buyer).map((row) => [String(row.type_id), Number(row.qty)])),
      idempotencyRecord: (key) => {
        const row = sql.key.get(key);
        if (row === undefined) return undefined;
        known.add(key);
        return { key, request: String(row.request), outcome: String(row.outcome), expiresAt: Number(row.expires_at) };
      },
    };
    return decideAndRecord(view, commands, options, (changes) => this.#record(changes, known, knownHolds, options.now));
  }

  idempotencyKeys(): number {
    return this.#keyCount;
  }

  heldTickets(): number {
    return Number(this.#db?.prepare('SELECT total(held) AS held FROM ticket_types WHERE held > 0').get()?.held ?? 0);
  }

  health(): StoreHealth {
    return {
      kind: this.kind,
      durable: true,
      writable: this.#failure === null,
      lastCommitAgeMs: this.#lastCommitAt === null ? null : Date.now() - this.#lastCommitAt,
      location: this.#path,
      ...(this.#engine === undefined ? {} : { engine: this.#engine }),
      ...(this.#failure === null ? {} : { error: this.#failure }),
    };
  }

  /**
   * After a failed write: a real write of a probe file and a transaction on
   * a fresh connection (a connection that met an I/O error is not trusted).
   */
  async checkWritable(): Promise<boolean> {
    if (this.#failure === null) return true;
    try {
      const probe = join(this.#dataDir, WRITE_PROBE_FILE);
      const handle = await open(probe, 'w');
      try {
        await handle.writeFile(new Uint8Array(WRITE_PROBE_BYTES));
        await handle.sync();
      } finally {
        await handle.close();
        await unlink(probe).catch(() => {});
      }
      this.#disconnect();
      await this.#connect();
      this.#transaction(() => this.#db!.exec("UPDATE meta SET value = value WHERE name = 'schema'"));
      this.#failure = null;
      return true;
    } catch (error) {
      this.#failure = describeError(error);
      return false;
    }
  }

  /** Copies the database to `path` while it is in use (see `ticket-system backup`). */
  async backup(path: string): Promise<void> {
    if (!this.#db) throw new Error('the store is not open');
    await this.#db.backup(path);
  }

  async close(): Promise<void> {
    this.#disconnect();
    await this.#lock?.release();
    this.#lock = undefined;
  }

  async #connect(): Promise<void> {
    let db: SqliteDatabase;
    try {
      db = await openSqlite(this.#path, { driver: this.#options.driver });
    } catch (error) {
      throw new Error(`Cannot open the SQLite database ${this.#path}: ${describeError(error)}`, { cause: error });
    }
    try {
      db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = FULL');
      db.exec('PRAGMA busy_timeout = 5000');
      db.exec(`PRAGMA wal_autocheckpoint = ${Math.max(1, Math.floor(this.#options.walAutocheckpoint ?? 1000))}`);
      migrate(db);
    } catch (error) {
      db.close();
      throw new Error(`Cannot open the SQLite database ${this.#path}: ${describeError(error)}`, { cause: error });
    }
    this.#db = db;
    this.#engine = `SQLite ${String(db.prepare('SELECT sqlite_version() AS version').get()!.version)} (${db.driver})`;
    this.#sql = {
      event: db.prepare('SELECT name, capacity, max_per_buyer FROM events WHERE id = ?'),
      types: db.prepare(
        'SELECT type_id, name, capacity, max_per_order, max_per_buyer, sold, held, issued FROM ticket_types WHERE event_id = ? ORDER BY position',
      ),
      eventIdsAfter: db.prepare('SELECT id FROM events WHERE id > ? ORDER BY id LIMIT ?'),
      firstEventIds: db.prepare('SELECT id FROM events ORDER BY id LIMIT ?'),
      putEvent: db.prepare(
        `INSERT INTO events (id, name, capacity, max_per_buyer) VALUES (?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, capacity = excluded.capacity, max_per_buyer = excluded.max_per_buyer`,
      ),
      putType: db.prepare(
        `INSERT INTO ticket_types (event_id, type_id, name, capacity, max_per_order, max_per_buyer, position, sold, held, issued)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (event_id, type_id) DO UPDATE SET name = excluded.name, capacity = excluded.capacity,
           max_per_order = excluded.max_per_order, max_per_buyer = excluded.max_per_buyer, position = excluded.position,
           sold = excluded.sold, held = excluded.held, issued = excluded.issued`,
      ),
      typeIds: db.prepare('SELECT type_id FROM ticket_types WHERE event_id = ?'),
      deleteType: db.prepare('DELETE FROM ticket_types WHERE event_id = ? AND type_id = ?'),
      updateLevels: db.prepare(
        'UPDATE ticket_types SET capacity = ?, sold = ?, held = ?, issued = ? WHERE event_id = ? AND type_id = ?',
      ),
      order: db.prepare('SELECT event_id, buyer, items, created_at, status, hold_id FROM orders WHERE id = ?'),
      putOrder: db.prepare(
        'INSERT OR REPLACE INTO orders (id, event_id, buyer, items, created_at, status, hold_id) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      hold: db.prepare('SELECT * FROM holds WHERE id = ?'),
      updateHold: db.prepare('UPDATE holds SET status = ?, order_id = ? WHERE id = ?'),
      putHold: db.prepare(
        'INSERT OR REPLACE INTO holds (id, event_id, buyer, items, status, created_at, expires_at, order_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      dueHoldsOf: db.prepare(
        "SELECT * FROM holds WHERE event_id = ? AND status = 'held' AND expires_at <= ? ORDER BY expires_at LIMIT ?",
      ),
      dueHolds: db.prepare("SELECT * FROM holds WHERE status = 'held' AND expires_at <= ? ORDER BY expires_at LIMIT ?"),
      buyerTickets: db.prepare('SELECT type_id, qty FROM buyer_tickets WHERE event_id = ? AND buyer = ?'),
      recentOrdersOf: db.prepare('SELECT * FROM orders WHERE event_id = ? ORDER BY created_at DESC LIMIT ?'),
      recentOrders: db.prepare('SELECT * FROM orders ORDER BY created_at DESC LIMIT ?'),
      heldHoldsOf: db.prepare("SELECT * FROM holds WHERE event_id = ? AND status = 'held' ORDER BY expires_at LIMIT ?"),
      heldHolds: db.prepare("SELECT * FROM holds WHERE status = 'held' ORDER BY expires_at LIMIT ?"),
      putBuyerTickets: db.prepare(
        'INSERT OR REPLACE INTO buyer_tickets (event_id, buyer, type_id, qty) VALUES (?, ?, ?, ?)',
      ),
      deleteBuyerTickets: db.prepare('DELETE FROM buyer_tickets WHERE event_id = ? AND buyer = ? AND type_id = ?'),
      key: db.prepare('SELECT request, outcome, expires_at FROM idempotency_keys WHERE key = ?'),
      putKey: db.prepare(
        'INSERT OR REPLACE INTO idempotency_keys (key, request, outcome, expires_at) VALUES (?, ?, ?, ?)',
      ),
      pruneExpiredKeys: db.prepare(
        'DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM idempotency_keys WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)',
      ),
      pruneOldestKeys: db.prepare(
        'DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM idempotency_keys ORDER BY expires_at LIMIT ?)',
      ),
    };
  }

  #disconnect(): void {
    try {
      this.#db?.close();
    } catch {
      // A connection that failed may refuse to close cleanly; it is dropped either way.
    }
    this.#db = undefined;
    this.#sql = undefined;
  }

  #statements(): Statements {
    if (!this.#sql) throw new Error(this.#failure ?? 'the SQLite store is not open');
    return this.#sql;
  }

  #event(eventId: string): EventRecord | undefined {
    const cached = this.#events.get(eventId);
    if (cached) return cached;
    const sql = this.#statements();
    const row = sql.event.get(eventId);
    if (row === undefined) return undefined;
    const event: EventRecord = {
      id: eventId,
      name: String(row.name),
      capacity: nullableNumber(row.capacity),
      maxPerBuyer: nullableNumber(row.max_per_buyer),
      types: sql.types.all(eventId).map((type) => ({
        id: String(type.type_id),
        name: String(type.name),
        capacity: Number(type.capacity),
        maxPerOrder: nullableNumber(type.max_per_order),
        maxPerBuyer: nullableNumber(type.max_per_buyer),
        sold: Number(type.sold),
        held: Number(type.held),
        issued: Number(type.issued),
      })),
    };
    this.#cache(event);
    return event;
  }

  #cache(event: EventRecord): void {
    this.#events.delete(event.id);
    this.#events.set(event.id, event);
    if (this.#events.size > CACHED_EVENTS) this.#events.delete(this.#events.keys().next().value!);
  }

  /**
   * Writes an event: its definition and every type when `defined`, else only
   * the stock of the types that changed since the committed state.
   */
  #writeEvent(event: EventRecord, defined: boolean): void {
    const sql = this.#statements();
    if (defined) {
      sql.putEvent.run(event.id, event.name, event.capacity, event.maxPerBuyer);
      const kept = new Set<string>();
      event.types.forEach((type, position) => {
        kept.add(type.id);
        sql.putType.run(
          event.id,
          type.id,
          type.name,
          type.capacity,
          type.maxPerOrder,
          type.maxPerBuyer,
          position,
          type.sold,
          type.held,
          type.issued,
        );
      });
      for (const row of sql.typeIds.all(event.id)) {
        if (!kept.has(String(row.type_id))) sql.deleteType.run(event.id, String(row.type_id));
      }
      return;
    }
    const before = this.#events.get(event.id);
    for (const type of event.types) {
      const was = before?.types.find((candidate) => candidate.id === type.id);
      const same =
        was &&
        was.capacity === type.capacity &&
        was.sold === type.sold &&
        was.held === type.held &&
        was.issued === type.issued;
      if (!same) sql.updateLevels.run(type.capacity, type.sold, type.held, type.issued, event.id, type.id);
    }
  }

  /** Writes a batch's changes in one transaction; memory follows only once it has committed. */
  #record(changes: StockChanges, known: ReadonlySet<string>, knownHolds: ReadonlySet<string>, now: number): void {
    const sql = this.#statements();
    let added = 0;
    let pruned = 0;
    try {
      this.#transaction(() => {
        for (const { event, defined } of changes.events.values()) this.#writeEvent(event, defined);
        for (const order of changes.orders.values()) {
          const { id, eventId, buyer, items, createdAt, status, holdId } = order;
          sql.putOrder.run(id, eventId, buyer, JSON.stringify(items), createdAt, status, holdId);
        }
        for (const hold of changes.holds.values()) {
          const { id, eventId, buyer, items, status, createdAt, expiresAt, orderId } = hold;
          if (knownHolds.has(id)) sql.updateHold.run(status, orderId, id);
          else sql.putHold.run(id, eventId, buyer, JSON.stringify(items), status, createdAt, expiresAt, orderId);
        }
        for (const { eventId, buyer, tickets } of changes.buyers.values()) {
          for (const [typeId, qty] of tickets) {
            if (qty > 0) sql.putBuyerTickets.run(eventId, buyer, typeId, qty);
            else sql.deleteBuyerTickets.run(eventId, buyer, typeId);
          }
        }
        for (const record of changes.keys.values()) {
          putKey(sql.putKey, record);
          if (!known.has(record.key)) added += 1;
        }
        pruned = Number(sql.pruneExpiredKeys.run(now, PRUNE_PER_BATCH).changes);
        const excess = this.#keyCount + added - pruned - this.#options.maxKeys;
        if (excess > 0) pruned += Number(sql.pruneOldestKeys.run(Math.min(excess, PRUNE_PER_BATCH)).changes);
      });
    } catch (error) {
      this.#failure = describeError(error);
      throw error;
    }
    for (const { event } of changes.events.values()) this.#cache(event);
    this.#keyCount += added - pruned;
    this.#failure = null;
    this.#lastCommitAt = Date.now();
  }

  #transaction(work: () => void): void {
    const db = this.#db!;
    db.exec('BEGIN IMMEDIATE');
    try {
      work();
      db.exec('COMMIT');
    } catch (error) {
      try {
        db.exec('ROLLBACK');
      } catch {
        // SQLite may have rolled back already (a full disk, an I/O error).
      }
      throw error;
    }
  }
}

function orderFromRow(id: string, row: Record<string, unknown>): OrderRecord {
  return {
    id,
    eventId: String(row.event_id),
    items: JSON.parse(String(row.items)) as OrderRecord['items'],
    buyer: row.buyer === null ? null : String(row.buyer),
    createdAt: Number(row.created_at),
    status: String(row.status) as OrderStatus,
    holdId: row.hold_id === null ? null : String(row.hold_id),
  };
}

function holdFromRow(row: Record<string, unknown>): HoldRecord {
  return {
    id: String(row.id),
    eventId: String(row.event_id),
    items: JSON.parse(String(row.items)) as HoldRecord['items'],
    buyer: row.buyer === null ? null : String(row.buyer),
    status: String(row.status) as HoldStatus,
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    orderId: row.order_id === null ? null : String(row.order_id),
  };
}

function nullableNumber(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}

function putKey(statement: SqliteStatement, record: IdempotencyRecord): void {
  statement.run(record.key, record.request, record.outcome, record.expiresAt);
}

/** Brings the schema to the latest version, one step per transaction. */
function migrate(db: SqliteDatabase): void {
  db.exec('CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID');
  const version = Number(db.prepare('PRAGMA user_version').get()!.user_version);
  if (version > MIGRATIONS.length) {
    throw new Error(
      `the database has schema version ${version}, newer than this program's ${MIGRATIONS.length}; run the version that wrote it`,
    );
  }
  for (let step = version; step < MIGRATIONS.length; step++) {
    db.exec('BEGIN IMMEDIATE');
    try {
      db.exec(MIGRATIONS[step]!);
      db.exec(`PRAGMA user_version = ${step + 1}`);
      db.prepare("INSERT OR REPLACE INTO meta (name, value) VALUES ('schema', ?)").run(String(step + 1));
      db.exec('COMMIT');
    } catch (error) {
      db.exec('ROLLBACK');
      throw error;
    }
  }
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
}
