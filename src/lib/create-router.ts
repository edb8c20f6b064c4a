import { OpenAPIHono } from '@hono/zod-openapi';
import { validationHook } from './problem.ts';

/**
 * A router whose schema failures all answer the same 422 problem+json.
 *
 * @example
 * const router = createRouter();
 * router.openapi(reserveRoute, handler);
 */
export function createRouter(): OpenAPIHono {
  return new OpenAPIHono({ defaultHook: validationHook });
}
