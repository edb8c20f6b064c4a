import { nextTurn } from '../lib/next-turn.ts';

/**
 * Group commit for calls: items submitted while `maxInFlight` sends are
 * already under way wait, and go together in the next send, up to
 * `maxItems` at a time. With little load every item goes alone and at once;
 * under load the sends grow instead of queueing up one by one. Items
 * submitted in the same turn of the event loop go in the same send.
 *
 * `send` answers each item with its result or an Error (that item's
 * failure); a rejected send fails every item it carried.
 *
 * @example
 * const reserves = new Coalescer((items) => postBatch(items), { maxItems: 200, maxInFlight: 4 });
 * const result = await reserves.submit({ qty: 1, key });
 */
export class Coalescer<Item, Result> {
  readonly #send: (items: Item[]) => Promise<Array<Result | Error>>;
  readonly #maxItems: number;
  readonly #maxInFlight: number;
  #waiting: Array<{ item: Item; resolve: (result: Result) => void; reject: (error: unknown) => void }> = [];
  #inFlight = 0;
  #scheduled = false;

  constructor(
    send: (items: Item[]) => Promise<Array<Result | Error>>,
    options: { maxItems: number; maxInFlight: number },
  ) {
    if (!(options.maxItems >= 1 && options.maxInFlight >= 1))
      throw new Error('Coalescer needs maxItems and maxInFlight >= 1');
    this.#send = send;
    this.#maxItems = options.maxItems;
    this.#maxInFlight = options.maxInFlight;
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
    while (this.#inFlight < this.#maxInFlight && this.#waiting.length > 0) {
      const batch = this.#waiting.splice(0, this.#maxItems);
      this.#inFlight++;
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
          this.#inFlight--;
          this.#pump();
        });
    }
  }
}
