import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/logger.ts';
import { defaultEventDefinition, type StockCommand } from '../stock/model.ts';
import { DATABASE_FILE, SqliteStockStore } from './sqlite-stock-store.ts';
import { openSqlite } from './sqlite-binding.ts';

const dirs: string[] = [];
const stores: SqliteStockStore[] = [];
const SEED = [{ eventId: 'default', definition: defaultEventDefinition(100) }];
const HOUR = 3_600_000;

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sqlite-store-'));
  dirs.push(dir);
  return dir;
}

async function openStore(dataDir: string, maxKeys = 1_000): Promise<SqliteStockStore> {
  const store = new SqliteStockStore({ dataDir, maxKeys, logger: silentLogger });
  stores.push(store);
  await store.open(SEED);
  return store;
}

let orders = 0;
const reserve = (qty: number, key?: string): StockCommand => ({
  kind: 'reserve',
  eventId: 'default',
  typeId: 'default',
  qty,
  orderId: `ord_sqlitestoretest${String(++orders).padStart(4, '0')}default`,
  at: Date.now(),
  ...(key === undefined ? {} : { key }),
});
const level: StockCommand = { kind: 'level', eventId: 'default', typeId: 'default' };

describe('SqliteStockStore', () => {
  it('keeps stock, ticket numbers and keys across a close and reopen, and seeds only an empty database', async () => {
    const dir = await tempDir();
    const first = await openStore(dir);
    const now = Date.now();
    await first.decide([reserve(3, 'a'), reserve(2)], { now, idempotencyTtlMs: HOUR });
    await first.close();

    const store = new SqliteStockStore({ dataDir: dir, maxKeys: 1_000, logger: silentLogger });
    stores.push(store);
    await store.open([{ eventId: 'default', definition: defaultEventDefinition(5_000) }]);
    expect(store.idempotencyKeys()).toBe(1);
    const [again, next, after] = await store.decide([reserve(3, 'a'), reserve(1), level], {
      now,
      idempotencyTtlMs: HOUR,
    });
    expect(again).toMatchObject({ kind: 'reserved', replayed: true, outcome: { tickets: { first: 1, last: 3 } } });
    expect(next).toMatchObject({ kind: 'reserved', replayed: false, outcome: { tickets: { first: 6, last: 6 } } });
    expect(after).toEqual({ kind: 'level', level: { remaining: 94, sold: 6 } });
  });

  it('is a plain SQLite database that the sqlite3 tools can read', async () => {
    const dir = await tempDir();
    const store = await openStore(dir);
    await store.decide([reserve(4, 'k')], { now: Date.now(), idempotencyTtlMs: HOUR });
    const reader = await openSqlite(join(dir, DATABASE_FILE), { readonly: true });
    try {
      expect(reader.prepare('SELECT event_id, type_id, capacity, sold, issued FROM ticket_types').all()).toEqual([
        { event_id: 'default', type_id: 'default', capacity: 100, sold: 4, issued: 4 },
      ]);
      expect(reader.prepare('SELECT id, name, capacity FROM events').all()).toEqual([
        { id: 'default', name: 'Default', capacity: null },
      ]);
      expect(reader.prepare('SELECT key FROM idempotency_keys').all()).toEqual([{ key: 'default k' }]);
      expect(reader.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
    } finally {
      reader.close();
    }
  });

  it('deletes expired keys and keeps at most maxKeys, the oldest going first', async () => {
    const dir = await tempDir();
    const store = await openStore(dir, 3);
    const start = Date.now();
    await store.decide([reserve(1, 'old')], { now: start, idempotencyTtlMs: 1_000 });
    await store.decide([reserve(1, 'a'), reserve(1, 'b')], { now: start + 2_000, idempotencyTtlMs: HOUR });
    expect(store.idempotencyKeys(), 'old expired and was deleted').toBe(2);
    await store.decide([reserve(1, 'c'), reserve(1, 'd')], { now: start + 3_000, idempotencyTtlMs: HOUR });
    expect(store.idempotencyKeys()).toBe(3);
    const decisions = await store.decide([reserve(1, 'a'), reserve(1, 'd')], {
      now: start + 4_000,
      idempotencyTtlMs: HOUR,
    });
    expect(decisions.map((d) => d.kind === 'reserved' && d.replayed)).toEqual([false, true]);
  });

  it('refuses a DATA_DIR that holds the journal of the file store instead of starting it empty', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'journal.log'), '00000000 {"seq":1,"events":[]}\n');
    const store = new SqliteStockStore({ dataDir: dir, maxKeys: 10, logger: silentLogger });
    await expect(store.open(SEED)).rejects.toThrow(/holds journal\.log, the journal of the file store/);
    expect(existsSync(join(dir, DATABASE_FILE)), 'nothing was created beside it').toBe(false);
    expect(existsSync(join(dir, 'LOCK'))).toBe(false);
  });

  it('refuses a second store on the same DATA_DIR while the first is open', async () => {
    const dir = await tempDir();
    await openStore(dir);
    const second = new SqliteStockStore({ dataDir: dir, maxKeys: 10, logger: silentLogger });
    await expect(second.open(SEED)).rejects.toThrow(/already has DATA_DIR .* open/);
  });

  it('brings a database of an earlier schema up to date, keeping its stock and keys', async () => {
    const dir = await tempDir();
    // As the first SQLite release wrote it: schema 1, one ticket type, no events table.
    const db = await openSqlite(join(dir, DATABASE_FILE));
    db.exec(`PRAGMA journal_mode = WAL;
      CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE ticket_types (event_id TEXT NOT NULL, type_id TEXT NOT NULL, capacity INTEGER NOT NULL,
        sold INTEGER NOT NULL, issued INTEGER NOT NULL, PRIMARY KEY (event_id, type_id)) WITHOUT ROWID;
      CREATE TABLE idempotency_keys (key TEXT PRIMARY KEY, request TEXT NOT NULL, outcome TEXT NOT NULL,
        expires_at INTEGER NOT NULL) WITHOUT ROWID;
      CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
      INSERT INTO ticket_types VALUES ('default', 'default', 50, 7, 7);
      INSERT INTO idempotency_keys VALUES ('default purchase:k', 'reserve default 2', '1 45 6', ${Date.now() + HOUR});
      INSERT INTO meta VALUES ('schema', '1');
      PRAGMA user_version = 1;`);
    db.close();
    const store = await openStore(dir);
    const [replay, after] = await store.decide([reserve(2, 'purchase:k'), level], {
      now: Date.now(),
      idempotencyTtlMs: HOUR,
    });
    expect(replay).toMatchObject({ kind: 'reserved', replayed: true, outcome: { tickets: { first: 6, last: 7 } } });
    expect(after).toEqual({ kind: 'level', level: { remaining: 43, sold: 7 } });
    expect(
      await store.decide([{ kind: 'get-event', eventId: 'default' }], { now: Date.now(), idempotencyTtlMs: HOUR }),
    ).toEqual([
      {
        kind: 'event',
        created: false,
        event: {
          id: 'default',
          name: 'Default',
          capacity: null,
          maxPerBuyer: null,
          types: [
            {
              id: 'default',
              name: 'Default',
              capacity: 50,
              maxPerOrder: null,
              maxPerBuyer: null,
              sold: 7,
              held: 0,
              issued: 7,
            },
          ],
        },
      },
    ]);
  });

  it('refuses a database written by a newer schema', async () => {
    const dir = await tempDir();
    await (await openStore(dir)).close();
    const db = await openSqlite(join(dir, DATABASE_FILE));
    db.exec('PRAGMA user_version = 99');
    db.close();
    const store = new SqliteStockStore({ dataDir: dir, maxKeys: 10, logger: silentLogger });
    await expect(store.open(SEED)).rejects.toThrow(/schema version 99, newer than this program's/);
    expect(existsSync(join(dir, 'LOCK')), 'the lock was released').toBe(false);
  });

  it('counts the tickets held over all events, across a close and reopen', async () => {
    const dir = await tempDir();
    const store = await openStore(dir);
    const now = Date.now();
    const options = { now, idempotencyTtlMs: HOUR };
    const twoTypes = {
      name: 'Gala',
      capacity: null,
      ticketTypes: [
        { id: 'general', name: 'General', capacity: 100, maxPerOrder: null },
        { id: 'vip', name: 'VIP', capacity: 10, maxPerOrder: null },
      ],
    };
    await store.decide(
      [
        { kind: 'put-event', eventId: 'gala', definition: twoTypes },
        { kind: 'put-event', eventId: 'ball', definition: twoTypes },
      ],
      options,
    );
    const hold = (n: number, eventId: string, items: Array<[string, number]>): StockCommand => ({
      kind: 'hold',
      eventId,
      items: items.map(([typeId, qty]) => ({ typeId, qty })),
      buyer: null,
      holdId: `hld_sqlitestoretestheld${String(n).padStart(2, '0')}${eventId}`,
      at: now,
      ttlMs: HOUR,
    });
    expect(store.heldTickets()).toBe(0);
    await store.decide(
      [
        hold(1, 'gala', [
          ['general', 3],
          ['vip', 1],
        ]),
        hold(2, 'ball', [['general', 2]]),
        hold(3, 'gala', [['general', 5]]),
      ],
      options,
    );
    expect(store.heldTickets()).toBe(11);
    await store.decide([{ kind: 'release', holdId: 'hld_sqlitestoretestheld03gala' }], options);
    expect(store.heldTickets()).toBe(6);
    await store.close();
    expect((await openStore(dir)).heldTickets()).toBe(6);
  });

  it('names the database and why when it cannot open it, and leaves no lock behind', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, DATABASE_FILE));
    const store = new SqliteStockStore({ dataDir: dir, maxKeys: 10, logger: silentLogger });
    await expect(store.open(SEED)).rejects.toThrow(`Cannot open the SQLite database ${join(dir, DATABASE_FILE)}: `);
    expect(existsSync(join(dir, 'LOCK')), 'the lock was released').toBe(false);
  });

  it('backs up a consistent copy while batches commit', async () => {
    const dir = await tempDir();
    const store = await openStore(dir);
    const copy = join(dir, 'backup.db');
    const selling = (async () => {
      for (let i = 0; i < 50; i++)
        await store.decide([reserve(1, `b${i}`)], { now: Date.now(), idempotencyTtlMs: HOUR });
    })();
    await store.backup(copy);
    await selling;
    const reader = await openSqlite(copy, { readonly: true });
    try {
      const row = reader.prepare('SELECT capacity, sold, issued FROM ticket_types').get()!;
      const keys = Number(reader.prepare('SELECT count(*) AS n FROM idempotency_keys').get()!.n);
      // A consistent copy: every sale in it came with its key, whatever moment it caught.
      expect(row.sold).toBe(keys);
      expect(row.issued).toBe(keys);
      expect(reader.prepare('PRAGMA integrity_check').get()).toEqual({ integrity_check: 'ok' });
    } finally {
      reader.close();
    }
  });
});
