/**
 * What the stock is made of, as every store and both services see it: events,
 * their ticket types, orders and idempotency records. Pure data and the
 * views the API shows of it: no store, runtime or HTTP here.
 */

/** The 1.0.0 message of a purchase or reserve that did not fit (a 200 with success: false). */
export const INSUFFICIENT_INVENTORY = 'Insufficient inventory';

/** The event the 1.0.0 paths (/api/v1/available, /reserve, /purchase) sell from. */
export const DEFAULT_EVENT_ID = 'default';
/** The one ticket type of the default event. */
export const DEFAULT_TICKET_TYPE_ID = 'default';

/** Event and ticket type ids: what the API accepts, and so what every store may hold. */
export const ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,63}$/;
/** The largest capacity of an event or a ticket type. */
export const MAX_CAPACITY = 1_000_000_000;

/**
 * One ticket type of an event, with its stock. Ticket numbers run per type
 * from 1: `issued` is the last one handed out, so the next sale starts at
 * `issued + 1` and no number is ever handed out twice.
 */
export interface TicketTypeRecord {
  id: string;
  name: string;
  capacity: number;
  /** Most tickets of this type one order may take; null: no limit. */
  maxPerOrder: number | null;
  /** Most tickets of this type one buyer may hold or have bought; null: no limit. */
  maxPerBuyer: number | null;
  sold: number;
  /** Taken out of sale by holds not yet confirmed, released or expired. */
  held: number;
  issued: number;
}

/**
 * An event as a store keeps it: its definition and the stock of each of its
 * ticket types, in the order they were defined. `capacity` caps the tickets
 * sold over all types together (a hall's size); null: only the types' own
 * capacities apply.
 */
export interface EventRecord {
  id: string;
  name: string;
  capacity: number | null;
  /** Most tickets of all types together one buyer may hold or have bought; null: no limit. */
  maxPerBuyer: number | null;
  types: TicketTypeRecord[];
}

/** What an operator defines of an event (PUT /api/v1/events/{eventId}). */
export interface EventDefinition {
  name: string;
  capacity: number | null;
  maxPerBuyer?: number | null;
  ticketTypes: Array<{
    id: string;
    name: string;
    capacity: number;
    maxPerOrder: number | null;
    maxPerBuyer?: number | null;
  }>;
}

/** One line of an order: `qty` tickets of one type, numbered `first` to `last`. */
export interface OrderLine {
  typeId: string;
  qty: number;
  first: number;
  last: number;
}

export type OrderStatus = 'confirmed' | 'cancelled';

/** A sale, as a store keeps it. Its id is random and unguessable; see {@link newOrderId}. */
export interface OrderRecord {
  id: string;
  eventId: string;
  items: OrderLine[];
  buyer: string | null;
  /** ms since the epoch */
  createdAt: number;
  status: OrderStatus;
  /** The hold it confirmed, when it was made from one. */
  holdId: string | null;
}

export type HoldStatus = 'held' | 'confirmed' | 'released' | 'expired';

/**
 * Stock taken out of sale while a buyer pays: confirmed into an order,
 * released, or expired at `expiresAt` (never confirmable after it). Its id
 * is random and unguessable: holding it is the right to confirm or release.
 */
export interface HoldRecord {
  id: string;
  eventId: string;
  items: PurchaseItem[];
  buyer: string | null;
  status: HoldStatus;
  /** ms since the epoch */
  createdAt: number;
  /** ms since the epoch */
  expiresAt: number;
  /** The order it became, once confirmed. */
  orderId: string | null;
}

/** What the 1.0.0 API reports of a ticket type's stock: `remaining + sold` is what it can still sell in all. */
export interface StockLevel {
  remaining: number;
  sold: number;
}

/** The tickets one sale took: numbers `first` to `last`, both included. */
export interface TicketRange {
  first: number;
  last: number;
}

/** The answer to a 1.0.0 reserve, as first given and as replayed for a repeated idempotency key. */
export interface ReserveOutcome {
  success: boolean;
  /** Stock left after this decision (unchanged when it did not fit). */
  remaining: number;
  /** Set when success: the id of the reservation (the purchase id, seen from the ticket service). */
  reservationId?: string;
  /** Set when success: the ticket numbers taken. */
  tickets?: TicketRange;
}

/** A reserve's answer, and whether it is the replay of an earlier one with the same idempotency key. */
export type ReserveResult = ReserveOutcome & { replayed: boolean };

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

/** One line of a purchase: how many tickets of which type. */
export interface PurchaseItem {
  typeId: string;
  qty: number;
}

/** A message to the stock, as the actor batches it and a store decides it. */
export type StockCommand =
  | {
      kind: 'reserve';
      eventId: string;
      typeId: string;
      qty: number;
      /** The id the order gets if this reserve makes one (chosen by the caller: the rules draw no random numbers). */
      orderId: string;
      /** ms since the epoch: the order's `createdAt` */
      at: number;
      key?: string;
    }
  | { kind: 'level'; eventId: string; typeId: string }
  | { kind: 'adjust'; eventId: string; typeId: string; op: AdjustOp; qty: number }
  | { kind: 'put-event'; eventId: string; definition: EventDefinition }
  | { kind: 'get-event'; eventId: string }
  | { kind: 'list-events'; after: string | null; limit: number }
  | {
      kind: 'purchase';
      eventId: string;
      items: PurchaseItem[];
      buyer: string | null;
      /** The id the order gets if this purchase makes one (chosen by the caller: the rules draw no random numbers). */
      orderId: string;
      /** ms since the epoch: the order's `createdAt` */
      at: number;
      key?: string;
    }
  | {
      kind: 'hold';
      eventId: string;
      items: PurchaseItem[];
      buyer: string | null;
      holdId: string;
      at: number;
      /** How long the hold lasts: it expires at `at + ttlMs`. */
      ttlMs: number;
      key?: string;
    }
  | { kind: 'confirm'; holdId: string; orderId: string; at: number }
  | { kind: 'release'; holdId: string }
  | { kind: 'get-hold'; holdId: string }
  | { kind: 'get-order'; orderId: string }
  /** The latest `limit` orders of an event (of all events when null), newest first: what a dashboard shows. */
  | { kind: 'recent-orders'; eventId: string | null; limit: number }
  /** The `limit` held holds that expire first, of an event (of all when null): what a dashboard shows. */
  | { kind: 'expiring-holds'; eventId: string | null; limit: number }
  | { kind: 'cancel'; orderId: string }
  /** Expires up to `limit` holds whose time has passed, over all events (the actor's sweeper sends it). */
  | { kind: 'expire'; limit: number };

/** Why a command was refused; nothing of it took effect. */
export type RefusalReason =
  /** No such event. */
  | 'unknown-event'
  /** No such ticket type in the event (`field` names it). */
  | 'unknown-ticket-type'
  /** More tickets of a type than its maxPerOrder (`field` names it). */
  | 'over-max-per-order'
  /** A purchase listing one ticket type twice (`field` names the second): each type once, with its whole qty. */
  | 'duplicate-ticket-type'
  /** A limit per buyer applies, and the request names no buyer (422). */
  | 'buyer-required'
  /** The buyer would have more tickets than a limit per buyer allows (409; `field` names the item, or `items`). */
  | 'buyer-limit-reached'
  /** No such hold (404). */
  | 'unknown-hold'
  /** No such order (404). */
  | 'unknown-order'
  /** Confirming a hold whose time has passed (410). */
  | 'hold-expired'
  /** Confirming a hold that was released (410). */
  | 'hold-released'
  /** Releasing a hold that was confirmed (409). */
  | 'hold-confirmed'
  /** A capacity below what is already sold (an event update, or an adjustment). */
  | 'capacity-below-sold'
  /** Removing a ticket type that has sold tickets. */
  | 'ticket-type-in-use'
  /** The idempotency key came before with a different request. */
  | 'key-reused'
  /** The idempotency key is in this very batch already. */
  | 'key-in-flight'
  /** The store got to the command only after its caller stopped waiting (shared stores). */
  | 'expired';

/** One purchase line that did not fit, with what there was. */
export interface Shortfall {
  typeId: string;
  requested: number;
  available: number;
}

/** What a store answers for each command, in order. */
export type StockDecision =
  | { kind: 'reserved'; outcome: ReserveOutcome; replayed: boolean }
  | { kind: 'level'; level: StockLevel }
  | { kind: 'adjusted'; level: StockLevel }
  | { kind: 'event'; event: EventRecord; created: boolean }
  | { kind: 'events'; events: EventRecord[]; next: string | null }
  | { kind: 'order'; order: OrderRecord; replayed: boolean }
  | { kind: 'hold'; hold: HoldRecord; replayed: boolean }
  | { kind: 'orders'; orders: OrderRecord[] }
  | { kind: 'holds'; holds: HoldRecord[] }
  | { kind: 'expired'; count: number }
  | { kind: 'insufficient'; items: Shortfall[]; replayed: boolean }
  | { kind: 'refused'; reason: RefusalReason; field?: string; detail?: string };

/** Tickets sold over all of an event's types. */
export function eventSold(event: EventRecord): number {
  let sold = 0;
  for (const type of event.types) sold += type.sold;
  return sold;
}

/** Tickets held over all of an event's types. */
export function eventHeld(event: EventRecord): number {
  let held = 0;
  for (const type of event.types) held += type.held;
  return held;
}

/** Tickets sold or held over all of an event's types: what counts against its cap. */
export function eventTaken(event: EventRecord): number {
  return eventSold(event) + eventHeld(event);
}

/**
 * Tickets of `type` that can still be sold or held: what its own capacity
 * leaves, and no more than the event's cap leaves over all types.
 */
export function typeAvailable(event: EventRecord, type: TicketTypeRecord, taken = eventTaken(event)): number {
  const own = Math.max(0, type.capacity - type.sold - type.held);
  return event.capacity === null ? own : Math.max(0, Math.min(own, event.capacity - taken));
}

/** Tickets of the event that can still be sold or held, over all its types. */
export function eventAvailable(event: EventRecord, taken = eventTaken(event)): number {
  let own = 0;
  for (const type of event.types) own += Math.max(0, type.capacity - type.sold - type.held);
  return event.capacity === null ? own : Math.max(0, Math.min(own, event.capacity - taken));
}

/** The 1.0.0 view of a ticket type's stock. */
export function levelOf(event: EventRecord, type: TicketTypeRecord): StockLevel {
  return { remaining: typeAvailable(event, type), sold: type.sold };
}

const URL_SAFE = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Random bytes drawn from the platform's cryptographic generator 4 KB at a
 * time and handed out once each: one call to the generator costs as much as
 * the rest of an order id, and a busy service makes thousands a second.
 */
const randomPool = new Uint8Array(4096);
let randomPoolUsed = randomPool.length;

/** 22 URL-safe characters from 16 random bytes: 128 bits, of which an id keeps 132 bits of room. */
function randomToken(): string {
  if (randomPoolUsed + 16 > randomPool.length) {
    crypto.getRandomValues(randomPool);
    randomPoolUsed = 0;
  }
  const start = randomPoolUsed;
  randomPoolUsed += 16;
  let token = '';
  // Six bits a character, as base64url without padding: 21 full characters, then the last 2 bits.
  let bits = 0;
  let value = 0;
  for (let i = start; i < start + 16; i++) {
    value = (value << 8) | randomPool[i]!;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      token += URL_SAFE[(value >>> bits) & 63];
    }
    value &= (1 << bits) - 1;
  }
  return token + URL_SAFE[(value << (6 - bits)) & 63];
}

/** Characters of an order or hold id's token that carry the time it was made (48 bits of milliseconds). */
export const ID_TIME_LENGTH = 8;

/** The time in milliseconds as {@link ID_TIME_LENGTH} URL-safe characters, most significant first. */
function timeToken(now: number): string {
  let token = '';
  // 48 bits do not fit a 32-bit shift: the high 24 and the low 24 bits, four characters each.
  const high = Math.floor(now / 0x1000000) & 0xffffff;
  const low = now % 0x1000000;
  for (const part of [high, low]) for (let shift = 18; shift >= 0; shift -= 6) token += URL_SAFE[(part >>> shift) & 63];
  return token;
}

/**
 * The 30 characters after an id's prefix: the time (8), then 128 random bits
 * (22). Ids made close together share their first characters, so a store
 * indexed by id (SQLite's orders and holds tables) adds a batch's new rows to
 * the same few pages instead of one random page each (a third of the CPU a
 * purchase cost there); the random part keeps them unguessable.
 */
function timeOrderedToken(now: number): string {
  return timeToken(now) + randomToken();
}

/** The length of an order or hold id's token (time and random part) between its prefix and its event. */
export const ORDER_TOKEN_LENGTH = 30;

/**
 * A new order id: `ord_`, 30 URL-safe characters (the time in milliseconds,
 * then 128 bits from the platform's cryptographic generator), then the
 * event's id, so that any store can find the order from its id alone (in
 * Redis, an event's orders live beside its stock, under its hash tag).
 *
 * @example
 * newOrderId('spring-gala'); // 'ord_AZrI2kPq3kPq…Zw9spring-gala'
 */
export function newOrderId(eventId: string, now = Date.now()): string {
  return `ord_${timeOrderedToken(now)}${eventId}`;
}

/** A new hold id: `hld_`, 30 URL-safe characters (time, then random), then the event's id (see {@link newOrderId}). */
export function newHoldId(eventId: string, now = Date.now()): string {
  return `hld_${timeOrderedToken(now)}${eventId}`;
}

/** The event an order id names, or undefined when it is not an order id. */
export function eventOfOrderId(orderId: string): string | undefined {
  return eventOfId('ord_', orderId);
}

/** The event a hold id names, or undefined when it is not a hold id. */
export function eventOfHoldId(holdId: string): string | undefined {
  return eventOfId('hld_', holdId);
}

function eventOfId(prefix: string, id: string): string | undefined {
  if (!id.startsWith(prefix)) return undefined;
  const eventId = id.slice(prefix.length + ORDER_TOKEN_LENGTH);
  const token = id.slice(prefix.length, prefix.length + ORDER_TOKEN_LENGTH);
  return ID_PATTERN.test(eventId) && /^[A-Za-z0-9_-]{30}$/.test(token) ? eventId : undefined;
}

/**
 * The default event the 1.0.0 paths sell from, as a store creates it on an
 * empty start: one ticket type with INITIAL_STOCK tickets, no event cap.
 */
export function defaultEventDefinition(initialStock: number): EventDefinition {
  return {
    name: 'Default',
    capacity: null,
    ticketTypes: [
      { id: DEFAULT_TICKET_TYPE_ID, name: 'Default', capacity: initialStock, maxPerOrder: null, maxPerBuyer: null },
    ],
  };
}
