/**
 * The rules of the stock: what a batch of commands decides, given the state
 * before it. Pure and synchronous: the memory and SQLite stores run them and
 * record what changed in one commit; the Redis store's batch script mirrors
 * them, and one contract suite (store-contract.test.ts) holds every store to
 * the same answers.
 */
import {
  eventSold,
  levelOf,
  reservationIdOf,
  typeAvailable,
  type EventDefinition,
  type EventRecord,
  type IdempotencyRecord,
  type OrderRecord,
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
  /** The record of an idempotency key (as {@link scopedKeyOf} makes it), expired or not; undefined when there is none. */
  idempotencyRecord(key: string): IdempotencyRecord | undefined;
}

/** What a batch changed: the new state of every event it touched, the orders it made, the keys it recorded. */
export interface StockChanges {
  /** The new state of each changed event; `defined` when its definition (not only its stock) changed. */
  events: Map<string, { event: EventRecord; defined: boolean }>;
  orders: Map<string, OrderRecord>;
  keys: Map<string, IdempotencyRecord>;
}

export interface DecideOptions {
  /** The clock keys expire by, in ms since the epoch. */
  now: number;
  /** How long a key recorded now is remembered, in ms. */
  idempotencyTtlMs: number;
}

/** Whether a batch changed anything a store must record. */
export function hasChanges(changes: StockChanges): boolean {
  return changes.events.size > 0 || changes.orders.size > 0 || changes.keys.size > 0;
}

/**
 * Idempotency keys are the caller's per event: the same key on two events is
 * two keys. (A shared store keeps each event's keys beside its stock.)
 */
export function scopedKeyOf(eventId: string, key: string): string {
  return `${eventId} ${key}`;
}

/** The largest number of tickets an adjustment can leave: beyond it, ticket numbers would lose precision. */
const MAX_ADJUSTED_CAPACITY = Number.MAX_SAFE_INTEGER;

/**
 * Decides `commands` in order against `view`, each seeing the effects of the
 * ones before it. Returns one decision per command and the changes to
 * record; nothing in `view` is modified.
 *
 * - purchase: takes every item if all fit (each type's own capacity, and the
 *   event's cap over all types), else nothing (`insufficient`, with what each
 *   item had). Items name known types, at most `maxPerOrder` each.
 * - reserve (1.0.0): one type, as a purchase; a shortfall is `success: false`.
 * - level / get-event / list-events: the state as of the commands before.
 * - adjust: sets or adds to a type's tickets remaining; never below what is sold.
 * - put-event: creates an event or updates its names, capacities and limits
 *   and adds types; never a capacity below what is sold, never removing a
 *   type that has sold.
 *
 * Under an idempotency key that is live, a purchase or reserve replays the
 * recorded answer if the request is the same and is refused (`key-reused`)
 * if not; a key already used in this batch is `key-in-flight`. A key past
 * its `expiresAt` counts as never seen.
 *
 * @example
 * const { decisions, changes } = decideBatch(view, [{ kind: 'reserve', eventId: 'default', typeId: 'default', qty: 2 }], { now: Date.now(), idempotencyTtlMs: 86_400_000 });
 */
export function decideBatch(
  view: StockView,
  commands: readonly StockCommand[],
  options: DecideOptions,
): { decisions: StockDecision[]; changes: StockChanges } {
  const batch = new Batch(view, options);
  const decisions = commands.map((command) => batch.decide(command));
  return { decisions, changes: batch.changes };
}

/** One batch being decided: the view with the batch's own changes over it. */
class Batch {
  readonly changes: StockChanges = { events: new Map(), orders: new Map(), keys: new Map() };

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
        return this.#purchase(command);
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

  #event(eventId: string): EventRecord | undefined {
    return this.changes.events.get(eventId)?.event ?? this.view.event(eventId);
  }

  #order(orderId: string): OrderRecord | undefined {
    return this.changes.orders.get(orderId) ?? this.view.order(orderId);
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

  #listEvents(after: string | null, limit: number): StockDecision {
    if (limit < 1) return { kind: 'events', events: [], next: null };
    // The view's page, with the batch's own changes over it (new events too).
    const byId = new Map(this.view.eventsAfter(after, limit + 1).map((event) => [event.id, event]));
    for (const [id, { event }] of this.changes.events) if (after === null || id > after) byId.set(id, event);
    const ids = [...byId.keys()].sort();
    const page = ids.slice(0, limit).map((id) => byId.get(id)!);
    return { kind: 'events', events: page, next: ids.length > limit ? page[page.length - 1]!.id : null };
  }

  #putEvent(eventId: string, definition: EventDefinition): StockDecision {
    const existing = this.#event(eventId);
    const types: TicketTypeRecord[] = [];
    for (const { id, name, capacity, maxPerOrder } of definition.ticketTypes) {
      const before = existing?.types.find((type) => type.id === id);
      if (before && capacity < before.sold) {
        return refused(
          'capacity-below-sold',
          `ticketTypes.${types.length}.capacity`,
          `ticket type ${id} has sold ${before.sold} tickets; its capacity cannot be ${capacity}`,
        );
      }
      types.push({ id, name, capacity, maxPerOrder, sold: before?.sold ?? 0, issued: before?.issued ?? 0 });
    }
    for (const type of existing?.types ?? []) {
      if (type.issued > 0 && !types.some((kept) => kept.id === type.id)) {
        return refused(
          'ticket-type-in-use',
          'ticketTypes',
          `ticket type ${type.id} has sold tickets and cannot be removed; set its capacity to what it sold instead`,
        );
      }
    }
    const event: EventRecord = { id: eventId, name: definition.name, capacity: definition.capacity, types };
    const sold = eventSold(event);
    if (event.capacity !== null && event.capacity < sold) {
      return refused(
        'capacity-below-sold',
        'capacity',
        `the event has sold ${sold} tickets; its capacity cannot be ${event.capacity}`,
      );
    }
    this.#setEvent(event, true);
    return { kind: 'event', event, created: existing === undefined };
  }

  #adjust(event: EventRecord, type: TicketTypeRecord, op: 'set' | 'add', qty: number): StockDecision {
    const remaining = op === 'set' ? qty : type.capacity - type.sold + qty;
    const capacity = type.sold + remaining;
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

    let outcome: ReserveOutcome;
    const available = typeAvailable(event, type);
    if (command.qty <= available) {
      const first = type.issued + 1;
      const next = withType(event, { ...type, sold: type.sold + command.qty, issued: type.issued + command.qty });
      this.#setEvent(next);
      outcome = {
        success: true,
        remaining: available - command.qty,
        reservationId: reservationIdOf(event.id, type.id, first),
        tickets: { first, last: first + command.qty - 1 },
      };
    } else {
      outcome = { success: false, remaining: available };
    }
    this.#record(key, request, recordedOutcome(outcome));
    return { kind: 'reserved', outcome, replayed: false };
  }

  #purchase(command: Extract<StockCommand, { kind: 'purchase' }>): StockDecision {
    const event = this.#event(command.eventId);
    if (!event) return refused('unknown-event');
    const types: TicketTypeRecord[] = [];
    for (const [index, item] of command.items.entries()) {
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

    const request = purchaseRequestOf(command);
    const key = command.key === undefined ? undefined : scopedKeyOf(command.eventId, command.key);
    const known = this.#known(key, request);
    if (known && 'kind' in known) return known;
    if (known) return this.#replayPurchase(known.outcome);

    // All or nothing: every item must fit, and all of them together under the event's cap.
    const sold = eventSold(event);
    const wanted = command.items.reduce((sum, item) => sum + item.qty, 0);
    const fitsEvent = event.capacity === null || sold + wanted <= event.capacity;
    const shortfalls: Shortfall[] = [];
    let short = !fitsEvent;
    command.items.forEach((item, index) => {
      const available = typeAvailable(event, types[index]!, sold);
      if (item.qty > available) short = true;
      shortfalls.push({ typeId: item.typeId, requested: item.qty, available });
    });
    if (short) {
      this.#record(key, request, `insufficient ${JSON.stringify(shortfalls)}`);
      return { kind: 'insufficient', items: shortfalls, replayed: false };
    }

    let next = event;
    const lines = command.items.map((item, index) => {
      const type = next.types.find((candidate) => candidate.id === types[index]!.id)!;
      const first = type.issued + 1;
      next = withType(next, { ...type, sold: type.sold + item.qty, issued: type.issued + item.qty });
      return { typeId: item.typeId, qty: item.qty, first, last: first + item.qty - 1 };
    });
    this.#setEvent(next);
    const order: OrderRecord = {
      id: command.orderId,
      eventId: event.id,
      items: lines,
      buyer: command.buyer,
      createdAt: command.at,
    };
    this.changes.orders.set(order.id, order);
    this.#record(key, request, `order ${order.id}`);
    return { kind: 'order', order, replayed: false };
  }

  #replayPurchase(outcome: string): StockDecision {
    const space = outcome.indexOf(' ');
    const tag = outcome.slice(0, space);
    const rest = outcome.slice(space + 1);
    if (tag === 'insufficient') return { kind: 'insufficient', items: JSON.parse(rest) as Shortfall[], replayed: true };
    const order = this.#order(rest);
    if (!order) throw new Error(`an idempotency record names order ${rest}, which the store does not hold`);
    return { kind: 'order', order, replayed: true };
  }
}

function refused(
  reason: Extract<StockDecision, { kind: 'refused' }>['reason'],
  field?: string,
  detail?: string,
): StockDecision {
  return {
    kind: 'refused',
    reason,
    ...(field === undefined ? {} : { field }),
    ...(detail === undefined ? {} : { detail }),
  };
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

/** What a key's record says a reserve asked for; the same key with another request is refused. */
export function reserveRequestOf(command: { typeId: string; qty: number }): string {
  return `reserve ${command.typeId} ${command.qty}`;
}

/** A reserve's outcome as a key's record keeps it: `1 <remaining> <first>` or `0 <remaining>`. */
export function recordedOutcome(outcome: ReserveOutcome): string {
  return outcome.success ? `1 ${outcome.remaining} ${outcome.tickets!.first}` : `0 ${outcome.remaining}`;
}

/** The outcome a key's record (see {@link recordedOutcome}) stands for. */
export function reserveOutcomeOf(
  recorded: string,
  command: { eventId: string; typeId: string; qty: number },
): ReserveOutcome {
  const [success, remaining, first] = recorded.split(' ').map(Number) as [number, number, number?];
  if (success !== 1 || first === undefined) return { success: false, remaining };
  return {
    success: true,
    remaining,
    reservationId: reservationIdOf(command.eventId, command.typeId, first),
    tickets: { first, last: first + command.qty - 1 },
  };
}
