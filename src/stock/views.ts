/**
 * What the API shows of events and orders: the records of model.ts with
 * what can still be sold worked out, in the API's names. Both services build
 * their answers from these, so the monolith and ticket answer alike.
 */
import {
  eventAvailable,
  eventHeld,
  eventSold,
  eventTaken,
  typeAvailable,
  type EventRecord,
  type HoldRecord,
  type HoldStatus,
  type OrderRecord,
  type OrderStatus,
} from './model.ts';

export interface TicketTypeView {
  id: string;
  name: string;
  capacity: number;
  maxPerOrder: number | null;
  maxPerBuyer: number | null;
  sold: number;
  /** Out of sale while buyers pay (holds not yet confirmed, released or expired). */
  held: number;
  /** What can still be sold of this type: its own capacity less sold and held, within what the event's cap leaves. */
  available: number;
}

export interface EventView {
  id: string;
  name: string;
  /** The cap over all ticket types; null when only the types' own capacities apply. */
  capacity: number | null;
  maxPerBuyer: number | null;
  sold: number;
  held: number;
  /** What can still be sold over all types. */
  available: number;
  ticketTypes: TicketTypeView[];
}

export interface OrderView {
  orderId: string;
  eventId: string;
  items: Array<{ ticketType: string; qty: number; tickets: { first: number; last: number } }>;
  buyer: string | null;
  status: OrderStatus;
  /** The hold this order confirmed, when there was one. */
  holdId?: string;
  /** RFC 3339 */
  createdAt: string;
}

export interface HoldView {
  holdId: string;
  eventId: string;
  items: Array<{ ticketType: string; qty: number }>;
  buyer: string | null;
  status: HoldStatus;
  /** RFC 3339: never confirmable after it; its stock back on sale within a second of it. */
  expiresAt: string;
  /** Set once confirmed. */
  orderId?: string;
}

/** The API's view of an event. */
export function eventView(event: EventRecord): EventView {
  const taken = eventTaken(event);
  return {
    id: event.id,
    name: event.name,
    capacity: event.capacity,
    maxPerBuyer: event.maxPerBuyer,
    sold: eventSold(event),
    held: eventHeld(event),
    available: eventAvailable(event, taken),
    ticketTypes: event.types.map((type) => ({
      id: type.id,
      name: type.name,
      capacity: type.capacity,
      maxPerOrder: type.maxPerOrder,
      maxPerBuyer: type.maxPerBuyer,
      sold: type.sold,
      held: type.held,
      available: typeAvailable(event, type, taken),
    })),
  };
}

/** The API's view of an order. */
export function orderView(order: OrderRecord): OrderView {
  return {
    orderId: order.id,
    eventId: order.eventId,
    items: order.items.map((line) => ({
      ticketType: line.typeId,
      qty: line.qty,
      tickets: { first: line.first, last: line.last },
    })),
    buyer: order.buyer,
    status: order.status,
    ...(order.holdId === null ? {} : { holdId: order.holdId }),
    createdAt: new Date(order.createdAt).toISOString(),
  };
}

/** The API's view of a hold. */
export function holdView(hold: HoldRecord): HoldView {
  return {
    holdId: hold.id,
    eventId: hold.eventId,
    items: hold.items.map((item) => ({ ticketType: item.typeId, qty: item.qty })),
    buyer: hold.buyer,
    status: hold.status,
    expiresAt: new Date(hold.expiresAt).toISOString(),
    ...(hold.orderId === null ? {} : { orderId: hold.orderId }),
  };
}
