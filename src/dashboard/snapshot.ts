/**
 * What the dashboard shows, read from the stock actor and the metrics: an
 * overview every viewer shares (the service, the sales rate, the latest
 * orders and the holds that expire first) and a page of events per viewer.
 * Reads only; each is a message to the actor, which batches it with the sales.
 */
import type { Mode } from '../config.ts';
import type { Metrics } from '../lib/metrics.ts';
import type { RecentRequestsSummary, SalesRate } from '../lib/recent.ts';
import { UnknownEventError } from '../stock/errors.ts';
import { ID_PATTERN, type EventRecord, type HoldRecord, type OrderRecord } from '../stock/model.ts';
import type { StoreHealth } from '../stock/store.ts';
import { eventView, type EventView } from '../stock/views.ts';
import type { StockActor } from '../vacancy/stock-actor.ts';

/** Events on one page of the dashboard. */
export const EVENTS_PER_PAGE = 20;
/** Orders and holds listed. */
export const LATEST_ROWS = 10;

/** What the dashboard reads of the stock: the actor, or a stand-in in tests. */
export type DashboardStock = Pick<
  StockActor,
  'listEvents' | 'getEvent' | 'recentOrders' | 'expiringHolds' | 'storeHealth' | 'storeKind' | 'stats'
>;

/** Which events a viewer looks at: those whose id starts with `prefix` ('' for all), after the id `after`. */
export interface EventsQuery {
  prefix: string;
  after: string | null;
}

/** The service's own figures. */
export interface ServiceFigures {
  name: string;
  mode: Mode;
  version: string;
  store: StoreHealth;
  /** Requests over the last minute; null when request metrics are off (METRICS=false). */
  requests: RecentRequestsSummary | null;
  mailboxDepth: number;
  shuttingDown: boolean;
}

/** What every viewer sees alike, as of `at` (ms since the epoch). */
export interface Overview {
  at: number;
  service: ServiceFigures;
  sales: SalesRate;
  /** Newest first; null when the store could not be read (see `error`). */
  orders: OrderRecord[] | null;
  /** Soonest expiry first; null when the store could not be read. */
  holds: HoldRecord[] | null;
  error?: string;
}

/** One event with its sales over the last minutes. */
export type EventFigures = EventView & { sales: SalesRate };

/** One page of events for one {@link EventsQuery}. */
export interface EventsPage {
  query: EventsQuery;
  /** null when the store could not be read (see `error`). */
  events: EventFigures[] | null;
  /** The id to continue after for the next page; null on the last one. */
  next: string | null;
  error?: string;
}

/** Where the dashboard reads from. */
export interface SnapshotSources {
  stock: DashboardStock;
  metrics: Metrics;
  /** Whether the metrics middleware runs (METRICS): without it there are no request figures. */
  requestMetrics: boolean;
  service: { name: string; mode: Mode; version: string };
  lifecycle: { shuttingDown: boolean };
  now?: () => number;
}

/**
 * Reads a viewer's query from the page's URL: `q` (an id prefix, lowercased;
 * anything an id cannot hold matches nothing) and `after` (the cursor).
 */
export function eventsQuery(params: { q?: string | undefined; after?: string | undefined }): EventsQuery {
  const prefix = (params.q ?? '').trim().toLowerCase().slice(0, 64);
  const after = params.after && ID_PATTERN.test(params.after) ? params.after : null;
  return { prefix, after };
}

/** The part of the dashboard every viewer shares. */
export async function readOverview(sources: SnapshotSources): Promise<Overview> {
  const { stock, metrics } = sources;
  const at = (sources.now ?? Date.now)();
  const service: ServiceFigures = {
    ...sources.service,
    store: stock.storeHealth(),
    requests: sources.requestMetrics ? metrics.recentRequests.summary(performance.now()) : null,
    mailboxDepth: stock.stats().mailboxDepth,
    shuttingDown: sources.lifecycle.shuttingDown,
  };
  const sales = metrics.sales.rate();
  try {
    const [orders, holds] = await Promise.all([
      stock.recentOrders(null, LATEST_ROWS),
      stock.expiringHolds(null, LATEST_ROWS),
    ]);
    return { at, service, sales, orders, holds };
  } catch (error) {
    return { at, service, sales, orders: null, holds: null, error: reason(error) };
  }
}

/**
 * A page of events. With a prefix, the events whose ids start with it: they
 * follow each other in id order from the prefix on, so the store's id-ordered
 * listing finds them without a scan, however many events there are.
 */
export async function readEventsPage(stock: DashboardStock, metrics: Metrics, query: EventsQuery): Promise<EventsPage> {
  const { prefix, after } = query;
  try {
    let records: EventRecord[];
    let next: string | null;
    if (prefix === '') {
      ({ events: records, next } = await stock.listEvents(after, EVENTS_PER_PAGE));
    } else if (!/^[a-z0-9-]+$/.test(prefix)) {
      return { query, events: [], next: null };
    } else {
      // The prefix itself is an id that sorts before every other id it starts.
      const exact = after === null ? await stock.getEvent(prefix).then((e) => [e], ignoreUnknown) : [];
      const page = await stock.listEvents(after ?? prefix, EVENTS_PER_PAGE - exact.length);
      const matching = page.events.filter((event) => event.id.startsWith(prefix));
      records = [...exact, ...matching];
      next = matching.length < page.events.length ? null : page.next;
    }
    const events = records.map((record) => ({ ...eventView(record), sales: metrics.sales.rate(record.id) }));
    return { query, events, next };
  } catch (error) {
    return { query, events: null, next: null, error: reason(error) };
  }
}

function ignoreUnknown(error: unknown): EventRecord[] {
  if (error instanceof UnknownEventError) return [];
  throw error;
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
