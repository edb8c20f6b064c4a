/**
 * Crash recovery of the SQLite store, with real processes: a monolith on
 * STOCK_STORE=sqlite is killed with SIGKILL at a random moment while 40
 * concurrent buyers purchase, several rounds on one DATA_DIR: some rounds
 * checkpoint the WAL after every commit (SQLITE_WAL_AUTOCHECKPOINT=1), so
 * kills land mid-checkpoint, and some run `ticket-system backup` in a loop
 * beside the load, so kills land mid-backup. After every restart: the stock
 * adds up, no acknowledged sale is lost, acknowledged ticket ranges never
 * overlap, and an acknowledged keyed purchase retried with its key is
 * replayed, not sold again; every backup that finished is a sound database,
 * and one cut short left nothing under its name. Also: a second process on
 * the same DATA_DIR is refused while the first keeps serving, and the stock
 * sells out to exactly zero.
 *
 * Replay a failing run with TEST_SEED=<seed printed in the failure>.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { openSqlite } from '../src/node/sqlite-binding.ts';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  available,
  makeTempDir,
  purchase,
  removeDir,
  requestJson,
  seededRandom,
  stockHealth,
  testSeed,
  type PurchaseBody,
  type StockHealth,
} from './support/http-json.ts';
import {
  freePort,
  runBundle,
  sleep,
  spawnBundle,
  startService,
  stopAllServices,
  type Service,
} from './support/processes.ts';

// Enough that the crash rounds never sell out, however fast the service answers between kills.
const INITIAL_STOCK = 30_000;
const BUYERS = 40;
/** Rounds killed with SIGKILL: some checkpoint after every commit, some take backups meanwhile. */
const ROUNDS = 6;
const CHECKPOINT_ROUNDS = new Set([2, 3, 5]);
const BACKUP_ROUNDS = new Set([4, 5]);
const SEED = testSeed();
const random = seededRandom(SEED);
const DATA_DIR = makeTempDir('ticket-system-crash');
const BACKUP_DIR = makeTempDir('ticket-system-crash-backups');

/** A purchase answered 200 with success: true, as the caller saw it. */
interface Ack {
  round: string;
  qty: number;
  key: string | undefined;
  purchaseId: string;
  first: number;
  last: number;
  /** The whole answer, for the byte-for-byte replay check. */
  body: PurchaseBody;
}

const acks: Ack[] = [];
const ackedTickets = () => acks.reduce((sum, ack) => sum + ack.qty, 0);
const seedNote = `(TEST_SEED=${SEED}, DATA_DIR=${DATA_DIR})`;

function envFor(options: { checkpointEveryCommit?: boolean } = {}): Record<string, string> {
  return {
    MODE: 'monolith',
    STOCK_STORE: 'sqlite',
    DATA_DIR,
    INITIAL_STOCK: String(INITIAL_STOCK),
    ...(options.checkpointEveryCommit ? { SQLITE_WAL_AUTOCHECKPOINT: '1' } : {}),
  };
}

function recordAck(round: string, qty: number, key: string | undefined, body: PurchaseBody): void {
  expect(body.purchaseId, `a success carries its purchaseId ${seedNote}`).toEqual(expect.any(String));
  expect(body.tickets, `a success carries its tickets ${seedNote}`).toEqual({
    first: expect.any(Number),
    last: expect.any(Number),
  });
  const { first, last } = body.tickets!;
  acks.push({ round, qty, key, purchaseId: body.purchaseId!, first, last, body });
}

/** Every acknowledged range: qty tickets, named by its first ticket, inside 1..sold, overlapping no other. */
function expectAckedRangesSound(sold: number): void {
  const sorted = [...acks].sort((a, b) => a.first - b.first);
  let previous: Ack | undefined;
  for (const ack of sorted) {
    const where = `${JSON.stringify(ack)} ${seedNote}`;
    expect(ack.last - ack.first + 1, `range length is qty: ${where}`).toBe(ack.qty);
    expect(ack.purchaseId, `purchaseId is an order of the default event: ${where}`).toMatch(
      /^ord_[A-Za-z0-9_-]{30}default$/,
    );
    expect(ack.first, `range starts at ticket 1 or later: ${where}`).toBeGreaterThanOrEqual(1);
    expect(ack.last, `range lies within 1..sold (${sold}): ${where}`).toBeLessThanOrEqual(sold);
    if (previous) {
      expect(ack.first, `range overlaps ${JSON.stringify(previous)}: ${where}`).toBeGreaterThan(previous.last);
    }
    previous = ack;
  }
}

/** The stock adds up, nothing acknowledged is lost, and the two ways of reading the stock agree. */
async function expectStockSound(service: Service): Promise<StockHealth> {
  const { stock } = await stockHealth(service.url);
  expect(stock.sold + stock.available, `sold + available == INITIAL_STOCK ${seedNote}`).toBe(INITIAL_STOCK);
  expect(stock.available, `available never below zero ${seedNote}`).toBeGreaterThanOrEqual(0);
  expect(stock.sold, `acknowledged sales are never lost ${seedNote}`).toBeGreaterThanOrEqual(ackedTickets());
  expect(await available(service.url), `GET /available agrees with health ${seedNote}`).toBe(stock.available);
  expectAckedRangesSound(stock.sold);
  return stock;
}

/** Re-sends acknowledged keyed purchases: each is replayed with its first answer, and nothing more is sold. */
async function expectKeyedAcksReplayed(service: Service, latestRound: string): Promise<number> {
  const keyed = acks.filter((ack) => ack.key !== undefined);
  const latest = keyed.filter((ack) => ack.round === latestRound);
  const older = keyed.filter((ack) => ack.round !== latestRound);
  // Every keyed ack of the round just killed, plus a sample of the older ones (kept across restarts).
  const sample = [...latest, ...older.sort(() => random() - 0.5).slice(0, 15)];
  const before = (await stockHealth(service.url)).stock;
  for (let i = 0; i < sample.length; i += 20) {
    await Promise.all(
      sample.slice(i, i + 20).map(async (ack) => {
        const reply = await purchase(service.url, ack.qty, ack.key);
        const where = `key ${ack.key} of round ${ack.round} ${seedNote}`;
        expect(reply.status, `${where}: ${reply.text}`).toBe(200);
        expect(reply.headers.get('idempotent-replayed'), `replayed header, ${where}`).toBe('true');
        expect(reply.body, `the first answer again, ${where}`).toEqual(ack.body);
      }),
    );
  }
  const after = (await stockHealth(service.url)).stock;
  expect(after, `replays sell nothing ${seedNote}`).toEqual(before);
  // Every acknowledged purchase is an order the service still knows, with its tickets, keyed or not.
  const unkeyed = acks.filter((ack) => ack.round === latestRound && ack.key === undefined);
  for (const ack of [...sample, ...unkeyed.slice(0, 20)]) {
    const order = await requestJson<{ items: Array<{ tickets: { first: number; last: number } }> }>(
      `${service.url}/api/v1/orders/${ack.purchaseId}`,
    );
    expect(order.status, `order ${ack.purchaseId} ${seedNote}: ${order.text}`).toBe(200);
    expect(order.body.items[0]!.tickets).toEqual({ first: ack.first, last: ack.last });
  }
  return sample.length;
}

/**
 * 40 buyers purchase qty 1..3 (every other one with a fresh Idempotency-Key);
 * once the first purchase is acknowledged (the load is running), a random
 * 50–400 ms later the process gets SIGKILL.
 */
async function purchaseUntilKilled(service: Service, round: string): Promise<{ acked: number; killAfterMs: number }> {
  let killed = false;
  let stop = false;
  let acked = 0;
  const unexpected: string[] = [];
  let markLoadRunning: () => void = () => {};
  const loadRunning = new Promise<void>((resolve) => (markLoadRunning = resolve));

  const buyer = async (index: number) => {
    for (let n = 0; !stop; n++) {
      const qty = 1 + Math.floor(random() * 3);
      const key = index % 2 === 0 ? `crash-${round}-${index}-${n}-${crypto.randomUUID()}` : undefined;
      let reply;
      try {
        reply = await purchase(service.url, qty, key, 5_000);
      } catch (error) {
        // After the kill every request in flight fails; before it, nothing should.
        if (!killed) unexpected.push(`buyer ${index}: ${String(error)}`);
        return;
      }
      if (reply.status !== 200) {
        unexpected.push(`buyer ${index}: status ${reply.status} ${reply.text}`);
        return;
      }
      if (reply.body.success) {
        recordAck(round, qty, key, reply.body);
        acked += 1;
        markLoadRunning();
      } else {
        unexpected.push(`buyer ${index}: sold out during the crash rounds: ${reply.text}`);
        return;
      }
    }
  };

  const buyers = Array.from({ length: BUYERS }, (_, index) => buyer(index));
  const killAfterMs = 50 + Math.floor(random() * 351);
  const noLoad = sleep(10_000).then(() => 'timeout' as const);
  if ((await Promise.race([loadRunning.then(() => 'running' as const), noLoad])) === 'timeout') {
    stop = true;
    throw new Error(
      `round ${round}: no purchase was acknowledged within 10 s ${seedNote}\n${unexpected.join('\n')}\n${service.output()}`,
    );
  }
  await sleep(killAfterMs);
  killed = true;
  service.child.kill('SIGKILL');
  const exit = await service.exited;
  stop = true;
  await Promise.all(buyers);
  expect(exit.signal, `round ${round} died of the SIGKILL`).toBe('SIGKILL');
  expect(unexpected, `round ${round}: unexpected answers before the kill ${seedNote}`).toEqual([]);
  return { acked, killAfterMs };
}

/**
 * `ticket-system backup` in a loop beside the load until `stop()`: each copy
 * goes to a path of its own. Resolves with the copies that finished.
 */
function backupsUntilStopped(round: string): { stop: () => Promise<string[]> } {
  let stopped = false;
  const finished: string[] = [];
  const loop = (async () => {
    for (let n = 0; !stopped; n++) {
      const target = join(BACKUP_DIR, `${round}-${n}.db`);
      const result = await runBundle(envFor(), 20_000, ['backup', target]);
      if (result.code === 0) finished.push(target);
      else if (!stopped) throw new Error(`backup ${target} failed while the service ran: ${result.stderr}`);
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop.catch((error: unknown) => {
        // A backup whose source process died under it may fail; the check is on what it left behind.
        if (!/backup failed/.test(String(error))) throw error;
      });
      return finished;
    },
  };
}

/** A finished backup is a sound database whose sales add up; a cut-short one left only a .partial file. */
async function expectBackupsSound(paths: string[]): Promise<number> {
  for (const path of paths) {
    const db = await openSqlite(path, { readonly: true });
    try {
      expect(db.prepare('PRAGMA integrity_check').get(), path).toEqual({ integrity_check: 'ok' });
      const stock = db.prepare("SELECT capacity, sold FROM ticket_types WHERE event_id = 'default'").get()!;
      expect(stock.capacity, `${path}: the stock adds up`).toBe(INITIAL_STOCK);
      expect(Number(stock.sold), `${path}: sold within the stock`).toBeLessThanOrEqual(INITIAL_STOCK);
    } finally {
      db.close();
    }
  }
  const names = readdirSync(BACKUP_DIR);
  for (const name of names)
    expect(name, 'every file under a backup name is a finished one').toMatch(/\.db(\.partial-\d+)?$/);
  return paths.length;
}

describe('SQLite store: SIGKILL under concurrent purchases', () => {
  // Each test stops what it started; this only matters when one fails half-way.
  afterEach(() => stopAllServices());
  afterAll(async () => {
    await stopAllServices();
    removeDir(DATA_DIR);
    removeDir(BACKUP_DIR);
  });

  it('keeps every acknowledged sale, never overlaps tickets and replays keyed purchases across kill -9 rounds, mid-checkpoint and mid-backup', async () => {
    const log: string[] = [];
    const backups: string[] = [];
    let previousRound: string | undefined;
    for (let r = 1; r <= ROUNDS; r++) {
      const round = `r${r}`;
      const checkpointEveryCommit = CHECKPOINT_ROUNDS.has(r);
      const service = await startService(envFor({ checkpointEveryCommit }));
      if (previousRound !== undefined) {
        await expectStockSound(service);
        await expectKeyedAcksReplayed(service, previousRound);
      }
      const backing = BACKUP_ROUNDS.has(r) ? backupsUntilStopped(round) : undefined;
      const { acked, killAfterMs } = await purchaseUntilKilled(service, round);
      const copies = (await backing?.stop()) ?? [];
      backups.push(...copies);
      log.push(
        `${round}${checkpointEveryCommit ? ' (checkpoint per commit)' : ''}${backing ? ` (${copies.length} backups)` : ''}: ${acked} acks, killed ${killAfterMs} ms after the first`,
      );
      previousRound = round;
    }

    // The last kill is recovered from too, and the database is sound by SQLite's own check.
    const service = await startService(envFor());
    const stock = await expectStockSound(service);
    const replays = await expectKeyedAcksReplayed(service, previousRound!);
    await service.stop('SIGTERM');
    const db = await openSqlite(join(DATA_DIR, 'ticket-system.db'), { readonly: true });
    try {
      expect(db.prepare('PRAGMA integrity_check').get()).toEqual({ integrity_check: 'ok' });
      expect(db.prepare("SELECT capacity, sold FROM ticket_types WHERE event_id = 'default'").get()).toEqual({
        capacity: INITIAL_STOCK,
        sold: stock.sold,
      });
    } finally {
      db.close();
    }
    const soundBackups = await expectBackupsSound(backups);
    expect(soundBackups, 'backups finished during the backup rounds').toBeGreaterThan(0);

    expect(
      acks.length,
      `acknowledged purchases over ${ROUNDS} rounds ${seedNote}\n${log.join('\n')}`,
    ).toBeGreaterThanOrEqual(ROUNDS);
    console.info(
      `crash-recovery ${seedNote}: ${log.join('; ')}; sold ${stock.sold}, acknowledged ${ackedTickets()} tickets, ${replays} replays checked after the last restart, ${soundBackups} backups checked`,
    );
  });

  it('a backup killed half-way leaves no file under its name, and the service sells on', async () => {
    const service = await startService(envFor());
    const target = join(BACKUP_DIR, 'killed.db');
    const backup = spawnBundle(envFor(), 0, [], ['backup', target]);
    await sleep(5 + Math.floor(random() * 20));
    backup.child.kill('SIGKILL');
    const exit = await backup.exited;
    if (exit.signal === 'SIGKILL') expect(existsSync(target), 'a backup cut short is not under its name').toBe(false);
    else expect(exit.code, `the backup finished before the kill: ${backup.output()}`).toBe(0);
    const key = `after-backup-kill-${crypto.randomUUID()}`;
    const reply = await purchase(service.url, 1, key);
    expect(reply.status, reply.text).toBe(200);
    recordAck('backup-kill', 1, key, reply.body);
    await expectStockSound(service);
    await service.stop('SIGKILL');
  });

  it('refuses a second process on the same DATA_DIR while the first keeps serving', async () => {
    const first = await startService(envFor());
    const second = await runBundle({ ...envFor(), PORT: String(await freePort()) }, 15_000);
    expect(second.timedOut, `the second process should exit on its own\n${second.stderr}`).toBe(false);
    expect(second.code, `the second process exits non-zero\n${second.stdout}\n${second.stderr}`).not.toBe(0);
    expect(second.code).not.toBeNull();
    expect(second.stderr).toMatch(/DATA_DIR/);
    expect(second.stderr).toMatch(/lock/i);
    expect(second.stderr).toContain(String(first.pid));

    // The refused process took nothing: the lock is still the first's, and the first still sells.
    expect(readFileSync(join(DATA_DIR, 'LOCK'), 'utf8')).toBe(
      `${first.pid} ${hostname()} ${readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()}\n`,
    );
    const key = `after-lock-${crypto.randomUUID()}`;
    const reply = await purchase(first.url, 1, key);
    expect(reply.status, reply.text).toBe(200);
    expect(reply.body.success).toBe(true);
    recordAck('lock', 1, key, reply.body);
    expect(first.hasExited()).toBe(false);
    await expectStockSound(first);
    await first.stop('SIGKILL');
  });

  it('sells out the rest to exactly zero: tickets 1..INITIAL_STOCK, no duplicates, and it survives one more kill', async () => {
    const service = await startService(envFor());
    const before = await expectStockSound(service);
    const soldOutBefore = before.sold;
    const selloutAcks: Ack[] = [];
    const unexpected: string[] = [];

    const buyer = async (index: number) => {
      let maxQty = 3;
      for (let n = 0; ; n++) {
        const qty = 1 + Math.floor(random() * maxQty);
        const key = index % 2 === 0 ? `sellout-${index}-${n}-${crypto.randomUUID()}` : undefined;
        const reply = await purchase(service.url, qty, key);
        if (reply.status !== 200) {
          unexpected.push(`status ${reply.status} ${reply.text}`);
          return;
        }
        if (reply.body.success) {
          recordAck('sellout', qty, key, reply.body);
          selloutAcks.push(acks.at(-1)!);
          continue;
        }
        expect(reply.body.message).toBe('Insufficient inventory');
        expect(reply.body.remaining).toBeLessThan(qty);
        expect(reply.body.remaining).toBeGreaterThanOrEqual(0);
        if (reply.body.remaining === 0) return;
        maxQty = 1;
      }
    };
    await Promise.all(Array.from({ length: BUYERS }, (_, index) => buyer(index)));
    expect(unexpected, seedNote).toEqual([]);

    const after = await expectStockSound(service);
    expect(after, seedNote).toEqual({ available: 0, sold: INITIAL_STOCK });
    const extra = await purchase(service.url, 1);
    expect(extra.status).toBe(200);
    expect(extra.body).toEqual({ success: false, remaining: 0, message: 'Insufficient inventory' });

    // Nothing was killed in this phase, so its answers cover soldBefore+1..INITIAL_STOCK exactly, no gaps.
    const selloutTickets = selloutAcks.flatMap((ack) => Array.from({ length: ack.qty }, (_, i) => ack.first + i));
    selloutTickets.sort((a, b) => a - b);
    expect(selloutTickets.length, seedNote).toBe(INITIAL_STOCK - soldOutBefore);
    expect(selloutTickets[0]).toBe(soldOutBefore + 1);
    expect(
      selloutTickets.every((ticket, i) => ticket === soldOutBefore + 1 + i),
      `sell-out tickets are contiguous ${seedNote}`,
    ).toBe(true);

    // Over the whole test: every acknowledged ticket is in 1..INITIAL_STOCK and none was handed out twice.
    const all = acks.flatMap((ack) => Array.from({ length: ack.qty }, (_, i) => ack.first + i));
    expect(new Set(all).size, `no ticket acknowledged twice ${seedNote}`).toBe(all.length);
    expect(Math.min(...all)).toBeGreaterThanOrEqual(1);
    expect(Math.max(...all)).toBeLessThanOrEqual(INITIAL_STOCK);

    // The sold-out state is durable too.
    await service.stop('SIGKILL');
    const again = await startService(envFor());
    expect(await expectStockSound(again)).toEqual({ available: 0, sold: INITIAL_STOCK });
    const lastReplay = selloutAcks.find((ack) => ack.key !== undefined);
    if (lastReplay) {
      const reply = await purchase(again.url, lastReplay.qty, lastReplay.key);
      expect(reply.status).toBe(200);
      expect(reply.headers.get('idempotent-replayed')).toBe('true');
      expect(reply.body).toEqual(lastReplay.body);
    }
    await again.stop('SIGTERM');
  });
});
