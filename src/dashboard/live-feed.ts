/**
 * The dashboard's live updates: one clock for every open stream, that reads
 * and renders a snapshot at most every `intervalMs` (500 ms; further apart,
 * up to 5 s, if rendering is slow, so that it takes no more than 2 % of the
 * process), only while somebody watches, and sends each viewer only the
 * sections that changed since its last update. However fast tickets sell, a
 * viewer gets at most two updates a second, and a sale costs the dashboard
 * nothing: it is counted by the metrics it does anyway, and read here on the
 * clock.
 */
import { CardRenderer, renderSections, type Sections } from './dashboard.view.tsx';
import { readEventsPage, readOverview, type EventsQuery, type SnapshotSources } from './snapshot.ts';

/** One server-sent event, as hono/streaming writes it. */
export interface FeedMessage {
  event: 'snapshot' | 'closing';
  data: string;
  id?: string;
  retry?: number;
}

/** How long a browser waits before it reconnects a dropped stream (sent with the first update). */
export const RECONNECT_MS = 1_000;
/** Snapshots are at least this many times their rendering time apart (so rendering takes at most 2 %). */
const PACING = 50;
/** …but never further apart than this: the page stays live, and a shutdown finds every stream soon. */
const MAX_INTERVAL_MS = 5_000;
/** How long a stream may take to be told of a shutdown before it is ended anyway. */
const CLOSING_GRACE_MS = 250;

interface Viewer {
  query: EventsQuery;
  key: string;
  send(message: FeedMessage): Promise<unknown>;
  end(): void;
  /** The sections as this viewer last received them. */
  shown: Sections;
  /** A write to this viewer is still under way: it skips updates until it is done (a slow reader coalesces). */
  busy: boolean;
  greeted: boolean;
}

export interface LiveFeedOptions {
  sources: SnapshotSources;
  /** The least time between two snapshots, in ms. Default 500. */
  intervalMs?: number;
  /** Told of a snapshot that failed for a reason other than the store (a bug); the clock goes on. */
  onError?: (error: unknown) => void;
}

/**
 * Streams of dashboard updates.
 *
 * @example
 * const feed = new LiveFeed({ sources });
 * const stop = feed.watch({ prefix: '', after: null }, (message) => stream.writeSSE(message), () => stream.close());
 * // … when the stream closes:
 * stop();
 */
export class LiveFeed {
  readonly #sources: SnapshotSources;
  readonly #intervalMs: number;
  readonly #onError: (error: unknown) => void;
  readonly #viewers = new Set<Viewer>();
  readonly #cards = new CardRenderer();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #ticking = false;
  #sequence = 0;
  #snapshots = 0;
  /** How long the last snapshot took to render (ms of this process's own time). */
  #renderMs = 0;

  constructor(options: LiveFeedOptions) {
    this.#sources = options.sources;
    this.#intervalMs = options.intervalMs ?? 500;
    this.#onError = options.onError ?? (() => {});
  }

  /** Open streams. */
  get viewers(): number {
    return this.#viewers.size;
  }

  /** Snapshots read so far (one per tick of the clock, whatever the number of viewers). */
  get snapshots(): number {
    return this.#snapshots;
  }

  /**
   * Sends updates for `query` through `send` until the returned function is
   * called (the stream closed) or the service shuts down, when it sends a
   * `closing` event and calls `end`.
   */
  watch(query: EventsQuery, send: (message: FeedMessage) => Promise<unknown>, end: () => void): () => void {
    const viewer: Viewer = {
      query,
      key: `${query.prefix}\n${query.after ?? ''}`,
      send,
      end,
      shown: {},
      busy: false,
      greeted: false,
    };
    this.#viewers.add(viewer);
    // The first viewer starts the clock at once; later ones get the next tick.
    if (this.#timer === undefined && !this.#ticking) this.#schedule(0);
    return () => this.#remove(viewer);
  }

  #remove(viewer: Viewer): void {
    this.#viewers.delete(viewer);
    if (this.#viewers.size === 0 && this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #schedule(delayMs: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#tick();
    }, delayMs);
  }

  async #tick(): Promise<void> {
    if (this.#viewers.size === 0) return;
    this.#ticking = true;
    const started = Date.now();
    try {
      if (this.#sources.lifecycle.shuttingDown) {
        this.#closeAll();
        return;
      }
      await this.#update();
    } catch (error) {
      this.#onError(error);
    } finally {
      this.#ticking = false;
    }
    if (this.#viewers.size > 0 && this.#timer === undefined) {
      // Rendering is the dashboard's own work: it never takes more than 1/PACING of the process's time.
      const interval = Math.min(MAX_INTERVAL_MS, Math.max(this.#intervalMs, this.#renderMs * PACING));
      this.#schedule(Math.max(0, interval - (Date.now() - started)));
    }
  }

  async #update(): Promise<void> {
    this.#snapshots += 1;
    const { stock, metrics } = this.#sources;
    const groups = new Map<string, Viewer[]>();
    for (const viewer of this.#viewers) {
      const group = groups.get(viewer.key);
      if (group) group.push(viewer);
      else groups.set(viewer.key, [viewer]);
    }
    const overview = await readOverview(this.#sources);
    const pages = await Promise.all(
      [...groups.values()].map(async (viewers) => ({
        viewers,
        page: await readEventsPage(stock, metrics, viewers[0]!.query),
      })),
    );
    const rendering = performance.now();
    for (const { viewers, page } of pages) {
      const sections = renderSections(overview, page, this.#cards);
      for (const viewer of viewers) this.#send(viewer, overview.at, sections);
    }
    this.#cards.keepOnly(new Set(pages.flatMap(({ page }) => (page.events ?? []).map((event) => event.id))));
    this.#renderMs = performance.now() - rendering;
  }

  #send(viewer: Viewer, at: number, sections: Sections): void {
    if (viewer.busy || !this.#viewers.has(viewer)) return;
    const changed: Sections = {};
    let any = false;
    if (viewer.shown.events !== sections.events) {
      // Another list of events: its cards' places come empty, so every card goes again, after it.
      for (const name of Object.keys(viewer.shown)) if (name.startsWith('event:')) delete viewer.shown[name];
      changed.events = sections.events!;
      any = true;
    }
    for (const [name, html] of Object.entries(sections)) {
      if (name !== 'events' && viewer.shown[name] !== html) {
        changed[name] = html;
        any = true;
      }
    }
    if (!any) return;
    viewer.busy = true;
    const message: FeedMessage = {
      event: 'snapshot',
      id: String(++this.#sequence),
      data: JSON.stringify({ at, sections: changed }),
      ...(viewer.greeted ? {} : { retry: RECONNECT_MS }),
    };
    viewer.greeted = true;
    viewer.send(message).then(
      () => {
        Object.assign(viewer.shown, changed);
        viewer.busy = false;
      },
      () => {
        viewer.busy = false;
      },
    );
  }

  /** Shutting down: every stream is told and ended, so that draining the server never waits on one. */
  #closeAll(): void {
    const viewers = [...this.#viewers];
    this.#viewers.clear();
    for (const viewer of viewers) {
      // A reader that stopped reading gets no more than a moment for the last word.
      const said = viewer.send({ event: 'closing', data: '{"reason":"the service is shutting down"}' });
      const moment = new Promise((resolve) => setTimeout(resolve, CLOSING_GRACE_MS));
      void Promise.race([said, moment])
        .catch(() => undefined)
        .finally(() => viewer.end());
    }
  }
}
