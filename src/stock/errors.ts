import type { RefusalReason } from './model.ts';

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

/** An adjustment that would leave fewer tickets than are sold. */
export class NegativeStockError extends Error {
  constructor() {
    super('The change would leave the stock below zero');
    this.name = 'NegativeStockError';
  }
}

/** A message for a stock the store does not hold. */
export class UnknownStockError extends Error {
  constructor(
    readonly eventId: string,
    readonly typeId: string,
  ) {
    super(`Unknown stock ${JSON.stringify(`${eventId}/${typeId}`)}`);
    this.name = 'UnknownStockError';
  }
}

/** The error a caller gets for a command a store refused. */
export function refusalError(reason: RefusalReason, command: { eventId: string; typeId: string }): Error {
  switch (reason) {
    case 'unknown-stock':
      return new UnknownStockError(command.eventId, command.typeId);
    case 'key-reused':
      return new IdempotencyKeyReusedError();
    case 'key-in-flight':
      return new IdempotencyKeyInFlightError();
    case 'negative-stock':
      return new NegativeStockError();
    case 'expired':
      return new StoreUnavailableError(new Error('the store got to the command after its caller stopped waiting'));
  }
}
