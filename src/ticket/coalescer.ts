import { nextTurn } from '../lib/next-turn.ts';

export interface CoalescerOptions {
  /** Most items in one send. */
  maxItems: number;
  /** Most sends under way at once. */
  maxInFlight: number;
  /**
   * With a send under way, further items wait for it to end and go together
   * in the next send, unless every send under way has taken this long
   * already: then another starts with them (up to `maxInFlight`). Under load
   * the sends then grow instead of multiplying, and a slow send (a retry's
   * backoff, a replica that does not answer) holds the items behind it up
   * to this long. Default 0: start sends up to `maxInFlight` at once.
   */
  spareAfterMs?: number;
}

/**
 * Group commit for calls: items submitted while sends are already under way
 * wait, and go together in the next send, up to `maxItems` at a time. With
 * little load every item goes alone and at once; under load the sends grow
 * instead of queueing up one by one. Items submitted in the same turn of the
 * event loop go in the same send.
 *
 * `send` answers each item with its result or an Error (that item's
 * failure); a rejected send fails every item it carried.
 *
 * @example
 * const reserves = new Coalescer((items) => postBatch(items), { maxItems: 200, maxInFlight: 4, spareAfterMs: 20 });
 * const result = await reserves.submit({ qty: 1, key });
 */
export class Coalescer<Item, Result> {
  readonly #send: (items: Item[]) => Promise<Array<Result | Error>>;
  readonly #maxItems: number;
  readonly #maxInFlight: number;
  readonly #spareAfterMs: number;
  #waiting: Array<{ item: Item; resolve: (result: Result) => void; reject: (error: unknown) => void }> = [];
  /** When each send under way started (performance.now()), oldest first. */
  readonly #started: number[] = [];
  #scheduled = false;
  #spareTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(send: (items: Item[]) => Promise<Array<Result | Error>>, options: CoalescerOptions) {
    if (!(options.maxItems >= 1 && options.maxInFlight >= 1))
      throw new Error('Coalescer needs maxItems and maxInFlight >= 1');
    this.#send = send;
    this.#maxItems = options.maxItems;
    this.#maxInFlight = options.maxInFlight;
    this.#spareAfterMs = Math.max(0, options.spareAfterMs ?? 0);
  }

  submit(item: Item): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        nextTurn(() => {
          this.#scheduled = false;
          this.#pump();
        });
      }
    });
  }

  #pump(): void {
    while (this.#started.length < this.#maxInFlight && this.#waiting.length > 0) {
      if (!this.#mayStartAnother()) return;
      const batch = this.#waiting.splice(0, this.#maxItems);
      const started = performance.now();
      this.#started.push(started);
      this.#send(batch.map((entry) => entry.item))
        .then(
          (results) => {
            batch.forEach((entry, index) => {
              const result = results[index];
              if (result === undefined)
                entry.reject(new Error(`no result for item ${index} of a batch of ${batch.length}`));
              else if (result instanceof Error) entry.reject(result);
              else entry.resolve(result);
            });
          },
          (error: unknown) => {
            for (const entry of batch) entry.reject(error);
          },
        )
        .finally(() => {
          this.#started.splice(this.#started.indexOf(started), 1);
          this.#pump();
        });
    }
  }

  /**
   * Whether a send may start now: when none is under way, or every one under way is older than
   * spareAfterMs. Otherwise the pump is called again once the youngest send reaches that age.
   */
  #mayStartAnother(): boolean {
    if (this.#started.length === 0 || this.#spareAfterMs === 0) return true;
    const youngest = Math.max(...this.#started);
    const waitMs = youngest + this.#spareAfterMs - performance.now();
    if (waitMs <= 0) return true;
    if (this.#spareTimer === undefined) {
      this.#spareTimer = setTimeout(() => {
        this.#spareTimer = undefined;
        this.#pump();
      }, Math.ceil(waitMs));
    }
    return false;
  }
}
