/** The inventory the 1.0.0 paths (/api/v1/available, /reserve, /purchase) sell from. */
export const DEFAULT_INVENTORY = 'default';

/** What is known of one inventory: `sold + remaining` is its initial stock, forever. */
export interface StockLevel {
  remaining: number;
  sold: number;
}

/** A decided change of stock, handed to the store to make durable before anyone hears of it. */
export interface StockReserved {
  type: 'reserved';
  inventoryId: string;
  qty: number;
  /** The stock level after this reservation. */
  level: StockLevel;
}

export type StockEvent = StockReserved;

/** What a store tells health checks about itself. */
export type StoreHealth = {
  kind: string;
  durable: boolean;
  /** False when the store cannot currently make changes durable; reserve then fails with 503. */
  writable: boolean;
  /** Milliseconds since the last successful commit, or null before the first one. */
  lastCommitAgeMs: number | null;
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
   * Loads the stock to start from. Inventories the store has never seen are
   * seeded from `seed` (inventory id → initial stock); known ones keep what
   * the store recorded.
   */
  open(seed: ReadonlyMap<string, number>): Promise<Map<string, StockLevel>>;
  /** Records a batch of decided events, in order, as one unit. */
  commit(events: readonly StockEvent[]): Promise<void>;
  health(): StoreHealth;
  close(): Promise<void>;
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

  async open(seed: ReadonlyMap<string, number>): Promise<Map<string, StockLevel>> {
    return new Map([...seed].map(([id, initial]) => [id, { remaining: initial, sold: 0 }]));
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
