import { INSUFFICIENT_INVENTORY, type PurchaseItem, type TicketRange } from '../stock/model.ts';
import type { HoldView, OrderView } from '../stock/views.ts';
import type { CallContext, VacancyClient } from '../stock/vacancy-client.ts';

/** The answer to a purchase: the 1.0.0 fields, plus the purchase record when it succeeded. */
export interface PurchaseResult {
  success: boolean;
  remaining: number;
  message: string;
  purchaseId?: string;
  tickets?: TicketRange;
  /** True when this is the recorded answer to an earlier purchase with the same idempotency key. */
  replayed: boolean;
}

/**
 * Sells tickets by reserving them from vacancy, wherever vacancy lives.
 *
 * @example
 * const tickets = new TicketService(new LocalVacancyClient(actor));
 * await tickets.purchase(2); // { success: true, remaining: 998, message: 'Purchased 2 tickets' }
 */
export class TicketService {
  constructor(readonly vacancy: VacancyClient) {}

  /**
   * Buys `qty` tickets. With `context.idempotencyKey`, the reservation is made
   * under the key `purchase:<key>`, so a repeated purchase gets the first
   * answer back instead of buying again.
   */
  async purchase(qty: number, context: CallContext = {}): Promise<PurchaseResult> {
    const outcome = await this.vacancy.reserve(qty, {
      requestId: context.requestId,
      idempotencyKey: namespacedKey(context, 'purchase'),
    });
    // One shape for both answers (absent fields are undefined, which JSON leaves out): the hot
    // path then builds no object of a new shape per purchase.
    return outcome.success
      ? {
          success: true,
          remaining: outcome.remaining,
          message: `Purchased ${qty} ticket${qty === 1 ? '' : 's'}`,
          purchaseId: outcome.reservationId,
          tickets: outcome.tickets,
          replayed: outcome.replayed,
        }
      : {
          success: false,
          remaining: outcome.remaining,
          message: INSUFFICIENT_INVENTORY,
          purchaseId: undefined,
          tickets: undefined,
          replayed: outcome.replayed,
        };
  }

  /**
   * Buys every item of one event, or none. With `context.idempotencyKey`,
   * the purchase is made under the key `order:<key>`, apart from the 1.0.0
   * purchases' keys, so a repeated purchase gets the first answer back.
   */
  purchaseOrder(
    eventId: string,
    items: PurchaseItem[],
    context: CallContext & { buyer?: string | null } = {},
  ): Promise<{ order: OrderView; replayed: boolean }> {
    return this.vacancy.purchase(eventId, items, {
      requestId: context.requestId,
      idempotencyKey: namespacedKey(context, 'order'),
      buyer: context.buyer,
    });
  }

  /** Holds every item of one event for `ttlSeconds`, or none; the key, if any, becomes `hold:<key>`. */
  hold(
    eventId: string,
    items: PurchaseItem[],
    context: CallContext & { buyer?: string | null; ttlSeconds: number },
  ): Promise<{ hold: HoldView; replayed: boolean }> {
    return this.vacancy.hold(eventId, items, {
      requestId: context.requestId,
      idempotencyKey: namespacedKey(context, 'hold'),
      buyer: context.buyer,
      ttlSeconds: context.ttlSeconds,
    });
  }

  confirm(holdId: string, context?: CallContext): Promise<{ order: OrderView; replayed: boolean }> {
    return this.vacancy.confirm(holdId, context);
  }

  release(holdId: string, context?: CallContext): Promise<HoldView> {
    return this.vacancy.release(holdId, context);
  }

  available(context?: CallContext): Promise<number> {
    return this.vacancy.available(context);
  }
}

/** The caller's key, if any, as `<namespace>:<key>`, apart from the keys of other calls. */
function namespacedKey(context: CallContext, namespace: string): string | undefined {
  return context.idempotencyKey === undefined ? undefined : `${namespace}:${context.idempotencyKey}`;
}
