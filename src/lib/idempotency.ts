import { ProblemError } from './problem.ts';

export const IDEMPOTENCY_KEY_HEADER = 'Idempotency-Key';
export const IDEMPOTENT_REPLAYED_HEADER = 'Idempotent-Replayed';
/**
 * The idempotency keys this process is deciding right now. A second request
 * with a key that is still in flight gets 409 instead of waiting or racing;
 * once the first is answered, the key's recorded outcome is replayed.
 *
 * @example
 * const inFlight = new InFlightKeys();
 * const outcome = await inFlight.run(key, () => tickets.purchase(qty, { idempotencyKey: key }));
 */
export class InFlightKeys {
  readonly #keys = new Set<string>();

  /** Runs `work` with `key` in flight, or rejects with 409 if it already is. No async frame of its own: a batch runs one per item. */
  run<T>(key: string | undefined, work: () => Promise<T>): Promise<T> {
    if (key === undefined) return started(work);
    if (this.#keys.has(key)) {
      return Promise.reject(
        new ProblemError(
          'idempotencyKeyInFlight',
          'A request with this Idempotency-Key is still being processed; retry later',
          {
            headers: { 'Retry-After': '1' },
          },
        ),
      );
    }
    const keys = this.#keys;
    keys.add(key);
    return started(work).finally(() => keys.delete(key));
  }
}

/** `work()`, with a synchronous throw turned into a rejection. */
function started<T>(work: () => Promise<T>): Promise<T> {
  try {
    return work();
  } catch (error) {
    return Promise.reject(error);
  }
}
