/**
 * Small rolling windows of what happened lately, for the live dashboard:
 * requests per second and their p99 over the last minute, and tickets sold
 * per 10 s over the last minutes. Each update is a few array writes (they sit
 * on the hot path); the work of summing is done when somebody reads.
 */

/** Latency buckets per doubling: a p99 is reported to within 2^(1/8) ≈ 9 %. */
const BUCKETS_PER_DOUBLING = 8;
/** Buckets from 1 µs to 2^25 µs (33 s); slower requests land in the last one. */
const LATENCY_BUCKETS = 25 * BUCKETS_PER_DOUBLING + 1;

/** What {@link RecentRequests} reports of the last minute. */
export interface RecentRequestsSummary {
  /** Requests answered per second, averaged over the window (or over the time since the first, if shorter). */
  perSecond: number;
  /** The 99th percentile of their latency, in ms (the upper bound of its bucket); null with no request. */
  p99Ms: number | null;
  /** Requests answered in the window. */
  count: number;
  /** The seconds the figures cover. */
  seconds: number;
}

/**
 * Requests answered and their latency over the last `seconds` (one slot a
 * second, each with a log-scale histogram), fed by the metrics middleware.
 *
 * @example
 * const recent = new RecentRequests();
 * recent.observe(0.002, performance.now());
 * recent.summary(performance.now()); // { perSecond: 0.01…, p99Ms: 2.0…, count: 1, seconds: 60 }
 */
export class RecentRequests {
  readonly #seconds: number;
  /** Which second each slot holds, so that a slot left from an earlier lap is known stale. */
  readonly #slotSecond: Float64Array;
  readonly #counts: Uint32Array;
  /** One histogram per slot, side by side. */
  readonly #histograms: Uint32Array;
  #firstSecond: number | null = null;

  constructor(seconds = 60) {
    this.#seconds = seconds;
    this.#slotSecond = new Float64Array(seconds).fill(-1);
    this.#counts = new Uint32Array(seconds);
    this.#histograms = new Uint32Array(seconds * LATENCY_BUCKETS);
  }

  /** Counts one request that took `latencySeconds`, answered at `nowMs` (performance.now()). */
  observe(latencySeconds: number, nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    const slot = second % this.#seconds;
    if (this.#slotSecond[slot] !== second) {
      this.#slotSecond[slot] = second;
      this.#counts[slot] = 0;
      this.#histograms.fill(0, slot * LATENCY_BUCKETS, (slot + 1) * LATENCY_BUCKETS);
      this.#firstSecond ??= second;
    }
    this.#counts[slot]! += 1;
    const micros = latencySeconds * 1e6;
    const bucket = micros <= 1 ? 0 : Math.min(LATENCY_BUCKETS - 1, Math.ceil(Math.log2(micros) * BUCKETS_PER_DOUBLING));
    this.#histograms[slot * LATENCY_BUCKETS + bucket]! += 1;
  }

  /** Requests per second and p99 over the window that ends at `nowMs` (performance.now()). */
  summary(nowMs: number): RecentRequestsSummary {
    const now = Math.floor(nowMs / 1000);
    const merged = new Uint32Array(LATENCY_BUCKETS);
    let count = 0;
    for (let slot = 0; slot < this.#seconds; slot++) {
      const second = this.#slotSecond[slot]!;
      if (second < 0 || second > now || now - second >= this.#seconds) continue;
      count += this.#counts[slot]!;
      const start = slot * LATENCY_BUCKETS;
      for (let bucket = 0; bucket < LATENCY_BUCKETS; bucket++) merged[bucket]! += this.#histograms[start + bucket]!;
    }
    // Before a whole window has passed, the rate is over the time there has been.
    const seconds = Math.max(1, Math.min(this.#seconds, this.#firstSecond === null ? 1 : now - this.#firstSecond + 1));
    return { perSecond: count / seconds, p99Ms: quantileMs(merged, count, 0.99), count, seconds };
  }
}

function quantileMs(histogram: Uint32Array, count: number, quantile: number): number | null {
  if (count === 0) return null;
  const rank = Math.ceil(count * quantile);
  let seen = 0;
  for (let bucket = 0; bucket < histogram.length; bucket++) {
    seen += histogram[bucket]!;
    if (seen >= rank) return 2 ** (bucket / BUCKETS_PER_DOUBLING) / 1000;
  }
  return null;
}

/** Tickets sold per step, oldest first, as {@link SalesSeries} reports them. */
export interface SalesRate {
  /** Seconds per step. */
  stepSeconds: number;
  /** Tickets sold in each step, oldest first; the last is the step under way. */
  steps: number[];
  /** ms since the epoch at which the last step began. */
  lastStepStart: number;
}

/** One event's counts: which step each slot holds, and its tickets. */
interface EventSlots {
  steps: Float64Array;
  tickets: Uint32Array;
  lastStep: number;
}

/**
 * Tickets sold per step (10 s) over the last `steps` steps (5 minutes), over
 * all events and per event, fed by what the stock actor reports (each sale
 * once, replays never). Events keep their counts while they sell; an event
 * that sold nothing for a whole window is forgotten at the next read.
 *
 * @example
 * const sales = new SalesSeries();
 * sales.add('gala', 2);
 * sales.rate().steps.at(-1); // 2
 * sales.rate('gala').steps.at(-1); // 2
 */
export class SalesSeries {
  readonly #stepMs: number;
  readonly #size: number;
  readonly #now: () => number;
  readonly #all: EventSlots;
  readonly #events = new Map<string, EventSlots>();

  constructor(options: { stepSeconds?: number; steps?: number; now?: () => number } = {}) {
    this.#stepMs = (options.stepSeconds ?? 10) * 1000;
    this.#size = options.steps ?? 30;
    this.#now = options.now ?? Date.now;
    this.#all = this.#slots();
  }

  /** Counts `tickets` sold now for `eventId`. */
  add(eventId: string, tickets: number): void {
    const step = Math.floor(this.#now() / this.#stepMs);
    this.#count(this.#all, step, tickets);
    let slots = this.#events.get(eventId);
    if (!slots) {
      slots = this.#slots();
      this.#events.set(eventId, slots);
    }
    this.#count(slots, step, tickets);
  }

  /** Tickets per step over the window, of one event or (without `eventId`) of all. */
  rate(eventId?: string): SalesRate {
    const step = Math.floor(this.#now() / this.#stepMs);
    if (eventId === undefined) this.#forgetIdle(step);
    const slots = eventId === undefined ? this.#all : this.#events.get(eventId);
    const steps = new Array<number>(this.#size).fill(0);
    if (slots) {
      for (let i = 0; i < this.#size; i++) {
        const wanted = step - (this.#size - 1 - i);
        const slot = wanted % this.#size;
        if (slots.steps[slot] === wanted) steps[i] = slots.tickets[slot]!;
      }
    }
    return { stepSeconds: this.#stepMs / 1000, steps, lastStepStart: step * this.#stepMs };
  }

  /** Events with counts kept (those that sold within the window, or until the next read of all). */
  get trackedEvents(): number {
    return this.#events.size;
  }

  #slots(): EventSlots {
    return { steps: new Float64Array(this.#size).fill(-1), tickets: new Uint32Array(this.#size), lastStep: -1 };
  }

  #count(slots: EventSlots, step: number, tickets: number): void {
    const slot = step % this.#size;
    if (slots.steps[slot] !== step) {
      slots.steps[slot] = step;
      slots.tickets[slot] = 0;
    }
    slots.tickets[slot]! += tickets;
    slots.lastStep = step;
  }

  #forgetIdle(step: number): void {
    for (const [eventId, slots] of this.#events) {
      if (step - slots.lastStep >= this.#size) this.#events.delete(eventId);
    }
  }
}
