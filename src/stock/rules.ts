/**
 * The rules of the stock: what a batch of commands decides, given the state
 * before it. Pure and synchronous: the memory and SQLite stores run it and
 * record what it changed in one commit; the Redis store's batch script
 * mirrors it line for line, and one contract suite (store-contract.test.ts)
 * holds every store to the same answers.
 */
import {
  levelOf,
  reservationIdOf,
  stockKeyOf,
  type IdempotencyRecord,
  type ReserveOutcome,
  type StockCommand,
  type StockDecision,
  type TicketTypeStock,
} from './model.ts';

/** The committed state a batch is decided against, read synchronously. */
export interface StockView {
  /** A ticket type's stock, or undefined when there is no such event or type. */
  stock(eventId: string, typeId: string): TicketTypeStock | undefined;
  /** The record of an idempotency key (as {@link scopedKeyOf} makes it), expired or not; undefined when there is none. */
  idempotencyRecord(key: string): IdempotencyRecord | undefined;
}

/** What a batch changed: the new state of every stock it touched, and the keys it recorded. */
export interface StockChanges {
  stocks: Map<string, TicketTypeStock>;
  keys: Map<string, IdempotencyRecord>;
}

export interface DecideOptions {
  /** The clock keys expire by, in ms since the epoch. */
  now: number;
  /** How long a key recorded now is remembered, in ms. */
  idempotencyTtlMs: number;
}

/**
 * Idempotency keys are the caller's per event: the same key on two events is
 * two keys. (A shared store keeps each event's keys beside its stock.)
 */
export function scopedKeyOf(eventId: string, key: string): string {
  return `${eventId} ${key}`;
}

/** The largest capacity a stock can have: beyond it, ticket numbers would lose precision. */
export const MAX_CAPACITY = Number.MAX_SAFE_INTEGER;

/**
 * Decides `commands` in order against `view`, each seeing the effects of the
 * ones before it. Returns one decision per command and the changes to
 * record; nothing in `view` is modified.
 *
 * - reserve: takes qty tickets if they all fit, else nothing (`success:
 *   false`, not an error). Under an idempotency key that is live, the
 *   recorded answer is replayed if the request is the same and refused
 *   (`key-reused`) if not; a key already used in this batch is
 *   `key-in-flight`. A key past its `expiresAt` counts as never seen.
 * - level: the stock as of the commands before it.
 * - adjust: sets or adds to the tickets remaining; never below what is sold.
 *
 * @example
 * const { decisions, changes } = decideBatch(view, [{ kind: 'reserve', eventId: 'default', typeId: 'default', qty: 2 }], { now: Date.now(), idempotencyTtlMs: 86_400_000 });
 */
export function decideBatch(
  view: StockView,
  commands: readonly StockCommand[],
  options: DecideOptions,
): { decisions: StockDecision[]; changes: StockChanges } {
  const changes: StockChanges = { stocks: new Map(), keys: new Map() };
  const stockOf = (eventId: string, typeId: string) =>
    changes.stocks.get(stockKeyOf(eventId, typeId)) ?? view.stock(eventId, typeId);
  const decisions = commands.map((command): StockDecision => {
    const stock = stockOf(command.eventId, command.typeId);
    if (stock === undefined) return { kind: 'refused', reason: 'unknown-stock' };
    switch (command.kind) {
      case 'level':
        return { kind: 'level', level: levelOf(stock) };
      case 'adjust': {
        const remaining = command.op === 'set' ? command.qty : stock.capacity - stock.sold + command.qty;
        const capacity = stock.sold + remaining;
        if (remaining < 0 || !Number.isSafeInteger(capacity) || capacity > MAX_CAPACITY) {
          return { kind: 'refused', reason: 'negative-stock' };
        }
        const next = { ...stock, capacity };
        changes.stocks.set(stockKeyOf(stock.eventId, stock.typeId), next);
        return { kind: 'adjusted', level: levelOf(next) };
      }
      case 'reserve':
        return reserve(command, stock, view, changes, options);
    }
  });
  return { decisions, changes };
}

function reserve(
  command: Extract<StockCommand, { kind: 'reserve' }>,
  stock: TicketTypeStock,
  view: StockView,
  changes: StockChanges,
  { now, idempotencyTtlMs }: DecideOptions,
): StockDecision {
  const request = reserveRequestOf(command);
  const key = command.key === undefined ? undefined : scopedKeyOf(command.eventId, command.key);
  if (key !== undefined) {
    if (changes.keys.has(key)) return { kind: 'refused', reason: 'key-in-flight' };
    const known = view.idempotencyRecord(key);
    if (known !== undefined && known.expiresAt > now) {
      if (known.request !== request) return { kind: 'refused', reason: 'key-reused' };
      return { kind: 'reserved', outcome: reserveOutcomeOf(known.outcome, command), replayed: true };
    }
  }

  let outcome: ReserveOutcome;
  const remaining = stock.capacity - stock.sold;
  if (command.qty <= remaining) {
    const first = stock.issued + 1;
    const next = { ...stock, sold: stock.sold + command.qty, issued: stock.issued + command.qty };
    changes.stocks.set(stockKeyOf(stock.eventId, stock.typeId), next);
    outcome = {
      success: true,
      remaining: remaining - command.qty,
      reservationId: reservationIdOf(stock.eventId, stock.typeId, first),
      tickets: { first, last: next.issued },
    };
  } else {
    outcome = { success: false, remaining };
  }
  if (key !== undefined) {
    changes.keys.set(key, {
      key,
      request,
      outcome: recordedOutcome(outcome),
      expiresAt: now + idempotencyTtlMs,
    });
  }
  return { kind: 'reserved', outcome, replayed: false };
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
