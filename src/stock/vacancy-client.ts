import type { PurchaseItem, ReserveResult } from './model.ts';
import type { EventView, HoldView, OrderView } from './views.ts';

/** What travels with a call from the ticket service to the vacancy service. */
export interface CallContext {
  /** Forwarded as X-Request-Id, so both services log the same id. */
  requestId?: string;
  /** Makes a reserve or purchase idempotent: repeated with the same key, it replays the first decision. */
  idempotencyKey?: string;
}

/** A page of events and where the next one starts (null on the last). */
export interface EventPage {
  events: EventView[];
  next: string | null;
}

/** What the ticket service learns when it checks that vacancy can serve. */
export interface VacancyProbe {
  ready: boolean;
  detail: string;
}

/**
 * How the ticket service reaches the stock: in-process in the monolith
 * ({@link LocalVacancyClient}), over HTTP between services
 * ({@link RemoteVacancyClient}). TicketService sees only this.
 */
export interface VacancyClient {
  available(context?: CallContext): Promise<number>;
  reserve(qty: number, context?: CallContext): Promise<ReserveResult>;
  /**
   * Buys every item of one event or none. Rejects with the stock's errors:
   * InsufficientInventoryError (nothing taken), UnknownEventError,
   * InvalidOrderError, the idempotency key errors, VacancyUnavailableError.
   */
  purchase(
    eventId: string,
    items: PurchaseItem[],
    context?: CallContext & { buyer?: string | null },
  ): Promise<{ order: OrderView; replayed: boolean }>;
  /**
   * Takes every item of one event out of sale for `ttlSeconds`, or none:
   * the same errors as {@link purchase}, and BuyerLimitError.
   */
  hold(
    eventId: string,
    items: PurchaseItem[],
    context: CallContext & { buyer?: string | null; ttlSeconds: number },
  ): Promise<{ hold: HoldView; replayed: boolean }>;
  /** Turns a held hold into an order; `replayed` when it was confirmed before (the same order). */
  confirm(holdId: string, context?: CallContext): Promise<{ order: OrderView; replayed: boolean }>;
  /** Gives a hold's stock back (a released or expired hold answers as it is); rejects for a confirmed one. */
  release(holdId: string, context?: CallContext): Promise<HoldView>;
  getHold(holdId: string, context?: CallContext): Promise<HoldView>;
  getOrder(orderId: string, context?: CallContext): Promise<OrderView>;
  /** An event and what is left of it; rejects with UnknownEventError. */
  getEvent(eventId: string, context?: CallContext): Promise<EventView>;
  listEvents(query: { after: string | null; limit: number }, context?: CallContext): Promise<EventPage>;
  probe(context?: CallContext): Promise<VacancyProbe>;
  close(): Promise<void>;
}

/**
 * The stock could not be reached or did not answer. When `outcomeUnknown`,
 * a reserve may have been received and made before the answer was lost;
 * otherwise nothing was sold.
 */
export class VacancyUnavailableError extends Error {
  readonly outcomeUnknown: boolean;

  constructor(message: string, options: { cause?: unknown; outcomeUnknown?: boolean } = {}) {
    super(message, { cause: options.cause });
    this.name = 'VacancyUnavailableError';
    this.outcomeUnknown = options.outcomeUnknown ?? false;
  }
}
