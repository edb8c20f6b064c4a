/**
 * The rules of the stock: what a batch of commands decides, given the state
 * before it. Pure and synchronous: the memory and SQLite stores run them and
 * record what changed in one commit; the Redis store's batch script mirrors
 * them, and one contract suite (store-contract.test.ts) holds every store to
 * the same answers.
 */
import {
  eventTaken,
  levelOf,
  typeAvailable,
  type EventDefinition,
  type EventRecord,
  type HoldRecord,
  type IdempotencyRecord,
  type OrderLine,
  type OrderRecord,
  type PurchaseItem,
  type RefusalReason,
  type ReserveOutcome,
  type Shortfall,
  type StockCommand,
  type StockDecision,
  type TicketTypeRecord,
} from './model.ts';

/** The committed state a batch is decided against, read synchronously. */
export interface StockView {
  /** An event with its ticket types' stock, or undefined when there is none. */
  event(eventId: string): EventRecord | undefined;
  /** Up to `limit` events whose ids sort after `after` (all, when null), in id order. */
  eventsAfter(after: string | null, limit: number): EventRecord[];
  /** An order, or undefined. */
  order(orderId: string): OrderRecord | undefined;
  /** A hold, or undefined. */
  hold(holdId: string): HoldRecord | undefined;
  /**
   * Up to `limit` holds still `held` whose `expiresAt` is at or before `now`,
   * earliest first: of one event, or of any when `eventId` is null.
   */
  dueHolds(eventId: string | null, now: number, limit: number): HoldRecord[];
  /** The latest `limit` orders (of one event, or of all when null), newest first. */
  recentOrders(eventId: string | null, limit: number): OrderRecord[];
  /** The `limit` holds still `held` that expire first (of one event, or of all when null), whatever their time. */
  heldHolds(eventId: string | null, limit: number): HoldRecord[];
  /** How many tickets of each type of an event a buyer holds or has bought (orders not cancelled). */
  buyerTickets(eventId: string, buyer: string): ReadonlyMap<string, number>;
  /** The record of an idempotency key (as {@link scopedKeyOf} makes it), expired or not; undefined when there is none. */
  idempotencyRecord(key: string): IdempotencyRecord | undefined;
}

/** A buyer's tickets of one event, as a batch leaves them. */
export interface BuyerTickets {
  eventId: string;
  buyer: string;
  /** Tickets held or bought per ticket type; a type at 0 is no longer counted. */
  tickets: Map<string, number>;
}

/** What a batch changed: the new state of everything it touched. */
export interface StockChanges {
  /** The new state of each changed event; `defined` when its definition (not only its stock) changed. */
  events: Map<string, { event: EventRecord; defined: boolean }>;
  orders: Map<string, OrderRecord>;
  holds: Map<string, HoldRecord>;
  /** Keyed by {@link buyerKeyOf}. */
  buyers: Map<string, BuyerTickets>;
  keys: Map<string, IdempotencyRecord>;
}

export interface DecideOptions {
  /** The clock holds and keys expire by, in ms since the epoch. */
  now: number;
  /** How long a key recorded now is remembered, in ms. */
  idempotencyTtlMs: number;
  /** Told, once the batch is durable, how many holds (and tickets) it expired. */
  expired?: (holds: number, tickets: number) => void;
}

/**
 * Holds of one event expired at most when a batch first touches it: a wave
 * of expiries is spread over batches instead of making one batch slow.
 */
export const EXPIRED_PER_TOUCH = 500;

/** Whether a batch changed anything a store must record. */
export function hasChanges(changes: StockChanges): boolean {
  return (
    changes.events.size > 0 ||
    changes.orders.size > 0 ||
    changes.holds.size > 0 ||
    changes.buyers.size > 0 ||
    changes.keys.size > 0
  );
}

/**
 * Idempotency keys are the caller's per event: the same key on two events is
 * two keys. (A shared store keeps each event's keys beside its stock.)
 */
export function scopedKeyOf(eventId: string, key: string): string {
  return `${eventId} ${key}`;
}

/** How stores key a buyer's tickets of an event. */
export function buyerKeyOf(eventId: string, buyer: string): string {
  return `${eventId}\n${buyer}`;
}

/** The largest number of tickets an adjustment can leave: beyond it, ticket numbers would lose precision. */
const MAX_ADJUSTED_CAPACITY = Number.MAX_SAFE_INTEGER;

/**
 * Decides `commands` in order against `view`, each seeing the effects of the
 * ones before it. Returns one decision per command and the changes to
 * record; nothing in `view` is modified.
 *
 * - purchase / hold: take every item if all fit (each type's own capacity
 *   less what is sold and held, and the event's cap over all types), else
 *   nothing (`insufficient`, with what each item had). Items name known
 *   types, each once, at most `maxPerOrder` each; a buyer stays within the
 *   types' and the event's `maxPerBuyer`, counting what they hold and bought.
 *   A purchase sells at once; a hold takes the stock out of sale until it is
 *   confirmed (sold), released, or it expires at its `expiresAt`.
 * - confirm: turns a held hold into an order; again, the same order; a hold
 *   past its `expiresAt` is expired there and then and never confirmed.
 * - release: gives a held hold's stock back; cancel: an order's.
 * - reserve (1.0.0): one type, as a purchase; a shortfall is `success: false`.
 * - level / get-event / list-events / get-hold / get-order: the state as of
 *   the commands before.
 * - adjust: sets or adds to a type's tickets remaining; never below what is sold and held.
 * - put-event: creates an event or updates its names, capacities and limits
 *   and adds types; never a capacity below what is sold and held, never
 *   removing a type that has sold or holds.
 * - expire: expires holds whose time has passed, over all events.
 *
 * The first time a batch touches an event it also expires up to
 * {@link EXPIRED_PER_TOUCH} of that event's holds whose time has passed, so
 * their stock is back on sale whatever any sweeper did.
 *
 * Under an idempotency key that is live, a purchase, hold or reserve replays
 * the recorded answer if the request is the same and is refused
 * (`key-reused`) if not; a key already used in this batch is
 * `key-in-flight`. A key past its `expiresAt` counts as never seen.
 *
 * @example
 * const { decisions, changes } = decideBatch(view, [{ kind: 'get-event', eventId: 'default' }], { now: Date.now(), idempotencyTtlMs: 86_400_000 });
 */
export function decideBatch(
  view: StockView,
  commands: readonly StockCommand[],
  options: DecideOptions,
): { decisions: StockDecision[]; changes: StockChanges; expired: { holds: number; tickets: number } } {
  const batch = new Batch(view, options);
  const decisions = commands.map((command) => batch.decide(command));
  return { decisions, changes: batch.changes, expired: { holds: batch.expiredHolds, tickets: batch.expiredTickets } };
}

/** One batch being decided: the view with the batch's own changes over it. */
class Batch {
  readonly changes: StockChanges = {
    events: new Map(),
    orders: new Map(),
    holds: new Map(),
    buyers: new Map(),
    keys: new Map(),
  };
  /** Events whose due holds this batch has expired already. */
  readonly #swept = new Set<string>();
  /** Holds this batch expired so far, and their tickets. */
  expiredHolds = 0;
  expiredTickets = 0;

  constructor(
    private readonly view: StockView,
    private readonly options: DecideOptions,
  ) {}

  decide(command: StockCommand): StockDecision {
    switch (command.kind) {
      case 'list-events':
        return this.#listEvents(command.after, command.limit);
      case 'put-event':
        return this.#putEvent(command.eventId, command.definition);
      case 'get-event': {
        const event = this.#event(command.eventId);
        return event ? { kind: 'event', event, created: false } : refused('unknown-event');
      }
      case 'purchase':
      case 'hold':
        return this.#take(command);
      case 'confirm':
        return this.#confirm(command.holdId, command.orderId, command.at);
      case 'release':
        return this.#release(command.holdId);
      case 'get-hold': {
        const hold = this.#holdNow(command.holdId);
        return hold ? { kind: 'hold', hold, replayed: false } : refused('unknown-hold');
      }
      case 'get-order': {
        const order = this.#order(command.orderId);
        return order ? { kind: 'order', order, replayed: false } : refused('unknown-order');
      }
      case 'cancel':
        return this.#cancel(command.orderId);
      case 'recent-orders':
        // As committed: a dashboard's view lags a batch at most.
        return { kind: 'orders', orders: this.view.recentOrders(command.eventId, Math.max(0, command.limit)) };
      case 'expiring-holds':
        return { kind: 'holds', holds: this.view.heldHolds(command.eventId, Math.max(0, command.limit)) };
      case 'expire':
        return this.#expireDue(command.limit);
      case 'reserve':
      case 'level':
      case 'adjust': {
        const event = this.#event(command.eventId);
        const type = event?.types.find((candidate) => candidate.id === command.typeId);
        if (!event) return refused('unknown-event');
        if (!type) return refused('unknown-ticket-type');
        if (command.kind === 'level') return { kind: 'level', level: levelOf(event, type) };
        if (command.kind === 'adjust') return this.#adjust(event, type, command.op, command.qty);
        return this.#reserve(command, event, type);
      }
    }
  }

  // ---- reading through the batch's own changes ---------------------------------------------------

  /** An event as the batch has it; the first time, with its due holds expired (see EXPIRED_PER_TOUCH). */
  #event(eventId: string): EventRecord | undefined {
    const event = this.changes.events.get(eventId)?.event ?? this.view.event(eventId);
    if (event && !this.#swept.has(eventId)) {
      this.#swept.add(eventId);
      for (const due of this.view.dueHolds(eventId, this.options.now, EXPIRED_PER_TOUCH)) this.#expire(due);
      return this.changes.events.get(eventId)?.event ?? event;
    }
    return event;
  }

  #order(orderId: string): OrderRecord | undefined {
    return this.changes.orders.get(orderId) ?? this.view.order(orderId);
  }

  #hold(holdId: string): HoldRecord | undefined {
    return this.changes.holds.get(holdId) ?? this.view.hold(holdId);
  }

  /** A hold as of now: one whose time has passed is expired first (its event's due holds with it). */
  #holdNow(holdId: string): HoldRecord | undefined {
    const hold = this.#hold(holdId);
    if (!hold) return undefined;
    this.#event(hold.eventId);
    const current = this.#hold(holdId)!;
    if (current.status === 'held' && current.expiresAt <= this.options.now) this.#expire(current);
    return this.#hold(holdId);
  }

  #buyerTickets(eventId: string, buyer: string): Map<string, number> {
    const changed = this.changes.buyers.get(buyerKeyOf(eventId, buyer));
    return new Map(changed?.tickets ?? this.view.buyerTickets(eventId, buyer));
  }

  #addBuyerTickets(eventId: string, buyer: string | null, items: readonly PurchaseItem[], sign: 1 | -1): void {
    if (buyer === null) return;
    const tickets = this.#buyerTickets(eventId, buyer);
    for (const { typeId, qty } of items) tickets.set(typeId, Math.max(0, (tickets.get(typeId) ?? 0) + sign * qty));
    this.changes.buyers.set(buyerKeyOf(eventId, buyer), { eventId, buyer, tickets });
  }

  #setEvent(event: EventRecord, defined = false): void {
    const previous = this.changes.events.get(event.id);
    this.changes.events.set(event.id, { event, defined: defined || (previous?.defined ?? false) });
  }

  /** The live record of a key, or how the command must be refused; undefined for a fresh key. */
  #known(key: string | undefined, request: string): IdempotencyRecord | StockDecision | undefined {
    if (key === undefined) return undefined;
    if (this.changes.keys.has(key)) return refused('key-in-flight');
    const known = this.view.idempotencyRecord(key);
    if (known === undefined || known.expiresAt <= this.options.now) return undefined;
    return known.request === request ? known : refused('key-reused');
  }

  #record(key: string | undefined, request: string, outcome: string): void {
    if (key === undefined) return;
    this.changes.keys.set(key, { key, request, outcome, expiresAt: this.options.now + this.options.idempotencyTtlMs });
  }

  // ---- events ------------------------------------------------------------------------------------

  #listEvents(after: string | null, limit: number): StockDecision {
    if (limit < 1) return { kind: 'events', events: [], next: null };
    // The view's page, with the batch's own changes over it (new events too).
    const ids = new Set(this.view.eventsAfter(after, limit + 1).map((event) => event.id));
    for (const id of this.changes.events.keys()) if (after === null || id > after) ids.add(id);
    const sorted = [...ids].sort();
    // Listed as they are: a page of many events expires nothing (the sweeper keeps reads within a second).
    const page = sorted.slice(0, limit).map((id) => this.changes.events.get(id)?.event ?? this.view.event(id)!);
    return { kind: 'events', events: page, next: sorted.length > limit ? page[page.length - 1]!.id : null };
  }

  #putEvent(eventId: string, definition: EventDefinition): StockDecision {
    const existing = this.#event(eventId);
    const types: TicketTypeRecord[] = [];
    for (const { id, name, capacity, maxPerOrder, maxPerBuyer } of definition.ticketTypes) {
      const before = existing?.types.find((type) => type.id === id);
      const taken = (before?.sold ?? 0) + (before?.held ?? 0);
      if (capacity < taken) {
        return refused(
          'capacity-below-sold',
          `ticketTypes.${types.length}.capacity`,
          `ticket type ${id} has ${before!.sold} tickets sold and ${before!.held} held; its capacity cannot be ${capacity}`,
        );
      }
      types.push({
        id,
        name,
        capacity,
        maxPerOrder,
        maxPerBuyer: maxPerBuyer ?? null,
        sold: before?.sold ?? 0,
        held: before?.held ?? 0,
        issued: before?.issued ?? 0,
      });
    }
    for (const type of existing?.types ?? []) {
      if ((type.issued > 0 || type.held > 0) && !types.some((kept) => kept.id === type.id)) {
        return refused(
          'ticket-type-in-use',
          'ticketTypes',
          `ticket type ${type.id} has sold or held tickets and cannot be removed; set its capacity to what it sold instead`,
        );
      }
    }
    const event: EventRecord = {
      id: eventId,
      name: definition.name,
      capacity: definition.capacity,
      maxPerBuyer: definition.maxPerBuyer ?? null,
      types,
    };
    const taken = eventTaken(event);
    if (event.capacity !== null && event.capacity < taken) {
      return refused(
        'capacity-below-sold',
        'capacity',
        `the event has ${taken} tickets sold or held; its capacity cannot be ${event.capacity}`,
      );
    }
    this.#setEvent(event, true);
    return { kind: 'event', event, created: existing === undefined };
  }

  #adjust(event: EventRecord, type: TicketTypeRecord, op: 'set' | 'add', qty: number): StockDecision {
    const remaining = op === 'set' ? qty : type.capacity - type.sold - type.held + qty;
    const capacity = type.sold + type.held + remaining;
    if (remaining < 0 || !Number.isSafeInteger(capacity) || capacity > MAX_ADJUSTED_CAPACITY) {
      return refused('capacity-below-sold', 'qty', 'The change would leave the stock below zero');
    }
    const next = withType(event, { ...type, capacity });
    this.#setEvent(next);
    return {
      kind: 'adjusted',
      level: levelOf(
        next,
        next.types.find((t) => t.id === type.id)!,
      ),
    };
  }

  // ---- selling -----------------------------------------------------------------------------------

  #reserve(
    command: Extract<StockCommand, { kind: 'reserve' }>,
    event: EventRecord,
    type: TicketTypeRecord,
  ): StockDecision {
    const request = reserveRequestOf(command);
    const key = command.key === undefined ? undefined : scopedKeyOf(command.eventId, command.key);
    const known = this.#known(key, request);
    if (known && 'kind' in known) return known;
    if (known) return { kind: 'reserved', outcome: reserveOutcomeOf(known.outcome, command), replayed: true };

    if (event.maxPerBuyer !== null || type.maxPerBuyer !== null) return refused('buyer-required', 'buyer');
    let outcome: ReserveOutcome;
    const available = typeAvailable(event, type);
    if (command.qty <= available) {
      const [line] = this.#sell(event, [{ typeId: type.id, qty: command.qty }]);
      this.changes.orders.set(command.orderId, {
        id: command.orderId,
        eventId: event.id,
        items: [line!],
        buyer: null,
        createdAt: command.at,
        status: 'confirmed',
        holdId: null,
      });
      outcome = {
        success: true,
        remaining: available - command.qty,
        reservationId: command.orderId,
        tickets: { first: line!.first, last: line!.last },
      };
    } else {
      outcome = { success: false, remaining: available };
    }
    this.#record(key, request, recordedOutcome(outcome));
    return { kind: 'reserved', outcome, replayed: false };
  }

  /** A purchase (sold at once) or a hold (taken out of sale until confirmed, released or expired). */
  #take(command: Extract<StockCommand, { kind: 'purchase' | 'hold' }>): StockDecision {
    const event = this.#event(command.eventId);
    if (!event) return refused('unknown-event');
    const checked = checkItems(event, command.items);
    if (!Array.isArray(checked)) return checked;
    const limited = event.maxPerBuyer !== null || checked.some((type) => type.maxPerBuyer !== null);
    if (limited && command.buyer === null) {
      return refused('buyer-required', 'buyer', 'this event limits tickets per buyer: name the buyer');
    }

    const request = command.kind === 'hold' ? holdRequestOf(command) : purchaseRequestOf(command);
    const key = command.key === undefined ? undefined : scopedKeyOf(command.eventId, command.key);
    const known = this.#known(key, request);
    if (known && 'kind' in known) return known;
    if (known) return this.#replay(known.outcome);

    if (limited) {
      const overLimit = this.#overBuyerLimit(event, checked, command.items, command.buyer!);
      if (overLimit) return overLimit;
    }

    // All or nothing: every item must fit, and all of them together under the event's cap.
    const taken = eventTaken(event);
    const wanted = command.items.reduce((sum, item) => sum + item.qty, 0);
    let short = event.capacity !== null && taken + wanted > event.capacity;
    const shortfalls = command.items.map((item, index): Shortfall => {
      const available = typeAvailable(event, checked[index]!, taken);
      if (item.qty > available) short = true;
      return { typeId: item.typeId, requested: item.qty, available };
    });
    if (short) {
      this.#record(key, request, `insufficient ${JSON.stringify(shortfalls)}`);
      return { kind: 'insufficient', items: shortfalls, replayed: false };
    }

    this.#addBuyerTickets(event.id, command.buyer, command.items, 1);
    if (command.kind === 'hold') {
      this.#setEvent(changeTypes(event, command.items, (type, qty) => ({ ...type, held: type.held + qty })));
      const hold: HoldRecord = {
        id: command.holdId,
        eventId: event.id,
        items: command.items.map(({ typeId, qty }) => ({ typeId, qty })),
        buyer: command.buyer,
        status: 'held',
        createdAt: command.at,
        expiresAt: command.at + command.ttlMs,
        orderId: null,
      };
      this.changes.holds.set(hold.id, hold);
      this.#record(key, request, `hold ${hold.id}`);
      return { kind: 'hold', hold, replayed: false };
    }
    const order: OrderRecord = {
      id: command.orderId,
      eventId: event.id,
      items: this.#sell(event, command.items),
      buyer: command.buyer,
      createdAt: command.at,
      status: 'confirmed',
      holdId: null,
    };
    this.changes.orders.set(order.id, order);
    this.#record(key, request, `order ${order.id}`);
    return { kind: 'order', order, replayed: false };
  }

  /** Why the buyer may not have these items too, or undefined when they may. */
  #overBuyerLimit(
    event: EventRecord,
    types: readonly TicketTypeRecord[],
    items: readonly PurchaseItem[],
    buyer: string,
  ): StockDecision | undefined {
    const has = this.#buyerTickets(event.id, buyer);
    for (const [index, item] of items.entries()) {
      const type = types[index]!;
      const already = has.get(type.id) ?? 0;
      if (type.maxPerBuyer !== null && already + item.qty > type.maxPerBuyer) {
        return refused(
          'buyer-limit-reached',
          `items.${index}.qty`,
          `a buyer may have at most ${type.maxPerBuyer} tickets of type ${type.id}; ${buyer} has ${already}`,
        );
      }
    }
    if (event.maxPerBuyer !== null) {
      let already = 0;
      for (const qty of has.values()) already += qty;
      const wanted = items.reduce((sum, item) => sum + item.qty, 0);
      if (already + wanted > event.maxPerBuyer) {
        return refused(
          'buyer-limit-reached',
          'items',
          `a buyer may have at most ${event.maxPerBuyer} tickets of this event; ${buyer} has ${already}`,
        );
      }
    }
    return undefined;
  }

  /** Sells `items` of the event (as it is in the batch now): each type's next ticket numbers. */
  #sell(event: EventRecord, items: readonly PurchaseItem[], fromHold = false): OrderLine[] {
    const lines: OrderLine[] = [];
    const next = changeTypes(event, items, (type, qty) => {
      const first = type.issued + 1;
      lines.push({ typeId: type.id, qty, first, last: first + qty - 1 });
      return {
        ...type,
        sold: type.sold + qty,
        held: fromHold ? type.held - qty : type.held,
        issued: type.issued + qty,
      };
    });
    this.#setEvent(next);
    return lines;
  }

  #replay(outcome: string): StockDecision {
    const space = outcome.indexOf(' ');
    const tag = outcome.slice(0, space);
    const rest = outcome.slice(space + 1);
    if (tag === 'insufficient') return { kind: 'insufficient', items: JSON.parse(rest) as Shortfall[], replayed: true };
    if (tag === 'hold') {
      const hold = this.#hold(rest);
      if (!hold) throw new Error(`an idempotency record names hold ${rest}, which the store does not hold`);
      return { kind: 'hold', hold, replayed: true };
    }
    const order = this.#order(rest);
    if (!order) throw new Error(`an idempotency record names order ${rest}, which the store does not hold`);
    return { kind: 'order', order, replayed: true };
  }

  // ---- holds and orders --------------------------------------------------------------------------

  #confirm(holdId: string, orderId: string, at: number): StockDecision {
    const hold = this.#holdNow(holdId);
    if (!hold) return refused('unknown-hold');
    if (hold.status === 'confirmed') return { kind: 'order', order: this.#order(hold.orderId!)!, replayed: true };
    if (hold.status === 'released') return refused('hold-released');
    if (hold.status === 'expired') return refused('hold-expired');
    const event = this.#event(hold.eventId)!;
    const order: OrderRecord = {
      id: orderId,
      eventId: event.id,
      items: this.#sell(event, hold.items, true),
      buyer: hold.buyer,
      createdAt: at,
      status: 'confirmed',
      holdId: hold.id,
    };
    this.changes.orders.set(order.id, order);
    this.changes.holds.set(hold.id, { ...hold, status: 'confirmed', orderId: order.id });
    return { kind: 'order', order, replayed: false };
  }

  #release(holdId: string): StockDecision {
    const hold = this.#holdNow(holdId);
    if (!hold) return refused('unknown-hold');
    if (hold.status === 'confirmed') return refused('hold-confirmed');
    if (hold.status !== 'held') return { kind: 'hold', hold, replayed: true };
    return { kind: 'hold', hold: this.#giveBack(hold, 'released'), replayed: false };
  }

  #cancel(orderId: string): StockDecision {
    const order = this.#order(orderId);
    if (!order) return refused('unknown-order');
    if (order.status === 'cancelled') return { kind: 'order', order, replayed: true };
    const event = this.#event(order.eventId)!;
    this.#setEvent(changeTypes(event, order.items, (type, qty) => ({ ...type, sold: type.sold - qty })));
    this.#addBuyerTickets(event.id, order.buyer, order.items, -1);
    const cancelled: OrderRecord = { ...order, status: 'cancelled' };
    this.changes.orders.set(order.id, cancelled);
    return { kind: 'order', order: cancelled, replayed: false };
  }

  /**
   * Expires a hold that is still held (one released or confirmed in this batch is left as it is).
   * `hold` may be as the view read it: what this batch changed of it counts first.
   */
  #expire(hold: HoldRecord): void {
    const current = this.changes.holds.get(hold.id) ?? hold;
    if (current.status === 'held') this.#giveBack(current, 'expired');
  }

  /** Expires up to `limit` due holds over all events; counts every hold it expired, its events' other due ones too. */
  #expireDue(limit: number): StockDecision {
    const before = this.expiredHolds;
    for (const due of this.view.dueHolds(null, this.options.now, limit)) {
      this.#event(due.eventId);
      this.#expire(due);
    }
    return { kind: 'expired', count: this.expiredHolds - before };
  }

  /** A held hold's stock back on sale, and the buyer's count down. */
  #giveBack(hold: HoldRecord, status: 'released' | 'expired'): HoldRecord {
    const event = this.changes.events.get(hold.eventId)?.event ?? this.view.event(hold.eventId)!;
    this.#setEvent(changeTypes(event, hold.items, (type, qty) => ({ ...type, held: type.held - qty })));
    this.#addBuyerTickets(hold.eventId, hold.buyer, hold.items, -1);
    const next = { ...hold, status };
    this.changes.holds.set(hold.id, next);
    if (status === 'expired') {
      this.expiredHolds += 1;
      for (const item of hold.items) this.expiredTickets += item.qty;
    }
    return next;
  }
}

/** The types of the items, in order, or why the items cannot be taken. */
function checkItems(event: EventRecord, items: readonly PurchaseItem[]): TicketTypeRecord[] | StockDecision {
  const types: TicketTypeRecord[] = [];
  for (const [index, item] of items.entries()) {
    if (types.some((listed) => listed.id === item.typeId)) {
      return refused(
        'duplicate-ticket-type',
        `items.${index}.ticketType`,
        `ticket type ${item.typeId} is listed twice; ask for its whole qty in one item`,
      );
    }
    const type = event.types.find((candidate) => candidate.id === item.typeId);
    if (!type) {
      return refused(
        'unknown-ticket-type',
        `items.${index}.ticketType`,
        `event ${event.id} has no ticket type ${item.typeId}`,
      );
    }
    if (type.maxPerOrder !== null && item.qty > type.maxPerOrder) {
      return refused(
        'over-max-per-order',
        `items.${index}.qty`,
        `at most ${type.maxPerOrder} tickets of type ${type.id} per order`,
      );
    }
    types.push(type);
  }
  return types;
}

function refused(reason: RefusalReason, field?: string, detail?: string): StockDecision {
  return {
    kind: 'refused',
    reason,
    ...(field === undefined ? {} : { field }),
    ...(detail === undefined ? {} : { detail }),
  };
}

/** The event with each item's type changed by `change`. */
function changeTypes(
  event: EventRecord,
  items: readonly PurchaseItem[],
  change: (type: TicketTypeRecord, qty: number) => TicketTypeRecord,
): EventRecord {
  let next = event;
  for (const { typeId, qty } of items) {
    next = withType(
      next,
      change(
        next.types.find((type) => type.id === typeId)!,
        qty,
      ),
    );
  }
  return next;
}

/** The event with `type` in place of the type of the same id. */
function withType(event: EventRecord, type: TicketTypeRecord): EventRecord {
  return { ...event, types: event.types.map((candidate) => (candidate.id === type.id ? type : candidate)) };
}

/** What a key's record says a purchase asked for; the same key with another request is refused. */
export function purchaseRequestOf(command: {
  items: ReadonlyArray<{ typeId: string; qty: number }>;
  buyer: string | null;
}): string {
  return `purchase ${JSON.stringify(command.items.map((item) => [item.typeId, item.qty]))} ${JSON.stringify(command.buyer)}`;
}

/** What a key's record says a hold asked for (its items, buyer and time to live). */
export function holdRequestOf(command: {
  items: ReadonlyArray<{ typeId: string; qty: number }>;
  buyer: string | null;
  ttlMs: number;
}): string {
  return `hold ${JSON.stringify(command.items.map((item) => [item.typeId, item.qty]))} ${JSON.stringify(command.buyer)} ${command.ttlMs}`;
}

/** What a key's record says a reserve asked for; the same key with another request is refused. */
export function reserveRequestOf(command: { typeId: string; qty: number }): string {
  return `reserve ${command.typeId} ${command.qty}`;
}

/** A reserve's outcome as a key's record keeps it: `1 <remaining> <first> <order id>` or `0 <remaining>`. */
export function recordedOutcome(outcome: ReserveOutcome): string {
  return outcome.success
    ? `1 ${outcome.remaining} ${outcome.tickets!.first} ${outcome.reservationId}`
    : `0 ${outcome.remaining}`;
}

/** The outcome a key's record (see {@link recordedOutcome}) stands for. */
export function reserveOutcomeOf(recorded: string, command: { qty: number }): ReserveOutcome {
  const [success, remaining, first, reservationId] = recorded.split(' ');
  if (success !== '1' || first === undefined) return { success: false, remaining: Number(remaining) };
  return {
    success: true,
    remaining: Number(remaining),
    // Records from before 1.0.0 reserves were orders name the reservation by its first ticket.
    reservationId: reservationId ?? `default-${first}`,
    tickets: { first: Number(first), last: Number(first) + command.qty - 1 },
  };
}
