/**
 * A stock store for tests that need to control time and failure: the memory
 * store's rules and state, behind a store call that can be slowed down, held
 * until released, or failed (as a full disk or a lost Redis would fail it),
 * and that records every batch it was handed.
 */
import type { StockCommand, StockDecision } from '../../src/stock/model.ts';
import type { DecideOptions } from '../../src/stock/rules.ts';
import { MemoryStockStore, type SeedEvent, type StockStore, type StoreHealth } from '../../src/stock/store.ts';

/** Reads, and the actor's own sweeps for expired holds, are not counted as changes (nor failed). */
const UNCOUNTED = new Set<StockCommand['kind']>([
  'level',
  'get-event',
  'list-events',
  'get-hold',
  'get-order',
  'expire',
]);

export class ControlledStore implements StockStore {
  readonly kind: string;
  /** Every batch handed to the store, including those that failed. */
  readonly batches: StockCommand[][] = [];
  /** Changes (commands other than reads and sweeps) decided in batches that succeeded. */
  committed = 0;
  /** While set, every batch that would change something fails (reads alone still pass). */
  failing = false;
  /** Fails the next batch that would change something. */
  failNext = false;
  /** What a failure throws. */
  failure: () => Error = () => new Error('EIO: the disk went away\n    at ControlledStore.decide (controlled.ts:1:1)');
  readonly #inner: MemoryStockStore;
  readonly #delayMs: number;
  #gate: Promise<void> = Promise.resolve();
  #release: () => void = () => {};

  constructor(options: { kind?: string; delayMs?: number; maxKeys?: number } = {}) {
    this.kind = options.kind ?? 'controlled';
    this.#delayMs = options.delayMs ?? 0;
    this.#inner = new MemoryStockStore({ maxKeys: options.maxKeys });
  }

  /** Holds every batch from now on until {@link release}. */
  hold(): void {
    this.#gate = new Promise((resolve) => (this.#release = resolve));
  }

  release(): void {
    this.#release();
  }

  open(seed: readonly SeedEvent[]): Promise<void> {
    return this.#inner.open(seed);
  }

  async decide(commands: readonly StockCommand[], options: DecideOptions): Promise<StockDecision[]> {
    this.batches.push([...commands]);
    await this.#gate;
    if (this.#delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.#delayMs));
    const changes = commands.filter((command) => !UNCOUNTED.has(command.kind)).length;
    if (changes > 0 && (this.failing || this.failNext)) {
      this.failNext = false;
      throw this.failure();
    }
    const decisions = await this.#inner.decide(commands, options);
    this.committed += changes;
    return decisions;
  }

  idempotencyKeys(): number {
    return this.#inner.idempotencyKeys();
  }

  health(): StoreHealth {
    return { kind: this.kind, durable: true, writable: !this.failing, lastCommitAgeMs: null };
  }

  async close(): Promise<void> {}
}
