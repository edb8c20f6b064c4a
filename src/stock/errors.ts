import type { RefusalReason, Shortfall } from './model.ts';

/** The same idempotency key came with a different request. */
export class IdempotencyKeyReusedError extends Error {
  constructor() {
    super('This Idempotency-Key was already used with a different request');
    this.name = 'IdempotencyKeyReusedError';
  }
}

/** A request with this idempotency key is still being decided. */
export class IdempotencyKeyInFlightError extends Error {
  constructor() {
    super('A request with this Idempotency-Key is still being processed');
    this.name = 'IdempotencyKeyInFlightError';
  }
}

/** The stock no longer takes messages: it is shutting down. */
export class ActorClosedError extends Error {
  constructor() {
    super('The stock actor is closed');
    this.name = 'ActorClosedError';
  }
}

/** The store could not make a batch durable; nothing in that batch happened. */
export class StoreUnavailableError extends Error {
  /**
   * True when the store may have applied the change after all (a shared
   * store that did not answer in time): then nothing can be said of the
   * outcome, except that a retry with the same idempotency key will tell.
   */
  readonly outcomeUnknown: boolean;

  constructor(cause: unknown) {
    super('The stock store could not record the change', { cause });
    this.name = 'StoreUnavailableError';
    this.outcomeUnknown = (cause as { outcomeUnknown?: unknown } | undefined)?.outcomeUnknown === true;
  }
}

/** A change that would leave a capacity below what is sold, or take away a type that has sold (409). */
export class StockConflictError extends Error {
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'StockConflictError';
  }
}

/** No such event (404). */
export class UnknownEventError extends Error {
  constructor(readonly eventId: string) {
    super(`There is no event ${JSON.stringify(eventId)}`);
    this.name = 'UnknownEventError';
  }
}

/** A request the event's definition does not allow: an unknown ticket type, more than maxPerOrder (422). */
export class InvalidOrderError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
    this.name = 'InvalidOrderError';
  }
}

/** A purchase that did not fit: nothing was taken (409, with what each item had). */
export class InsufficientInventoryError extends Error {
  constructor(
    readonly items: Shortfall[],
    /** True when this is the recorded answer to an earlier purchase with the same idempotency key. */
    readonly replayed = false,
  ) {
    super('Not enough tickets left for this order; nothing was taken');
    this.name = 'InsufficientInventoryError';
  }
}

/** A buyer would have more tickets than a limit per buyer allows (409). */
export class BuyerLimitError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
    this.name = 'BuyerLimitError';
  }
}

/** No such hold, or no such order (404). */
export class UnknownHoldOrOrderError extends Error {
  constructor(
    readonly what: 'hold' | 'order',
    readonly id: string,
  ) {
    super(`There is no ${what} ${JSON.stringify(id)}`);
    this.name = 'UnknownHoldOrOrderError';
  }
}

/** A hold that can no longer be confirmed: it expired, or was released (410); nothing was sold. */
export class HoldGoneError extends Error {
  constructor(readonly status: 'expired' | 'released') {
    super(
      status === 'expired'
        ? 'This hold expired before it was confirmed; its tickets are back on sale and nothing was sold'
        : 'This hold was released; its tickets are back on sale and nothing was sold',
    );
    this.name = 'HoldGoneError';
  }
}

/** Releasing a hold that was confirmed (409): cancel its order instead. */
export class HoldConfirmedError extends Error {
  constructor() {
    super('This hold was confirmed into an order; cancel the order to put its tickets back on sale');
    this.name = 'HoldConfirmedError';
  }
}

/** The error a caller gets for a command a store refused. */
export function refusalError(
  reason: RefusalReason,
  command: { eventId?: string; typeId?: string; holdId?: string; orderId?: string },
  refusal: { field?: string; detail?: string } = {},
): Error {
  switch (reason) {
    case 'unknown-event':
      return new UnknownEventError(command.eventId ?? '');
    case 'unknown-ticket-type':
      return new InvalidOrderError(
        refusal.detail ?? `Event ${command.eventId} has no ticket type ${command.typeId}`,
        refusal.field ?? 'ticketType',
      );
    case 'duplicate-ticket-type':
      return new InvalidOrderError(refusal.detail ?? 'A ticket type is listed twice', refusal.field ?? 'items');
    case 'over-max-per-order':
      return new InvalidOrderError(refusal.detail ?? 'More tickets than one order may take', refusal.field ?? 'qty');
    case 'capacity-below-sold':
    case 'ticket-type-in-use':
      return new StockConflictError(refusal.detail ?? 'The change would leave the stock below zero', refusal.field);
    case 'buyer-required':
      return new InvalidOrderError(refusal.detail ?? 'This event limits tickets per buyer: name the buyer', 'buyer');
    case 'buyer-limit-reached':
      return new BuyerLimitError(
        refusal.detail ?? 'The buyer has as many tickets as allowed',
        refusal.field ?? 'items',
      );
    case 'unknown-hold':
      return new UnknownHoldOrOrderError('hold', command.holdId ?? '');
    case 'unknown-order':
      return new UnknownHoldOrOrderError('order', command.orderId ?? '');
    case 'hold-expired':
      return new HoldGoneError('expired');
    case 'hold-released':
      return new HoldGoneError('released');
    case 'hold-confirmed':
      return new HoldConfirmedError();
    case 'key-reused':
      return new IdempotencyKeyReusedError();
    case 'key-in-flight':
      return new IdempotencyKeyInFlightError();
    case 'expired':
      return new StoreUnavailableError(new Error('the store got to the command after its caller stopped waiting'));
  }
}
