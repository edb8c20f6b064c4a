/**
 * The cases of the store contract (store-contract.test.ts): each a seed and
 * a sequence of batches with the decisions every store must answer. Written
 * from the rules (rules.ts); the Redis script is held to them too.
 */
import { expect } from 'vitest';
import {
  defaultEventDefinition,
  type EventDefinition,
  type EventRecord,
  type OrderRecord,
  type HoldRecord,
  type HoldStatus,
  type OrderStatus,
  type PurchaseItem,
  type RefusalReason,
  type Shortfall,
  type StockCommand,
  type StockDecision,
} from './model.ts';
import type { SeedEvent } from './store.ts';

export interface ContractStep {
  batch: StockCommand[];
  expect: StockDecision[];
  /** Wait this long before the batch (for key expiry, on the store's own clock). */
  afterMs?: number;
}

export interface ContractCase {
  name: string;
  seed: SeedEvent[];
  /** Idempotency key TTL; default one hour. */
  ttlMs?: number;
  steps: ContractStep[];
}

// ---- building commands and expected decisions ---------------------------------------------------

type TypeSpec = [id: string, capacity: number, maxPerOrder?: number, maxPerBuyer?: number];

const definition = (name: string, capacity: number | null, ...types: TypeSpec[]): EventDefinition => ({
  name,
  capacity,
  maxPerBuyer: null,
  ticketTypes: types.map(([id, typeCapacity, maxPerOrder, maxPerBuyer]) => ({
    id,
    name: id.toUpperCase(),
    capacity: typeCapacity,
    maxPerOrder: maxPerOrder ?? null,
    maxPerBuyer: maxPerBuyer ?? null,
  })),
});
/** The definition with a limit per buyer over the whole event. */
const limitedPerBuyer = (def: EventDefinition, maxPerBuyer: number): EventDefinition => ({ ...def, maxPerBuyer });
const defaultSeed = (capacity: number, eventId = 'default'): SeedEvent => ({
  eventId,
  definition: defaultEventDefinition(capacity),
});
const seedEvent = (eventId: string, def: EventDefinition): SeedEvent => ({ eventId, definition: def });

/** An event record as a decision shows it: the definition with each type's `[sold, issued, held]`. */
const record = (
  eventId: string,
  def: EventDefinition,
  ...levels: Array<[sold: number, issued?: number, held?: number]>
): EventRecord => ({
  id: eventId,
  name: def.name,
  capacity: def.capacity,
  maxPerBuyer: def.maxPerBuyer ?? null,
  types: def.ticketTypes.map((type, index) => ({
    id: type.id,
    name: type.name,
    capacity: type.capacity,
    maxPerOrder: type.maxPerOrder,
    maxPerBuyer: type.maxPerBuyer ?? null,
    sold: levels[index]?.[0] ?? 0,
    held: levels[index]?.[2] ?? 0,
    issued: levels[index]?.[1] ?? levels[index]?.[0] ?? 0,
  })),
});

let reserves = 0;
const reserve = (qty: number, key?: string, eventId = 'default', typeId = 'default'): StockCommand => ({
  kind: 'reserve',
  eventId,
  typeId,
  qty,
  orderId: `ord_reserve${String(++reserves).padStart(23, '0')}${eventId}`,
  at: AT,
  ...(key === undefined ? {} : { key }),
});
const level = (eventId = 'default', typeId = 'default'): StockCommand => ({ kind: 'level', eventId, typeId });
const adjust = (op: 'set' | 'add', qty: number, eventId = 'default', typeId = 'default'): StockCommand => ({
  kind: 'adjust',
  eventId,
  typeId,
  op,
  qty,
});
const putEvent = (eventId: string, def: EventDefinition): StockCommand => ({
  kind: 'put-event',
  eventId,
  definition: def,
});
const getEvent = (eventId: string): StockCommand => ({ kind: 'get-event', eventId });
const listEvents = (after: string | null, limit: number): StockCommand => ({ kind: 'list-events', after, limit });
/**
 * Times in cases are ms after the case starts: the harness adds the start to
 * every `at`, `createdAt` and `expiresAt` (stores decide expiry by their own
 * clock, Redis by its TIME, so holds must live on the real clock).
 */
const AT = 0;
const HOUR = 3_600_000;
const orderId = (n: number, eventId: string) => `ord_contract${String(n).padStart(22, '0')}${eventId}`;
const purchase = (
  n: number,
  eventId: string,
  items: Array<[typeId: string, qty: number]>,
  options: { key?: string; buyer?: string } = {},
): StockCommand => ({
  kind: 'purchase',
  eventId,
  items: items.map(([typeId, qty]): PurchaseItem => ({ typeId, qty })),
  buyer: options.buyer ?? null,
  orderId: orderId(n, eventId),
  at: AT,
  ...(options.key === undefined ? {} : { key: options.key }),
});

/** A 1.0.0 reserve that sold: its reservation id is the id of the order it made. */
const sold = (remaining: number, first: number, last: number): StockDecision => ({
  kind: 'reserved',
  outcome: {
    success: true,
    remaining,
    reservationId: expect.stringMatching(/^ord_reserve\d{11}/),
    tickets: { first, last },
  },
  replayed: false,
});
const replayed = (decision: StockDecision): StockDecision => ({ ...decision, replayed: true }) as StockDecision;
const notSold = (remaining: number): StockDecision => ({
  kind: 'reserved',
  outcome: { success: false, remaining },
  replayed: false,
});
const levelIs = (remaining: number, soldCount: number): StockDecision => ({
  kind: 'level',
  level: { remaining, sold: soldCount },
});
const adjusted = (remaining: number, soldCount: number): StockDecision => ({
  kind: 'adjusted',
  level: { remaining, sold: soldCount },
});
const refused = (reason: RefusalReason, field?: string): StockDecision => ({
  kind: 'refused',
  reason,
  ...(field === undefined ? {} : { field }),
});
const eventIs = (event: EventRecord, created = false): StockDecision => ({ kind: 'event', event, created });
const eventsAre = (events: EventRecord[], next: string | null): StockDecision => ({ kind: 'events', events, next });
const ordered = (
  n: number,
  eventId: string,
  lines: Array<[typeId: string, first: number, last: number]>,
  buyer: string | null = null,
): StockDecision => {
  const order: OrderRecord = {
    id: orderId(n, eventId),
    eventId,
    items: lines.map(([typeId, first, last]) => ({ typeId, qty: last - first + 1, first, last })),
    buyer,
    createdAt: AT,
    status: 'confirmed',
    holdId: null,
  };
  return { kind: 'order', order, replayed: false };
};
const short = (...items: Array<[typeId: string, requested: number, available: number]>): StockDecision => ({
  kind: 'insufficient',
  items: items.map(([typeId, requested, available]): Shortfall => ({ typeId, requested, available })),
  replayed: false,
});

const holdId = (n: number, eventId: string) => `hld_contract${String(n).padStart(22, '0')}${eventId}`;
const hold = (
  n: number,
  eventId: string,
  items: Array<[typeId: string, qty: number]>,
  options: { key?: string; buyer?: string; ttlMs?: number } = {},
): StockCommand => ({
  kind: 'hold',
  eventId,
  items: items.map(([typeId, qty]): PurchaseItem => ({ typeId, qty })),
  buyer: options.buyer ?? null,
  holdId: holdId(n, eventId),
  at: AT,
  ttlMs: options.ttlMs ?? HOUR,
  ...(options.key === undefined ? {} : { key: options.key }),
});
const confirm = (n: number, eventId: string, orderN: number): StockCommand => ({
  kind: 'confirm',
  holdId: holdId(n, eventId),
  orderId: orderId(orderN, eventId),
  at: AT,
});
const release = (n: number, eventId: string): StockCommand => ({ kind: 'release', holdId: holdId(n, eventId) });
const getHold = (n: number, eventId: string): StockCommand => ({ kind: 'get-hold', holdId: holdId(n, eventId) });
const getOrder = (n: number, eventId: string): StockCommand => ({ kind: 'get-order', orderId: orderId(n, eventId) });
const cancel = (n: number, eventId: string): StockCommand => ({ kind: 'cancel', orderId: orderId(n, eventId) });
const expire = (limit: number): StockCommand => ({ kind: 'expire', limit });

const holdIs = (
  n: number,
  eventId: string,
  items: Array<[typeId: string, qty: number]>,
  options: { buyer?: string; status?: HoldStatus; ttlMs?: number; orderN?: number; replayed?: boolean } = {},
): StockDecision => {
  const record: HoldRecord = {
    id: holdId(n, eventId),
    eventId,
    items: items.map(([typeId, qty]) => ({ typeId, qty })),
    buyer: options.buyer ?? null,
    status: options.status ?? 'held',
    createdAt: AT,
    expiresAt: AT + (options.ttlMs ?? HOUR),
    orderId: options.orderN === undefined ? null : orderId(options.orderN, eventId),
  };
  return { kind: 'hold', hold: record, replayed: options.replayed ?? false };
};
/** An order decision changed: confirmed from a hold, or cancelled. */
const orderFrom = (decision: StockDecision, change: { holdN?: number; status?: OrderStatus }): StockDecision => {
  if (decision.kind !== 'order') throw new Error('orderFrom takes an order decision');
  return {
    ...decision,
    order: {
      ...decision.order,
      ...(change.holdN === undefined ? {} : { holdId: holdId(change.holdN, decision.order.eventId) }),
      ...(change.status === undefined ? {} : { status: change.status }),
    },
  };
};

/** An order decision with the order made at `at`. */
const orderAt = (decision: StockDecision, at: number): StockDecision =>
  decision.kind === 'order' ? { ...decision, order: { ...decision.order, createdAt: at } } : decision;
const orderOf = (decision: StockDecision): OrderRecord => {
  if (decision.kind !== 'order') throw new Error('orderOf takes an order decision');
  return decision.order;
};
const holdOf = (decision: StockDecision): HoldRecord => {
  if (decision.kind !== 'hold') throw new Error('holdOf takes a hold decision');
  return decision.hold;
};

// ---- the cases ------------------------------------------------------------------------------------

const concert = definition('Spring Concert', 10, ['general', 9, 4], ['vip', 3, 2]);
const uncapped = definition('Open Air', null, ['general', 5], ['vip', 2]);
/** Names with the characters an encoding might trip on: separators, quotes, newlines, tabs, non-ASCII. */
const oddlyNamed: EventDefinition = {
  name: 'Spring | Concert\n"2026" ✓ ',
  capacity: null,
  ticketTypes: [{ id: 'general', name: 'General\tadmission | {x}', capacity: 5, maxPerOrder: null }],
};

export const CONTRACT_CASES: ContractCase[] = [
  {
    name: '1.0.0 reserve takes all it asks for or nothing, in arrival order, numbering tickets from 1',
    seed: [defaultSeed(5)],
    steps: [
      {
        batch: [reserve(2), reserve(4), reserve(3), reserve(1), level()],
        expect: [sold(3, 1, 2), notSold(3), sold(0, 3, 5), notSold(0), levelIs(0, 5)],
      },
      { batch: [reserve(1)], expect: [notSold(0)] },
    ],
  },
  {
    name: 'a read sees exactly the commands before it in the batch',
    seed: [defaultSeed(10)],
    steps: [
      {
        batch: [level(), reserve(3), level(), reserve(2), level()],
        expect: [levelIs(10, 0), sold(7, 1, 3), levelIs(7, 3), sold(5, 4, 5), levelIs(5, 5)],
      },
    ],
  },
  {
    name: 'an adjustment sets or adds to what remains, never below what is sold, and numbers continue',
    seed: [defaultSeed(4)],
    steps: [
      {
        batch: [reserve(3), adjust('add', 2), adjust('add', -4), adjust('set', 0)],
        expect: [sold(1, 1, 3), adjusted(3, 3), refused('capacity-below-sold', 'qty'), adjusted(0, 3)],
      },
      {
        batch: [reserve(1), adjust('set', 2), reserve(2), level()],
        expect: [notSold(0), adjusted(2, 3), sold(0, 4, 5), levelIs(0, 5)],
      },
      { batch: [adjust('add', Number.MAX_SAFE_INTEGER)], expect: [refused('capacity-below-sold', 'qty')] },
    ],
  },
  {
    name: 'commands for an event or ticket type the store does not hold are refused, and the others decided',
    seed: [defaultSeed(3)],
    steps: [
      {
        batch: [
          reserve(1, undefined, 'nope'),
          level('default', 'vip'),
          adjust('set', 5, 'nope'),
          getEvent('nope'),
          purchase(1, 'nope', [['general', 1]]),
          reserve(1),
        ],
        expect: [
          refused('unknown-event'),
          refused('unknown-ticket-type'),
          refused('unknown-event'),
          refused('unknown-event'),
          refused('unknown-event'),
          sold(2, 1, 1),
        ],
      },
    ],
  },
  {
    name: 'events are apart: each numbers its own tickets',
    seed: [defaultSeed(3), defaultSeed(2, 'gala')],
    steps: [
      {
        batch: [reserve(2, undefined, 'gala'), reserve(2), reserve(1, undefined, 'gala'), level('gala')],
        expect: [sold(0, 1, 2), sold(1, 1, 2), notSold(0), levelIs(0, 2)],
      },
    ],
  },
  {
    name: 'a key replays its first answer, success or not, and sells nothing more',
    seed: [defaultSeed(3)],
    steps: [
      { batch: [reserve(2, 'a'), reserve(5, 'big')], expect: [sold(1, 1, 2), notSold(1)] },
      {
        batch: [reserve(2, 'a'), reserve(1), reserve(5, 'big')],
        expect: [replayed(sold(1, 1, 2)), sold(0, 3, 3), replayed(notSold(1))],
      },
      { batch: [level()], expect: [levelIs(0, 3)] },
    ],
  },
  {
    name: 'a key with another request is refused; a key twice in one batch is in flight',
    seed: [defaultSeed(10)],
    steps: [
      { batch: [reserve(1, 'k')], expect: [sold(9, 1, 1)] },
      {
        batch: [reserve(2, 'k'), reserve(1, 'twice'), reserve(1, 'twice'), level()],
        expect: [refused('key-reused'), sold(8, 2, 2), refused('key-in-flight'), levelIs(8, 2)],
      },
      { batch: [reserve(1, 'twice')], expect: [replayed(sold(8, 2, 2))] },
    ],
  },
  {
    name: 'keys are per event: one key on two events is two keys',
    seed: [defaultSeed(5), defaultSeed(5, 'gala')],
    steps: [
      {
        batch: [reserve(1, 'same'), reserve(2, 'same', 'gala')],
        expect: [sold(4, 1, 1), sold(3, 1, 2)],
      },
      {
        batch: [reserve(2, 'same', 'gala'), reserve(1, 'same')],
        expect: [replayed(sold(3, 1, 2)), replayed(sold(4, 1, 1))],
      },
    ],
  },
  {
    name: 'a key is forgotten once its TTL has passed, and decided afresh',
    seed: [defaultSeed(10)],
    ttlMs: 1_000,
    steps: [
      { batch: [reserve(1, 'short')], expect: [sold(9, 1, 1)] },
      { batch: [reserve(1, 'short')], expect: [replayed(sold(9, 1, 1))] },
      {
        batch: [reserve(1, 'short'), reserve(2, 'short2')],
        afterMs: 1_300,
        expect: [sold(8, 2, 2), sold(6, 3, 4)],
      },
    ],
  },
  {
    name: 'an event is created, read and updated: names, capacities and limits change, types are added, sales stay',
    seed: [],
    steps: [
      {
        batch: [putEvent('concert', concert), getEvent('concert'), purchase(1, 'concert', [['vip', 2]])],
        expect: [
          eventIs(record('concert', concert), true),
          eventIs(record('concert', concert)),
          ordered(1, 'concert', [['vip', 1, 2]]),
        ],
      },
      {
        batch: [
          putEvent('concert', definition('Spring Concert II', 12, ['general', 8, 6], ['vip', 2], ['student', 4])),
          getEvent('concert'),
        ],
        expect: [
          eventIs(
            record(
              'concert',
              definition('Spring Concert II', 12, ['general', 8, 6], ['vip', 2], ['student', 4]),
              [0, 0],
              [2, 2],
            ),
          ),
          eventIs(
            record(
              'concert',
              definition('Spring Concert II', 12, ['general', 8, 6], ['vip', 2], ['student', 4]),
              [0, 0],
              [2, 2],
            ),
          ),
        ],
      },
    ],
  },
  {
    name: 'an update never sets a capacity below what is sold, nor removes a type that has sold; unsold types may go',
    seed: [seedEvent('concert', concert)],
    steps: [
      {
        batch: [
          purchase(1, 'concert', [
            ['general', 4],
            ['vip', 2],
          ]),
        ],
        expect: [
          ordered(1, 'concert', [
            ['general', 1, 4],
            ['vip', 1, 2],
          ]),
        ],
      },
      {
        batch: [
          putEvent('concert', definition('Spring Concert', 10, ['general', 3], ['vip', 3])),
          putEvent('concert', definition('Spring Concert', 5, ['general', 9], ['vip', 3])),
          putEvent('concert', definition('Spring Concert', 10, ['general', 9])),
          putEvent('concert', definition('Spring Concert', 10, ['general', 9], ['vip', 2], ['box', 1])),
          putEvent('concert', definition('Spring Concert', null, ['general', 9], ['vip', 2])),
          getEvent('concert'),
        ],
        expect: [
          refused('capacity-below-sold', 'ticketTypes.0.capacity'),
          refused('capacity-below-sold', 'capacity'),
          refused('ticket-type-in-use', 'ticketTypes'),
          eventIs(
            record('concert', definition('Spring Concert', 10, ['general', 9], ['vip', 2], ['box', 1]), [4, 4], [2, 2]),
          ),
          eventIs(record('concert', definition('Spring Concert', null, ['general', 9], ['vip', 2]), [4, 4], [2, 2])),
          eventIs(record('concert', definition('Spring Concert', null, ['general', 9], ['vip', 2]), [4, 4], [2, 2])),
        ],
      },
    ],
  },
  {
    name: 'a purchase takes every item or none, and numbers each type on its own',
    seed: [seedEvent('open-air', uncapped)],
    steps: [
      {
        batch: [
          purchase(1, 'open-air', [
            ['general', 2],
            ['vip', 1],
          ]),
          purchase(2, 'open-air', [
            ['general', 2],
            ['vip', 2],
          ]),
          purchase(3, 'open-air', [
            ['vip', 1],
            ['general', 3],
          ]),
          purchase(4, 'open-air', [['general', 1]]),
          getEvent('open-air'),
        ],
        expect: [
          ordered(1, 'open-air', [
            ['general', 1, 2],
            ['vip', 1, 1],
          ]),
          short(['general', 2, 3], ['vip', 2, 1]),
          ordered(3, 'open-air', [
            ['vip', 2, 2],
            ['general', 3, 5],
          ]),
          short(['general', 1, 0]),
          eventIs(record('open-air', uncapped, [5, 5], [2, 2])),
        ],
      },
    ],
  },
  {
    name: "an event's cap holds over all its types: each type's available is what both leave",
    seed: [seedEvent('concert', concert)],
    steps: [
      {
        batch: [
          purchase(1, 'concert', [
            ['general', 4],
            ['vip', 2],
          ]),
          purchase(2, 'concert', [['general', 3]]),
          purchase(3, 'concert', [
            ['general', 1],
            ['vip', 1],
          ]),
          purchase(4, 'concert', [['vip', 1]]),
          purchase(5, 'concert', [['general', 1]]),
          getEvent('concert'),
        ],
        expect: [
          ordered(1, 'concert', [
            ['general', 1, 4],
            ['vip', 1, 2],
          ]),
          ordered(2, 'concert', [['general', 5, 7]]),
          short(['general', 1, 1], ['vip', 1, 1]),
          ordered(4, 'concert', [['vip', 3, 3]]),
          short(['general', 1, 0]),
          eventIs(record('concert', concert, [7, 7], [3, 3])),
        ],
      },
    ],
  },
  {
    name: 'an item of an unknown type, over maxPerOrder or listed twice is refused, naming it, and nothing is taken',
    seed: [seedEvent('concert', concert)],
    steps: [
      {
        batch: [
          purchase(1, 'concert', [
            ['general', 1],
            ['balcony', 1],
          ]),
          purchase(2, 'concert', [['general', 5]]),
          purchase(3, 'concert', [
            ['general', 1],
            ['vip', 3],
          ]),
          // Listed twice, each line within maxPerOrder and within what is left, together over both.
          purchase(4, 'concert', [
            ['vip', 2],
            ['general', 1],
            ['vip', 2],
          ]),
          getEvent('concert'),
        ],
        expect: [
          refused('unknown-ticket-type', 'items.1.ticketType'),
          refused('over-max-per-order', 'items.0.qty'),
          refused('over-max-per-order', 'items.1.qty'),
          refused('duplicate-ticket-type', 'items.2.ticketType'),
          eventIs(record('concert', concert)),
        ],
      },
    ],
  },
  {
    name: 'a keyed purchase replays its order, or its shortfall; another request under the key is refused',
    seed: [seedEvent('open-air', uncapped)],
    steps: [
      {
        batch: [
          purchase(1, 'open-air', [['vip', 2]], { key: 'k1', buyer: 'ann' }),
          purchase(2, 'open-air', [['vip', 1]], { key: 'k2' }),
          purchase(3, 'open-air', [['general', 1]], { key: 'k1' }),
        ],
        expect: [ordered(1, 'open-air', [['vip', 1, 2]], 'ann'), short(['vip', 1, 0]), refused('key-in-flight')],
      },
      {
        batch: [
          purchase(4, 'open-air', [['vip', 2]], { key: 'k1', buyer: 'ann' }),
          purchase(5, 'open-air', [['vip', 1]], { key: 'k2' }),
          purchase(6, 'open-air', [['vip', 2]], { key: 'k1', buyer: 'bob' }),
          purchase(7, 'open-air', [['general', 1]], { key: 'k1' }),
          getEvent('open-air'),
        ],
        expect: [
          replayed(ordered(1, 'open-air', [['vip', 1, 2]], 'ann')),
          replayed(short(['vip', 1, 0])),
          refused('key-reused'),
          refused('key-reused'),
          eventIs(record('open-air', uncapped, [0, 0], [2, 2])),
        ],
      },
    ],
  },
  {
    name: 'events are listed in id order, a page at a time, with the ones this batch created',
    seed: [seedEvent('b-event', uncapped), seedEvent('d-event', uncapped), seedEvent('a-event', uncapped)],
    steps: [
      {
        batch: [listEvents(null, 2), putEvent('c-event', concert), listEvents('a-event', 2), listEvents('c-event', 2)],
        expect: [
          eventsAre([record('a-event', uncapped), record('b-event', uncapped)], 'b-event'),
          eventIs(record('c-event', concert), true),
          eventsAre([record('b-event', uncapped), record('c-event', concert)], 'c-event'),
          eventsAre([record('d-event', uncapped)], null),
        ],
      },
      {
        batch: [listEvents('d-event', 2), listEvents(null, 10)],
        expect: [
          eventsAre([], null),
          eventsAre(
            ['a-event', 'b-event', 'c-event', 'd-event'].map((id) => record(id, id === 'c-event' ? concert : uncapped)),
            null,
          ),
        ],
      },
    ],
  },
  {
    name: '1.0.0 reserve on the default event honours a cap set on it, and shares its numbers with orders',
    seed: [defaultSeed(10)],
    steps: [
      {
        batch: [
          putEvent('default', definition('Default', 4, ['default', 10])),
          reserve(3),
          purchase(1, 'default', [['default', 2]]),
          reserve(1),
          level(),
        ],
        expect: [
          eventIs(record('default', definition('Default', 4, ['default', 10]))),
          sold(1, 1, 3),
          short(['default', 2, 1]),
          sold(0, 4, 4),
          levelIs(0, 4),
        ],
      },
    ],
  },
  {
    name: 'a read in a batch sees the sales before it and none after, on every event it lists',
    seed: [seedEvent('a-event', uncapped), seedEvent('b-event', concert)],
    steps: [
      {
        batch: [
          purchase(1, 'a-event', [['general', 2]]),
          listEvents(null, 5),
          purchase(2, 'b-event', [['vip', 1]]),
          getEvent('b-event'),
          listEvents('a-event', 1),
          purchase(3, 'a-event', [['vip', 2]]),
        ],
        expect: [
          ordered(1, 'a-event', [['general', 1, 2]]),
          eventsAre([record('a-event', uncapped, [2, 2]), record('b-event', concert)], null),
          ordered(2, 'b-event', [['vip', 1, 1]]),
          eventIs(record('b-event', concert, [0, 0], [1, 1])),
          eventsAre([record('b-event', concert, [0, 0], [1, 1])], null),
          ordered(3, 'a-event', [['vip', 1, 2]]),
        ],
      },
    ],
  },
  {
    name: 'a page ends where the ids do: after any string, next only when more follow',
    seed: [seedEvent('a-event', uncapped), seedEvent('b-event', uncapped), seedEvent('d-event', uncapped)],
    steps: [
      {
        batch: [listEvents('b', 2), listEvents('a-event', 2), listEvents('c', 1), listEvents(null, 1)],
        expect: [
          eventsAre([record('b-event', uncapped), record('d-event', uncapped)], null),
          eventsAre([record('b-event', uncapped), record('d-event', uncapped)], null),
          eventsAre([record('d-event', uncapped)], null),
          eventsAre([record('a-event', uncapped)], 'a-event'),
        ],
      },
    ],
  },
  {
    name: 'an event created mid-batch: commands before it are refused, those after it decided; a second put updates it',
    seed: [],
    steps: [
      {
        batch: [
          purchase(1, 'late', [['general', 1]]),
          getEvent('late'),
          putEvent('late', uncapped),
          putEvent('late', definition('Open Air', 3, ['general', 5], ['vip', 2])),
          purchase(2, 'late', [['general', 1]]),
          level('late', 'general'),
        ],
        expect: [
          refused('unknown-event'),
          refused('unknown-event'),
          eventIs(record('late', uncapped), true),
          eventIs(record('late', definition('Open Air', 3, ['general', 5], ['vip', 2]))),
          ordered(2, 'late', [['general', 1, 1]]),
          levelIs(2, 1),
        ],
      },
    ],
  },
  {
    name: 'a refused purchase records no key; a reserve and a purchase on one event share their keys',
    seed: [defaultSeed(5)],
    steps: [
      {
        batch: [
          purchase(1, 'default', [['nope', 1]], { key: 'k' }),
          purchase(2, 'default', [['default', 1]], { key: 'k' }),
          reserve(1, 'k'),
        ],
        expect: [
          refused('unknown-ticket-type', 'items.0.ticketType'),
          ordered(2, 'default', [['default', 1, 1]]),
          refused('key-in-flight'),
        ],
      },
      {
        batch: [reserve(1, 'k'), purchase(3, 'default', [['default', 1]], { key: 'k' })],
        expect: [refused('key-reused'), replayed(ordered(2, 'default', [['default', 1, 1]]))],
      },
    ],
  },
  {
    name: 'names and buyers are kept as given, whatever characters they hold, also in replays',
    seed: [seedEvent('odd', oddlyNamed)],
    steps: [
      {
        batch: [
          purchase(1, 'odd', [['general', 1]], { key: 'ann', buyer: 'Ann\nSmith | "1" ✓' }),
          purchase(2, 'odd', [['general', 1]], { key: 'empty', buyer: '' }),
          getEvent('odd'),
        ],
        expect: [
          ordered(1, 'odd', [['general', 1, 1]], 'Ann\nSmith | "1" ✓'),
          ordered(2, 'odd', [['general', 2, 2]], ''),
          eventIs(record('odd', oddlyNamed, [2, 2])),
        ],
      },
      {
        batch: [
          purchase(3, 'odd', [['general', 1]], { key: 'ann', buyer: 'Ann\nSmith | "1" ✓' }),
          purchase(4, 'odd', [['general', 1]], { key: 'empty', buyer: '' }),
          purchase(5, 'odd', [['general', 1]], { key: 'empty' }),
        ],
        expect: [
          replayed(ordered(1, 'odd', [['general', 1, 1]], 'Ann\nSmith | "1" ✓')),
          replayed(ordered(2, 'odd', [['general', 2, 2]], '')),
          refused('key-reused'),
        ],
      },
    ],
  },
  {
    name: 'capacities of 1e9 and adjustments up to the largest safe integer stay exact',
    seed: [
      defaultSeed(1_000_000_000),
      seedEvent('hall', definition('Hall', 1_000_000_000, ['general', 1_000_000_000])),
    ],
    steps: [
      {
        batch: [
          purchase(1, 'hall', [['general', 999_999_999]]),
          getEvent('hall'),
          reserve(3),
          adjust('set', Number.MAX_SAFE_INTEGER - 3),
          adjust('add', 1),
          reserve(1),
          level(),
        ],
        expect: [
          ordered(1, 'hall', [['general', 1, 999_999_999]]),
          eventIs(
            record('hall', definition('Hall', 1_000_000_000, ['general', 1_000_000_000]), [999_999_999, 999_999_999]),
          ),
          sold(999_999_997, 1, 3),
          adjusted(Number.MAX_SAFE_INTEGER - 3, 3),
          refused('capacity-below-sold', 'qty'),
          sold(Number.MAX_SAFE_INTEGER - 4, 4, 4),
          levelIs(Number.MAX_SAFE_INTEGER - 4, 4),
        ],
      },
    ],
  },
  {
    name: 'a hold takes stock out of sale until confirmed; confirming sells it, and again answers the same order',
    seed: [seedEvent('open-air', uncapped)],
    steps: [
      {
        batch: [
          hold(1, 'open-air', [['vip', 2]], { buyer: 'ann' }),
          getEvent('open-air'),
          purchase(1, 'open-air', [['vip', 1]]),
          getHold(1, 'open-air'),
        ],
        expect: [
          holdIs(1, 'open-air', [['vip', 2]], { buyer: 'ann' }),
          eventIs(record('open-air', uncapped, [0], [0, 0, 2])),
          short(['vip', 1, 0]),
          holdIs(1, 'open-air', [['vip', 2]], { buyer: 'ann' }),
        ],
      },
      {
        batch: [
          confirm(1, 'open-air', 2),
          confirm(1, 'open-air', 3),
          getHold(1, 'open-air'),
          getOrder(2, 'open-air'),
          getEvent('open-air'),
          purchase(4, 'open-air', [['general', 1]]),
        ],
        expect: [
          orderFrom(ordered(2, 'open-air', [['vip', 1, 2]], 'ann'), { holdN: 1 }),
          replayed(orderFrom(ordered(2, 'open-air', [['vip', 1, 2]], 'ann'), { holdN: 1 })),
          holdIs(1, 'open-air', [['vip', 2]], { buyer: 'ann', status: 'confirmed', orderN: 2 }),
          orderFrom(ordered(2, 'open-air', [['vip', 1, 2]], 'ann'), { holdN: 1 }),
          eventIs(record('open-air', uncapped, [0], [2, 2, 0])),
          ordered(4, 'open-air', [['general', 1, 1]]),
        ],
      },
    ],
  },
  {
    name: 'a released hold gives its stock back at once; released again, the same; it can no longer be confirmed',
    seed: [seedEvent('open-air', uncapped)],
    steps: [
      {
        batch: [
          hold(1, 'open-air', [['general', 3]]),
          release(1, 'open-air'),
          release(1, 'open-air'),
          confirm(1, 'open-air', 1),
          getEvent('open-air'),
          purchase(2, 'open-air', [['general', 5]]),
        ],
        expect: [
          holdIs(1, 'open-air', [['general', 3]]),
          holdIs(1, 'open-air', [['general', 3]], { status: 'released' }),
          holdIs(1, 'open-air', [['general', 3]], { status: 'released', replayed: true }),
          refused('hold-released'),
          eventIs(record('open-air', uncapped)),
          ordered(2, 'open-air', [['general', 1, 5]]),
        ],
      },
      {
        batch: [
          hold(3, 'open-air', [['vip', 1]]),
          confirm(3, 'open-air', 4),
          release(3, 'open-air'),
          getHold(9, 'open-air'),
          confirm(9, 'open-air', 5),
          release(9, 'open-air'),
          getOrder(9, 'open-air'),
        ],
        expect: [
          holdIs(3, 'open-air', [['vip', 1]]),
          orderFrom(ordered(4, 'open-air', [['vip', 1, 1]]), { holdN: 3 }),
          refused('hold-confirmed'),
          refused('unknown-hold'),
          refused('unknown-hold'),
          refused('unknown-hold'),
          refused('unknown-order'),
        ],
      },
    ],
  },
  {
    name: 'a hold past its time is never confirmed, and its stock is back on sale however it is next touched',
    seed: [seedEvent('open-air', uncapped), seedEvent('club', uncapped)],
    steps: [
      {
        batch: [
          hold(1, 'open-air', [['vip', 2]], { ttlMs: 1_000, buyer: 'ann' }),
          hold(2, 'open-air', [['general', 1]], { ttlMs: 1_000 }),
          hold(3, 'club', [['general', 4]], { ttlMs: 1_000 }),
          hold(4, 'club', [['general', 1]]),
        ],
        expect: [
          holdIs(1, 'open-air', [['vip', 2]], { ttlMs: 1_000, buyer: 'ann' }),
          holdIs(2, 'open-air', [['general', 1]], { ttlMs: 1_000 }),
          holdIs(3, 'club', [['general', 4]], { ttlMs: 1_000 }),
          holdIs(4, 'club', [['general', 1]]),
        ],
      },
      {
        afterMs: 1_300,
        batch: [
          confirm(1, 'open-air', 1),
          getHold(2, 'open-air'),
          getEvent('open-air'),
          release(2, 'open-air'),
          purchase(2, 'open-air', [['vip', 2]]),
        ],
        expect: [
          refused('hold-expired'),
          holdIs(2, 'open-air', [['general', 1]], { ttlMs: 1_000, status: 'expired' }),
          eventIs(record('open-air', uncapped)),
          holdIs(2, 'open-air', [['general', 1]], { ttlMs: 1_000, status: 'expired', replayed: true }),
          ordered(2, 'open-air', [['vip', 1, 2]]),
        ],
      },
      {
        // The club was not touched since: a sweep over all events gives its expired hold back.
        batch: [expire(100), getHold(3, 'club'), getHold(4, 'club'), getEvent('club')],
        expect: [
          { kind: 'expired', count: 1 },
          holdIs(3, 'club', [['general', 4]], { ttlMs: 1_000, status: 'expired' }),
          holdIs(4, 'club', [['general', 1]]),
          eventIs(record('club', uncapped, [0, 0, 1])),
        ],
      },
    ],
  },
  {
    name: "held tickets count against the types' capacities and the event's cap, and against updates",
    seed: [seedEvent('concert', concert)],
    steps: [
      {
        batch: [
          hold(1, 'concert', [
            ['general', 4],
            ['vip', 2],
          ]),
          hold(2, 'concert', [['general', 4]]),
          purchase(1, 'concert', [['vip', 1]]),
          purchase(2, 'concert', [['vip', 1]]),
          putEvent('concert', definition('Spring Concert', 10, ['general', 7, 4], ['vip', 3, 2])),
          putEvent('concert', definition('Spring Concert', 9, ['general', 9, 4], ['vip', 3, 2])),
          putEvent('concert', definition('Spring Concert', 10, ['general', 9, 4])),
          getEvent('concert'),
        ],
        expect: [
          holdIs(1, 'concert', [
            ['general', 4],
            ['vip', 2],
          ]),
          holdIs(2, 'concert', [['general', 4]]),
          short(['vip', 1, 0]),
          short(['vip', 1, 0]),
          refused('capacity-below-sold', 'ticketTypes.0.capacity'),
          refused('capacity-below-sold', 'capacity'),
          refused('ticket-type-in-use', 'ticketTypes'),
          eventIs(record('concert', concert, [0, 0, 8], [0, 0, 2])),
        ],
      },
    ],
  },
  {
    name: 'cancelling an order puts its tickets back on sale; numbers are never handed out again; again, the same',
    seed: [seedEvent('open-air', uncapped)],
    steps: [
      {
        batch: [
          purchase(1, 'open-air', [['vip', 2]], { buyer: 'ann' }),
          cancel(1, 'open-air'),
          cancel(1, 'open-air'),
          getOrder(1, 'open-air'),
          getEvent('open-air'),
          purchase(2, 'open-air', [['vip', 2]]),
          cancel(7, 'open-air'),
        ],
        expect: [
          ordered(1, 'open-air', [['vip', 1, 2]], 'ann'),
          orderFrom(ordered(1, 'open-air', [['vip', 1, 2]], 'ann'), { status: 'cancelled' }),
          replayed(orderFrom(ordered(1, 'open-air', [['vip', 1, 2]], 'ann'), { status: 'cancelled' })),
          orderFrom(ordered(1, 'open-air', [['vip', 1, 2]], 'ann'), { status: 'cancelled' }),
          eventIs(record('open-air', uncapped, [0], [0, 2])),
          ordered(2, 'open-air', [['vip', 3, 4]]),
          refused('unknown-order'),
        ],
      },
    ],
  },
  {
    name: 'limits per buyer count what a buyer holds and bought, per type and over the event; freed tickets count no more',
    seed: [seedEvent('gala', limitedPerBuyer(definition('Gala', null, ['general', 20], ['vip', 10, 4, 2]), 4))],
    steps: [
      {
        batch: [
          hold(1, 'gala', [['vip', 2]], { buyer: 'ann' }),
          purchase(1, 'gala', [['vip', 1]], { buyer: 'ann' }),
          purchase(2, 'gala', [['general', 2]], { buyer: 'ann' }),
          purchase(3, 'gala', [['general', 1]], { buyer: 'ann' }),
          purchase(4, 'gala', [['general', 1]]),
          hold(2, 'gala', [['vip', 1]]),
          purchase(
            5,
            'gala',
            [
              ['vip', 2],
              ['general', 2],
            ],
            { buyer: 'bob' },
          ),
        ],
        expect: [
          holdIs(1, 'gala', [['vip', 2]], { buyer: 'ann' }),
          refused('buyer-limit-reached', 'items.0.qty'),
          ordered(2, 'gala', [['general', 1, 2]], 'ann'),
          refused('buyer-limit-reached', 'items'),
          refused('buyer-required', 'buyer'),
          refused('buyer-required', 'buyer'),
          ordered(
            5,
            'gala',
            [
              ['vip', 1, 2],
              ['general', 3, 4],
            ],
            'bob',
          ),
        ],
      },
      {
        batch: [
          release(1, 'gala'),
          purchase(6, 'gala', [['vip', 2]], { buyer: 'ann' }),
          cancel(2, 'gala'),
          purchase(7, 'gala', [['general', 2]], { buyer: 'ann' }),
          purchase(8, 'gala', [['general', 1]], { buyer: 'ann' }),
        ],
        expect: [
          holdIs(1, 'gala', [['vip', 2]], { buyer: 'ann', status: 'released' }),
          ordered(6, 'gala', [['vip', 3, 4]], 'ann'),
          orderFrom(ordered(2, 'gala', [['general', 1, 2]], 'ann'), { status: 'cancelled' }),
          ordered(7, 'gala', [['general', 5, 6]], 'ann'),
          refused('buyer-limit-reached', 'items'),
        ],
      },
    ],
  },
  {
    name: 'a keyed hold replays itself, as it is now; the key with another request or another time to live is refused',
    seed: [seedEvent('open-air', uncapped)],
    steps: [
      {
        batch: [hold(1, 'open-air', [['vip', 1]], { key: 'h' }), hold(2, 'open-air', [['vip', 1]], { key: 'h' })],
        expect: [holdIs(1, 'open-air', [['vip', 1]]), refused('key-in-flight')],
      },
      {
        batch: [
          hold(3, 'open-air', [['vip', 1]], { key: 'h' }),
          release(1, 'open-air'),
          hold(4, 'open-air', [['vip', 1]], { key: 'h' }),
          hold(5, 'open-air', [['vip', 1]], { key: 'h', ttlMs: 60_000 }),
          purchase(6, 'open-air', [['vip', 1]], { key: 'h' }),
        ],
        expect: [
          holdIs(1, 'open-air', [['vip', 1]], { replayed: true }),
          holdIs(1, 'open-air', [['vip', 1]], { status: 'released' }),
          holdIs(1, 'open-air', [['vip', 1]], { status: 'released', replayed: true }),
          refused('key-reused'),
          refused('key-reused'),
        ],
      },
    ],
  },
  {
    name: '1.0.0 reserves are orders too, and can be looked up and cancelled',
    seed: [defaultSeed(5)],
    steps: [
      {
        batch: [
          { ...reserve(2), orderId: orderId(1, 'default') } as StockCommand,
          getOrder(1, 'default'),
          cancel(1, 'default'),
          level(),
        ],
        expect: [
          {
            kind: 'reserved',
            outcome: {
              success: true,
              remaining: 3,
              reservationId: orderId(1, 'default'),
              tickets: { first: 1, last: 2 },
            },
            replayed: false,
          },
          ordered(1, 'default', [['default', 1, 2]]),
          orderFrom(ordered(1, 'default', [['default', 1, 2]]), { status: 'cancelled' }),
          levelIs(5, 0),
        ],
      },
    ],
  },
  {
    name: 'list-events expires nothing; any command that touches the event expires its due holds first, even one then refused',
    seed: [seedEvent('open-air', uncapped)],
    steps: [
      {
        batch: [
          hold(1, 'open-air', [['general', 2]], { ttlMs: 1_000, buyer: 'ann' }),
          hold(2, 'open-air', [['vip', 1]]),
        ],
        expect: [
          holdIs(1, 'open-air', [['general', 2]], { ttlMs: 1_000, buyer: 'ann' }),
          holdIs(2, 'open-air', [['vip', 1]]),
        ],
      },
      {
        afterMs: 1_300,
        batch: [
          listEvents(null, 10),
          purchase(1, 'open-air', [['nope', 1]], { buyer: 'ann' }),
          listEvents(null, 10),
          getHold(1, 'open-air'),
        ],
        expect: [
          eventsAre([record('open-air', uncapped, [0, 0, 2], [0, 0, 1])], null),
          refused('unknown-ticket-type', 'items.0.ticketType'),
          eventsAre([record('open-air', uncapped, [0, 0, 0], [0, 0, 1])], null),
          holdIs(1, 'open-air', [['general', 2]], { ttlMs: 1_000, buyer: 'ann', status: 'expired' }),
        ],
      },
    ],
  },
  {
    name: 'a sweep expires the due holds of every event it finds and counts each once; a second finds none',
    seed: [seedEvent('open-air', uncapped), seedEvent('club', uncapped)],
    steps: [
      {
        batch: [
          hold(1, 'open-air', [['general', 1]], { ttlMs: 1_000 }),
          hold(2, 'club', [['general', 2]], { ttlMs: 1_000, buyer: 'bob' }),
          hold(3, 'club', [['vip', 1]], { buyer: 'bob' }),
        ],
        expect: [
          holdIs(1, 'open-air', [['general', 1]], { ttlMs: 1_000 }),
          holdIs(2, 'club', [['general', 2]], { ttlMs: 1_000, buyer: 'bob' }),
          holdIs(3, 'club', [['vip', 1]], { buyer: 'bob' }),
        ],
      },
      {
        afterMs: 1_300,
        batch: [expire(100), expire(100), listEvents(null, 10)],
        expect: [
          { kind: 'expired', count: 2 },
          { kind: 'expired', count: 0 },
          eventsAre([record('club', uncapped, [0], [0, 0, 1]), record('open-air', uncapped)], null),
        ],
      },
    ],
  },
  {
    name: 'a sweep counts every hold it expired, the other due holds of an event it touched too',
    seed: [seedEvent('club', uncapped)],
    steps: [
      {
        batch: [
          hold(1, 'club', [['general', 1]], { ttlMs: 1_000 }),
          hold(2, 'club', [['general', 2]], { ttlMs: 1_000 }),
          hold(3, 'club', [['vip', 1]], { ttlMs: 1_000 }),
        ],
        expect: [
          holdIs(1, 'club', [['general', 1]], { ttlMs: 1_000 }),
          holdIs(2, 'club', [['general', 2]], { ttlMs: 1_000 }),
          holdIs(3, 'club', [['vip', 1]], { ttlMs: 1_000 }),
        ],
      },
      {
        afterMs: 1_300,
        batch: [expire(1), expire(100), listEvents(null, 10)],
        expect: [
          { kind: 'expired', count: 3 },
          { kind: 'expired', count: 0 },
          eventsAre([record('club', uncapped)], null),
        ],
      },
    ],
  },
  {
    name: "a dashboard's reads: the latest orders newest first, and the holds that expire first",
    seed: [seedEvent('open-air', uncapped), seedEvent('club', uncapped)],
    steps: [
      {
        batch: [
          { ...purchase(1, 'open-air', [['general', 1]]), at: 1 } as StockCommand,
          { ...purchase(2, 'club', [['general', 2]]), at: 2 } as StockCommand,
          { ...purchase(3, 'open-air', [['vip', 1]]), at: 3 } as StockCommand,
          hold(1, 'open-air', [['general', 1]], { ttlMs: 300_000 }),
          hold(2, 'club', [['vip', 1]], { ttlMs: 60_000 }),
          hold(3, 'open-air', [['vip', 1]], { ttlMs: 120_000 }),
          release(3, 'open-air'),
        ],
        expect: [
          { ...orderAt(ordered(1, 'open-air', [['general', 1, 1]]), 1) },
          { ...orderAt(ordered(2, 'club', [['general', 1, 2]]), 2) },
          { ...orderAt(ordered(3, 'open-air', [['vip', 1, 1]]), 3) },
          holdIs(1, 'open-air', [['general', 1]], { ttlMs: 300_000 }),
          holdIs(2, 'club', [['vip', 1]], { ttlMs: 60_000 }),
          holdIs(3, 'open-air', [['vip', 1]], { ttlMs: 120_000 }),
          holdIs(3, 'open-air', [['vip', 1]], { ttlMs: 120_000, status: 'released' }),
        ],
      },
      {
        // As committed: these reads do not see the batch they are in.
        batch: [
          { kind: 'recent-orders', eventId: null, limit: 2 },
          { kind: 'recent-orders', eventId: 'open-air', limit: 10 },
          { kind: 'expiring-holds', eventId: null, limit: 10 },
          { kind: 'expiring-holds', eventId: 'club', limit: 1 },
        ],
        expect: [
          {
            kind: 'orders',
            orders: [
              orderOf(orderAt(ordered(3, 'open-air', [['vip', 1, 1]]), 3)),
              orderOf(orderAt(ordered(2, 'club', [['general', 1, 2]]), 2)),
            ],
          },
          {
            kind: 'orders',
            orders: [
              orderOf(orderAt(ordered(3, 'open-air', [['vip', 1, 1]]), 3)),
              orderOf(orderAt(ordered(1, 'open-air', [['general', 1, 1]]), 1)),
            ],
          },
          {
            kind: 'holds',
            holds: [
              holdOf(holdIs(2, 'club', [['vip', 1]], { ttlMs: 60_000 })),
              holdOf(holdIs(1, 'open-air', [['general', 1]], { ttlMs: 300_000 })),
            ],
          },
          { kind: 'holds', holds: [holdOf(holdIs(2, 'club', [['vip', 1]], { ttlMs: 60_000 }))] },
        ],
      },
    ],
  },
];
