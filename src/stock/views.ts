/**
 * What the API shows of events and orders: the records of model.ts with
 * what can still be sold worked out, in the API's names. Both services build
 * their answers from these, so the monolith and ticket answer alike.
 */
import { eventAvailable, eventSold, typeAvailable, type EventRecord, type OrderRecord } from './model.ts';

export interface TicketTypeView {
  id: string;
  name: string;
  capacity: number;
  maxPerOrder: number | null;
  sold: number;
  /** What can still be sold of this type: its own capacity left, and no more than the event's cap leaves. */
  available: number;
}

export interface EventView {
  id: string;
  name: string;
  /** The cap over all ticket types; null when only the types' own capacities apply. */
  capacity: number | null;
  sold: number;
  /** What can still be sold over all types. */
  available: number;
  ticketTypes: TicketTypeView[];
}

export interface OrderView {
  orderId: string;
  eventId: string;
  items: Array<{ ticketType: string; qty: number; tickets: { first: number; last: number } }>;
  buyer: string | null;
  /** RFC 3339 */
  createdAt: string;
}

/** The API's view of an event. */
export function eventView(event: EventRecord): EventView {
  const sold = eventSold(event);
  return {
    id: event.id,
    name: event.name,
    capacity: event.capacity,
    sold,
    available: eventAvailable(event, sold),
    ticketTypes: event.types.map((type) => ({
      id: type.id,
      name: type.name,
      capacity: type.capacity,
      maxPerOrder: type.maxPerOrder,
      sold: type.sold,
      available: typeAvailable(event, type, sold),
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
    createdAt: new Date(order.createdAt).toISOString(),
  };
}
