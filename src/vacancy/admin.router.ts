import { jsonResponse } from '../lib/api-headers.ts';
import { requireBearerToken } from '../lib/bearer-token.ts';
import { createRouter } from '../lib/create-router.ts';
import { cancelOrderRoute, putEventRoute } from '../lib/event-routes.ts';
import { ProblemError } from '../lib/problem.ts';
import { ID_PATTERN } from '../stock/model.ts';
import { eventView, orderView } from '../stock/views.ts';
import { adjustStockRoute } from './admin.routes.ts';
import type { StockActor } from './stock-actor.ts';

export interface AdminRouterOptions {
  actor: StockActor;
  adminToken: string;
  bodyLimitBytes: number;
}

/**
 * Operators' endpoints, behind `Authorization: Bearer ADMIN_TOKEN`. Only
 * mounted when a token is configured, so without one they answer 404.
 *
 * @example
 * if (config.ADMIN_TOKEN) app.route('/', createAdminRouter({ actor, adminToken: config.ADMIN_TOKEN, bodyLimitBytes }));
 */
export function createAdminRouter({ actor, adminToken, bodyLimitBytes }: AdminRouterOptions) {
  const router = createRouter();
  const requireAdmin = requireBearerToken(adminToken, 'admin');
  router.use('/api/v1/admin/*', requireAdmin);
  router.openapi(adjustStockRoute(bodyLimitBytes), async (c) => {
    const { op, qty } = c.req.valid('json');
    return c.json(await actor.adjust(op, qty), 200);
  });

  // Before the route's own body checks: without the token, a PUT learns nothing about its body.
  router.on('PUT', '/api/v1/events/:eventId', requireAdmin);
  router.openapi(putEventRoute(bodyLimitBytes), async (c) => {
    const { eventId } = c.req.valid('param');
    if (!ID_PATTERN.test(eventId)) {
      const reason = 'eventId must be 1 to 64 lowercase letters, digits or hyphens, starting with a letter or digit';
      throw new ProblemError('validation', `eventId: ${reason}`, {
        extensions: { errors: [{ name: 'eventId', reason }] },
      });
    }
    const body = c.req.valid('json');
    const { event, created } = await actor.putEvent(eventId, {
      name: body.name,
      capacity: body.capacity ?? null,
      maxPerBuyer: body.maxPerBuyer ?? null,
      ticketTypes: body.ticketTypes.map((type) => ({
        id: type.id,
        name: type.name,
        capacity: type.capacity,
        maxPerOrder: type.maxPerOrder ?? null,
        maxPerBuyer: type.maxPerBuyer ?? null,
      })),
    });
    return jsonResponse(c, eventView(event), created ? 201 : 200) as never;
  });

  router.on('POST', '/api/v1/orders/:orderId/cancel', requireAdmin);
  router.openapi(cancelOrderRoute, async (c) => {
    const { order } = await actor.cancel(c.req.valid('param').orderId);
    return jsonResponse(c, orderView(order)) as never;
  });
  return router;
}
