import type { IdempotencyRecord, StockCommand, StockDecision, TicketTypeStock } from './model.ts';
import { decideBatch, type DecideOptions, type StockChanges, type StockView } from './rules.ts';

/** A stock a store creates on first start; one it already holds keeps what it recorded. */
export interface SeedStock {
  eventId: string;
  typeId: string;
  capacity: number;
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
  /** Opens the store and creates the `seed` stocks it does not hold yet. */
  open(seed: readonly SeedStock[]): Promise<void>;
  /** Decides a batch atomically and makes it durable. */
  decide(commands: readonly StockCommand[], options: DecideOptions): Promise<StockDecision[]>;
  health(): StoreHealth;
  /** How many idempotency keys the store holds, where it can tell cheaply. */
  idempotencyKeys?(): number;
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
  const { decisions, changes } = decideBatch(view, commands, options);
  if (changes.stocks.size > 0 || changes.keys.size > 0) await record(changes);
  return decisions;
}

/**
 * Keeps nothing beyond the process: every start begins at the seed. For tests
 * and benchmarks, where durability would only measure the disk.
 *
 * @example
 * const store = new MemoryStockStore();
 * const actor = await StockActor.start(store, [{ eventId: 'default', typeId: 'default', capacity: 100 }]);
 */
export class MemoryStockStore implements StockStore {
  readonly kind = 'memory';
  readonly #stocks = new Map<string, TicketTypeStock>();
  /** In insertion order, which is expiry order: every key is recorded with the same TTL. */
  readonly #keys = new Map<string, IdempotencyRecord>();
  readonly #maxKeys: number;
  #lastCommitAt: number | null = null;
  readonly #view: StockView = {
    stock: (eventId, typeId) => this.#stocks.get(`${eventId}/${typeId}`),
    idempotencyRecord: (key) => this.#keys.get(key),
  };

  /** `maxKeys`: how many idempotency keys are remembered at most; the oldest go first. */
  constructor(options: { maxKeys?: number } = {}) {
    this.#maxKeys = options.maxKeys ?? 1_000_000;
  }

  async open(seed: readonly SeedStock[]): Promise<void> {
    for (const { eventId, typeId, capacity } of seed) {
      const key = `${eventId}/${typeId}`;
      if (!this.#stocks.has(key)) this.#stocks.set(key, { eventId, typeId, capacity, sold: 0, issued: 0 });
    }
  }

  async decide(commands: readonly StockCommand[], options: DecideOptions): Promise<StockDecision[]> {
    const decisions = await decideAndRecord(this.#view, commands, options, (changes) => {
      for (const [key, stock] of changes.stocks) this.#stocks.set(key, stock);
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

  health(): StoreHealth {
    return {
      kind: this.kind,
      durable: false,
      writable: true,
      lastCommitAgeMs: this.#lastCommitAt === null ? null : Date.now() - this.#lastCommitAt,
    };
  }

  async close(): Promise<void> {}

  #pruneKeys(now: number): void {
    for (const [key, record] of this.#keys) {
      if (this.#keys.size <= this.#maxKeys && record.expiresAt > now) break;
      this.#keys.delete(key);
    }
  }
}
