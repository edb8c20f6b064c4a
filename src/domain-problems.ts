import { RequestTimedOutError } from './lib/limits.ts';
import { ProblemError } from './lib/problem.ts';
import { VacancyProtocolError } from './ticket/remote-vacancy-client.ts';
import { VacancyUnavailableError } from './stock/vacancy-client.ts';
import {
  ActorClosedError,
  IdempotencyKeyInFlightError,
  IdempotencyKeyReusedError,
  NegativeStockError,
  StoreUnavailableError,
  UnknownStockError,
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
  if (error instanceof NegativeStockError) {
    return new ProblemError('stockConflict', `${error.message}; nothing was changed`);
  }
  if (error instanceof UnknownStockError) {
    return new ProblemError('notFound', error.message);
  }
  return error;
}
