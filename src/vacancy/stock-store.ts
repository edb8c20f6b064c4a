import { KeyTable } from './key-table.ts';

/** The inventory the 1.0.0 paths (/api/v1/available, /reserve, /purchase) sell from. */
export const DEFAULT_INVENTORY = 'default';

/** What is known of one inventory: `sold + remaining` is its initial stock, forever. */
export type StockLevel = {
  remaining: number;
  sold: number;
};

/** The tickets one reservation took: numbers `first` to `last`, both included. */
export type TicketRange = {
  first: number;
  last: number;
};

/** The answer to a reserve message, as first given and as replayed for a repeated idempotency key. */
export type ReserveOutcome = {
  success: boolean;
  /** Stock left after this decision (unchanged when it did not fit). */
  remaining: number;
  /** Set when success: the id of the reservation (the purchase id, seen from the ticket service). */
  reservationId?: string;
  /** Set when success: the ticket numbers taken, from the inventory's sale sequence. */
  tickets?: TicketRange;
};

/**
 * An idempotency key and the decision it must replay until `expiresAt` (ms
 * since the epoch). Flat and small on purpose: up to IDEMPOTENCY_MAX_KEYS of
 * these stay in memory, so the outcome is kept as numbers and rebuilt by
 * {@link outcomeOf} when replayed.
 */
export type IdempotencyRecord = {
  key: string;
  /** With `qty`, what the request asked for; the same key asking for something else is refused. */
  inventoryId: string;
  qty: number;
  success: boolean;
  remaining: number;
  /** The first ticket taken when `success`, else 0. */
  firstTicket: number;
  expiresAt: number;
};

/**
 * The id of the reservation that took tickets `firstTicket`.. of an
 * inventory. Ticket numbers are never handed out twice, so neither is the id.
 *
 * @example
 * reservationIdOf('default', 42); // 'default-42'
 */
export function reservationIdOf(inventoryId: string, firstTicket: number): string {
  return `${inventoryId}-${firstTicket}`;
}

/** The outcome a key's record stands for, as first answered. */
export function outcomeOf(record: IdempotencyRecord): ReserveOutcome {
  if (!record.success) return { success: false, remaining: record.remaining };
  return {
    success: true,
    remaining: record.remaining,
    reservationId: reservationIdOf(record.inventoryId, record.firstTicket),
    tickets: { first: record.firstTicket, last: record.firstTicket + record.qty - 1 },
  };
}

/** A decided reservation. `level` is the inventory's level after it. */
export type StockReserved = {
  type: 'reserved';
  inventoryId: string;
  qty: number;
  reservationId: string;
  tickets: TicketRange;
  level: StockLevel;
};

/** An idempotency key recorded with the outcome of the request it came with. */
export type KeyRecorded = {
  type: 'key';
  record: IdempotencyRecord;
};

/** An operator's change of stock (admin endpoint): `level` is the inventory's level after it. */
export type StockAdjusted = {
  type: 'adjusted';
  inventoryId: string;
  op: AdjustOp;
  qty: number;
  level: StockLevel;
};

/** `set`: remaining becomes qty. `add`: qty (which may be negative) is added to remaining. */
export type AdjustOp = 'set' | 'add';

export type StockEvent = StockReserved | KeyRecorded | StockAdjusted;

/** A message as a store that decides for itself receives it (see {@link StockStore.decide}). */
export type StockCommand =
  | { kind: 'reserve'; inventoryId: string; qty: number; key?: string }
  | { kind: 'level'; inventoryId: string }
  | { kind: 'adjust'; inventoryId: string; op: AdjustOp; qty: number };

/** What a deciding store answers for each command, in order. */
export type StockDecision =
  | { kind: 'reserved'; outcome: ReserveOutcome; replayed: boolean }
  | { kind: 'level'; level: StockLevel }
  | { kind: 'adjusted'; level: StockLevel }
  | { kind: 'refused'; reason: 'unknown-inventory' | 'key-reused' | 'key-in-flight' | 'negative-stock' | 'expired' };

/** Everything the actor decides from: stock levels and the idempotency keys still live. */
export type StockState = {
  levels: Map<string, StockLevel>;
  /** In insertion order, which is also expiry order (one TTL for all). */
  keys: KeyTable;
};

/** What a store tells health checks about itself. */
export type StoreHealth = {
  kind: string;
  durable: boolean;
  /** False when the store cannot currently make changes durable; reserve then fails with 503. */
  writable: boolean;
  /** Milliseconds since the last successful commit, or null before the first one. */
  lastCommitAgeMs: number | null;
  /** Where the store keeps its data, when it has a place (the file store's DATA_DIR). */
  location?: string;
  /** Why the store is not writable, when it is not. */
  error?: string;
};

/**
 * Where the stock actor makes its decisions durable. The actor owns the
 * stock; a store only records what the actor decided, one batch at a time.
 * `commit` resolves once the batch is durable (as far as the store can make
 * it) and rejects if any part of it could not be recorded, in which case the
 * actor answers the whole batch as failed and keeps its previous state.
 */
export interface StockStore {
  readonly kind: string;
  /**
   * Loads the state to start from. Inventories the store has never seen are
   * seeded from `seed` (inventory id → initial stock); known ones keep what
   * the store recorded. Keys that expired before `now` are left out.
   */
  open(seed: ReadonlyMap<string, number>, now: number): Promise<StockState>;
  /** Records a batch of decided events, in order, as one unit. */
  commit(events: readonly StockEvent[]): Promise<void>;
  health(): StoreHealth;
  /**
   * Present on stores whose stock is shared with other processes (Redis):
   * such a store decides each batch itself, atomically, with the same rules
   * as the actor, and the actor only batches and answers. A command the store
   * gets to only after its caller stopped waiting is refused as `expired` and
   * takes no effect. Stores without `decide` record what the actor decided.
   */
  decide?(commands: readonly StockCommand[], options: { idempotencyTtlMs: number }): Promise<StockDecision[]>;
  /**
   * True when the store itself adds each committed key record to the `keys`
   * table of the state `open` returned (once the batch is durable, never for
   * a batch that failed), so that one table serves both: the actor reads it
   * and prunes it, and leaves adding to the store. With a million keys that
   * is about 100 MB not held twice.
   */
  readonly recordsKeys?: boolean;
  /**
   * Re-checks a store that failed to write (repairing what it can), so that
   * readiness recovers without waiting for traffic. Stores that cannot fail
   * to write leave it out.
   */
  checkWritable?(): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * Applies one event to a state, in place. Stores that rebuild state from a
 * journal use this, so that replay and the actor can never disagree.
 */
export function applyEvent(state: StockState, event: StockEvent): void {
  if (event.type === 'reserved' || event.type === 'adjusted') {
    state.levels.set(event.inventoryId, { ...event.level });
  } else {
    state.keys.set(event.record.key, event.record);
  }
}

/** A fresh state seeded from `seed`: every inventory full, nothing sold, no keys. */
export function seededState(seed: ReadonlyMap<string, number>): StockState {
  return {
    levels: new Map([...seed].map(([id, initial]) => [id, { remaining: initial, sold: 0 }])),
    keys: new KeyTable(),
  };
}

/**
 * Keeps nothing beyond the process: every start begins at the seed. For tests
 * and benchmarks, where durability would only measure the disk.
 *
 * @example
 * const actor = await StockActor.start(new MemoryStockStore(), new Map([['default', 100]]));
 */
export class MemoryStockStore implements StockStore {
  readonly kind = 'memory';
  #lastCommitAt: number | null = null;

  async open(seed: ReadonlyMap<string, number>): Promise<StockState> {
    return seededState(seed);
  }

  async commit(): Promise<void> {
    this.#lastCommitAt = Date.now();
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
}
