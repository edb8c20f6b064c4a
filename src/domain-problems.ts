import { RequestTimedOutError } from './lib/limits.ts';
import { IDEMPOTENT_REPLAYED_HEADER } from './lib/idempotency.ts';
import { ProblemError } from './lib/problem.ts';
import { VacancyProtocolError } from './ticket/remote-vacancy-client.ts';
import { VacancyUnavailableError } from './stock/vacancy-client.ts';
import {
  ActorClosedError,
  IdempotencyKeyInFlightError,
  IdempotencyKeyReusedError,
  BuyerLimitError,
  HoldConfirmedError,
  HoldGoneError,
  InsufficientInventoryError,
  InvalidOrderError,
  UnknownHoldOrOrderError,
  StockConflictError,
  StoreUnavailableError,
  UnknownEventError,
} from './stock/errors.ts';

/** Maps the domain's failures to the problem a caller sees. */
export function toProblemError(error: Error): Error {
  if (error instanceof RequestTimedOutError) return error.problem;
  if (error instanceof VacancyUnavailableError) {
    const consequence = error.outcomeUnknown
      ? 'the purchase may or may not have been made; retry with the same Idempotency-Key to get its outcome without buying twice'
      : 'nothing was sold';
    return new ProblemError('serviceUnavailable', `${error.message}; ${consequence}`, {
      headers: { 'Retry-After': '1' },
      extensions: { outcomeUnknown: error.outcomeUnknown },
    });
  }
  if (error instanceof StoreUnavailableError && error.outcomeUnknown) {
    return new ProblemError(
      'serviceUnavailable',
      'The stock store did not answer in time; the change may or may not have been made — retry with the same Idempotency-Key to get its outcome without buying twice',
      { headers: { 'Retry-After': '1' }, extensions: { outcomeUnknown: true } },
    );
  }
  if (error instanceof StoreUnavailableError || error instanceof ActorClosedError) {
    return new ProblemError('serviceUnavailable', 'The stock cannot record changes right now; nothing was sold', {
      headers: { 'Retry-After': '1' },
    });
  }
  if (error instanceof VacancyProtocolError) {
    return new ProblemError('badGateway', error.message);
  }
  if (error instanceof IdempotencyKeyReusedError) {
    return new ProblemError('idempotencyKeyReused', `${error.message}; send a new key for a new request`);
  }
  if (error instanceof IdempotencyKeyInFlightError) {
    return new ProblemError('idempotencyKeyInFlight', `${error.message}; retry later`, {
      headers: { 'Retry-After': '1' },
    });
  }
  if (error instanceof StockConflictError) {
    return new ProblemError('stockConflict', `${error.message}; nothing was changed`, {
      extensions: error.field === undefined ? {} : { errors: [{ name: error.field, reason: error.message }] },
    });
  }
  if (error instanceof UnknownEventError || error instanceof UnknownHoldOrOrderError) {
    return new ProblemError('notFound', error.message);
  }
  if (error instanceof BuyerLimitError) {
    return new ProblemError('buyerLimitReached', `${error.message}; nothing was taken`, {
      extensions: { errors: [{ name: error.field, reason: error.message }] },
    });
  }
  if (error instanceof HoldGoneError) {
    return new ProblemError(error.status === 'expired' ? 'holdExpired' : 'holdReleased', error.message);
  }
  if (error instanceof HoldConfirmedError) {
    return new ProblemError('holdConfirmed', error.message);
  }
  if (error instanceof InvalidOrderError) {
    return new ProblemError('validation', `${error.field}: ${error.message}`, {
      extensions: { errors: [{ name: error.field, reason: error.message }] },
    });
  }
  if (error instanceof InsufficientInventoryError) {
    const short = error.items.filter((item) => item.requested > item.available);
    return new ProblemError(
      'insufficientInventory',
      short.length > 0
        ? `${short.map((item) => `${item.typeId}: ${item.requested} asked, ${item.available} left`).join('; ')}; nothing was taken`
        : `the order is more than the event has left over all its ticket types; nothing was taken`,
      {
        ...(error.replayed ? { headers: { [IDEMPOTENT_REPLAYED_HEADER]: 'true' } } : {}),
        extensions: {
          items: error.items.map((item) => ({
            ticketType: item.typeId,
            requested: item.requested,
            available: item.available,
          })),
        },
      },
    );
  }
  return error;
}
