import { describe, expect, it } from 'vitest';
import {
  ActorClosedError,
  IdempotencyKeyInFlightError,
  IdempotencyKeyReusedError,
  StockActor,
  StoreUnavailableError,
  UnknownInventoryError,
  type ReserveResult,
} from './stock-actor.ts';
import {
  DEFAULT_INVENTORY,
  MemoryStockStore,
  seededState,
  type StockEvent,
  type StockState,
  type StockStore,
} from './stock-store.ts';

/** A store that records every batch and takes its time, like a disk or a network would. */
class RecordingStore implements StockStore {
  readonly kind = 'recording';
  readonly batches: StockEvent[][] = [];
  committed = 0;
  failNext = false;
  constructor(private readonly delayMs = 0) {}

  async open(seed: ReadonlyMap<string, number>): Promise<StockState> {
    return seededState(seed);
  }

  async commit(events: readonly StockEvent[]): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    if (this.failNext) {
      this.failNext = false;
      throw new Error('disk on fire');
    }
    this.batches.push([...events]);
    this.committed += events.length;
  }

  health() {
    return { kind: this.kind, durable: false, writable: true, lastCommitAgeMs: null };
  }

  async close(): Promise<void> {}
}

const seed = (initial: number) => new Map([[DEFAULT_INVENTORY, initial]]);

/** A reproducible sequence of quantities, so a failure can be replayed. */
function quantities(count: number, max: number, seedValue: number): number[] {
  let state = seedValue;
  return Array.from({ length: count }, () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return 1 + (state % max);
  });
}

describe('StockActor', () => {
  it.each([
    ['memory store', () => new MemoryStockStore()],
    ['a slow store (many batches)', () => new RecordingStore(2)],
  ])('decides 10,000 concurrent reserves in arrival order on %s', async (_name, makeStore) => {
    const initial = 5_000;
    const actor = await StockActor.start(makeStore(), seed(initial));
    const asks = quantities(10_000, 7, 42);

    // Sent in waves across event-loop turns, so a slow store sees several batches while others queue.
    const pending: Promise<ReserveResult>[] = [];
    for (let start = 0; start < asks.length; start += 250) {
      for (const qty of asks.slice(start, start + 250)) pending.push(actor.reserve(qty));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const outcomes = await Promise.all(pending);

    // Replaying the asks one by one in arrival order must give exactly the same answers.
    let remaining = initial;
    let sold = 0;
    asks.forEach((qty, index) => {
      const fits = qty <= remaining;
      if (fits) {
        remaining -= qty;
        sold += qty;
      }
      expect(outcomes[index]).toMatchObject({ success: fits, remaining });
    });
    expect(remaining).toBeGreaterThanOrEqual(0);
    expect(await actor.available()).toBe(remaining);
    expect(actor.snapshot()).toEqual({ remaining, sold });
    expect(sold + remaining).toBe(initial);
    expect(outcomes.filter((o) => o.success).length).toBeGreaterThan(0);
    expect(outcomes.filter((o) => !o.success).length).toBeGreaterThan(0);
    expect(actor.stats().mailboxDepth).toBe(0);

    // Ticket numbers: every ticket from 1 to sold is taken exactly once, by exactly one reservation.
    const taken = outcomes.flatMap((o) => (o.tickets ? [[o.tickets.first, o.tickets.last] as const] : []));
    taken.sort((a, b) => a[0] - b[0]);
    let next = 1;
    for (const [first, last] of taken) {
      expect(first).toBe(next);
      next = last + 1;
    }
    expect(next - 1).toBe(sold);
    const ids = outcomes.flatMap((o) => (o.reservationId ? [o.reservationId] : []));
    expect(new Set(ids).size).toBe(outcomes.filter((o) => o.success).length);
  });

  it('groups messages that arrive during a commit into the next batch', async () => {
    const store = new RecordingStore(20);
    const actor = await StockActor.start(store, seed(1_000_000));
    const pending: Promise<unknown>[] = [];
    for (let wave = 0; wave < 20; wave++) {
      for (let i = 0; i < 50; i++) pending.push(actor.reserve(1));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(pending);
    expect(store.committed).toBe(1_000);
    expect(store.batches.length).toBeGreaterThan(1);
    expect(store.batches.length).toBeLessThan(20);
  });

  it('commits many messages per batch and answers only after the commit', async () => {
    const store = new RecordingStore(5);
    const actor = await StockActor.start(store, seed(1_000));
    const answeredAfterCommit: boolean[] = [];

    const pending = Array.from({ length: 300 }, () =>
      actor.reserve(1).then((outcome) => {
        // By the time a reservation is answered, its event has been committed.
        answeredAfterCommit.push(store.committed >= 1_000 - outcome.remaining);
        return outcome;
      }),
    );
    await Promise.all(pending);

    expect(answeredAfterCommit.every(Boolean)).toBe(true);
    expect(store.committed).toBe(300);
    expect(store.batches.length).toBeLessThan(300);
    expect(store.batches[0]?.length).toBe(300);
  });

  it('reads through the mailbox: an available after a reserve sees it', async () => {
    const actor = await StockActor.start(new RecordingStore(1), seed(10));
    const [, afterReserve, , afterSecond] = await Promise.all([
      actor.reserve(3),
      actor.available(),
      actor.reserve(2),
      actor.available(),
    ]);
    expect(afterReserve).toBe(7);
    expect(afterSecond).toBe(5);
  });

  it('fails a whole batch when the store cannot commit, and keeps the previous stock', async () => {
    const store = new RecordingStore(1);
    const actor = await StockActor.start(store, seed(10));
    store.failNext = true;

    const results = await Promise.allSettled([actor.reserve(2), actor.reserve(3), actor.available()]);

    expect(results[0]).toMatchObject({ status: 'rejected', reason: expect.any(StoreUnavailableError) });
    expect(results[1]).toMatchObject({ status: 'rejected', reason: expect.any(StoreUnavailableError) });
    expect(results[2]).toEqual({ status: 'fulfilled', value: 10 });
    expect(actor.snapshot()).toEqual({ remaining: 10, sold: 0 });

    // The next batch commits normally.
    await expect(actor.reserve(4)).resolves.toMatchObject({ success: true, remaining: 6 });
  });

  it('never takes stock for a reservation that does not fit', async () => {
    const actor = await StockActor.start(new MemoryStockStore(), seed(3));
    await expect(actor.reserve(4)).resolves.toMatchObject({ success: false, remaining: 3 });
    await expect(actor.reserve(3)).resolves.toMatchObject({ success: true, remaining: 0 });
    await expect(actor.reserve(1)).resolves.toMatchObject({ success: false, remaining: 0 });
    expect(actor.snapshot()).toEqual({ remaining: 0, sold: 3 });
  });

  it('keeps inventories apart and rejects unknown ones', async () => {
    const actor = await StockActor.start(
      new MemoryStockStore(),
      new Map([
        [DEFAULT_INVENTORY, 5],
        ['gala', 2],
      ]),
    );
    await expect(actor.reserve(2, { inventoryId: 'gala' })).resolves.toMatchObject({ success: true, remaining: 0 });
    await expect(actor.available()).resolves.toBe(5);
    await expect(actor.reserve(1, { inventoryId: 'nope' })).rejects.toBeInstanceOf(UnknownInventoryError);
  });

  it('answers what is queued when closed, then refuses new messages', async () => {
    const actor = await StockActor.start(new RecordingStore(5), seed(10));
    const queued = actor.reserve(4);
    const closing = actor.close();
    await expect(queued).resolves.toMatchObject({ success: true, remaining: 6 });
    await closing;
    await expect(actor.reserve(1)).rejects.toBeInstanceOf(ActorClosedError);
  });

  describe('idempotency keys', () => {
    it('replays the first decision for a repeated key and takes nothing more', async () => {
      const store = new RecordingStore();
      const actor = await StockActor.start(store, seed(10));
      const first = await actor.reserve(3, { idempotencyKey: 'k1' });
      const again = await actor.reserve(3, { idempotencyKey: 'k1' });

      expect(first).toMatchObject({ success: true, remaining: 7, tickets: { first: 1, last: 3 }, replayed: false });
      expect(again).toEqual({ ...first, replayed: true });
      expect(actor.snapshot()).toEqual({ remaining: 7, sold: 3 });
      // The key went into the same commit as the reservation it belongs to.
      expect(store.batches).toHaveLength(1);
      expect(store.batches[0]?.map((e) => e.type)).toEqual(['reserved', 'key']);
    });

    it('replays an insufficient answer too, even once stock would fit', async () => {
      const actor = await StockActor.start(new MemoryStockStore(), seed(2));
      await expect(actor.reserve(3, { idempotencyKey: 'big' })).resolves.toMatchObject({
        success: false,
        remaining: 2,
      });
      await expect(actor.reserve(1)).resolves.toMatchObject({ success: true, remaining: 1 });
      await expect(actor.reserve(3, { idempotencyKey: 'big' })).resolves.toEqual({
        success: false,
        remaining: 2,
        replayed: true,
      });
    });

    it('refuses a key reused with another qty, and a key repeated within one batch', async () => {
      const actor = await StockActor.start(new MemoryStockStore(), seed(10));
      await actor.reserve(1, { idempotencyKey: 'k' });
      await expect(actor.reserve(2, { idempotencyKey: 'k' })).rejects.toBeInstanceOf(IdempotencyKeyReusedError);

      const [a, b] = await Promise.allSettled([
        actor.reserve(1, { idempotencyKey: 'twice' }),
        actor.reserve(1, { idempotencyKey: 'twice' }),
      ]);
      expect(a).toMatchObject({ status: 'fulfilled', value: { success: true, replayed: false } });
      expect(b).toMatchObject({ status: 'rejected', reason: expect.any(IdempotencyKeyInFlightError) });
      expect(actor.snapshot()).toEqual({ remaining: 8, sold: 2 });
    });

    it('forgets a key after its TTL and the oldest keys beyond the cap', async () => {
      let now = 1_000_000;
      const actor = await StockActor.start(new MemoryStockStore(), seed(100), {
        idempotencyTtlMs: 1_000,
        maxKeys: 3,
        now: () => now,
      });
      await actor.reserve(1, { idempotencyKey: 'old' });
      now += 1_001;
      await expect(actor.reserve(1, { idempotencyKey: 'old' })).resolves.toMatchObject({
        replayed: false,
        remaining: 98,
      });

      for (const key of ['a', 'b', 'c', 'd']) await actor.reserve(1, { idempotencyKey: key });
      expect(actor.stats().idempotencyKeys).toBe(3);
      await expect(actor.reserve(1, { idempotencyKey: 'd' })).resolves.toMatchObject({ replayed: true });
      await expect(actor.reserve(1, { idempotencyKey: 'a' })).resolves.toMatchObject({ replayed: false });
    });

    it('records no key when the commit fails, so a retry is decided afresh', async () => {
      const store = new RecordingStore();
      const actor = await StockActor.start(store, seed(5));
      store.failNext = true;
      await expect(actor.reserve(2, { idempotencyKey: 'retry-me' })).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(actor.reserve(2, { idempotencyKey: 'retry-me' })).resolves.toMatchObject({
        success: true,
        remaining: 3,
        replayed: false,
      });
    });
  });
});

describe('StockActor with a store that records keys itself', () => {
  /** Like the file store: adds each committed key record to the table open() returned, after the batch is durable. */
  class KeyRecordingStore extends RecordingStore {
    readonly recordsKeys = true;
    state: StockState | undefined;
    override async open(seed: ReadonlyMap<string, number>): Promise<StockState> {
      this.state = await super.open(seed);
      return this.state;
    }
    override async commit(events: readonly StockEvent[]): Promise<void> {
      await super.commit(events);
      for (const event of events) if (event.type === 'key') this.state!.keys.set(event.record.key, event.record);
    }
  }

  it('leaves adding keys to the store, and replays from the one table', async () => {
    const store = new KeyRecordingStore();
    const actor = await StockActor.start(store, seed(10));
    const keys = store.state!.keys;
    let sets = 0;
    const set = keys.set.bind(keys);
    keys.set = (key, record) => {
      sets += 1;
      return set(key, record);
    };

    const first = await actor.reserve(3, { idempotencyKey: 'k1' });
    expect(sets, 'the store added the key once; the actor did not add it again').toBe(1);
    expect(await actor.reserve(3, { idempotencyKey: 'k1' })).toEqual({ ...first, replayed: true });
    store.failNext = true;
    await expect(actor.reserve(1, { idempotencyKey: 'k2' })).rejects.toThrow(StoreUnavailableError);
    expect(keys.has('k2')).toBe(false);
    expect(sets).toBe(1);
    await actor.close();
  });
});
