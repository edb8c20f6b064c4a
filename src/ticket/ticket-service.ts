import type { CallContext, VacancyClient } from './vacancy-client.ts';

/** The answer to a purchase, in the 1.0.0 shape. */
export interface PurchaseResult {
  success: boolean;
  remaining: number;
  message: string;
}

export const INSUFFICIENT_INVENTORY = 'Insufficient inventory';

/**
 * Sells tickets by reserving them from vacancy, wherever vacancy lives.
 *
 * @example
 * const tickets = new TicketService(new LocalVacancyClient(actor));
 * await tickets.purchase(2); // { success: true, remaining: 998, message: 'Purchased 2 tickets' }
 */
export class TicketService {
  constructor(readonly vacancy: VacancyClient) {}

  async purchase(qty: number, context?: CallContext): Promise<PurchaseResult> {
    const outcome = await this.vacancy.reserve(qty, context);
    return {
      success: outcome.success,
      remaining: outcome.remaining,
      message: outcome.success ? `Purchased ${qty} ticket${qty === 1 ? '' : 's'}` : INSUFFICIENT_INVENTORY,
    };
  }

  available(context?: CallContext): Promise<number> {
    return this.vacancy.available(context);
  }
}
