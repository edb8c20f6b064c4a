import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { constants as fsConstants } from 'node:fs';
import {
  appendFile,
  cp,
  mkdir,
  mkdtemp,
  open,
  readFile,
  readdir,
  readlink,
  rm,
  stat,
  utimes,
  writeFile,
  type FileHandle,
} from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { crc32 } from 'node:zlib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type {
  IdempotencyRecord,
  KeyRecorded,
  StockEvent,
  StockLevel,
  StockReserved,
  StockState,
} from '../vacancy/stock-store.ts';
import { KeyTable } from '../vacancy/key-table.ts';
import { FileStockStore, type FileStockStoreOptions } from './file-stock-store.ts';

// ---- helpers ---------------------------------------------------------------------------------

const dirs: string[] = [];
const stores: FileStockStore[] = [];

afterEach(async () => {
  vi.restoreAllMocks();
  for (const store of stores.splice(0)) await store.close().catch(() => {});
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'file-stock-store-'));
  dirs.push(dir);
  return dir;
}

type Logged = { obj: object; msg: string | undefined };

function captureLogger() {
  const warns: Logged[] = [];
  const infos: Logged[] = [];
  return {
    warns,
    infos,
    warn: (obj: object, msg?: string) => void warns.push({ obj, msg }),
    info: (obj: object, msg?: string) => void infos.push({ obj, msg }),
  };
}

function makeStore(dataDir: string, options: Partial<FileStockStoreOptions> = {}) {
  const logger = captureLogger();
  const store = new FileStockStore({ dataDir, logger, ...options });
  stores.push(store);
  return { store, logger };
}

const NOW = Date.now();
const seed = (entries: Record<string, number>) => new Map(Object.entries(entries));

/** Keeps the levels a test has sold down to, and builds the events an actor would. */
class Seller {
  readonly levels = new Map<string, StockLevel>();
  constructor(state: StockState) {
    for (const [id, level] of state.levels) this.levels.set(id, { ...level });
  }

  sell(inventoryId: string, qty: number): StockReserved {
    const before = this.levels.get(inventoryId);
    if (!before) throw new Error(`unknown inventory ${inventoryId}`);
    const level = { remaining: before.remaining - qty, sold: before.sold + qty };
    this.levels.set(inventoryId, level);
    return {
      type: 'reserved',
      inventoryId,
      qty,
      reservationId: `res-${inventoryId}-${level.sold}`,
      tickets: { first: before.sold + 1, last: level.sold },
      level,
    };
  }
}

function keyEvent(key: string, expiresAt: number, remaining = 0): KeyRecorded {
  const record: IdempotencyRecord = {
    key,
    inventoryId: 'default',
    qty: 1,
    success: true,
    remaining,
    firstTicket: 1,
    expiresAt,
  };
  return { type: 'key', record };
}

/** The state as plain data, keys in map order, so toEqual also checks the order. */
function plain(state: StockState) {
  return { levels: Object.fromEntries(state.levels), keys: [...state.keys.values()] };
}

const journalPath = (dir: string) => join(dir, 'journal.log');
const snapshotPath = (dir: string) => join(dir, 'snapshot.json');

/** The test's own encoder of a journal line, written from the format, not from the store's code. */
function encodeRecord(seq: number, events: StockEvent[]): string {
  const json = JSON.stringify({ seq, events });
  return `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`;
}

/** The test's own encoder of snapshot.json: the crc covers the text without its crc member. */
function encodeSnapshot(seq: number, levels: Record<string, StockLevel>, keys: IdempotencyRecord[] = []): string {
  const body = JSON.stringify({ version: 1, seq, levels, keys });
  return `${body.slice(0, -1)},"crc":"${crc32(body).toString(16).padStart(8, '0')}"}\n`;
}

/** Every journal line, checked against the format independently of the store. */
async function readJournal(dir: string): Promise<Array<{ seq: number; events: StockEvent[] }>> {
  const text = await readFile(journalPath(dir), 'utf8');
  if (text === '') return [];
  expect(text.endsWith('\n')).toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => {
      const match = /^([0-9a-f]{8}) (.*)$/.exec(line);
      expect(match).not.toBeNull();
      const [, crc, json] = match as RegExpExecArray;
      expect(
        crc32(json as string)
          .toString(16)
          .padStart(8, '0'),
      ).toBe(crc);
      return JSON.parse(json as string) as { seq: number; events: StockEvent[] };
    });
}

async function readSnapshot(
  dir: string,
): Promise<{ seq: number; levels: Record<string, StockLevel>; keys: IdempotencyRecord[] }> {
  return JSON.parse(await readFile(snapshotPath(dir), 'utf8'));
}

/** The open flags of each descriptor this process holds on `path` (Linux: /proc/self/fdinfo). */
async function openFlags(path: string): Promise<number[]> {
  const flags: number[] = [];
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target !== path) continue;
    const info = await readFile(`/proc/self/fdinfo/${fd}`, 'utf8');
    flags.push(Number.parseInt(/^flags:\s*([0-7]+)$/m.exec(info)![1]!, 8));
  }
  return flags;
}

async function fileSize(path: string): Promise<number> {
  return (await stat(path)).size;
}

/** Opens, sells a few batches (levels and keys), and closes: the journal then holds `batches` records. */
async function journalWithBatches(dir: string, batches: number, options: Partial<FileStockStoreOptions> = {}) {
  const { store } = makeStore(dir, options);
  const seller = new Seller(await store.open(seed({ default: 100, vip: 10 }), NOW));
  for (let i = 1; i <= batches; i++) {
    await store.commit([seller.sell('default', i), keyEvent(`k${i}`, NOW + 60_000), seller.sell('vip', 1)]);
  }
  await store.close();
  return seller;
}

// ---- tests -----------------------------------------------------------------------------------

describe('FileStockStore', () => {
  it('seeds an empty data dir durably, and a later seed never resets what is recorded', async () => {
    const dir = await tempDir();
    const first = makeStore(dir).store;
    const state = await first.open(seed({ default: 100 }), NOW);
    expect(plain(state)).toEqual({ levels: { default: { remaining: 100, sold: 0 } }, keys: [] });
    // The seed itself is on disk before anything is sold.
    expect(await readSnapshot(dir)).toMatchObject({
      version: 1,
      seq: 0,
      levels: { default: { remaining: 100, sold: 0 } },
    });
    await first.commit([new Seller(state).sell('default', 30)]);
    await first.close();

    const second = makeStore(dir).store;
    const reopened = await second.open(seed({ default: 5, extra: 7 }), NOW);
    expect(plain(reopened).levels).toEqual({ default: { remaining: 70, sold: 30 }, extra: { remaining: 7, sold: 0 } });
    await second.close();

    // The inventory the second seed added is recorded too: a third seed does not change it.
    const third = makeStore(dir).store;
    const again = await third.open(seed({ default: 1, extra: 999 }), NOW);
    expect(plain(again).levels).toEqual({ default: { remaining: 70, sold: 30 }, extra: { remaining: 7, sold: 0 } });
  });

  it('replays committed batches (levels and idempotency keys, in order) on reopen', async () => {
    const dir = await tempDir();
    const seller = await journalWithBatches(dir, 4);
    const { store } = makeStore(dir);
    const state = await store.open(seed({ default: 100, vip: 10 }), NOW);
    expect(plain(state).levels).toEqual({ default: { remaining: 90, sold: 10 }, vip: { remaining: 6, sold: 4 } });
    expect(plain(state).levels).toEqual(Object.fromEntries(seller.levels));
    expect([...state.keys.keys()]).toEqual(['k1', 'k2', 'k3', 'k4']);
    expect(state.keys.get('k3')).toEqual(keyEvent('k3', NOW + 60_000).record);
  });

  it('returns levels the caller may change without touching the store, and the key table it records committed keys in', async () => {
    const dir = await tempDir();
    const { store } = makeStore(dir, { snapshotEvery: 1 });
    expect(store.recordsKeys).toBe(true);
    const state = await store.open(seed({ default: 10 }), NOW);
    state.levels.set('default', { remaining: 0, sold: 10 });
    await store.commit([keyEvent('real', NOW + 60_000)]); // snapshot after this batch
    await store.snapshotSettled();
    expect((await readSnapshot(dir)).levels).toEqual({ default: { remaining: 10, sold: 0 } });
    expect((await readSnapshot(dir)).keys.map((k) => k.key)).toEqual(['real']);
    // One table: the caller sees the committed key without adding it (the actor leaves that to the store).
    expect([...state.keys.keys()]).toEqual(['real']);
  });

  it('writes one journal line with one write per commit to a journal opened O_DSYNC, seq going up by one', async () => {
    const dir = await tempDir();
    const { store } = makeStore(dir);
    const seller = new Seller(await store.open(seed({ default: 100 }), NOW));

    const probe = await open(journalPath(dir), 'r');
    const proto = Object.getPrototypeOf(probe) as FileHandle;
    await probe.close();
    const write = vi.spyOn(proto, 'write');
    const datasync = vi.spyOn(proto, 'datasync');

    await store.commit([seller.sell('default', 1), seller.sell('default', 2), keyEvent('a', NOW + 1000)]);
    await store.commit([seller.sell('default', 3)]);
    await store.commit([]); // nothing to record: no write at all
    await store.commit([seller.sell('default', 4)]);
    expect(write).toHaveBeenCalledTimes(3);
    // Each write returns once its data is on disk (O_DSYNC, as after an fdatasync): no separate sync.
    expect(datasync).toHaveBeenCalledTimes(0);
    expect(await openFlags(journalPath(dir)), 'the journal is open with O_DSYNC').toSatisfy(
      (flags: number[]) => flags.length === 1 && (flags[0]! & fsConstants.O_DSYNC) === fsConstants.O_DSYNC,
    );

    const records = await readJournal(dir);
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(records.map((r) => r.events.length)).toEqual([3, 1, 1]);
  });

  it('continues seq across a reopen', async () => {
    const dir = await tempDir();
    await journalWithBatches(dir, 2);
    const { store } = makeStore(dir);
    const seller = new Seller(await store.open(seed({ default: 100, vip: 10 }), NOW));
    await store.commit([seller.sell('default', 1)]);
    expect((await readJournal(dir)).map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(store.health()).toMatchObject({ kind: 'file', durable: true, writable: true, location: dir });
    expect(store.health().lastCommitAgeMs).toBeGreaterThanOrEqual(0);
  });

  it('takes a snapshot every N batches, empties the journal, and reopens to the same state', async () => {
    const dir = await tempDir();
    const { store } = makeStore(dir, { snapshotEvery: 3 });
    const seller = new Seller(await store.open(seed({ default: 100 }), NOW));
    for (let i = 1; i <= 3; i++) await store.commit([seller.sell('default', i), keyEvent(`k${i}`, NOW + 60_000)]);
    await store.snapshotSettled();
    expect(await fileSize(journalPath(dir))).toBe(0);
    const snapshot = await readSnapshot(dir);
    expect(snapshot).toMatchObject({ seq: 3, levels: { default: { remaining: 94, sold: 6 } } });
    expect(snapshot.keys.map((k) => k.key)).toEqual(['k1', 'k2', 'k3']);

    await store.commit([seller.sell('default', 4)]);
    expect((await readJournal(dir)).map((r) => r.seq)).toEqual([4]);
    await store.close();

    const { store: reopened } = makeStore(dir, { snapshotEvery: 3 });
    const state = await reopened.open(seed({ default: 100 }), NOW);
    expect(plain(state).levels).toEqual({ default: { remaining: 90, sold: 10 } });
    expect([...state.keys.keys()]).toEqual(['k1', 'k2', 'k3']);
    // The cadence counts the record already in the journal: two more batches make a snapshot.
    const more = new Seller(state);
    await reopened.commit([more.sell('default', 1)]);
    expect((await readJournal(dir)).map((r) => r.seq)).toEqual([4, 5]);
    await reopened.commit([more.sell('default', 1)]);
    await reopened.snapshotSettled();
    expect(await fileSize(journalPath(dir))).toBe(0);
    expect((await readSnapshot(dir)).seq).toBe(6);
  });

  it('writes a snapshot of many keys in pieces that add up to exactly the format, checksum included', async () => {
    const dir = await tempDir();
    const { store } = makeStore(dir, { snapshotEvery: 2 });
    const seller = new Seller(await store.open(seed({ default: 1_000_000 }), NOW));
    // About 1.3 MB of text: several pieces, with multi-byte characters (é, ключ, 🎟) on their edges.
    const keys = Array.from({ length: 12_000 }, (_, i) =>
      keyEvent(`${['é', 'ключ', '🎟', 'k'][i % 4]}-${i}-${'x'.repeat(i % 50)}`, NOW + 60_000 + i, i),
    );
    await store.commit([seller.sell('default', 7), ...keys.slice(0, 6_000)]);
    await store.commit(keys.slice(6_000));
    await store.snapshotSettled();

    const text = await readFile(snapshotPath(dir), 'utf8');
    expect(text).toBe(
      encodeSnapshot(
        2,
        { default: { remaining: 999_993, sold: 7 } },
        keys.map((k) => k.record),
      ),
    );
    await store.close();
    const { store: reopened } = makeStore(dir);
    const state = await reopened.open(seed({ default: 1_000_000 }), NOW);
    expect(plain(state).keys).toEqual(keys.map((k) => k.record));
    await reopened.close();
  });

  it('prunes keys to maxKeys in snapshots and at open', async () => {
    const dir = await tempDir();
    const { store } = makeStore(dir, { snapshotEvery: 2, maxKeys: 2 });
    await store.open(seed({ default: 10 }), NOW);
    await store.commit([keyEvent('a', NOW + 60_000), keyEvent('b', NOW + 60_000)]);
    await store.commit([keyEvent('c', NOW + 60_000)]);
    await store.snapshotSettled();
    expect((await readSnapshot(dir)).keys.map((k) => k.key)).toEqual(['b', 'c']);
    await store.commit([keyEvent('d', NOW + 60_000)]);
    await store.close();
    const { store: reopened } = makeStore(dir, { maxKeys: 2 });
    expect([...(await reopened.open(seed({}), NOW)).keys.keys()]).toEqual(['c', 'd']);
  });

  it('drops keys that expired by `now` at open', async () => {
    const dir = await tempDir();
    const { store } = makeStore(dir);
    await store.open(seed({ default: 10 }), NOW);
    await store.commit([keyEvent('old', NOW + 1_000), keyEvent('edge', NOW + 5_000), keyEvent('live', NOW + 10_000)]);
    await store.close();
    const { store: reopened } = makeStore(dir);
    const state = await reopened.open(seed({ default: 10 }), NOW + 5_000);
    expect([...state.keys.keys()]).toEqual(['live']);
  });

  describe('torn last record', () => {
    const tails: Array<[string, (line: string) => Buffer]> = [
      ['half a record', (line) => Buffer.from(line.slice(0, Math.floor(line.length / 2)))],
      ['a whole line with a bad crc', (line) => Buffer.from(`00000000${line.slice(8)}`)],
      ['NUL bytes', () => Buffer.alloc(4096)],
      ['half a record then NUL bytes', (line) => Buffer.concat([Buffer.from(line.slice(0, 20)), Buffer.alloc(512)])],
      [
        'unparsable JSON with a matching crc',
        () => Buffer.from(`${crc32('{"seq":').toString(16).padStart(8, '0')} {"seq":\n`),
      ],
    ];

    it.each(tails)('drops %s, truncates the file, and appends cleanly after it', async (_name, tail) => {
      const dir = await tempDir();
      const seller = await journalWithBatches(dir, 2);
      const goodSize = await fileSize(journalPath(dir));
      await appendFile(journalPath(dir), tail(encodeRecord(3, [seller.sell('default', 50)])));

      const { store, logger } = makeStore(dir);
      const state = await store.open(seed({ default: 100, vip: 10 }), NOW);
      expect(plain(state).levels).toEqual({ default: { remaining: 97, sold: 3 }, vip: { remaining: 8, sold: 2 } });
      expect(await fileSize(journalPath(dir))).toBe(goodSize);
      expect(logger.warns).toHaveLength(1);
      expect(logger.warns[0]?.msg).toContain(`byte offset ${goodSize}`);
      expect(logger.warns[0]?.obj).toMatchObject({ offset: goodSize });

      await store.commit([new Seller(state).sell('default', 7)]);
      expect((await readJournal(dir)).map((r) => r.seq)).toEqual([1, 2, 3]);
      await store.close();
      const { store: reopened } = makeStore(dir);
      expect(plain(await reopened.open(seed({}), NOW)).levels.default).toEqual({ remaining: 90, sold: 10 });
    });
  });

  describe('the journal read in pieces', () => {
    // Recovery reads the journal a piece at a time; tiny pieces put piece boundaries inside every record.
    it.each([1, 7, 64])(
      'replays the same state and drops the same torn tail when read %i bytes at a time',
      async (pieceBytes) => {
        const whole = await tempDir();
        const seller = await journalWithBatches(whole, 4);
        const goodSize = await fileSize(journalPath(whole));
        await appendFile(journalPath(whole), encodeRecord(5, [seller.sell('default', 50)]).slice(0, 30));
        const pieces = await tempDir();
        await cp(whole, pieces, { recursive: true });

        const expected = plain(await makeStore(whole).store.open(seed({ default: 100, vip: 10 }), NOW));
        const { store, logger } = makeStore(pieces, { journalReadBytes: pieceBytes });
        expect(plain(await store.open(seed({ default: 100, vip: 10 }), NOW))).toEqual(expected);
        expect(expected.levels.default).toEqual({ remaining: 90, sold: 10 });
        expect(expected.keys.map((k) => k.key)).toEqual(['k1', 'k2', 'k3', 'k4']);
        expect(logger.warns[0]?.obj).toMatchObject({ offset: goodSize });
        expect(await fileSize(journalPath(pieces))).toBe(goodSize);
      },
    );

    it.each([1, 7, 64])('refuses the same damaged record when read %i bytes at a time', async (pieceBytes) => {
      const dir = await tempDir();
      await journalWithBatches(dir, 3);
      const bytes = await readFile(journalPath(dir));
      const second = bytes.indexOf(0x0a) + 1;
      bytes[second + 12] = bytes[second + 12] === 0x65 ? 0x66 : 0x65;
      await writeFile(journalPath(dir), bytes);
      await expect(makeStore(dir, { journalReadBytes: pieceBytes }).store.open(seed({}), NOW)).rejects.toThrow(
        `corrupt at byte offset ${second} (line 2)`,
      );
    });
  });

  describe('corruption', () => {
    it.each([
      [1, 'the first'],
      [2, 'the second'],
    ])('refuses a damaged record followed by a good one (%s of three: %s)', async (damagedLine) => {
      const dir = await tempDir();
      await journalWithBatches(dir, 3);
      const bytes = await readFile(journalPath(dir));
      const lines = bytes.toString('utf8').split('\n');
      const offset = lines.slice(0, damagedLine - 1).reduce((sum, line) => sum + Buffer.byteLength(line) + 1, 0);
      bytes[offset + 12] = bytes[offset + 12] === 0x65 ? 0x66 : 0x65; // a letter inside {"seq":...
      await writeFile(journalPath(dir), bytes);

      const { store } = makeStore(dir);
      const opening = store.open(seed({ default: 100, vip: 10 }), NOW);
      await expect(opening).rejects.toThrow(`corrupt at byte offset ${offset} (line ${damagedLine})`);
      await expect(opening).rejects.toThrow(journalPath(dir));
      await expect(opening).rejects.toThrow(/refuses to guess/);
      // Nothing was cut off, and the lock was released so the operator can retry.
      expect(await readFile(journalPath(dir))).toEqual(bytes);
      expect(await readdir(dir)).not.toContain('LOCK');
    });

    it('refuses two damaged lines at the end (only one write can be torn)', async () => {
      const dir = await tempDir();
      await journalWithBatches(dir, 1);
      const goodSize = await fileSize(journalPath(dir));
      await appendFile(journalPath(dir), 'garbage one\ngarbage two\n');
      await expect(makeStore(dir).store.open(seed({}), NOW)).rejects.toThrow(
        `corrupt at byte offset ${goodSize} (line 2)`,
      );
    });

    it('refuses a gap in seq', async () => {
      const dir = await tempDir();
      await writeFile(snapshotPath(dir), encodeSnapshot(0, { default: { remaining: 10, sold: 0 } }));
      const seller = new Seller({ levels: new Map([['default', { remaining: 10, sold: 0 }]]), keys: new KeyTable() });
      const first = encodeRecord(1, [seller.sell('default', 1)]);
      await writeFile(journalPath(dir), first + encodeRecord(3, [seller.sell('default', 1)]));
      await expect(makeStore(dir).store.open(seed({}), NOW)).rejects.toThrow(
        `corrupt at byte offset ${Buffer.byteLength(first)} (line 2): its seq 3 does not follow seq 1`,
      );
    });

    it('refuses a journal that starts past the snapshot', async () => {
      const dir = await tempDir();
      await writeFile(snapshotPath(dir), encodeSnapshot(5, { default: { remaining: 10, sold: 0 } }));
      const seller = new Seller({ levels: new Map([['default', { remaining: 10, sold: 0 }]]), keys: new KeyTable() });
      await writeFile(journalPath(dir), encodeRecord(7, [seller.sell('default', 1)]));
      await expect(makeStore(dir).store.open(seed({}), NOW)).rejects.toThrow(/byte offset 0 \(line 1\).*seq 7.*seq 5/);
    });

    it.each<[string, (text: string) => string, RegExp]>([
      ['a changed number', (text) => text.replace('"remaining":100', '"remaining":900'), /checksum mismatch/],
      ['a cut-off file', (text) => text.slice(0, text.length - 20), /does not end with its crc/],
      ['an empty file', () => '', /does not end with its crc/],
    ])('refuses a damaged snapshot (%s), naming the file', async (_name, damage, why) => {
      const dir = await tempDir();
      const { store } = makeStore(dir);
      await store.open(seed({ default: 100 }), NOW);
      await store.close();
      await writeFile(snapshotPath(dir), damage(await readFile(snapshotPath(dir), 'utf8')));
      const opening = makeStore(dir).store.open(seed({ default: 100 }), NOW);
      await expect(opening).rejects.toThrow(`The snapshot ${snapshotPath(dir)} is damaged`);
      await expect(opening).rejects.toThrow(why);
    });
  });

  it.each<[string, string, RegExp]>([
    [
      'a record missing its qty',
      '{"key":"a","inventoryId":"default","success":true,"remaining":1,"firstTicket":1,"expiresAt":1}',
      /an idempotency key record is malformed/,
    ],
    ['a record that is not JSON', '{"key":"a",qty:1}', /its checksum matches but it is not valid JSON/],
    ['two records without a comma', '{"key":"a"}{"key":"b"}', /its checksum matches but it is not valid JSON/],
  ])('refuses a snapshot whose checksum matches but which holds %s', async (_name, keysText, why) => {
    const dir = await tempDir();
    const body = `{"version":1,"seq":0,"levels":{"default":{"remaining":5,"sold":0}},"keys":[${keysText}]}`;
    await writeFile(snapshotPath(dir), `${body.slice(0, -1)},"crc":"${crc32(body).toString(16).padStart(8, '0')}"}\n`);
    await expect(makeStore(dir).store.open(seed({ default: 5 }), NOW)).rejects.toThrow(why);
  });

  describe('snapshots behind the commits', () => {
    /** Holds every fdatasync (the snapshot's, and the new journal's when it is cut) until `release`. */
    async function holdSyncs(dir: string) {
      const probe = await open(journalPath(dir), 'r');
      const proto = Object.getPrototypeOf(probe) as FileHandle;
      await probe.close();
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const datasync = proto.datasync;
      const held = vi.spyOn(proto, 'datasync').mockImplementation(async function (this: FileHandle) {
        await gate;
        return datasync.call(this);
      });
      return { release, held };
    }

    it('goes on committing while a snapshot is written, then cuts the journal to the batches committed meanwhile', async () => {
      const dir = await tempDir();
      const { store } = makeStore(dir, { snapshotEvery: 2 });
      const seller = new Seller(await store.open(seed({ default: 100 }), NOW));
      const { release, held } = await holdSyncs(dir);
      await store.commit([seller.sell('default', 1), keyEvent('k1', NOW + 60_000)]);
      await store.commit([seller.sell('default', 2), keyEvent('k2', NOW + 60_000)]); // starts a snapshot of seq 2
      // The snapshot waits at its sync; these commits do not wait for it.
      for (let i = 3; i <= 5; i++) await store.commit([seller.sell('default', i), keyEvent(`k${i}`, NOW + 60_000)]);
      expect(held).toHaveBeenCalledTimes(1);
      expect((await readJournal(dir)).map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);

      release();
      await store.snapshotSettled();
      const snapshot = await readSnapshot(dir);
      expect(snapshot).toMatchObject({ seq: 2, levels: { default: { remaining: 97, sold: 3 } } });
      expect(snapshot.keys.map((k) => k.key)).toEqual(['k1', 'k2']);
      expect((await readJournal(dir)).map((r) => r.seq)).toEqual([3, 4, 5]);
      expect(await readdir(dir)).not.toContain('journal.log.tmp');
      expect(await openFlags(journalPath(dir)), 'the new journal is open O_APPEND | O_DSYNC').toSatisfy(
        (flags: number[]) =>
          flags.length === 1 &&
          (flags[0]! & (fsConstants.O_DSYNC | fsConstants.O_APPEND)) === (fsConstants.O_DSYNC | fsConstants.O_APPEND),
      );

      // The new journal takes the next batch, which starts the next snapshot (4 batches since the last).
      await store.commit([seller.sell('default', 6)]);
      await store.snapshotSettled();
      expect((await readSnapshot(dir)).seq).toBe(6);
      expect(await fileSize(journalPath(dir))).toBe(0);
      await store.close();
      const state = await makeStore(dir).store.open(seed({}), NOW);
      expect(plain(state).levels.default).toEqual({ remaining: 79, sold: 21 });
      expect([...state.keys.keys()]).toEqual(['k1', 'k2', 'k3', 'k4', 'k5']);
    });

    it('keeps the whole journal when the cut fails, and recovers from the new snapshot and it', async () => {
      const dir = await tempDir();
      const { store, logger } = makeStore(dir, { snapshotEvery: 2 });
      const seller = new Seller(await store.open(seed({ default: 100 }), NOW));
      const { release } = await holdSyncs(dir);
      await mkdir(join(dir, 'journal.log.tmp')); // the cut cannot write its file
      await store.commit([seller.sell('default', 1)]);
      await store.commit([seller.sell('default', 2)]);
      await store.commit([seller.sell('default', 3)]);
      release();
      await store.snapshotSettled();
      expect((await readSnapshot(dir)).seq).toBe(2);
      expect((await readJournal(dir)).map((r) => r.seq)).toEqual([1, 2, 3]);
      expect(logger.warns.map((w) => w.msg)).toContain(
        'file store: snapshot failed; the journal still holds every batch',
      );
      await store.commit([seller.sell('default', 4)]); // still writable, into the same journal
      expect((await readJournal(dir)).map((r) => r.seq)).toEqual([1, 2, 3, 4]);
      await store.close();

      // What a crash between the snapshot's rename and the cut leaves: the recovery skips what the snapshot holds.
      await rm(join(dir, 'journal.log.tmp'), { recursive: true });
      const state = await makeStore(dir).store.open(seed({}), NOW);
      expect(plain(state).levels.default).toEqual({ remaining: 90, sold: 10 });
    });

    it('removes an unfinished cut of the journal at open and recovers from the journal itself', async () => {
      const dir = await tempDir();
      await journalWithBatches(dir, 3);
      await writeFile(join(dir, 'journal.log.tmp'), encodeRecord(9, []).slice(0, 12));
      const { store, logger } = makeStore(dir);
      const state = await store.open(seed({ default: 100, vip: 10 }), NOW);
      expect(plain(state).levels).toEqual({ default: { remaining: 94, sold: 6 }, vip: { remaining: 7, sold: 3 } });
      expect(await readdir(dir)).not.toContain('journal.log.tmp');
      expect(logger.infos.map((i) => i.msg)).toContain('file store: removed an unfinished cut of the journal');
    });
  });

  describe('a crash in the middle of a snapshot', () => {
    it('ignores and removes a half-written snapshot.json.tmp', async () => {
      const dir = await tempDir();
      await journalWithBatches(dir, 2);
      await writeFile(join(dir, 'snapshot.json.tmp'), '{"version":1,"seq":99,"lev');
      const { store } = makeStore(dir);
      const state = await store.open(seed({ default: 100, vip: 10 }), NOW);
      expect(plain(state).levels).toEqual({ default: { remaining: 97, sold: 3 }, vip: { remaining: 8, sold: 2 } });
      expect(await readdir(dir)).not.toContain('snapshot.json.tmp');
    });

    it('skips journal records the snapshot already holds (renamed, journal not yet emptied)', async () => {
      const dir = await tempDir();
      const seller = new Seller({ levels: new Map([['default', { remaining: 100, sold: 0 }]]), keys: new KeyTable() });
      const journal = [1, 2, 3].map((seq) =>
        encodeRecord(seq, [seller.sell('default', 1), keyEvent(`k${seq}`, NOW + 60_000)]),
      );
      await writeFile(journalPath(dir), journal.join(''));
      // Deliberately different from what the records say, so applying them again would show.
      await writeFile(
        snapshotPath(dir),
        encodeSnapshot(3, { default: { remaining: 50, sold: 50 } }, [keyEvent('s', NOW + 60_000).record]),
      );

      const { store } = makeStore(dir);
      const state = await store.open(seed({ default: 100 }), NOW);
      expect(plain(state).levels).toEqual({ default: { remaining: 50, sold: 50 } });
      expect([...state.keys.keys()]).toEqual(['s']);
      await store.commit([new Seller(state).sell('default', 5)]);
      expect((await readJournal(dir)).map((r) => r.seq)).toEqual([4]);
      await store.close();
      const { store: reopened } = makeStore(dir);
      expect(plain(await reopened.open(seed({}), NOW)).levels.default).toEqual({ remaining: 45, sold: 55 });
    });

    it('replays only the records past the snapshot when the journal holds both', async () => {
      const dir = await tempDir();
      const seller = new Seller({ levels: new Map([['default', { remaining: 100, sold: 0 }]]), keys: new KeyTable() });
      const journal = [1, 2, 3, 4].map((seq) =>
        encodeRecord(seq, [keyEvent(`k${seq}`, NOW + 60_000), seller.sell('default', seq)]),
      );
      await writeFile(journalPath(dir), journal.join(''));
      await writeFile(
        snapshotPath(dir),
        encodeSnapshot(2, { default: { remaining: 97, sold: 3 } }, [keyEvent('k2', NOW + 60_000).record]),
      );
      const { store } = makeStore(dir);
      const state = await store.open(seed({ default: 100 }), NOW);
      expect(plain(state).levels).toEqual({ default: { remaining: 90, sold: 10 } });
      expect([...state.keys.keys()]).toEqual(['k2', 'k3', 'k4']); // k1 (record 1) was not replayed
      await store.commit([new Seller(state).sell('default', 1)]);
      expect((await readJournal(dir)).map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    });
  });

  describe('the lock', () => {
    it('refuses a DATA_DIR held by a live process and takes it over once that process is gone', async () => {
      const dir = await tempDir();
      const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
      const exited = once(sleeper, 'exit');
      try {
        await once(sleeper, 'spawn');
        await writeFile(join(dir, 'LOCK'), `${sleeper.pid}\n`);
        const refused = makeStore(dir).store.open(seed({ default: 1 }), NOW);
        await expect(refused).rejects.toThrow(`Another process (pid ${sleeper.pid}) holds DATA_DIR ${dir}`);
        await expect(refused).rejects.toThrow(/two writers can never share a journal/);
        expect(await readFile(join(dir, 'LOCK'), 'utf8')).toBe(`${sleeper.pid}\n`);
      } finally {
        sleeper.kill('SIGKILL');
        await exited;
      }
      const { store, logger } = makeStore(dir);
      await store.open(seed({ default: 1 }), NOW);
      expect(await readFile(join(dir, 'LOCK'), 'utf8')).toBe(`${process.pid} ${hostname()}\n`);
      expect(logger.infos.some((entry) => /stale lock/.test(entry.msg ?? ''))).toBe(true);
      await store.close();
      expect(await readdir(dir)).not.toContain('LOCK');
    });

    it('takes over a lock naming its own pid (a container restarted as pid 1) but refuses a second store in one process', async () => {
      const dir = await tempDir();
      await writeFile(join(dir, 'LOCK'), `${process.pid}\n`);
      const { store } = makeStore(dir);
      await store.open(seed({ default: 1 }), NOW);
      await expect(makeStore(dir).store.open(seed({ default: 1 }), NOW)).rejects.toThrow(
        /already has DATA_DIR .* open/,
      );
      await store.close();
      await makeStore(dir).store.open(seed({ default: 1 }), NOW);
    });
  });

  describe('the lock on a volume shared between hosts', () => {
    const OTHER_HOST = 'vacancy-7f9c4b-other';

    it('refuses a DATA_DIR whose LOCK another host keeps touching, whatever pid it names', async () => {
      const dir = await tempDir();
      // Pid 1, this process's pid: on another host neither says anything about who is alive here.
      for (const pid of [1, process.pid]) {
        await writeFile(join(dir, 'LOCK'), `${pid} ${OTHER_HOST}\n`);
        const refused = makeStore(dir, { lockHeartbeatMs: 60_000 }).store.open(seed({ default: 1 }), NOW);
        await expect(refused).rejects.toThrow(
          `Another process (pid ${pid} on host ${OTHER_HOST}) holds DATA_DIR ${dir}`,
        );
        await expect(refused).rejects.toThrow(/untouched for 300000 ms/);
        expect(await readFile(join(dir, 'LOCK'), 'utf8')).toBe(`${pid} ${OTHER_HOST}\n`);
      }
    });

    it('takes over a LOCK from another host once it has gone untouched for five heartbeats', async () => {
      const dir = await tempDir();
      await writeFile(join(dir, 'LOCK'), `1 ${OTHER_HOST}\n`);
      const longAgo = new Date(Date.now() - 6 * 1_000);
      await utimes(join(dir, 'LOCK'), longAgo, longAgo);
      const { store, logger } = makeStore(dir, { lockHeartbeatMs: 1_000 });
      await store.open(seed({ default: 1 }), NOW);
      expect(await readFile(join(dir, 'LOCK'), 'utf8')).toBe(`${process.pid} ${hostname()}\n`);
      expect(logger.infos.some((entry) => entry.msg?.includes(`from host ${OTHER_HOST}, untouched for 6 s`))).toBe(
        true,
      );
    });

    it('touches its LOCK while open and stops when closed', async () => {
      const dir = await tempDir();
      const { store } = makeStore(dir, { lockHeartbeatMs: 20 });
      await store.open(seed({ default: 1 }), NOW);
      const longAgo = new Date(Date.now() - 60_000);
      await utimes(join(dir, 'LOCK'), longAgo, longAgo);
      const deadline = Date.now() + 5_000;
      while ((await stat(join(dir, 'LOCK'))).mtimeMs < longAgo.getTime() + 1_000 && Date.now() < deadline)
        await new Promise((done) => setTimeout(done, 10));
      expect((await stat(join(dir, 'LOCK'))).mtimeMs, 'the heartbeat moved the mtime forward').toBeGreaterThan(
        Date.now() - 5_000,
      );
      await store.close();
      expect(await readdir(dir)).not.toContain('LOCK');
    });

    it('still reads a LOCK with a pid alone, as earlier versions wrote it', async () => {
      const dir = await tempDir();
      await writeFile(join(dir, 'LOCK'), `${process.pid}\n`);
      const { store } = makeStore(dir);
      await store.open(seed({ default: 1 }), NOW);
      expect(await readFile(join(dir, 'LOCK'), 'utf8')).toBe(`${process.pid} ${hostname()}\n`);
    });
  });

  describe('failed writes', () => {
    const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    const eio = () => Object.assign(new Error('EIO: i/o error, ftruncate'), { code: 'EIO' });

    /** A disk that fails on demand: a write lands half a record and then fails; a truncate fails outright. */
    class FlakyStore extends FileStockStore {
      failWrites = 0;
      failTruncates = 0;
      protected override async writeRecord(handle: FileHandle, record: Buffer): Promise<void> {
        if (this.failWrites > 0) {
          this.failWrites -= 1;
          await handle.write(record, 0, Math.floor(record.length / 2));
          throw enospc();
        }
        await super.writeRecord(handle, record);
      }
      protected override async truncateJournal(handle: FileHandle, size: number): Promise<void> {
        if (this.failTruncates > 0) {
          this.failTruncates -= 1;
          throw eio();
        }
        await super.truncateJournal(handle, size);
      }
    }

    function flaky(dir: string, options: Partial<FileStockStoreOptions> = {}) {
      const store = new FlakyStore({ dataDir: dir, logger: captureLogger(), ...options });
      stores.push(store);
      return store;
    }

    it('rejects the failed batch, repairs the journal before the next write, and replays only committed batches', async () => {
      const dir = await tempDir();
      const store = flaky(dir);
      const opened = await store.open(seed({ default: 100 }), NOW);
      const seller = new Seller(opened);
      await store.commit([seller.sell('default', 1)]);
      const goodSize = await fileSize(journalPath(dir));

      store.failWrites = 1;
      const lost = new Seller({ levels: new Map(seller.levels), keys: new KeyTable() });
      await expect(store.commit([lost.sell('default', 40), keyEvent('lost', NOW + 60_000)])).rejects.toThrow(/ENOSPC/);
      expect(store.health()).toMatchObject({ writable: false, error: expect.stringContaining('ENOSPC') });
      expect(await fileSize(journalPath(dir))).toBeGreaterThan(goodSize); // half a record sits there
      expect(opened.keys.has('lost'), 'a failed batch adds no key to the shared table').toBe(false);

      await store.commit([seller.sell('default', 2), keyEvent('kept', NOW + 60_000)]);
      expect([...opened.keys.keys()]).toEqual(['kept']);
      expect(store.health().writable).toBe(true);
      expect(store.health().error).toBeUndefined();
      const records = await readJournal(dir);
      expect(records.map((r) => r.seq)).toEqual([1, 2]);
      await store.close();

      const { store: reopened, logger } = makeStore(dir);
      const state = await reopened.open(seed({ default: 100 }), NOW);
      expect(plain(state)).toEqual({
        levels: { default: { remaining: 97, sold: 3 } },
        keys: [keyEvent('kept', NOW + 60_000).record],
      });
      expect(logger.warns).toEqual([]);
    });

    it('rejects the next batch too when the repair fails, and checkWritable recovers without traffic', async () => {
      const dir = await tempDir();
      const store = flaky(dir);
      const seller = new Seller(await store.open(seed({ default: 100 }), NOW));
      await store.commit([seller.sell('default', 1)]);
      const goodSize = await fileSize(journalPath(dir));

      store.failWrites = 1;
      store.failTruncates = 1;
      await expect(
        store.commit([new Seller({ levels: new Map(seller.levels), keys: new KeyTable() }).sell('default', 5)]),
      ).rejects.toThrow(/ENOSPC/);
      await expect(
        store.commit([new Seller({ levels: new Map(seller.levels), keys: new KeyTable() }).sell('default', 6)]),
      ).rejects.toThrow(/EIO/);
      expect(store.health()).toMatchObject({ writable: false, error: expect.stringContaining('EIO') });
      expect(await fileSize(journalPath(dir))).toBeGreaterThan(goodSize);

      expect(await store.checkWritable()).toBe(true);
      expect(store.health().writable).toBe(true);
      expect(await fileSize(journalPath(dir))).toBe(goodSize);
      expect(await store.checkWritable()).toBe(true);

      await store.commit([seller.sell('default', 2)]);
      expect((await readJournal(dir)).map((r) => r.seq)).toEqual([1, 2]);
      await store.close();
      const { store: reopened } = makeStore(dir);
      expect(plain(await reopened.open(seed({}), NOW)).levels.default).toEqual({ remaining: 97, sold: 3 });
    });

    it('checkWritable stays false while the repair keeps failing', async () => {
      const dir = await tempDir();
      const store = flaky(dir);
      const seller = new Seller(await store.open(seed({ default: 100 }), NOW));
      store.failWrites = 1;
      await expect(store.commit([seller.sell('default', 1)])).rejects.toThrow(/ENOSPC/);
      store.failTruncates = 1;
      expect(await store.checkWritable()).toBe(false);
      expect(store.health()).toMatchObject({ writable: false, error: expect.stringContaining('EIO') });
    });

    it('keeps a batch acknowledged when only the journal truncation after its snapshot fails', async () => {
      const dir = await tempDir();
      const store = flaky(dir, { snapshotEvery: 2 });
      const seller = new Seller(await store.open(seed({ default: 100 }), NOW));
      await store.commit([seller.sell('default', 1)]);
      store.failTruncates = 1;
      await store.commit([seller.sell('default', 2)]); // durable before the snapshot started: it must not reject
      await store.snapshotSettled();
      expect((await readSnapshot(dir)).seq).toBe(2);
      expect((await readJournal(dir)).map((r) => r.seq)).toEqual([1, 2]);
      expect(store.health().writable).toBe(false);

      await store.commit([seller.sell('default', 3)]);
      expect(store.health().writable).toBe(true);
      expect((await readJournal(dir)).map((r) => r.seq)).toEqual([3]);
      await store.close();
      const { store: reopened } = makeStore(dir);
      expect(plain(await reopened.open(seed({}), NOW)).levels.default).toEqual({ remaining: 94, sold: 6 });
    });
  });

  it('loses no acknowledged batch when the writing process is killed with SIGKILL', async () => {
    const dir = await tempDir();
    const script = join(dir, 'writer.mjs');
    const moduleUrl = pathToFileURL(join(import.meta.dirname, 'file-stock-store.ts')).href;
    await writeFile(
      script,
      `import { FileStockStore } from ${JSON.stringify(moduleUrl)};
const store = new FileStockStore({ dataDir: process.argv[2], snapshotEvery: 7, logger: { warn() {}, info() {} } });
const state = await store.open(new Map([['default', 1000000]]), Date.now());
let level = state.levels.get('default');
for (;;) {
  const next = { remaining: level.remaining - 1, sold: level.sold + 1 };
  await store.commit([{ type: 'reserved', inventoryId: 'default', qty: 1, reservationId: 'r' + next.sold, tickets: { first: next.sold, last: next.sold }, level: next }]);
  level = next;
  process.stdout.write('ack ' + next.sold + '\\n');
}
`,
    );
    const dataDir = join(dir, 'data');
    let lastAck = 0;
    for (let round = 0; round < 2; round++) {
      const child = spawn(process.execPath, ['--import', 'tsx', script, dataDir], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const exited = once(child, 'exit');
      const target = lastAck + 60;
      let buffered = '';
      await new Promise<void>((done, fail) => {
        child.on('error', fail);
        child.stdout.on('data', (chunk: Buffer) => {
          buffered += chunk.toString('utf8');
          const acks = buffered.match(/ack (\d+)\n/g);
          if (acks) lastAck = Number(/\d+/.exec(acks[acks.length - 1] as string)?.[0]);
          buffered = buffered.slice(buffered.lastIndexOf('\n') + 1);
          if (lastAck >= target) {
            child.kill('SIGKILL');
            done();
          }
        });
        void exited.then(() => fail(new Error(`writer exited before ${target} acks (last ${lastAck})`)));
      });
      await exited;
    }
    const { store } = makeStore(dataDir);
    const level = (await store.open(new Map([['default', 1_000_000]]), Date.now())).levels.get('default');
    expect(level?.sold).toBeGreaterThanOrEqual(lastAck); // every acknowledged sale is there
    expect(level?.sold).toBeLessThanOrEqual(lastAck + 1); // at most the one in flight besides
    expect((level?.sold ?? 0) + (level?.remaining ?? 0)).toBe(1_000_000);
  });
});
