import { DEFAULT_INVENTORY, type StockEvent, type StockLevel, type StockStore } from './stock-store.ts';

/** The answer to a reserve message. */
export interface ReserveOutcome {
  success: boolean;
  /** Stock left after this decision (unchanged when it did not fit). */
  remaining: number;
}

/** The actor no longer takes messages: it is shutting down. */
export class ActorClosedError extends Error {
  constructor() {
    super('The stock actor is closed');
    this.name = 'ActorClosedError';
  }
}

/** The store could not make a batch durable; nothing in that batch happened. */
export class StoreUnavailableError extends Error {
  constructor(cause: unknown) {
    super('The stock store could not record the change', { cause });
    this.name = 'StoreUnavailableError';
  }
}

/** A message for an inventory the actor does not hold. */
export class UnknownInventoryError extends Error {
  constructor(readonly inventoryId: string) {
    super(`Unknown inventory ${JSON.stringify(inventoryId)}`);
    this.name = 'UnknownInventoryError';
  }
}

type Message =
  | { kind: 'reserve'; inventoryId: string; qty: number; settle: Settle<ReserveOutcome> }
  | { kind: 'available'; inventoryId: string; settle: Settle<number> };

interface Settle<T> {
  resolve(value: T): void;
  reject(reason: unknown): void;
}

type Answer = () => void;

/**
 * The single writer of the stock. Callers send messages and get promises;
 * the actor takes everything waiting in its mailbox as one batch, decides
 * each message in arrival order against its state, hands the batch's events
 * to the store in one `commit`, and only then applies the new state and
 * answers (group commit). While a commit is in flight, new messages queue up
 * for the next batch, so a slow store makes batches bigger, not requests
 * slower one by one.
 *
 * No lock is needed: deciding a batch is synchronous, and only one batch is
 * ever being committed. Reads go through the mailbox too, so an answer never
 * reflects a decision that is not yet durable, nor misses one that is.
 *
 * @example
 * const actor = await StockActor.start(new MemoryStockStore(), new Map([['default', 10]]));
 * await actor.reserve(3); // { success: true, remaining: 7 }
 * await actor.available(); // 7
 */
export class StockActor {
  #state: Map<string, StockLevel>;
  #mailbox: Message[] = [];
  #draining = false;
  #closed = false;
  #idle: Promise<void> = Promise.resolve();
  #markIdle: () => void = () => {};
  #lastBatchSize = 0;

  private constructor(
    private readonly store: StockStore,
    state: Map<string, StockLevel>,
  ) {
    this.#state = state;
  }

  /** Opens the store and starts an actor on what it holds. */
  static async start(store: StockStore, seed: ReadonlyMap<string, number>): Promise<StockActor> {
    return new StockActor(store, await store.open(seed));
  }

  /** Takes `qty` tickets if they are all there; otherwise takes nothing. */
  reserve(qty: number, inventoryId: string = DEFAULT_INVENTORY): Promise<ReserveOutcome> {
    return new Promise((resolve, reject) => this.#post({ kind: 'reserve', inventoryId, qty, settle: { resolve, reject } }));
  }

  /** Tickets left, as of every decision made before this call. */
  available(inventoryId: string = DEFAULT_INVENTORY): Promise<number> {
    return new Promise((resolve, reject) => this.#post({ kind: 'available', inventoryId, settle: { resolve, reject } }));
  }

  /** The committed level of an inventory, read without queueing (for health reports). */
  snapshot(inventoryId: string = DEFAULT_INVENTORY): StockLevel | undefined {
    const level = this.#state.get(inventoryId);
    return level && { ...level };
  }

  /** Messages waiting for the next batch and the size of the last batch decided. */
  stats(): { mailboxDepth: number; lastBatchSize: number } {
    return { mailboxDepth: this.#mailbox.length, lastBatchSize: this.#lastBatchSize };
  }

  get storeKind(): string {
    return this.store.kind;
  }

  storeHealth() {
    return this.store.health();
  }

  /** Refuses new messages, answers every queued one, then closes the store. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#idle;
    await this.store.close();
  }

  #post(message: Message): void {
    if (this.#closed) {
      message.settle.reject(new ActorClosedError());
      return;
    }
    this.#mailbox.push(message);
    if (!this.#draining) {
      this.#draining = true;
      this.#idle = new Promise((resolve) => (this.#markIdle = resolve));
      // A microtask, not a direct call: every message posted in the same tick joins one batch.
      queueMicrotask(() => void this.#drain());
    }
  }

  async #drain(): Promise<void> {
    while (this.#mailbox.length > 0) {
      const batch = this.#mailbox;
      this.#mailbox = [];
      this.#lastBatchSize = batch.length;
      await this.#process(batch);
    }
    this.#draining = false;
    this.#markIdle();
  }

  async #process(batch: Message[]): Promise<void> {
    const working = new Map<string, StockLevel>();
    const levelOf = (id: string) => working.get(id) ?? this.#state.get(id);
    const events: StockEvent[] = [];
    const answers: Answer[] = [];
    const rejections: Array<(reason: unknown) => void> = [];

    for (const message of batch) {
      const level = levelOf(message.inventoryId);
      if (level === undefined) {
        message.settle.reject(new UnknownInventoryError(message.inventoryId));
        continue;
      }
      if (message.kind === 'available') {
        const remaining = level.remaining;
        answers.push(() => message.settle.resolve(remaining));
        continue;
      }
      rejections.push(message.settle.reject);
      if (message.qty <= level.remaining) {
        const next = { remaining: level.remaining - message.qty, sold: level.sold + message.qty };
        working.set(message.inventoryId, next);
        events.push({ type: 'reserved', inventoryId: message.inventoryId, qty: message.qty, level: next });
        answers.push(() => message.settle.resolve({ success: true, remaining: next.remaining }));
      } else {
        const remaining = level.remaining;
        answers.push(() => message.settle.resolve({ success: false, remaining }));
      }
    }

    if (events.length > 0) {
      try {
        await this.store.commit(events);
      } catch (error) {
        // Nothing of this batch happened. Reserves fail; reads answer from the committed state.
        const failure = new StoreUnavailableError(error);
        for (const reject of rejections) reject(failure);
        for (const message of batch) {
          if (message.kind === 'available') {
            const level = this.#state.get(message.inventoryId);
            if (level) message.settle.resolve(level.remaining);
          }
        }
        return;
      }
      for (const [id, level] of working) this.#state.set(id, level);
    }
    for (const answer of answers) answer();
  }
}
