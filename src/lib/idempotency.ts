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

  async run<T>(key: string | undefined, work: () => Promise<T>): Promise<T> {
    if (key === undefined) return work();
    if (this.#keys.has(key)) {
      throw new ProblemError(
        'idempotencyKeyInFlight',
        'A request with this Idempotency-Key is still being processed; retry later',
        {
          headers: { 'Retry-After': '1' },
        },
      );
    }
    this.#keys.add(key);
    try {
      return await work();
    } finally {
      this.#keys.delete(key);
    }
  }
}
