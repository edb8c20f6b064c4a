import type { Context, MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import { Gauge, Histogram, Registry } from 'prom-client';
import type { StockLevel } from '../stock/model.ts';
import { RecentRequests, SalesSeries } from './recent.ts';

/** What the stock actor reports as it works: batch sizes and how long the store took. */
export interface ActorObserver {
  batch(size: number): void;
  /** Seconds one store call took, and whether it failed. */
  commit(seconds: number, failed: boolean): void;
}

/** What a scrape reads of the stock this process owns (the stock actor). */
export interface WatchedStock {
  snapshot(): StockLevel | undefined;
  stats(): { mailboxDepth: number; idempotencyKeys: number | undefined };
  heldTickets(): number | undefined;
}

/**
 * What happened to holds and orders (the stock actor's `onOutcome`). `sold`:
 * tickets that became sold in an order (a purchase, a reserve, a confirmed
 * hold), once per decision, never for a replay.
 */
export type StockOutcome =
  | { kind: 'hold'; status: 'held' | 'confirmed' | 'released' | 'expired'; count: number; tickets: number }
  | { kind: 'sold'; eventId: string; tickets: number }
  | { kind: 'order-cancelled' };

export type PurchaseOutcome = 'sold' | 'insufficient' | 'replayed' | 'rejected';

/** Latency buckets in seconds, from a fast in-memory answer to a vacancy call at its deadline. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Every metric the service exports on GET /metrics, in one prom-client
 * registry per app (so tests and several apps in one process never mix
 * their counts). Hot-path updates go through cached label children: one
 * map lookup and an addition per request.
 *
 * @example
 * const metrics = new Metrics();
 * metrics.purchase('sold');
 * await metrics.registry.metrics(); // Prometheus text format
 */
export class Metrics {
  readonly registry = new Registry();
  /** Requests and their latency over the last minute (the dashboard), fed by {@link middleware}. */
  readonly recentRequests = new RecentRequests();
  /** Tickets sold per 10 s over the last minutes (the dashboard), fed by {@link stockOutcome}. */
  readonly sales = new SalesSeries();

  readonly #http = new HistogramFamily(
    'http_request_duration_seconds',
    'Time from a request reaching the app to its answer, by method, route pattern and status',
    LATENCY_BUCKETS,
    { name: 'http_requests_total', help: 'HTTP requests answered, by method, route pattern and status' },
  );
  readonly #purchases = new CounterFamily(
    'ticket_purchases_total',
    'Purchases by outcome: sold, insufficient (not enough stock), replayed (Idempotency-Key), rejected (any error answer)',
  );
  readonly #reservations = new CounterFamily(
    'ticket_reservations_total',
    'Reserves decided by the stock (POST /api/v1/reserve and each reserve of a batch), by outcome',
  );
  readonly #ticketsSold = new CounterFamily(
    'ticket_tickets_sold_total',
    'Tickets sold by the purchases this process answered (replays not counted again)',
  );
  readonly #holds = new CounterFamily(
    'ticket_holds_total',
    'Holds by outcome: held (taken out of sale), confirmed (into an order), released, expired',
  );
  readonly #heldTicketsByOutcome = new CounterFamily(
    'ticket_hold_tickets_total',
    'Tickets of holds by outcome (held, confirmed, released, expired)',
  );
  readonly #ordersCancelled = new CounterFamily('ticket_orders_cancelled_total', 'Orders cancelled by operators');
  readonly #vacancyCalls = new HistogramFamily(
    'ticket_vacancy_call_duration_seconds',
    'Time a call from the ticket service to vacancy took as its caller saw it (waiting to be coalesced and retries included), by operation and result',
    LATENCY_BUCKETS,
  );
  readonly #vacancyFailures = new CounterFamily(
    'ticket_vacancy_call_failures_total',
    'Calls to vacancy that failed, by operation and reason (unavailable, outcome_unknown, protocol, refused)',
  );
  readonly #batchSize = new Histogram({
    name: 'ticket_actor_batch_size',
    help: 'Messages the stock actor decided in one batch',
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
    registers: [this.registry],
  });
  readonly #commitDuration = new Histogram({
    name: 'ticket_store_commit_duration_seconds',
    help: 'Time the stock store took to decide one batch and make it durable (sqlite: one transaction; redis: one script call per event), by result',
    labelNames: ['result'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  constructor() {
    for (const family of [
      this.#http,
      this.#purchases,
      this.#reservations,
      this.#ticketsSold,
      this.#holds,
      this.#heldTicketsByOutcome,
      this.#ordersCancelled,
      this.#vacancyCalls,
      this.#vacancyFailures,
    ]) {
      family.register(this.registry);
    }
  }

  /** Exports the stock level, mailbox depth and idempotency keys of `actor`, read at each scrape. */
  watchStock(actor: WatchedStock): void {
    const gauge = (name: string, help: string, read: () => number | undefined) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          const value = read();
          if (value !== undefined) this.set(value);
        },
      });
    gauge('ticket_stock_remaining', 'Tickets left in the stock this process owns', () => actor.snapshot()?.remaining);
    gauge(
      'ticket_stock_sold',
      'Tickets sold from the stock this process owns, over its whole life',
      () => actor.snapshot()?.sold,
    );
    gauge('ticket_actor_mailbox_depth', 'Messages waiting for the stock actor', () => actor.stats().mailboxDepth);
    gauge('ticket_idempotency_keys', 'Idempotency keys the stock remembers', () => actor.stats().idempotencyKeys);
    gauge('ticket_tickets_held', 'Tickets out of sale in holds, over all events', () => actor.heldTickets());
  }

  /** Exports the live dashboard's open streams and the snapshots it has read, at each scrape. */
  watchDashboard(feed: { readonly viewers: number; readonly snapshots: number }): void {
    if (this.registry.getSingleMetric('ticket_dashboard_streams')) return;
    new Gauge({
      name: 'ticket_dashboard_streams',
      help: 'Live dashboard streams open (GET /dashboard/stream)',
      registers: [this.registry],
      collect() {
        this.set(feed.viewers);
      },
    });
    this.registry.registerMetric(
      counterMetric(
        'ticket_dashboard_snapshots_total',
        'Snapshots the live dashboard has read (at most 2 a second, only while watched)',
        () => [{ labels: {}, value: feed.snapshots }],
      ) as never,
    );
  }

  /** What happened to holds and orders, as the stock actor reports it. */
  readonly stockOutcome = (outcome: StockOutcome): void => {
    if (outcome.kind === 'sold') {
      this.sales.add(outcome.eventId, outcome.tickets);
      return;
    }
    if (outcome.kind === 'order-cancelled') {
      this.#ordersCancelled.series('', () => ({})).add(1);
      return;
    }
    const { status } = outcome;
    this.#holds.series(status, () => ({ outcome: status })).add(outcome.count);
    this.#heldTicketsByOutcome.series(status, () => ({ outcome: status })).add(outcome.tickets);
  };

  /** What the stock actor reports: batch sizes and commit latency. */
  readonly actorObserver: ActorObserver = {
    batch: (size) => this.#batchSize.observe(size),
    commit: (seconds, failed) => this.#commitDuration.observe({ result: failed ? 'error' : 'ok' }, seconds),
  };

  purchase(outcome: PurchaseOutcome, qty = 0): void {
    this.#purchases.series(outcome, () => ({ outcome })).add(1);
    if (outcome === 'sold') this.#ticketsSold.series('', () => ({})).add(qty);
  }

  reservation(outcome: PurchaseOutcome): void {
    this.#reservations.series(outcome, () => ({ outcome })).add(1);
  }

  vacancyCall(operation: string, seconds: number, failure?: string): void {
    const result = failure === undefined ? 'ok' : 'error';
    this.#vacancyCalls.series(`${operation} ${result}`, () => ({ operation, result })).add(seconds);
    if (failure !== undefined) {
      this.#vacancyFailures.series(`${operation} ${failure}`, () => ({ operation, reason: failure })).add(1);
    }
  }

  /** Counts and times every request, labelled with the route pattern that answered it. */
  middleware(): MiddlewareHandler {
    return async (c, next) => {
      const started = performance.now();
      try {
        await next();
      } finally {
        const ended = performance.now();
        const seconds = (ended - started) / 1000;
        this.recentRequests.observe(seconds, ended);
        const method = c.req.method;
        const route = routeOf(c);
        const status = c.res.status;
        this.#http
          .series(`${method} ${status} ${route}`, () => ({ method, route, status: String(status) }))
          .add(seconds);
      }
    };
  }
}

/** The pattern of the route that answered, or `unmatched` (so that unknown paths cannot grow the label set). */
function routeOf(c: Context): string {
  const pattern = routePath(c, -1);
  return pattern === '' || pattern.endsWith('*') ? 'unmatched' : pattern;
}

type Labels = Record<string, string>;

/** One labelled series: `add` counts one observation (histograms) or adds to the total (counters). */
interface Series {
  add(value: number): void;
}

/** What prom-client's registry reads from a metric at scrape time. */
interface MetricValue {
  value: number;
  labels: Labels;
  metricName?: string;
}

/** A prom-client metric object that reports `values()` as a counter at scrape time. */
function counterMetric(name: string, help: string, values: () => MetricValue[]) {
  return {
    name,
    help,
    type: 'counter',
    get: () => ({ name, help, type: 'counter', aggregator: 'sum', values: values() }),
  };
}

/**
 * Metrics whose update is one addition on a series object, kept per label
 * set: prom-client's own counters hash and validate their labels on every
 * increment, which costs a request more than everything else it measures.
 * Scraped through prom-client's registry like any of its metrics.
 */
abstract class Family<Entry extends { labels: Labels }> {
  protected readonly entries: Entry[] = [];
  readonly #byId = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  /** The series of one label set, named by `id`; `labels` is asked the first time only. */
  series(id: string, labels: () => Labels): Series {
    let series = this.#byId.get(id);
    if (!series) {
      series = this.create(labels());
      this.#byId.set(id, series);
    }
    return series;
  }

  protected abstract create(labels: Labels): Series;

  abstract register(registry: Registry): void;
}

class CounterFamily extends Family<{ labels: Labels; total: number }> {
  protected create(labels: Labels): Series {
    const entry = { labels, total: 0 };
    this.entries.push(entry);
    return { add: (value) => void (entry.total += value) };
  }

  register(registry: Registry): void {
    registry.registerMetric(
      counterMetric(this.name, this.help, () =>
        this.entries.map(({ labels, total }) => ({ labels, value: total })),
      ) as never,
    );
  }
}

/** A histogram with the same cheap update; optionally also exported as a counter of its observations. */
class HistogramFamily extends Family<{ labels: Labels; buckets: Float64Array; sum: number; count: number }> {
  constructor(
    name: string,
    help: string,
    readonly bounds: readonly number[],
    readonly countAlso?: { name: string; help: string },
  ) {
    super(name, help);
  }

  protected create(labels: Labels): Series {
    const entry = { labels, buckets: new Float64Array(this.bounds.length), sum: 0, count: 0 };
    this.entries.push(entry);
    const bounds = this.bounds;
    return {
      add: (value) => {
        entry.sum += value;
        entry.count += 1;
        for (let i = 0; i < bounds.length; i++) {
          if (value <= bounds[i]!) {
            entry.buckets[i]! += 1;
            break;
          }
        }
      },
    };
  }

  register(registry: Registry): void {
    registry.registerMetric({
      name: this.name,
      help: this.help,
      type: 'histogram',
      get: () => ({ name: this.name, help: this.help, type: 'histogram', aggregator: 'sum', values: this.#values() }),
    } as never);
    if (this.countAlso) {
      const { name, help } = this.countAlso;
      registry.registerMetric(
        counterMetric(name, help, () => this.entries.map(({ labels, count }) => ({ labels, value: count }))) as never,
      );
    }
  }

  #values(): MetricValue[] {
    const values: MetricValue[] = [];
    for (const { labels, buckets, sum, count } of this.entries) {
      let cumulative = 0;
      this.bounds.forEach((bound, index) => {
        cumulative += buckets[index]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: String(bound) }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: count });
      values.push({ metricName: `${this.name}_sum`, labels, value: sum });
      values.push({ metricName: `${this.name}_count`, labels, value: count });
    }
    return values;
  }
}
