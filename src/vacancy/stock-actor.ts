import type { ActorObserver, StockOutcome } from '../lib/metrics.ts';
import { nextTurn } from '../lib/next-turn.ts';
import { ActorClosedError, InsufficientInventoryError, refusalError, StoreUnavailableError } from '../stock/errors.ts';
import {
  DEFAULT_EVENT_ID,
  DEFAULT_TICKET_TYPE_ID,
  eventOfHoldId,
  newHoldId,
  newOrderId,
  type AdjustOp,
  type HoldRecord,
  type EventDefinition,
  type EventRecord,
  type OrderRecord,
  type PurchaseItem,
  type ReserveResult,
  type StockCommand,
  type StockDecision,
  type StockLevel,
} from '../stock/model.ts';
import type { SeedEvent, StockStore } from '../stock/store.ts';

export interface ReserveOptions {
  eventId?: string;
  typeId?: string;
  /**
   * Makes the reserve idempotent: the first decision for a key is recorded in
   * the same commit as the reservation, and every later reserve with the key
   * and the same request gets that decision back instead of a new one.
   */
  idempotencyKey?: string;
}

export interface StockActorOptions {
  /** How long an idempotency key is remembered. Default 24 h. */
  idempotencyTtlMs?: number;
  /** The clock keys expire by (ms since the epoch); tests pass their own. */
  now?: () => number;
  /** Told of every batch and every store call (metrics). */
  observer?: ActorObserver;
  /**
   * How often the actor sweeps holds whose time has passed (ms; default 250).
   * Their stock is back on sale for any command that touches their event at
   * once; the sweep brings it back for events nobody touches, within a second.
   */
  sweepEveryMs?: number;
  /** Told of each hold's and order's outcome (metrics). */
  onOutcome?: (outcome: StockOutcome) => void;
}

/** Holds the sweeper expires at most in one batch: a wave of expiries is spread over batches. */
const EXPIRED_PER_SWEEP = 2_000;

type Message = { command: StockCommand; settle: Settle };

interface Settle {
  resolve(decision: StockDecision): void;
  reject(reason: unknown): void;
}

/**
 * The single writer of the stock. Callers send messages and get promises;
 * the actor takes everything waiting in its mailbox as one batch and hands
 * it, in arrival order, to the store, which decides it by the rules in
 * src/stock/rules.ts and makes it durable in one commit; only then are the
 * callers answered (group commit). While a batch is with the store, new
 * messages queue up for the next one, so a slow store makes batches bigger,
 * not requests slower one by one.
 *
 * No lock is needed: only one batch is ever being decided. Reads go through
 * the mailbox too, so an answer never reflects a decision that is not yet
 * durable, nor misses one that is.
 *
 * @example
 * const actor = await StockActor.start(new MemoryStockStore(), [{ eventId: 'default', typeId: 'default', capacity: 10 }]);
 * await actor.reserve(3); // { success: true, remaining: 7, ... }
 * await actor.available(); // 7
 */
export class StockActor {
  readonly #store: StockStore;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #observer: ActorObserver | undefined;
  /** The last level seen of each stock, for health reports and metrics (never for answers). */
  readonly #seen = new Map<string, StockLevel>();
  #mailbox: Message[] = [];
  #draining = false;
  #closed = false;
  #idle: Promise<void> = Promise.resolve();
  #markIdle: () => void = () => {};
  #lastBatchSize = 0;
  #sweeper: ReturnType<typeof setTimeout> | undefined;
  readonly #onOutcome: ((outcome: StockOutcome) => void) | undefined;

  private constructor(store: StockStore, options: StockActorOptions) {
    this.#store = store;
    this.#ttlMs = options.idempotencyTtlMs ?? 24 * 60 * 60 * 1000;
    this.#now = options.now ?? Date.now;
    this.#observer = options.observer;
    this.#onOutcome = options.onOutcome;
  }

  /** Opens the store, creating the `seed` events it does not hold yet, and starts an actor on it. */
  static async start(
    store: StockStore,
    seed: readonly SeedEvent[],
    options: StockActorOptions = {},
  ): Promise<StockActor> {
    await store.open(seed);
    const actor = new StockActor(store, options);
    if (seed.some((event) => event.eventId === DEFAULT_EVENT_ID)) await actor.level().catch(() => undefined);
    // Holds that expired while the process was down are given back before it serves anyone.
    await actor.expireDue().catch(() => undefined);
    actor.#startSweeping(options.sweepEveryMs ?? 250);
    return actor;
  }

  /**
   * Takes every item out of sale for `ttlMs`, or none: the hold, or
   * InsufficientInventoryError and the refusals of a purchase. Confirm it
   * with {@link confirm} before it expires.
   */
  async hold(
    eventId: string,
    items: PurchaseItem[],
    options: { buyer?: string | null; ttlMs: number; idempotencyKey?: string },
  ): Promise<{ hold: HoldRecord; replayed: boolean }> {
    const decision = await this.#send({
      kind: 'hold',
      eventId,
      items,
      buyer: options.buyer ?? null,
      holdId: newHoldId(eventId),
      at: this.#now(),
      ttlMs: options.ttlMs,
      key: options.idempotencyKey,
    });
    if (decision.kind === 'insufficient') throw new InsufficientInventoryError(decision.items, decision.replayed);
    if (decision.kind !== 'hold') throw unexpected(decision, 'hold');
    if (!decision.replayed)
      this.#outcome({ kind: 'hold', status: 'held', count: 1, tickets: ticketsOf(decision.hold) });
    return { hold: decision.hold, replayed: decision.replayed };
  }

  /** Turns a held hold into an order; `replayed` when it was confirmed already (the same order). */
  async confirm(holdId: string): Promise<{ order: OrderRecord; replayed: boolean }> {
    // An id that names no event names no hold either: the rules refuse it whatever order id comes along.
    const orderId = newOrderId(eventOfHoldId(holdId) ?? 'none');
    const decision = await this.#send({ kind: 'confirm', holdId, orderId, at: this.#now() });
    if (decision.kind !== 'order') throw unexpected(decision, 'confirm');
    if (!decision.replayed) {
      const tickets = decision.order.items.reduce((sum, line) => sum + line.qty, 0);
      this.#outcome({ kind: 'hold', status: 'confirmed', count: 1, tickets });
      this.#outcome({ kind: 'sold', eventId: decision.order.eventId, tickets });
    }
    return { order: decision.order, replayed: decision.replayed };
  }

  /** Gives a held hold's stock back; a hold released or expired already answers as it is. */
  async release(holdId: string): Promise<HoldRecord> {
    const decision = await this.#send({ kind: 'release', holdId });
    if (decision.kind !== 'hold') throw unexpected(decision, 'release');
    if (!decision.replayed) {
      this.#outcome({ kind: 'hold', status: 'released', count: 1, tickets: ticketsOf(decision.hold) });
    }
    return decision.hold;
  }

  async getHold(holdId: string): Promise<HoldRecord> {
    const decision = await this.#send({ kind: 'get-hold', holdId });
    if (decision.kind !== 'hold') throw unexpected(decision, 'get-hold');
    return decision.hold;
  }

  async getOrder(orderId: string): Promise<OrderRecord> {
    const decision = await this.#send({ kind: 'get-order', orderId });
    if (decision.kind !== 'order') throw unexpected(decision, 'get-order');
    return decision.order;
  }

  /** The latest `limit` orders (of one event, or of all when null), newest first, as committed. */
  async recentOrders(eventId: string | null, limit: number): Promise<OrderRecord[]> {
    const decision = await this.#send({ kind: 'recent-orders', eventId, limit });
    if (decision.kind !== 'orders') throw unexpected(decision, 'recent-orders');
    return decision.orders;
  }

  /** The `limit` held holds that expire first (of one event, or of all when null), as committed. */
  async expiringHolds(eventId: string | null, limit: number): Promise<HoldRecord[]> {
    const decision = await this.#send({ kind: 'expiring-holds', eventId, limit });
    if (decision.kind !== 'holds') throw unexpected(decision, 'expiring-holds');
    return decision.holds;
  }

  /** Cancels an order: its tickets go back on sale; `replayed` when it was cancelled already. */
  async cancel(orderId: string): Promise<{ order: OrderRecord; replayed: boolean }> {
    const decision = await this.#send({ kind: 'cancel', orderId });
    if (decision.kind !== 'order') throw unexpected(decision, 'cancel');
    if (!decision.replayed) this.#outcome({ kind: 'order-cancelled' });
    return { order: decision.order, replayed: decision.replayed };
  }

  /** Expires up to `limit` holds whose time has passed, over all events; answers how many. */
  async expireDue(limit = EXPIRED_PER_SWEEP): Promise<number> {
    const decision = await this.#send({ kind: 'expire', limit });
    if (decision.kind !== 'expired') throw unexpected(decision, 'expire');
    return decision.count;
  }

  #outcome(outcome: StockOutcome): void {
    this.#onOutcome?.(outcome);
  }

  /**
   * Sweeps due holds every `everyMs`, and again at once while a sweep finds
   * a full load. One sweep at a time; none once closed.
   */
  #startSweeping(everyMs: number): void {
    const sweep = async () => {
      this.#sweeper = undefined;
      if (this.#closed) return;
      let expired = 0;
      try {
        expired = await this.expireDue();
      } catch {
        // A store that cannot write now is retried at the next tick; readiness reports it.
      }
      if (this.#closed) return;
      this.#sweeper = setTimeout(() => void sweep(), expired >= EXPIRED_PER_SWEEP ? 0 : everyMs);
      (this.#sweeper as { unref?: () => void }).unref?.();
    };
    this.#sweeper = setTimeout(() => void sweep(), everyMs);
    (this.#sweeper as { unref?: () => void }).unref?.();
  }

  /**
   * Buys every item or none. Answers the order, or throws
   * {@link InsufficientInventoryError} when it did not fit (nothing taken),
   * and the errors of refusals (unknown event or ticket type, over
   * maxPerOrder, a reused idempotency key).
   */
  async purchase(
    eventId: string,
    items: PurchaseItem[],
    options: { buyer?: string | null; idempotencyKey?: string } = {},
  ): Promise<{ order: OrderRecord; replayed: boolean }> {
    const decision = await this.#send({
      kind: 'purchase',
      eventId,
      items,
      buyer: options.buyer ?? null,
      orderId: newOrderId(eventId),
      at: this.#now(),
      key: options.idempotencyKey,
    });
    if (decision.kind === 'insufficient') throw new InsufficientInventoryError(decision.items, decision.replayed);
    if (decision.kind !== 'order') throw unexpected(decision, 'purchase');
    if (!decision.replayed) this.#outcome({ kind: 'sold', eventId, tickets: ticketsOf(decision.order) });
    return { order: decision.order, replayed: decision.replayed };
  }

  /** Creates or updates an event; `created` tells which. */
  async putEvent(eventId: string, definition: EventDefinition): Promise<{ event: EventRecord; created: boolean }> {
    const decision = await this.#send({ kind: 'put-event', eventId, definition });
    if (decision.kind !== 'event') throw unexpected(decision, 'put-event');
    return { event: decision.event, created: decision.created };
  }

  /** An event with its stock, as of every decision made before this call. */
  async getEvent(eventId: string): Promise<EventRecord> {
    const decision = await this.#send({ kind: 'get-event', eventId });
    if (decision.kind !== 'event') throw unexpected(decision, 'get-event');
    return decision.event;
  }

  /** Up to `limit` events whose ids sort after `after`, in id order; `next` is the id to continue after. */
  async listEvents(after: string | null, limit: number): Promise<{ events: EventRecord[]; next: string | null }> {
    const decision = await this.#send({ kind: 'list-events', after, limit });
    if (decision.kind !== 'events') throw unexpected(decision, 'list-events');
    return { events: decision.events, next: decision.next };
  }

  /** Takes `qty` tickets if they are all there; otherwise takes nothing. */
  async reserve(qty: number, options: ReserveOptions = {}): Promise<ReserveResult> {
    const eventId = options.eventId ?? DEFAULT_EVENT_ID;
    const typeId = options.typeId ?? DEFAULT_TICKET_TYPE_ID;
    const decision = await this.#send({
      kind: 'reserve',
      eventId,
      typeId,
      qty,
      orderId: newOrderId(eventId),
      at: this.#now(),
      key: options.idempotencyKey,
    });
    if (decision.kind !== 'reserved') throw unexpected(decision, 'reserve');
    // A replay answers as of its first decision: its remaining is history, not the stock now.
    if (!decision.replayed) {
      this.#see(eventId, typeId, decision.outcome.remaining, decision.outcome.tickets?.last);
      if (decision.outcome.success) this.#outcome({ kind: 'sold', eventId, tickets: qty });
    }
    return { ...decision.outcome, replayed: decision.replayed };
  }

  /** Tickets left, as of every decision made before this call. */
  async available(eventId = DEFAULT_EVENT_ID, typeId = DEFAULT_TICKET_TYPE_ID): Promise<number> {
    return (await this.level(eventId, typeId)).remaining;
  }

  /** Tickets left and sold, as of every decision made before this call. */
  async level(eventId = DEFAULT_EVENT_ID, typeId = DEFAULT_TICKET_TYPE_ID): Promise<StockLevel> {
    const decision = await this.#send({ kind: 'level', eventId, typeId });
    if (decision.kind !== 'level') throw unexpected(decision, 'level');
    this.#seen.set(`${eventId}/${typeId}`, decision.level);
    return { ...decision.level };
  }

  /**
   * An operator's change of stock, recorded like any sale: `set` makes
   * `qty` tickets remaining, `add` adds `qty` (negative takes away). Ticket
   * numbers already handed out are never handed out again.
   */
  async adjust(
    op: AdjustOp,
    qty: number,
    eventId = DEFAULT_EVENT_ID,
    typeId = DEFAULT_TICKET_TYPE_ID,
  ): Promise<StockLevel> {
    const decision = await this.#send({ kind: 'adjust', eventId, typeId, op, qty });
    if (decision.kind !== 'adjusted') throw unexpected(decision, 'adjust');
    this.#seen.set(`${eventId}/${typeId}`, decision.level);
    return { ...decision.level };
  }

  /**
   * The level of a stock without queueing, for health reports and metrics:
   * as last seen in a decision. Never used to decide anything.
   */
  snapshot(eventId = DEFAULT_EVENT_ID, typeId = DEFAULT_TICKET_TYPE_ID): StockLevel | undefined {
    const level = this.#seen.get(`${eventId}/${typeId}`);
    return level && { ...level };
  }

  /** Tickets held over all events, where the store can tell cheaply (for metrics). */
  heldTickets(): number | undefined {
    return this.#store.heldTickets?.();
  }

  /** Messages waiting for the next batch, the size of the last batch decided, idempotency keys held. */
  stats(): { mailboxDepth: number; lastBatchSize: number; idempotencyKeys: number | undefined } {
    return {
      mailboxDepth: this.#mailbox.length,
      lastBatchSize: this.#lastBatchSize,
      idempotencyKeys: this.#store.idempotencyKeys?.(),
    };
  }

  get storeKind(): string {
    return this.#store.kind;
  }

  storeHealth() {
    return this.#store.health();
  }

  /** The store's health after it has had a chance to repair itself (readiness calls this). */
  async checkStore() {
    await this.#store.checkWritable?.();
    return this.#store.health();
  }

  /** Refuses new messages, answers every queued one, then closes the store. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#sweeper);
    await this.#idle;
    await this.#store.close();
  }

  #send(command: StockCommand): Promise<StockDecision> {
    return new Promise((resolve, reject) => {
      if (this.#closed) {
        reject(new ActorClosedError());
        return;
      }
      this.#mailbox.push({ command, settle: { resolve, reject } });
      if (!this.#draining) {
        this.#draining = true;
        this.#idle = new Promise((done) => (this.#markIdle = done));
        // Not a microtask: each request is read in its own tick, so a microtask made batches of one.
        // After this turn's I/O, every request read in it joins one batch, and their answers are
        // written together.
        nextTurn(() => void this.#drain());
      }
    });
  }

  async #drain(): Promise<void> {
    while (this.#mailbox.length > 0) {
      const batch = this.#mailbox;
      this.#mailbox = [];
      this.#lastBatchSize = batch.length;
      this.#observer?.batch(batch.length);
      await this.#process(batch);
    }
    this.#draining = false;
    this.#markIdle();
  }

  async #process(batch: Message[]): Promise<void> {
    let decisions: StockDecision[];
    try {
      decisions = await this.#timed(() =>
        this.#store.decide(
          batch.map((message) => message.command),
          {
            now: this.#now(),
            idempotencyTtlMs: this.#ttlMs,
            expired: (count, tickets) => this.#outcome({ kind: 'hold', status: 'expired', count, tickets }),
          },
        ),
      );
    } catch (error) {
      await this.#failed(batch, error);
      return;
    }
    batch.forEach(({ command, settle }, index) => {
      const decision = decisions[index];
      if (decision === undefined) {
        settle.reject(new StoreUnavailableError(new Error('the store answered fewer decisions than asked')));
      } else if (decision.kind === 'refused') {
        settle.reject(refusalError(decision.reason, command as { eventId?: string; typeId?: string }, decision));
      } else {
        settle.resolve(decision);
      }
    });
  }

  /**
   * Nothing of a failed batch happened: its changes fail with 503. Its reads
   * are asked again on their own, so that a store that cannot write (a full
   * disk) still answers them.
   */
  async #failed(batch: Message[], error: unknown): Promise<void> {
    const failure = new StoreUnavailableError(error);
    const reads = batch.filter(({ command }) => isRead(command));
    for (const { command, settle } of batch) if (!isRead(command)) settle.reject(failure);
    if (reads.length === 0 || reads.length === batch.length) {
      for (const { settle } of reads) settle.reject(failure);
      return;
    }
    await this.#process(reads);
  }

  /** Runs a store call, telling the observer how long it took. */
  async #timed<T>(call: () => Promise<T>): Promise<T> {
    if (!this.#observer) return call();
    const started = performance.now();
    let failed = true;
    try {
      const result = await call();
      failed = false;
      return result;
    } finally {
      this.#observer.commit((performance.now() - started) / 1000, failed);
    }
  }

  #see(eventId: string, typeId: string, remaining: number, lastTicket: number | undefined): void {
    const key = `${eventId}/${typeId}`;
    const known = this.#seen.get(key);
    this.#seen.set(key, { remaining, sold: Math.max(known?.sold ?? 0, lastTicket ?? 0) });
  }
}

function isRead(command: StockCommand): boolean {
  return (
    command.kind === 'level' ||
    command.kind === 'get-event' ||
    command.kind === 'list-events' ||
    command.kind === 'get-hold' ||
    command.kind === 'get-order' ||
    command.kind === 'recent-orders' ||
    command.kind === 'expiring-holds'
  );
}

function ticketsOf(record: { items: ReadonlyArray<{ qty: number }> }): number {
  return record.items.reduce((sum, item) => sum + item.qty, 0);
}

function unexpected(decision: StockDecision, asked: string): Error {
  return new StoreUnavailableError(new Error(`the store answered ${decision.kind} to ${asked}`));
}
