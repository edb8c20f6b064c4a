import type { Metrics } from '../lib/metrics.ts';
import { IdempotencyKeyInFlightError, IdempotencyKeyReusedError } from '../stock/errors.ts';
import type { PurchaseItem, ReserveResult } from '../stock/model.ts';
import type { EventView, HoldView, OrderView } from '../stock/views.ts';
import { VacancyProtocolError } from './remote-vacancy-client.ts';
import {
  VacancyUnavailableError,
  type CallContext,
  type EventPage,
  type VacancyClient,
  type VacancyProbe,
} from '../stock/vacancy-client.ts';

/**
 * A vacancy client that reports each call's latency and failures to the
 * metrics, as the purchase calling it sees them.
 *
 * @example
 * const client = new MeasuredVacancyClient(new RemoteVacancyClient({ baseUrl, timeoutMs }), metrics);
 */
export class MeasuredVacancyClient implements VacancyClient {
  constructor(
    private readonly inner: VacancyClient,
    private readonly metrics: Metrics,
  ) {}

  available(context?: CallContext): Promise<number> {
    return this.#measure('available', () => this.inner.available(context));
  }

  reserve(qty: number, context?: CallContext): Promise<ReserveResult> {
    return this.#measure('reserve', () => this.inner.reserve(qty, context));
  }

  purchase(
    eventId: string,
    items: PurchaseItem[],
    context?: CallContext & { buyer?: string | null },
  ): Promise<{ order: OrderView; replayed: boolean }> {
    return this.#measure('purchase', () => this.inner.purchase(eventId, items, context));
  }

  hold(
    eventId: string,
    items: PurchaseItem[],
    context: CallContext & { buyer?: string | null; ttlSeconds: number },
  ): Promise<{ hold: HoldView; replayed: boolean }> {
    return this.#measure('hold', () => this.inner.hold(eventId, items, context));
  }

  confirm(holdId: string, context?: CallContext): Promise<{ order: OrderView; replayed: boolean }> {
    return this.#measure('confirm', () => this.inner.confirm(holdId, context));
  }

  release(holdId: string, context?: CallContext): Promise<HoldView> {
    return this.#measure('release', () => this.inner.release(holdId, context));
  }

  getHold(holdId: string, context?: CallContext): Promise<HoldView> {
    return this.#measure('get_hold', () => this.inner.getHold(holdId, context));
  }

  getOrder(orderId: string, context?: CallContext): Promise<OrderView> {
    return this.#measure('get_order', () => this.inner.getOrder(orderId, context));
  }

  getEvent(eventId: string, context?: CallContext): Promise<EventView> {
    return this.#measure('event', () => this.inner.getEvent(eventId, context));
  }

  listEvents(query: { after: string | null; limit: number }, context?: CallContext): Promise<EventPage> {
    return this.#measure('events', () => this.inner.listEvents(query, context));
  }

  probe(context?: CallContext): Promise<VacancyProbe> {
    return this.#measure('probe', () => this.inner.probe(context));
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  async #measure<T>(operation: string, call: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const result = await call();
      this.metrics.vacancyCall(operation, (performance.now() - started) / 1000);
      return result;
    } catch (error) {
      this.metrics.vacancyCall(operation, (performance.now() - started) / 1000, failureReason(error));
      throw error;
    }
  }
}

function failureReason(error: unknown): string {
  if (error instanceof VacancyUnavailableError) return error.outcomeUnknown ? 'outcome_unknown' : 'unavailable';
  if (error instanceof VacancyProtocolError) return 'protocol';
  if (error instanceof IdempotencyKeyInFlightError || error instanceof IdempotencyKeyReusedError) return 'refused';
  return 'error';
}
