import { requireBearerToken } from '../lib/bearer-token.ts';
import { createRouter } from '../lib/create-router.ts';
import type { StockActor } from './stock-actor.ts';
import { adjustStockRoute } from './admin.routes.ts';

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
  router.use('/api/v1/admin/*', requireBearerToken(adminToken, 'admin'));
  router.openapi(adjustStockRoute(bodyLimitBytes), async (c) => {
    const { op, qty } = c.req.valid('json');
    return c.json(await actor.adjust(op, qty), 200);
  });
  return router;
}
