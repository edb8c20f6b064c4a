/**
 * Pure arithmetic of the benchmark: latency percentiles, medians over rounds,
 * ratios to the baseline. No I/O, so bench/run.test.ts checks it with fixed inputs.
 */

/** Latencies (ms) of one run, appended as responses arrive; grows without copying per sample. */
export class LatencyRecorder {
  #values = new Float64Array(1 << 16);
  #count = 0;

  add(ms: number): void {
    if (this.#count === this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2);
      grown.set(this.#values);
      this.#values = grown;
    }
    this.#values[this.#count++] = ms;
  }

  get count(): number {
    return this.#count;
  }

  /** p50/p95/p99/max in ms, or null when nothing was recorded. */
  summary(): LatencySummary | null {
    return summarizeLatencies(this.#values.subarray(0, this.#count));
  }
}

export interface LatencySummary {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/**
 * Nearest-rank percentile of an ascending array: the smallest value with at
 * least p% of the values at or below it.
 *
 * @example
 * percentile([1, 2, 3, 4], 50); // 2
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) throw new RangeError('percentile of an empty list');
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} is outside 0..100`);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

/** Sorts a copy of `latencies` and reads p50, p95, p99 and max from it. */
export function summarizeLatencies(latencies: ArrayLike<number>): LatencySummary | null {
  if (latencies.length === 0) return null;
  const sorted = Float64Array.from(latencies).sort();
  return {
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] as number,
  };
}

/**
 * Median of the values that are numbers (null and NaN are skipped); null if none is.
 * An even count gives the mean of the middle two.
 *
 * @example
 * median([3, 1, 2]); // 2
 * median([4, null, 1, 2, 3]); // 2.5
 */
export function median(values: ReadonlyArray<number | null | undefined>): number | null {
  const numbers = values.filter((v): v is number => typeof v === 'number' && !Number.isNaN(v)).sort((a, b) => a - b);
  if (numbers.length === 0) return null;
  const middle = numbers.length >> 1;
  return numbers.length % 2 === 1
    ? (numbers[middle] as number)
    : ((numbers[middle - 1] as number) + (numbers[middle] as number)) / 2;
}

/** `value / reference`, or null when either is missing or the reference is not positive. */
export function ratio(value: number | null | undefined, reference: number | null | undefined): number | null {
  if (typeof value !== 'number' || typeof reference !== 'number' || !(reference > 0)) return null;
  return value / reference;
}

/** Rounds to `digits` decimals (for reports; the raw JSON keeps what was measured). */
export function round(value: number, digits = 2): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** The list turned left by `by` places (wrapping), so each round starts with another target. */
export function rotate<T>(list: readonly T[], by: number): T[] {
  if (list.length === 0) return [];
  const shift = ((by % list.length) + list.length) % list.length;
  return [...list.slice(shift), ...list.slice(0, shift)];
}
