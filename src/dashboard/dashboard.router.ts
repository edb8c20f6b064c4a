import { Hono } from 'hono';
import { compress } from 'hono/compress';
import { etag } from 'hono/etag';
import { secureHeaders } from 'hono/secure-headers';
import { streamSSE } from 'hono/streaming';
import type { Mode } from '../config.ts';
import { requireBasicAuth } from '../lib/basic-auth.ts';
import type { Lifecycle } from '../lib/lifecycle.ts';
import type { Metrics } from '../lib/metrics.ts';
import { ProblemError } from '../lib/problem.ts';
import { DASHBOARD_ASSETS } from './assets.ts';
import { renderPage } from './dashboard.view.tsx';
import { LiveFeed } from './live-feed.ts';
import { keepRenderContextFromLingering } from './render-context.ts';
import { eventsQuery, readEventsPage, readOverview, type DashboardStock, type SnapshotSources } from './snapshot.ts';

/** The user name of the dashboard's Basic authentication; the password is ADMIN_TOKEN. */
export const DASHBOARD_USER = 'admin';
const REALM = 'ticket-system dashboard';
const ASSETS_PATH = '/dashboard/assets';

/**
 * Only the service's own origin, for everything: the page, its script, its
 * stylesheet and its stream; no inline script or style; no frame, no base,
 * forms only to the page itself (the search).
 */
export const DASHBOARD_CONTENT_SECURITY_POLICY = {
  defaultSrc: ["'none'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'"],
  connectSrc: ["'self'"],
  baseUri: ["'none'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
};

export interface DashboardRouterOptions {
  /** The stock this process owns (monolith, vacancy). */
  stock: DashboardStock;
  metrics: Metrics;
  /** Whether the metrics middleware runs (METRICS): it feeds the requests per second and p99. */
  requestMetrics: boolean;
  /** The password of the Basic authentication (ADMIN_TOKEN). */
  adminToken: string;
  service: { name: string; mode: Mode; version: string };
  lifecycle: Lifecycle;
  /** The least time between two live updates, in ms (default 500). */
  intervalMs?: number;
  /** Told of a live update that failed unexpectedly. */
  onError?: (error: unknown) => void;
}

/**
 * GET /dashboard, the live sales dashboard (server-rendered with hono/jsx),
 * GET /dashboard/stream, its live updates as server-sent events, and the
 * page's script and stylesheet; all behind HTTP Basic authentication (user
 * `admin`, the admin token as password). Mounted only where ADMIN_TOKEN is set.
 *
 * @example
 * app.route('/', createDashboardRouter({ stock: actor, metrics, requestMetrics: true, adminToken, service, lifecycle }));
 */
export function createDashboardRouter(options: DashboardRouterOptions): Hono {
  keepRenderContextFromLingering();
  const sources: SnapshotSources = {
    stock: options.stock,
    metrics: options.metrics,
    requestMetrics: options.requestMetrics,
    service: options.service,
    lifecycle: options.lifecycle,
  };
  const feed = new LiveFeed({ sources, intervalMs: options.intervalMs, onError: options.onError });
  options.metrics.watchDashboard(feed);
  const title = `Live sales · ${options.service.name}`;

  const router = new Hono();
  // Headers first, so that a 401 carries them too; the page's own win over the API's (see apiHeaders).
  const headers = secureHeaders({ contentSecurityPolicy: DASHBOARD_CONTENT_SECURITY_POLICY, xFrameOptions: 'DENY' });
  router.use('/dashboard', headers);
  router.use('/dashboard/*', headers);
  const auth = requireBasicAuth(DASHBOARD_USER, options.adminToken, REALM);
  router.use('/dashboard', auth);
  router.use('/dashboard/*', auth);
  router.use('/dashboard', compress());
  router.use(`${ASSETS_PATH}/*`, etag({ weak: true }));

  router.get('/dashboard', async (c) => {
    const query = eventsQuery({ q: c.req.query('q'), after: c.req.query('after') });
    const [overview, page] = await Promise.all([
      readOverview(sources),
      readEventsPage(sources.stock, sources.metrics, query),
    ]);
    return c.html(renderPage({ title, overview, page, assetsPath: ASSETS_PATH }));
  });

  router.get('/dashboard/stream', (c) => {
    if (options.lifecycle.shuttingDown) {
      throw new ProblemError('serviceUnavailable', 'The service is shutting down', { headers: { 'Retry-After': '2' } });
    }
    const query = eventsQuery({ q: c.req.query('q'), after: c.req.query('after') });
    // Proxies that buffer (nginx) would hold the updates back.
    c.header('X-Accel-Buffering', 'no');
    return streamSSE(c, async (stream) => {
      await new Promise<void>((closed) => {
        const stop = feed.watch(query, (message) => stream.writeSSE(message), closed);
        stream.onAbort(() => {
          stop();
          closed();
        });
      });
    });
  });

  router.get(`${ASSETS_PATH}/:file`, (c) => {
    const file = c.req.param('file');
    const asset = Object.hasOwn(DASHBOARD_ASSETS, file) ? DASHBOARD_ASSETS[file] : undefined;
    if (!asset) throw new ProblemError('notFound', `No route for GET ${c.req.path}`);
    // Revalidated on every visit (the ETag makes that a 304), so an upgraded service is never stale.
    return c.body(asset.body, 200, { 'Content-Type': asset.type, 'Cache-Control': 'no-cache' });
  });

  return router;
}
