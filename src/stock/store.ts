import type {
  EventDefinition,
  EventRecord,
  HoldRecord,
  IdempotencyRecord,
  OrderRecord,
  StockCommand,
  StockDecision,
} from './model.ts';
import { buyerKeyOf, decideBatch, hasChanges, type DecideOptions, type StockChanges, type StockView } from './rules.ts';

/** An event a store creates on first start; one it already holds keeps what it recorded. */
export interface SeedEvent {
  eventId: string;
  definition: EventDefinition;
}

/** A new event's record: its definition, nothing sold. */
export function eventFromDefinition(eventId: string, definition: EventDefinition): EventRecord {
  return {
    id: eventId,
    name: definition.name,
    capacity: definition.capacity,
    maxPerBuyer: definition.maxPerBuyer ?? null,
    types: definition.ticketTypes.map((type) => ({
      id: type.id,
      name: type.name,
      capacity: type.capacity,
      maxPerOrder: type.maxPerOrder,
      maxPerBuyer: type.maxPerBuyer ?? null,
      sold: 0,
      held: 0,
      issued: 0,
    })),
  };
}

/** What a store tells health checks about itself. */
export interface StoreHealth {
  kind: string;
  durable: boolean;
  /** False when the store cannot currently make changes durable; changes then fail with 503. */
  writable: boolean;
  /** Milliseconds since the last successful commit, or null before the first one. */
  lastCommitAgeMs: number | null;
  /** Where the store keeps its data, when it has a place (a database file, a Redis URL). */
  location?: string;
  /** What the store runs on, when that can differ (the SQLite binding and version). */
  engine?: string;
  /** Why the store is not writable, when it is not. */
  error?: string;
}

/**
 * Where the stock lives. The stock actor hands it one batch of commands at a
 * time, in arrival order, and answers each caller with the store's decision
 * once `decide` resolves: by then the batch is durable, as far as the store
 * can make it. If `decide` rejects, nothing of the batch happened (or, with
 * `outcomeUnknown` on the error, a shared store may have applied it).
 *
 * Every store decides by the same rules (rules.ts): the memory and SQLite
 * stores run them and record the changes; the Redis store runs a script that
 * mirrors them inside Redis, so that many processes share one stock.
 */
export interface StockStore {
  readonly kind: string;
  /** Opens the store and creates the `seed` events it does not hold yet. */
  open(seed: readonly SeedEvent[]): Promise<void>;
  /** Decides a batch atomically and makes it durable. */
  decide(commands: readonly StockCommand[], options: DecideOptions): Promise<StockDecision[]>;
  health(): StoreHealth;
  /** How many idempotency keys the store holds, where it can tell cheaply. */
  idempotencyKeys?(): number;
  /** Tickets held over all events, where the store can tell cheaply. */
  heldTickets?(): number;
  /**
   * Re-checks a store that failed to write (repairing what it can), so that
   * readiness recovers without waiting for traffic.
   */
  checkWritable?(): Promise<boolean>;
  close(): Promise<void>;
}

/** Runs the rules on `view` and hands what changed to `record` (skipped when nothing did). */
export async function decideAndRecord(
  view: StockView,
  commands: readonly StockCommand[],
  options: DecideOptions,
  record: (changes: StockChanges) => void | Promise<void>,
): Promise<StockDecision[]> {
  const { decisions, changes, expired } = decideBatch(view, commands, options);
  if (hasChanges(changes)) await record(changes);
  if (expired.holds > 0) options.expired?.(expired.holds, expired.tickets);
  return decisions;
}

/**
 * Keeps nothing beyond the process: every start begins at the seed. For tests
 * and benchmarks, where durability would only measure the disk. Every event
 * and order stays in memory (about 0.5 KB an idle event with two ticket
 * types, about 0.3 KB an order).
 *
 * @example
 * const store = new MemoryStockStore();
 * const actor = await StockActor.start(store, [defaultEvent(100)]);
 */
export class MemoryStockStore implements StockStore {
  readonly kind = 'memory';
  readonly #events = new Map<string, EventRecord>();
  /** Every event id, sorted, for listing in id order. */
  readonly #eventIds: string[] = [];
  readonly #orders = new Map<string, OrderRecord>();
  /** Order ids in the order they were made. */
  readonly #orderIds: string[] = [];
  readonly #holds = new Map<string, HoldRecord>();
  /** Holds still held, by when they expire: one heap per event, and one over all events. */
  readonly #deadlines = new Map<string, DeadlineHeap>();
  readonly #allDeadlines = new DeadlineHeap();
  readonly #buyers = new Map<string, ReadonlyMap<string, number>>();
  /** In insertion order, which is expiry order: every key is recorded with the same TTL. */
  readonly #keys = new Map<string, IdempotencyRecord>();
  readonly #maxKeys: number;
  #lastCommitAt: number | null = null;
  readonly #view: StockView = {
    event: (eventId) => this.#events.get(eventId),
    eventsAfter: (after, limit) => {
      const start = after === null ? 0 : firstIndexAfter(this.#eventIds, after);
      return this.#eventIds.slice(start, start + limit).map((id) => this.#events.get(id)!);
    },
    order: (orderId) => this.#orders.get(orderId),
    hold: (holdId) => this.#holds.get(holdId),
    dueHolds: (eventId, now, limit) =>
      (eventId === null ? this.#allDeadlines : this.#deadlines.get(eventId))?.due(now, limit, (id) =>
        this.#holds.get(id),
      ) ?? [],
    buyerTickets: (eventId, buyer) => this.#buyers.get(buyerKeyOf(eventId, buyer)) ?? new Map(),
    recentOrders: (eventId, limit) => {
      const found: OrderRecord[] = [];
      for (let i = this.#orderIds.length - 1; i >= 0 && found.length < limit; i--) {
        const order = this.#orders.get(this.#orderIds[i]!)!;
        if (eventId === null || order.eventId === eventId) found.push(order);
      }
      return found;
    },
    heldHolds: (eventId, limit) =>
      (eventId === null ? this.#allDeadlines : this.#deadlines.get(eventId))?.earliest(limit, (id) =>
        this.#holds.get(id),
      ) ?? [],
    idempotencyRecord: (key) => this.#keys.get(key),
  };

  /** `maxKeys`: how many idempotency keys are remembered at most; the oldest go first. */
  constructor(options: { maxKeys?: number } = {}) {
    this.#maxKeys = options.maxKeys ?? 1_000_000;
  }

  async open(seed: readonly SeedEvent[]): Promise<void> {
    for (const { eventId, definition } of seed) {
      if (!this.#events.has(eventId)) this.#putEvent(eventFromDefinition(eventId, definition));
    }
  }

  async decide(commands: readonly StockCommand[], options: DecideOptions): Promise<StockDecision[]> {
    const decisions = await decideAndRecord(this.#view, commands, options, (changes) => {
      for (const { event } of changes.events.values()) this.#putEvent(event);
      for (const [id, order] of changes.orders) {
        if (!this.#orders.has(id)) this.#orderIds.push(id);
        this.#orders.set(id, order);
      }
      for (const [id, hold] of changes.holds) {
        const known = this.#holds.has(id);
        this.#holds.set(id, hold);
        if (!known && hold.status === 'held') {
          let heap = this.#deadlines.get(hold.eventId);
          if (!heap) this.#deadlines.set(hold.eventId, (heap = new DeadlineHeap()));
          heap.push(hold.expiresAt, id);
          this.#allDeadlines.push(hold.expiresAt, id);
        }
      }
      for (const [key, { tickets }] of changes.buyers) {
        const kept = new Map([...tickets].filter(([, qty]) => qty > 0));
        if (kept.size === 0) this.#buyers.delete(key);
        else this.#buyers.set(key, kept);
      }
      for (const [key, record] of changes.keys) {
        this.#keys.delete(key);
        this.#keys.set(key, record);
      }
      this.#lastCommitAt = Date.now();
    });
    this.#pruneKeys(options.now);
    return decisions;
  }

  idempotencyKeys(): number {
    return this.#keys.size;
  }

  heldTickets(): number {
    let held = 0;
    for (const event of this.#events.values()) for (const type of event.types) held += type.held;
    return held;
  }

  health(): StoreHealth {
    return {
      kind: this.kind,
      durable: false,
      writable: true,
      lastCommitAgeMs: this.#lastCommitAt === null ? null : Date.now() - this.#lastCommitAt,
    };
  }

  async close(): Promise<void> {}

  #putEvent(event: EventRecord): void {
    if (!this.#events.has(event.id)) this.#eventIds.splice(firstIndexAfter(this.#eventIds, event.id), 0, event.id);
    this.#events.set(event.id, event);
  }

  #pruneKeys(now: number): void {
    for (const [key, record] of this.#keys) {
      if (this.#keys.size <= this.#maxKeys && record.expiresAt > now) break;
      this.#keys.delete(key);
    }
  }
}

/**
 * Hold ids by expiry, earliest on top (a binary heap). Entries of holds no
 * longer held are dropped as they come to the top, so nothing needs removing
 * from the middle.
 */
class DeadlineHeap {
  readonly #at: number[] = [];
  readonly #ids: string[] = [];

  push(at: number, id: string): void {
    this.#at.push(at);
    this.#ids.push(id);
    let i = this.#at.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.#at[parent]! <= this.#at[i]!) break;
      this.#swap(i, parent);
      i = parent;
    }
  }

  /** Up to `limit` holds still held that expire at or before `now`; they stay in the heap. */
  due(now: number, limit: number, holdOf: (id: string) => HoldRecord | undefined): HoldRecord[] {
    while (this.#at.length > 0 && holdOf(this.#ids[0]!)?.status !== 'held') this.#pop();
    // Every due entry lies above the first entry that is not due on its path: walk only those.
    const found: HoldRecord[] = [];
    const stack = [0];
    while (stack.length > 0 && found.length < limit) {
      const i = stack.pop()!;
      if (i >= this.#at.length || this.#at[i]! > now) continue;
      const hold = holdOf(this.#ids[i]!);
      if (hold?.status === 'held') found.push(hold);
      stack.push(2 * i + 2, 2 * i + 1);
    }
    return found;
  }

  /**
   * The `limit` holds still held that expire first, earliest first: a walk of the heap in order
   * (a second, small heap of the entries whose parents were taken), so it reads about `limit`
   * entries, and the ones no longer held that it meets, however many holds there ever were.
   */
  earliest(limit: number, holdOf: (id: string) => HoldRecord | undefined): HoldRecord[] {
    const found: HoldRecord[] = [];
    const frontier: number[] = this.#at.length > 0 ? [0] : [];
    const before = (a: number, b: number) => this.#at[frontier[a]!]! < this.#at[frontier[b]!]!;
    while (frontier.length > 0 && found.length < limit) {
      const i = frontier[0]!;
      const last = frontier.pop()!;
      if (frontier.length > 0) {
        frontier[0] = last;
        for (let j = 0; ;) {
          const left = 2 * j + 1;
          let smallest = j;
          if (left < frontier.length && before(left, smallest)) smallest = left;
          if (left + 1 < frontier.length && before(left + 1, smallest)) smallest = left + 1;
          if (smallest === j) break;
          [frontier[j], frontier[smallest]] = [frontier[smallest]!, frontier[j]!];
          j = smallest;
        }
      }
      const hold = holdOf(this.#ids[i]!);
      if (hold?.status === 'held') found.push(hold);
      for (const child of [2 * i + 1, 2 * i + 2]) {
        if (child >= this.#at.length) continue;
        frontier.push(child);
        for (let j = frontier.length - 1; j > 0;) {
          const parent = (j - 1) >> 1;
          if (!before(j, parent)) break;
          [frontier[j], frontier[parent]] = [frontier[parent]!, frontier[j]!];
          j = parent;
        }
      }
    }
    return found;
  }

  #pop(): void {
    const last = this.#at.length - 1;
    this.#swap(0, last);
    this.#at.pop();
    this.#ids.pop();
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < this.#at.length && this.#at[left]! < this.#at[smallest]!) smallest = left;
      if (right < this.#at.length && this.#at[right]! < this.#at[smallest]!) smallest = right;
      if (smallest === i) return;
      this.#swap(i, smallest);
      i = smallest;
    }
  }

  #swap(a: number, b: number): void {
    [this.#at[a], this.#at[b]] = [this.#at[b]!, this.#at[a]!];
    [this.#ids[a], this.#ids[b]] = [this.#ids[b]!, this.#ids[a]!];
  }
}

/** The index of the first of `sorted` that sorts after `value` (binary search). */
function firstIndexAfter(sorted: readonly string[], value: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (sorted[middle]! <= value) low = middle + 1;
    else high = middle;
  }
  return low;
}
