import type { PurchaseItem } from '../stock/model.ts';
import type { CallContext, EventPage, VacancyClient, VacancyProbe } from '../stock/vacancy-client.ts';
import { eventView, holdView, orderView, type EventView, type HoldView, type OrderView } from '../stock/views.ts';
import type { StockActor } from './stock-actor.ts';

/**
 * The monolith's vacancy client: a direct call into the stock actor, no
 * network in between. Store failures surface as the actor's own errors,
 * which the app maps to 503 like a remote failure.
 *
 * @example
 * const service = new TicketService(new LocalVacancyClient(actor));
 */
export class LocalVacancyClient implements VacancyClient {
  constructor(private readonly actor: StockActor) {}

  available() {
    return this.actor.available();
  }

  reserve(qty: number, context: CallContext = {}) {
    return this.actor.reserve(qty, { idempotencyKey: context.idempotencyKey });
  }

  async purchase(
    eventId: string,
    items: PurchaseItem[],
    context: CallContext & { buyer?: string | null } = {},
  ): Promise<{ order: OrderView; replayed: boolean }> {
    const { order, replayed } = await this.actor.purchase(eventId, items, {
      buyer: context.buyer ?? null,
      idempotencyKey: context.idempotencyKey,
    });
    return { order: orderView(order), replayed };
  }

  async hold(
    eventId: string,
    items: PurchaseItem[],
    context: CallContext & { buyer?: string | null; ttlSeconds: number },
  ): Promise<{ hold: HoldView; replayed: boolean }> {
    const { hold, replayed } = await this.actor.hold(eventId, items, {
      buyer: context.buyer ?? null,
      ttlMs: context.ttlSeconds * 1000,
      idempotencyKey: context.idempotencyKey,
    });
    return { hold: holdView(hold), replayed };
  }

  async confirm(holdId: string): Promise<{ order: OrderView; replayed: boolean }> {
    const { order, replayed } = await this.actor.confirm(holdId);
    return { order: orderView(order), replayed };
  }

  async release(holdId: string): Promise<HoldView> {
    return holdView(await this.actor.release(holdId));
  }

  async getHold(holdId: string): Promise<HoldView> {
    return holdView(await this.actor.getHold(holdId));
  }

  async getOrder(orderId: string): Promise<OrderView> {
    return orderView(await this.actor.getOrder(orderId));
  }

  async getEvent(eventId: string): Promise<EventView> {
    return eventView(await this.actor.getEvent(eventId));
  }

  async listEvents(query: { after: string | null; limit: number }): Promise<EventPage> {
    const { events, next } = await this.actor.listEvents(query.after, query.limit);
    return { events: events.map(eventView), next };
  }

  async probe(): Promise<VacancyProbe> {
    const store = await this.actor.checkStore();
    return store.writable
      ? { ready: true, detail: `in-process, ${store.kind} store` }
      : { ready: false, detail: `the ${store.kind} store cannot record changes` };
  }

  async close(): Promise<void> {}
}
