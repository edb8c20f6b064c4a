import { describe, expect, it } from 'vitest';
import { ActorClosedError, StoreUnavailableError, UnknownEventError } from '../stock/errors.ts';
import { defaultEventDefinition, type ReserveResult } from '../stock/model.ts';
import { MemoryStockStore, type SeedEvent } from '../stock/store.ts';
import { ControlledStore } from '../../test/support/controlled-store.ts';
import { StockActor } from './stock-actor.ts';

const seed = (capacity: number, eventId = 'default'): SeedEvent[] => [
  { eventId, definition: defaultEventDefinition(capacity) },
];

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
    ['a slow store (many batches)', () => new ControlledStore({ delayMs: 2 })],
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
    const store = new ControlledStore({ delayMs: 20 });
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
    const store = new ControlledStore({ delayMs: 5 });
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
    const reserving = store.batches.filter((batch) => batch.some((command) => command.kind === 'reserve'));
    expect(reserving[0]?.length, 'the first batch of reserves holds them all').toBe(300);
  });

  it('reads through the mailbox: an available after a reserve sees it', async () => {
    const actor = await StockActor.start(new ControlledStore({ delayMs: 1 }), seed(10));
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
    const store = new ControlledStore({ delayMs: 1 });
    const actor = await StockActor.start(store, seed(10));
    store.failNext = true;

    const results = await Promise.allSettled([actor.reserve(2), actor.reserve(3), actor.available()]);

    expect(results[0]).toMatchObject({ status: 'rejected', reason: expect.any(StoreUnavailableError) });
    expect(results[1]).toMatchObject({ status: 'rejected', reason: expect.any(StoreUnavailableError) });
    expect(results[2]).toEqual({ status: 'fulfilled', value: 10 });
    expect(actor.snapshot()).toEqual({ remaining: 10, sold: 0 });
    expect(await actor.available(), 'nothing of the failed batch happened').toBe(10);

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

  it('keeps stocks apart and rejects unknown ones', async () => {
    const actor = await StockActor.start(new MemoryStockStore(), [...seed(5), ...seed(2, 'gala')]);
    await expect(actor.reserve(2, { eventId: 'gala' })).resolves.toMatchObject({ success: true, remaining: 0 });
    await expect(actor.available()).resolves.toBe(5);
    await expect(actor.reserve(1, { eventId: 'nope' })).rejects.toBeInstanceOf(UnknownEventError);
  });

  it('answers what is queued when closed, then refuses new messages', async () => {
    const actor = await StockActor.start(new ControlledStore({ delayMs: 5 }), seed(10));
    const queued = actor.reserve(4);
    const closing = actor.close();
    await expect(queued).resolves.toMatchObject({ success: true, remaining: 6 });
    await closing;
    await expect(actor.reserve(1)).rejects.toBeInstanceOf(ActorClosedError);
  });

  describe('idempotency keys', () => {
    it('decides a key with the sale it belongs to, in one store call', async () => {
      const store = new ControlledStore();
      const actor = await StockActor.start(store, seed(10));
      const before = store.batches.length;
      const first = await actor.reserve(3, { idempotencyKey: 'k1' });
      const again = await actor.reserve(3, { idempotencyKey: 'k1' });

      expect(first).toMatchObject({ success: true, remaining: 7, tickets: { first: 1, last: 3 }, replayed: false });
      expect(again).toEqual({ ...first, replayed: true });
      expect(store.batches.length - before).toBe(2);
    });

    it('records no key when the commit fails, so a retry is decided afresh', async () => {
      const store = new ControlledStore();
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
