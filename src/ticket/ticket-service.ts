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
    const { idempotencyKey, ...rest } = context;
    const outcome = await this.vacancy.reserve(qty, {
      ...rest,
      ...(idempotencyKey === undefined ? {} : { idempotencyKey: `purchase:${idempotencyKey}` }),
    });
    if (!outcome.success) {
      return {
        success: false,
        remaining: outcome.remaining,
        message: INSUFFICIENT_INVENTORY,
        replayed: outcome.replayed,
      };
    }
    return {
      success: true,
      remaining: outcome.remaining,
      message: `Purchased ${qty} ticket${qty === 1 ? '' : 's'}`,
      purchaseId: outcome.reservationId,
      tickets: outcome.tickets,
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
    const { idempotencyKey, ...rest } = context;
    return this.vacancy.purchase(eventId, items, {
      ...rest,
      ...(idempotencyKey === undefined ? {} : { idempotencyKey: `order:${idempotencyKey}` }),
    });
  }

  /** Holds every item of one event for `ttlSeconds`, or none; the key, if any, becomes `hold:<key>`. */
  hold(
    eventId: string,
    items: PurchaseItem[],
    context: CallContext & { buyer?: string | null; ttlSeconds: number },
  ): Promise<{ hold: HoldView; replayed: boolean }> {
    const { idempotencyKey, ...rest } = context;
    return this.vacancy.hold(eventId, items, {
      ...rest,
      ...(idempotencyKey === undefined ? {} : { idempotencyKey: `hold:${idempotencyKey}` }),
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
