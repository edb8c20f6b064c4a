/** @jsxImportSource hono/jsx */
/**
 * The dashboard's HTML, rendered on the server with hono/jsx: the whole page
 * for GET /dashboard, and each live section on its own for the stream, so a
 * live update is the same markup the page started with. No inline script or
 * style (the policy allows neither): bars and charts are SVG shapes whose
 * sizes are attributes, coloured by the served stylesheet.
 */
import type { Child } from 'hono/jsx';
import type { SalesRate } from '../lib/recent.ts';
import { ID_TIME_LENGTH, type HoldRecord, type OrderRecord } from '../stock/model.ts';
import type { EventFigures, EventsPage, EventsQuery, Overview, ServiceFigures } from './snapshot.ts';

/**
 * The parts of the page a live update replaces, by the `data-live` name of
 * their container: the fixed sections, and each event's card as
 * `event:<id>` inside `events` (the list of cards, sent again only when which
 * events are on the page changes).
 */
export type SectionName = 'status' | 'service' | 'sales' | 'events' | 'orders' | 'holds' | `event:${string}`;
export type Sections = Record<string, string>;

const number = new Intl.NumberFormat('en-US');
const decimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

/**
 * Renders event cards, each again only when its figures have changed: during
 * a sale a page of twenty events mostly has one or two that move.
 */
export class CardRenderer {
  #cards = new Map<string, { figures: string; html: string }>();

  render(event: EventFigures): string {
    const figures = JSON.stringify(event);
    const known = this.#cards.get(event.id);
    if (known?.figures === figures) return known.html;
    const html = String(<EventCard event={event} />);
    this.#cards.set(event.id, { figures, html });
    return html;
  }

  /** Forgets the cards of events no page shows any more. */
  keepOnly(ids: ReadonlySet<string>): void {
    for (const id of this.#cards.keys()) if (!ids.has(id)) this.#cards.delete(id);
  }
}

/**
 * Renders every live section of a snapshot to HTML: `events` holds the cards'
 * places, empty; each card is its own section (see {@link SectionName}).
 */
export function renderSections(overview: Overview, page: EventsPage, cards = new CardRenderer()): Sections {
  const sections: Sections = {
    status: String(<Status overview={overview} />),
    service: String(<Service service={overview.service} />),
    sales: String(<SalesFigure rate={overview.sales} />),
    events: String(<Events page={page} />),
    orders: String(<Orders overview={overview} />),
    holds: String(<Holds overview={overview} />),
  };
  for (const event of page.events ?? []) sections[`event:${event.id}`] = cards.render(event);
  return sections;
}

export interface PageProps {
  title: string;
  overview: Overview;
  page: EventsPage;
  /** Where the script is served from (and the stylesheet beside it). */
  assetsPath: string;
}

/** The whole page for GET /dashboard. */
export function renderPage({ title, overview, page, assetsPath }: PageProps): string {
  const sections = renderSections(overview, page);
  // The cards in their places, as the page's script puts them.
  sections.events = String(<Events page={page} cards={sections} />);
  const { query } = page;
  const live = (name: SectionName, tag: 'div' | 'p' = 'div') => {
    const Tag = tag;
    return <Tag data-live={name} dangerouslySetInnerHTML={{ __html: sections[name] ?? '' }} />;
  };
  return (
    '<!doctype html>' +
    String(
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <meta name="color-scheme" content="light dark" />
          <title>{title}</title>
          <link rel="stylesheet" href={`${assetsPath}/dashboard.css`} />
          <link rel="icon" type="image/svg+xml" href={`${assetsPath}/icon.svg`} />
          <script src={`${assetsPath}/dashboard.js`} defer />
        </head>
        <body data-stream={streamUrl(query)}>
          <a class="skip" href="#events">
            Skip to the events
          </a>
          <header class="top">
            <h1>Live sales</h1>
            <p class="subtitle">
              {overview.service.name} · {overview.service.mode} · {overview.service.version}
            </p>
            <p class="connection" role="status" data-connection="connecting">
              Live updates: connecting…
            </p>
          </header>
          <main>
            <div class="overview">
              <section id="service" aria-labelledby="service-title" class="panel">
                <h2 id="service-title">Service</h2>
                {live('service')}
              </section>
              <section id="sales" aria-labelledby="sales-title" class="panel">
                <h2 id="sales-title">Sales rate</h2>
                {live('sales')}
              </section>
            </div>
            <section id="events" aria-labelledby="events-title" class="panel" tabindex={-1}>
              <h2 id="events-title">Events</h2>
              <form class="search" role="search" method="get" action="/dashboard">
                <label for="q">Event id starts with</label>
                <input id="q" name="q" type="search" value={query.prefix} autocomplete="off" spellcheck={false} />
                <button type="submit">Find</button>
                {query.prefix || query.after ? <a href="/dashboard">All events</a> : ''}
              </form>
              {live('events')}
              <Pages page={page} />
            </section>
            <div class="lists">
              <section id="orders" aria-labelledby="orders-title" class="panel">
                <h2 id="orders-title">Latest orders</h2>
                {live('orders')}
              </section>
              <section id="holds" aria-labelledby="holds-title" class="panel">
                <h2 id="holds-title">Holds that expire first</h2>
                {live('holds')}
              </section>
            </div>
          </main>
          <footer>{live('status', 'p')}</footer>
        </body>
      </html>,
    )
  );
}

/** The stream a page with `query` listens to. */
export function streamUrl(query: EventsQuery): string {
  const params = new URLSearchParams();
  if (query.prefix) params.set('q', query.prefix);
  if (query.after) params.set('after', query.after);
  const search = params.toString();
  return `/dashboard/stream${search ? `?${search}` : ''}`;
}

function pageUrl(query: EventsQuery, after: string | null): string {
  const params = new URLSearchParams();
  if (query.prefix) params.set('q', query.prefix);
  if (after) params.set('after', after);
  const search = params.toString();
  return `/dashboard${search ? `?${search}` : ''}#events`;
}

function Pages({ page }: { page: EventsPage }) {
  const { query, next } = page;
  if (!query.after && !next) return <></>;
  return (
    <nav class="pages" aria-label="Pages of events">
      {query.after ? <a href={pageUrl(query, null)}>First page</a> : ''}
      {next ? (
        <a href={pageUrl(query, next)} rel="next">
          Next page
        </a>
      ) : (
        ''
      )}
    </nav>
  );
}

function Status({ overview }: { overview: Overview }) {
  const at = new Date(overview.at);
  return (
    <>
      Figures as of <Time at={at} />
      {overview.service.shuttingDown ? ' · the service is shutting down' : ''}
    </>
  );
}

function Service({ service }: { service: ServiceFigures }) {
  const { store, requests } = service;
  const storeState = service.shuttingDown
    ? 'shutting down'
    : store.writable
      ? 'healthy'
      : `cannot write${store.error ? `: ${store.error}` : ''}`;
  return (
    <dl class="figures service">
      <div>
        <dt>Mode</dt>
        <dd>{service.mode}</dd>
      </div>
      <div>
        <dt>Store</dt>
        <dd>
          {store.kind}
          {store.durable ? '' : ' (not durable)'}
        </dd>
      </div>
      <div class={store.writable && !service.shuttingDown ? 'ok' : 'bad'}>
        <dt>Store health</dt>
        <dd>{storeState}</dd>
      </div>
      <div>
        <dt>Requests/s</dt>
        <dd>{requests ? decimal.format(requests.perSecond) : 'n/a'}</dd>
      </div>
      <div>
        <dt>p99 latency</dt>
        <dd>{requests?.p99Ms != null ? `${formatMs(requests.p99Ms)}` : '–'}</dd>
      </div>
      <div>
        <dt>Queued</dt>
        <dd>{number.format(service.mailboxDepth)}</dd>
      </div>
      <p class="note">
        {requests
          ? requests.seconds >= 60
            ? 'Requests over the last minute.'
            : `Requests over the ${requests.seconds} s since the first one.`
          : 'Request figures need METRICS=true.'}
      </p>
    </dl>
  );
}

function formatMs(ms: number): string {
  if (ms < 1) return `${decimal.format(ms * 1000)} µs`;
  if (ms < 1000) return `${decimal.format(ms)} ms`;
  return `${decimal.format(ms / 1000)} s`;
}

/** What the sales chart says, for those who cannot see it. */
function salesText(rate: SalesRate): string {
  const total = rate.steps.reduce((sum, n) => sum + n, 0);
  const minutes = Math.round((rate.steps.length * rate.stepSeconds) / 60);
  const lastMinute = rate.steps.slice(-Math.round(60 / rate.stepSeconds)).reduce((sum, n) => sum + n, 0);
  const peak = Math.max(0, ...rate.steps);
  return (
    `${number.format(total)} ${total === 1 ? 'ticket' : 'tickets'} sold in the last ${minutes} minutes, ` +
    `${number.format(lastMinute)} in the last minute; busiest ${rate.stepSeconds} s: ${number.format(peak)}.`
  );
}

function SalesFigure({ rate }: { rate: SalesRate }) {
  return (
    <figure class="sales">
      <SalesChart rate={rate} width={300} height={72} label={salesText(rate)} />
      <div class="axis" aria-hidden="true">
        <span>{Math.round((rate.steps.length * rate.stepSeconds) / 60)} min ago</span>
        <span>now</span>
      </div>
      <figcaption>
        {salesText(rate)} Each bar is {rate.stepSeconds} s.
      </figcaption>
    </figure>
  );
}

/**
 * Bars of tickets sold per step, oldest on the left, scaled to the busiest
 * step: one path (a step with no sales draws nothing), so that twenty events'
 * charts stay small to render and to send.
 */
function SalesChart({ rate, width, height, label }: { rate: SalesRate; width: number; height: number; label: string }) {
  const peak = Math.max(1, ...rate.steps);
  const slot = width / rate.steps.length;
  const gap = Math.min(2, slot / 4);
  let bars = '';
  rate.steps.forEach((tickets, i) => {
    if (tickets === 0) return;
    const h = Math.max(1, (tickets / peak) * (height - 2));
    bars += `M${round(i * slot + gap / 2)} ${height}v${-round(h)}h${round(slot - gap)}v${round(h)}z`;
  });
  return (
    <svg class="chart" viewBox={`0 0 ${width} ${height}`} preserveAspectRatio="none" role="img" aria-label={label}>
      <path class="baseline" d={`M0 ${height - 0.5}H${width}`} />
      {bars ? <path class="bar" d={bars} /> : ''}
    </svg>
  );
}

/** The list of events; each card's place is empty unless `cards` has it. */
function Events({ page, cards }: { page: EventsPage; cards?: Sections }) {
  if (page.events === null) return <p class="bad">The events cannot be read now: {page.error}</p>;
  if (page.events.length === 0) {
    return (
      <p class="empty">{page.query.prefix ? `No event id starts with “${page.query.prefix}”.` : 'No events yet.'}</p>
    );
  }
  return (
    <div class="event-list">
      {page.events.map((event) => (
        <article
          class="event"
          aria-labelledby={`event-${event.id}`}
          data-live={`event:${event.id}`}
          dangerouslySetInnerHTML={{ __html: cards?.[`event:${event.id}`] ?? '' }}
        />
      ))}
    </div>
  );
}

function EventCard({ event }: { event: EventFigures }) {
  const capacity = event.capacity ?? event.ticketTypes.reduce((sum, type) => sum + type.capacity, 0);
  const titleId = `event-${event.id}`;
  const lastMinute = event.sales.steps.slice(-Math.round(60 / event.sales.stepSeconds)).reduce((a, b) => a + b, 0);
  return (
    <>
      <h3 id={titleId}>
        {event.name} <code>{event.id}</code>
      </h3>
      <dl class="figures">
        <div>
          <dt>Capacity</dt>
          <dd>
            {number.format(capacity)}
            {event.capacity === null ? <span class="note"> (sum of types)</span> : ''}
          </dd>
        </div>
        <div class="sold">
          <dt>Sold</dt>
          <dd>{number.format(event.sold)}</dd>
        </div>
        <div class="held">
          <dt>Held</dt>
          <dd>{number.format(event.held)}</dd>
        </div>
        <div class="available">
          <dt>Available</dt>
          <dd>{number.format(event.available)}</dd>
        </div>
        <div>
          <dt>Sold last minute</dt>
          <dd>{number.format(lastMinute)}</dd>
        </div>
      </dl>
      <StockBar
        capacity={capacity}
        sold={event.sold}
        held={event.held}
        available={event.available}
        label={`${event.name}: ${number.format(event.sold)} sold, ${number.format(event.held)} held, ${number.format(event.available)} available of ${number.format(capacity)}`}
      />
      <table class="types">
        <caption>Ticket types</caption>
        <thead>
          <tr>
            <th scope="col">Type</th>
            <th scope="col">Capacity</th>
            <th scope="col">Sold</th>
            <th scope="col">Held</th>
            <th scope="col">Available</th>
          </tr>
        </thead>
        {event.ticketTypes.map((type) => (
          <tbody>
            <tr>
              <th scope="row">
                {type.name} <code>{type.id}</code>
              </th>
              <td>{number.format(type.capacity)}</td>
              <td>{number.format(type.sold)}</td>
              <td>{number.format(type.held)}</td>
              <td>{number.format(type.available)}</td>
            </tr>
            <tr class="bar-row" aria-hidden="true">
              <td colspan={5}>
                <StockBar capacity={type.capacity} sold={type.sold} held={type.held} available={type.available} />
              </td>
            </tr>
          </tbody>
        ))}
      </table>
      <p class="spark-label" aria-hidden="true">
        Sold per {event.sales.stepSeconds} s, last{' '}
        {Math.round((event.sales.steps.length * event.sales.stepSeconds) / 60)} minutes
      </p>
      <SalesChart rate={event.sales} width={240} height={28} label={`${event.name}: ${salesText(event.sales)}`} />
    </>
  );
}

/**
 * Sold, held and available side by side on a track of `capacity`; what is
 * left of the track is out of sale under the event's cap. Without a label it
 * is decoration beside the same figures in text.
 */
function StockBar(props: { capacity: number; sold: number; held: number; available: number; label?: string }) {
  const scale = props.capacity > 0 ? 100 / props.capacity : 0;
  const sold = props.sold * scale;
  const held = props.held * scale;
  const available = Math.min(100 - sold - held, props.available * scale);
  const a11y = props.label ? { role: 'img', 'aria-label': props.label } : { 'aria-hidden': 'true' };
  return (
    <svg class="stock-bar" viewBox="0 0 100 10" preserveAspectRatio="none" {...a11y}>
      <rect class="track" width="100" height="10" />
      {sold > 0 ? <rect class="sold" width={round(sold)} height="10" /> : ''}
      {held > 0 ? <rect class="held" x={round(sold)} width={round(held)} height="10" /> : ''}
      {available > 0 ? <rect class="available" x={round(sold + held)} width={round(available)} height="10" /> : ''}
    </svg>
  );
}

function Orders({ overview }: { overview: Overview }) {
  if (overview.orders === null) return <p class="bad">Orders cannot be read now: {overview.error}</p>;
  if (overview.orders.length === 0) return <p class="empty">No orders yet.</p>;
  return (
    <RecordTable
      columns={['Order', 'Event', 'Items', 'Time']}
      rows={overview.orders.map((order) => {
        const cancelled = order.status === 'cancelled';
        return {
          class: cancelled ? 'cancelled' : undefined,
          cells: [
            <>
              <code>{shortId(order.id)}</code>
              {cancelled ? ' (cancelled)' : ''}
            </>,
            order.eventId,
            items(order),
            <Time at={new Date(order.createdAt)} />,
          ],
        };
      })}
    />
  );
}

function Holds({ overview }: { overview: Overview }) {
  if (overview.holds === null) return <p class="bad">Holds cannot be read now: {overview.error}</p>;
  if (overview.holds.length === 0) return <p class="empty">No tickets are held.</p>;
  return (
    <RecordTable
      columns={['Hold', 'Event', 'Items', 'Expires']}
      rows={overview.holds.map((hold) => ({
        cells: [
          <code>{shortId(hold.id)}</code>,
          hold.eventId,
          items(hold),
          <>
            in {expiresIn(hold.expiresAt - overview.at)} (<Time at={new Date(hold.expiresAt)} />)
          </>,
        ],
      }))}
    />
  );
}

/** A table of records; on a phone each row becomes a block of labelled lines (the labels from `columns`). */
function RecordTable({ columns, rows }: { columns: string[]; rows: Array<{ class?: string; cells: Child[] }> }) {
  return (
    <table class="rows">
      <thead>
        <tr>
          {columns.map((column) => (
            <th scope="col">{column}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((row) => (
          <tr class={row.class}>
            {row.cells.map((cell, index) => (
              <td data-label={columns[index]}>{cell}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/**
 * An id cut to its kind and the first 8 characters of its random part (an
 * order or hold id begins with the time it was made, the same for ids made
 * together): enough to tell orders apart and find one, while a hold's full
 * id (the right to confirm it) never shows on a screen or a screenshot.
 */
export function shortId(id: string): string {
  const randomStart = 'ord_'.length + ID_TIME_LENGTH;
  return id.length > randomStart + 8 ? `${id.slice(0, 4)}${id.slice(randomStart, randomStart + 8)}…` : id;
}

function items(record: OrderRecord | HoldRecord): string {
  return record.items.map((item) => `${number.format(item.qty)} × ${item.typeId}`).join(', ');
}

function expiresIn(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 120) return `${seconds} s`;
  return `${Math.round(seconds / 60)} min`;
}

/** A time of day in UTC; the page's script shows it in the viewer's own time zone. */
function Time({ at }: { at: Date }): Child {
  return <time datetime={at.toISOString()}>{at.toISOString().slice(11, 19)} UTC</time>;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
