/**
 * What the stock is made of, as every store and both services see it. Pure
 * data: no store, runtime or HTTP here.
 */

/** The 1.0.0 message of a purchase or reserve that did not fit (a 200 with success: false). */
export const INSUFFICIENT_INVENTORY = 'Insufficient inventory';

/** The event the 1.0.0 paths (/api/v1/available, /reserve, /purchase) sell from. */
export const DEFAULT_EVENT_ID = 'default';
/** The one ticket type of the default event. */
export const DEFAULT_TICKET_TYPE_ID = 'default';

/**
 * One ticket type's stock. Ticket numbers run per type from 1: `issued` is
 * the last one handed out, so the next sale starts at `issued + 1` and no
 * number is ever handed out twice.
 */
export interface TicketTypeStock {
  eventId: string;
  typeId: string;
  capacity: number;
  sold: number;
  issued: number;
}

/** What the 1.0.0 API reports of a stock: `remaining + sold` is its capacity. */
export interface StockLevel {
  remaining: number;
  sold: number;
}

/** The tickets one sale took: numbers `first` to `last`, both included. */
export interface TicketRange {
  first: number;
  last: number;
}

/** The answer to a reserve, as first given and as replayed for a repeated idempotency key. */
export interface ReserveOutcome {
  success: boolean;
  /** Stock left after this decision (unchanged when it did not fit). */
  remaining: number;
  /** Set when success: the id of the reservation (the purchase id, seen from the ticket service). */
  reservationId?: string;
  /** Set when success: the ticket numbers taken. */
  tickets?: TicketRange;
}

/**
 * An idempotency key with the request it came with and the answer to replay
 * until `expiresAt` (ms since the epoch). `request` and `outcome` are opaque
 * strings to the stores: the rules write and read them.
 */
export interface IdempotencyRecord {
  key: string;
  request: string;
  outcome: string;
  expiresAt: number;
}

/** `set`: the tickets remaining become qty. `add`: qty (which may be negative) is added to them. */
export type AdjustOp = 'set' | 'add';

/** A message to the stock, as the actor batches it and a store decides it. */
export type StockCommand =
  | { kind: 'reserve'; eventId: string; typeId: string; qty: number; key?: string }
  | { kind: 'level'; eventId: string; typeId: string }
  | { kind: 'adjust'; eventId: string; typeId: string; op: AdjustOp; qty: number };

/** Why a command was refused; nothing of it took effect. */
export type RefusalReason =
  /** No such event or ticket type. */
  | 'unknown-stock'
  /** The idempotency key came before with a different request. */
  | 'key-reused'
  /** The idempotency key is in this very batch already. */
  | 'key-in-flight'
  /** The change would leave fewer tickets than are sold, or beyond the largest safe number. */
  | 'negative-stock'
  /** The store got to the command only after its caller stopped waiting (shared stores). */
  | 'expired';

/** What a store answers for each command, in order. */
export type StockDecision =
  | { kind: 'reserved'; outcome: ReserveOutcome; replayed: boolean }
  | { kind: 'level'; level: StockLevel }
  | { kind: 'adjusted'; level: StockLevel }
  | { kind: 'refused'; reason: RefusalReason };

/** The 1.0.0 view of a ticket type's stock. */
export function levelOf(stock: TicketTypeStock): StockLevel {
  return { remaining: stock.capacity - stock.sold, sold: stock.sold };
}

/**
 * The id of the reservation that took tickets `first`.. of a stock. Ticket
 * numbers are never handed out twice, so neither is the id.
 *
 * @example
 * reservationIdOf('default', 'default', 42); // 'default-42'
 */
export function reservationIdOf(eventId: string, typeId: string, first: number): string {
  return eventId === DEFAULT_EVENT_ID && typeId === DEFAULT_TICKET_TYPE_ID
    ? `${eventId}-${first}`
    : `${eventId}.${typeId}-${first}`;
}

/** The key under which stores keep a ticket type's stock. */
export function stockKeyOf(eventId: string, typeId: string): string {
  return `${eventId}/${typeId}`;
}

/** A reserve's answer, and whether it is the replay of an earlier one with the same idempotency key. */
export type ReserveResult = ReserveOutcome & { replayed: boolean };
