import { jsonResponse } from '../lib/api-headers.ts';
import { getEventRoute, getHoldRoute, getOrderRoute, listEventsRoute } from '../lib/event-routes.ts';
import { createRouter } from '../lib/create-router.ts';
import { ProblemError } from '../lib/problem.ts';
import { ID_PATTERN } from '../stock/model.ts';
import type { VacancyClient } from '../stock/vacancy-client.ts';

/** The events a page lists when the caller does not say. */
export const DEFAULT_EVENT_PAGE = 50;

/**
 * GET /api/v1/events and /api/v1/events/{eventId}: events and what is left of
 * them, read through a vacancy client (the stock actor in the modes that own
 * the stock, vacancy over HTTP in ticket mode).
 *
 * @example
 * app.route('/', createEventReadsRouter({ vacancy: new LocalVacancyClient(actor) }));
 */
export function createEventReadsRouter({
  vacancy,
}: {
  vacancy: Pick<VacancyClient, 'getEvent' | 'listEvents' | 'getHold' | 'getOrder'>;
}) {
  const router = createRouter();

  router.openapi(listEventsRoute, async (c) => {
    const { after, limit } = c.req.valid('query');
    const page = await vacancy.listEvents(
      { after: after ?? null, limit: limit ?? DEFAULT_EVENT_PAGE },
      { requestId: c.get('requestId') },
    );
    return jsonResponse(c, { events: page.events, ...(page.next === null ? {} : { next: page.next }) }) as never;
  });

  router.openapi(getEventRoute, async (c) => {
    const { eventId } = c.req.valid('param');
    return jsonResponse(c, await vacancy.getEvent(knownEventId(eventId), { requestId: c.get('requestId') })) as never;
  });

  router.openapi(getHoldRoute, async (c) => {
    const { holdId } = c.req.valid('param');
    return jsonResponse(c, await vacancy.getHold(holdId, { requestId: c.get('requestId') })) as never;
  });

  router.openapi(getOrderRoute, async (c) => {
    const { orderId } = c.req.valid('param');
    return jsonResponse(c, await vacancy.getOrder(orderId, { requestId: c.get('requestId') })) as never;
  });

  return router;
}

/** An event id from a path: one that no event can have is simply not found. */
export function knownEventId(eventId: string): string {
  if (!ID_PATTERN.test(eventId)) throw new ProblemError('notFound', `There is no event ${JSON.stringify(eventId)}`);
  return eventId;
}
