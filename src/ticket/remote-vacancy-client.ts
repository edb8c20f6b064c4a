import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context as otelContext,
  trace,
  type Link,
  type SpanContext,
} from '@opentelemetry/api';
import {
  BuyerLimitError,
  HoldConfirmedError,
  HoldGoneError,
  IdempotencyKeyInFlightError,
  IdempotencyKeyReusedError,
  InsufficientInventoryError,
  InvalidOrderError,
  UnknownEventError,
  UnknownHoldOrOrderError,
} from '../stock/errors.ts';
import type { PurchaseItem, ReserveResult, Shortfall, TicketRange } from '../stock/model.ts';
import type { EventView, HoldView, OrderView } from '../stock/views.ts';
import { IDEMPOTENCY_KEY_HEADER, IDEMPOTENT_REPLAYED_HEADER } from '../lib/idempotency.ts';
import { problemTypes } from '../lib/problem.ts';
import { Coalescer } from './coalescer.ts';
import type { VacancyFetch } from './vacancy-fetch.ts';
import {
  VacancyUnavailableError,
  type CallContext,
  type EventPage,
  type VacancyClient,
  type VacancyProbe,
} from '../stock/vacancy-client.ts';

export interface RemoteVacancyClientOptions {
  /**
   * Where the vacancy service listens, e.g. `http://vacancy:8001`; several
   * replicas are taken in turn (round robin), and a call a replica refuses
   * goes to the next one.
   */
  baseUrl: string | readonly string[];
  /** How long one call may take in all, retries included, before the ticket service gives up with a 503. */
  timeoutMs: number;
  /** Sent as `Authorization: Bearer <token>` on every call, for a vacancy that requires INTERNAL_TOKEN. */
  internalToken?: string;
  /** How many times a call that timed out, was refused or got a 5xx/409 is tried again. Default 2. */
  retries?: number;
  /**
   * What each attempt is sent with: any runtime's global fetch (the
   * default), or the Node entrypoint's fetch over undici's dispatcher API
   * and a keep-alive connection pool (src/node/dispatcher-fetch.ts).
   */
  fetch?: VacancyFetch;
  /**
   * Up to how many concurrent purchases' reserves travel in one call
   * (POST /api/v1/reserve/batch) once RESERVE_CALLS_IN_FLIGHT calls are
   * under way; 1 sends every reserve on its own. Above 1, concurrent
   * availability reads share calls too. Default 1.
   */
  batchMax?: number;
}

/**
 * Calls under way at once before further reserves and commands wait to be
 * coalesced. Beyond the first, another call starts only once every call
 * under way has taken {@link SPARE_CALL_AFTER_MS}: under load one call at a
 * time carries everything that waits (the fewer the calls, the less each
 * purchase pays for them: CPU on both sides, docs/performance.md), while a
 * call held up by a retry's backoff or a replica that does not answer holds
 * the purchases behind it for no longer than that.
 */
const RESERVE_CALLS_IN_FLIGHT = 4;
const SPARE_CALL_AFTER_MS = 20;

/** The answers a call is sent again for, under the same keys: a timeout, a key still in flight, too many requests, 5xx. */
const RETRY_STATUSES: ReadonlySet<number> = new Set([408, 409, 429, 500, 502, 503, 504]);
/** The answers whose Retry-After is waited for before the next attempt (if it fits in the call's time). */
const RETRY_AFTER_STATUSES: ReadonlySet<number> = new Set([429, 503]);
/** The backoff before attempt n+1 is random up to 25 ms × 2^(n-1) (full jitter), and at most this. */
const BACKOFF_LIMIT_MS = 250;

/** Vacancy answered something that is not the vacancy API: a bug or a misconfigured URL. */
export class VacancyProtocolError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VacancyProtocolError';
  }
}

/** Vacancy answered a call with a 4xx or 5xx status: the status, and the body it sent (a problem, usually). */
export class VacancyHttpError extends Error {
  readonly status: number;
  readonly body: string;
  /** The answer's Retry-After header, if any. */
  readonly retryAfter: string | null;

  constructor(status: number, body: string, retryAfter: string | null) {
    super(`vacancy answered ${status}`);
    this.name = 'VacancyHttpError';
    this.status = status;
    this.body = body;
    this.retryAfter = retryAfter;
  }
}

/** One vacancy replica: where its API is. */
interface Replica {
  baseUrl: string;
  /** `<baseUrl>/api/v1/` */
  api: string;
}

/** One call to vacancy, as every attempt of it sends it. */
interface VacancyRequest {
  method: 'GET' | 'POST';
  /** Below /api/v1/, with its query. */
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/** What came back from one attempt. */
interface Answer {
  status: number;
  body: string;
  replayed: boolean;
  retryAfter: string | null;
}

/**
 * The ticket service's vacancy client in microservices mode, over the given
 * fetch. Every reserve carries an Idempotency-Key (the caller's, namespaced,
 * or a fresh one per purchase), so a reserve whose answer was lost can be
 * retried: vacancy replays the decision it recorded instead of selling again.
 * A call is retried on timeouts, refused connections, 5xx and 409 with a
 * short jittered backoff, and the whole call including retries is bounded by
 * `timeoutMs`; past that the purchase is answered 503.
 *
 * @example
 * const client = new RemoteVacancyClient({ baseUrl: 'http://127.0.0.1:8001', timeoutMs: 5000 });
 * await client.reserve(2, { requestId: 'abc' });
 */
export class RemoteVacancyClient implements VacancyClient {
  readonly #replicas: Replica[];
  readonly #timeoutMs: number;
  /** Each attempt gets an equal share of the budget, so a hung vacancy still leaves time to retry. */
  readonly #attemptMs: number;
  readonly #retries: number;
  readonly #fetch: VacancyFetch;
  /** Sent with every call (the internal token). */
  readonly #headers: Readonly<Record<string, string>>;
  /** Sent with every POST: the internal token and the JSON content type. */
  readonly #jsonHeaders: Readonly<Record<string, string>>;
  readonly #reserves: Coalescer<PendingReserve, ReserveResult> | undefined;
  readonly #commands: Coalescer<PendingCommand, CommandAnswer>;
  readonly #reads: Coalescer<CallContext, number> | undefined;
  #turn = 0;

  constructor(options: RemoteVacancyClientOptions) {
    this.#timeoutMs = options.timeoutMs;
    this.#retries = options.retries ?? 2;
    this.#attemptMs = Math.max(1, Math.floor(options.timeoutMs / (this.#retries + 1)));
    // Looked up when called, not bound now: tests and tracing may replace the global fetch.
    this.#fetch = options.fetch ?? ((url, init) => globalThis.fetch(url, init));
    this.#headers = options.internalToken ? { authorization: `Bearer ${options.internalToken}` } : {};
    this.#jsonHeaders = { ...this.#headers, 'content-type': 'application/json' };
    const baseUrls = typeof options.baseUrl === 'string' ? [options.baseUrl] : [...options.baseUrl];
    if (baseUrls.length === 0) throw new Error('RemoteVacancyClient needs at least one vacancy URL');
    this.#replicas = baseUrls.map((baseUrl) => ({ baseUrl, api: `${baseUrl.replace(/\/+$/, '')}/api/v1/` }));
    const batchMax = options.batchMax ?? 1;
    this.#reserves =
      batchMax > 1
        ? new Coalescer((items) => this.#sendReserves(items), {
            maxItems: batchMax,
            maxInFlight: RESERVE_CALLS_IN_FLIGHT,
            spareAfterMs: SPARE_CALL_AFTER_MS,
          })
        : undefined;
    // Purchases always travel in POST /api/v1/batch, alone or together (at most batchMax at once).
    this.#commands = new Coalescer((items) => this.#sendCommands(items), {
      maxItems: batchMax,
      maxInFlight: RESERVE_CALLS_IN_FLIGHT,
      spareAfterMs: SPARE_CALL_AFTER_MS,
    });
    this.#reads =
      batchMax > 1
        ? new Coalescer(
            async (contexts: CallContext[]) => {
              const qty = await this.#availableOnce(contexts[0]!);
              return contexts.map(() => qty);
            },
            { maxItems: Number.MAX_SAFE_INTEGER, maxInFlight: 1 },
          )
        : undefined;
  }

  /** The replicas in the order this call tries them: the next one in turn first. */
  #order(): Replica[] {
    if (this.#replicas.length === 1) return this.#replicas;
    const start = this.#turn++ % this.#replicas.length;
    return [...this.#replicas.slice(start), ...this.#replicas.slice(0, start)];
  }

  /**
   * With coalescing on, reads that arrive while one is under way share the
   * next one (sent after they arrived, so none gets a level older than its
   * request): one call per round trip however many buyers ask.
   */
  async available(context: CallContext = {}): Promise<number> {
    return this.#reads ? this.#reads.submit(context) : this.#availableOnce(context);
  }

  async #availableOnce(context: CallContext): Promise<number> {
    const { body } = await this.#call('available', this.#get('available', context));
    if (!isRecord(body) || !isCount(body.qty))
      throw new VacancyProtocolError('vacancy answered /available without a qty');
    return body.qty;
  }

  async purchase(
    eventId: string,
    items: PurchaseItem[],
    context: CallContext & { buyer?: string | null } = {},
  ): Promise<{ order: OrderView; replayed: boolean }> {
    return this.#commands.submit({
      op: 'purchase',
      eventId,
      items,
      buyer: context.buyer ?? null,
      ...keyed(context, 'order'),
    }) as Promise<{ order: OrderView; replayed: boolean }>;
  }

  async hold(
    eventId: string,
    items: PurchaseItem[],
    context: CallContext & { buyer?: string | null; ttlSeconds: number },
  ): Promise<{ hold: HoldView; replayed: boolean }> {
    return this.#commands.submit({
      op: 'hold',
      eventId,
      items,
      buyer: context.buyer ?? null,
      ttlSeconds: context.ttlSeconds,
      ...keyed(context, 'hold'),
    }) as Promise<{ hold: HoldView; replayed: boolean }>;
  }

  /** Confirming and releasing are idempotent by nature: a retry confirms or releases the same hold. */
  async confirm(holdId: string, context: CallContext = {}): Promise<{ order: OrderView; replayed: boolean }> {
    return this.#commands.submit({ op: 'confirm', holdId, ...unkeyed(context) }) as Promise<{
      order: OrderView;
      replayed: boolean;
    }>;
  }

  async release(holdId: string, context: CallContext = {}): Promise<HoldView> {
    const { hold } = (await this.#commands.submit({ op: 'release', holdId, ...unkeyed(context) })) as {
      hold: HoldView;
    };
    return hold;
  }

  getHold(holdId: string, context: CallContext = {}): Promise<HoldView> {
    return this.#getOne('holds', holdId, context, isHoldView, () => new UnknownHoldOrOrderError('hold', holdId));
  }

  getOrder(orderId: string, context: CallContext = {}): Promise<OrderView> {
    return this.#getOne('orders', orderId, context, isOrderView, () => new UnknownHoldOrOrderError('order', orderId));
  }

  getEvent(eventId: string, context: CallContext = {}): Promise<EventView> {
    return this.#getOne('events', eventId, context, isEventView, () => new UnknownEventError(eventId));
  }

  /** GET /api/v1/<collection>/<id> on vacancy: the view, or `notFound()` for a 404. */
  async #getOne<T>(
    collection: string,
    id: string,
    context: CallContext,
    isView: (body: unknown) => body is T,
    notFound: () => Error,
  ): Promise<T> {
    const { body } = await this.#call(collection, this.#get(`${collection}/${encodeURIComponent(id)}`, context), {
      notFound,
    });
    if (!isView(body)) throw new VacancyProtocolError(`vacancy answered /${collection}/{id} with something else`);
    return body;
  }

  async listEvents(query: { after: string | null; limit: number }, context: CallContext = {}): Promise<EventPage> {
    const search = new URLSearchParams({ limit: String(query.limit) });
    if (query.after !== null) search.set('after', query.after);
    const { body } = await this.#call('events', this.#get(`events?${search.toString()}`, context));
    if (!isRecord(body) || !Array.isArray(body.events) || !body.events.every(isEventView)) {
      throw new VacancyProtocolError('vacancy answered /events without a list of events');
    }
    return { events: body.events as EventView[], next: typeof body.next === 'string' ? body.next : null };
  }

  async reserve(qty: number, context: CallContext = {}): Promise<ReserveResult> {
    // Without a caller's key, one is made per purchase: every retry of its call must carry the same one.
    const item: PendingReserve = {
      qty,
      key: context.idempotencyKey ?? `purchase:${crypto.randomUUID()}`,
      callerKeyed: context.idempotencyKey !== undefined,
      requestId: context.requestId,
      // The purchase's span; undefined, at no cost, unless a tracer provider is registered.
      span: trace.getActiveSpan()?.spanContext(),
    };
    return this.#reserves ? this.#reserves.submit(item) : this.#reserveOne(item);
  }

  /**
   * Reserves that meet in one coalescer send: one alone keeps the single-reserve protocol.
   * A batched reserve that vacancy answers 409 (its key still in flight, e.g. an earlier attempt
   * of this very batch) or 503 is sent again under its key, as a single reserve's call would be,
   * while retries and the time budget last.
   */
  async #sendReserves(items: PendingReserve[]): Promise<Array<ReserveResult | Error>> {
    if (items.length === 1) return [await inTraceOf(items[0]!, () => this.#reserveOne(items[0]!))];
    return this.#sendInHalvesIfTooLarge(items, (part) => inBatchSpan(part, () => this.#sendBatch(part, RESERVE_BATCH)));
  }

  /** Purchases, holds, confirmations and releases, alone or together, in POST /api/v1/batch. */
  async #sendCommands(items: PendingCommand[]): Promise<Array<CommandAnswer | Error>> {
    return this.#sendInHalvesIfTooLarge(items, (part) =>
      part.length === 1
        ? inTraceOf(part[0]!, () => this.#sendBatch(part, COMMAND_BATCH))
        : inBatchSpan(part, () => this.#sendBatch(part, COMMAND_BATCH)),
    );
  }

  /**
   * Vacancy's BODY_LIMIT is its own, and it refuses a body over it before deciding anything:
   * a batch too large for it goes again in halves.
   */
  async #sendInHalvesIfTooLarge<Item, Result>(
    items: Item[],
    send: (items: Item[]) => Promise<Array<Result | Error>>,
  ): Promise<Array<Result | Error>> {
    try {
      return await send(items);
    } catch (error) {
      if (!refusedAsTooLarge(error) || items.length === 1) throw error;
      const half = Math.ceil(items.length / 2);
      const [first, second] = await Promise.all([
        this.#sendInHalvesIfTooLarge(items.slice(0, half), send),
        this.#sendInHalvesIfTooLarge(items.slice(half), send),
      ]);
      return [...first, ...second];
    }
  }

  /**
   * Items in one batch call, each decided by vacancy under its own key. An item that vacancy
   * answers "still in flight" (e.g. an earlier attempt of this very batch) or 503 is sent again
   * under its key, as a single call would be, while retries and the time budget last.
   */
  async #sendBatch<Item extends PendingCall, Result>(
    items: Item[],
    protocol: BatchProtocol<Item, Result>,
  ): Promise<Array<Result | Error>> {
    const deadline = Date.now() + this.#timeoutMs;
    const results = new Array<Result | Error>(items.length);
    let pending = items.map((item, index) => ({ item, index, maybeMade: false }));
    for (let attempt = 0; pending.length > 0; attempt++) {
      const { body, maybeMade } = await this.#post(
        protocol.path,
        protocol.body(pending.map(({ item }) => item)),
        this.#jsonHeaders,
        Math.max(1, deadline - Date.now()),
        protocol.what,
      );
      const answers = isRecord(body) && Array.isArray(body.results) ? body.results : undefined;
      if (!answers || answers.length !== pending.length) {
        throw new VacancyProtocolError(
          `vacancy answered a batch of ${pending.length} ${protocol.what}s without one result each`,
        );
      }
      const again: typeof pending = [];
      const mayRetry = attempt < this.#retries && Date.now() < deadline;
      pending.forEach((entry, position) => {
        const answer = answers[position];
        const landed = entry.maybeMade || maybeMade || (isRecord(answer) && answer.outcomeUnknown === true);
        if (mayRetry && isRecord(answer) && isRetryable(answer)) {
          again.push({ ...entry, maybeMade: landed });
        } else {
          results[entry.index] = protocol.result(answer, entry.item, landed);
        }
      });
      pending = again;
      if (pending.length > 0) await sleep(Math.min(BACKOFF_LIMIT_MS, 25 * 2 ** attempt));
    }
    return results;
  }

  async #reserveOne(item: PendingReserve): Promise<ReserveResult> {
    const { body, replayed, maybeMade } = await this.#post(
      'reserve',
      { qty: item.qty },
      { ...this.#jsonHeaders, ...requestIdHeader(item), [IDEMPOTENCY_KEY_HEADER]: item.key },
    );
    const result = reserveResult(body);
    if (!result) throw new VacancyProtocolError('vacancy answered /reserve without success and remaining');
    // A replay is the caller's only under the caller's own key, and only if it is not the
    // answer to an attempt of this very call that was lost on the way back.
    return { ...result, replayed: replayed && item.callerKeyed && !maybeMade };
  }

  /**
   * POSTs a reserve (single or batch) with retries. `maybeMade` is set once an
   * attempt may have reached vacancy without its answer reaching us: from then
   * on the reserve may have been made, and a replay may be of our own earlier attempt.
   */
  async #post(
    path: string,
    json: unknown,
    headers: Record<string, string>,
    budgetMs = this.#timeoutMs,
    what = 'reserve',
  ): Promise<{ body: unknown; replayed: boolean; maybeMade: boolean }> {
    let maybeMade = false;
    const { body, replayed } = await this.#call(
      what,
      { method: 'POST', path, headers, body: JSON.stringify(json) },
      {
        onRetry: (failure) => {
          if (mayHaveReachedVacancy(failure) || vacancySaysOutcomeUnknown(failure)) maybeMade = true;
        },
        earlierAttemptMayHaveLanded: () => maybeMade,
        budgetMs,
      },
    );
    return { body, replayed, maybeMade };
  }

  #get(path: string, context: CallContext): VacancyRequest {
    return {
      method: 'GET',
      path,
      headers: context.requestId ? { ...this.#headers, 'X-Request-Id': context.requestId } : this.#headers,
    };
  }

  /** Ready when at least one replica is: calls a refusing replica would get go to the others. */
  async probe(context: CallContext = {}): Promise<VacancyProbe> {
    const request = this.#get('ready', context);
    const probes = await Promise.all(
      this.#replicas.map(async (replica) => {
        try {
          // The whole answer, not just its headers: a vacancy that stalls mid-body is not ready.
          await this.#attempts(replica, request, Date.now() + this.#timeoutMs);
          return { ready: true, detail: `vacancy at ${replica.baseUrl} is ready` };
        } catch (error) {
          return { ready: false, detail: describeFailure(error, replica.baseUrl, this.#timeoutMs) };
        }
      }),
    );
    const ready = probes.filter((probe) => probe.ready);
    return ready.length > 0
      ? { ready: true, detail: ready.map((probe) => probe.detail).join('; ') }
      : { ready: false, detail: probes.map((probe) => probe.detail).join('; ') };
  }

  async close(): Promise<void> {}

  /**
   * One call on the replicas in turn: its attempts on the first, and on the next only while
   * every attempt so far was refused (nothing reached a replica). Answers the parsed body;
   * a failure is translated into the error the caller sees.
   */
  async #call(
    what: string,
    request: VacancyRequest,
    options: {
      onRetry?: (failure: unknown) => void;
      earlierAttemptMayHaveLanded?: () => boolean;
      budgetMs?: number;
      notFound?: () => Error;
    } = {},
  ): Promise<{ body: unknown; replayed: boolean }> {
    const { earlierAttemptMayHaveLanded = () => false, budgetMs = this.#timeoutMs, notFound } = options;
    const replicas = this.#order();
    for (let index = 0; index < replicas.length; index++) {
      const replica = replicas[index]!;
      try {
        const answer = await this.#attempts(replica, request, Date.now() + budgetMs, options.onRetry);
        return { body: JSON.parse(answer.body) as unknown, replayed: answer.replayed };
      } catch (error) {
        // Refused by every attempt: nothing reached this replica, so the next one may take the call.
        const refusedOnly =
          !earlierAttemptMayHaveLanded() && !mayHaveReachedVacancy(error) && !(error instanceof VacancyHttpError);
        if (refusedOnly && index < replicas.length - 1) continue;
        if (notFound && error instanceof VacancyHttpError && error.status === 404) throw notFound();
        throw this.#translate(error, what, replica.baseUrl, earlierAttemptMayHaveLanded);
      }
    }
    throw new Error('unreachable: every replica was tried');
  }

  /**
   * Sends `request` to one replica until it is answered below 400, or the answer or failure is
   * not worth another attempt, or the retries or the time until `deadline` are spent: then
   * rejects with the last failure (a {@link VacancyHttpError} for an answer). Between attempts,
   * `onRetry` is told of the failure, and the backoff (or the answer's Retry-After) is waited.
   */
  async #attempts(
    replica: Replica,
    request: VacancyRequest,
    deadline: number,
    onRetry?: (failure: unknown) => void,
  ): Promise<Answer> {
    const url = replica.api + request.path;
    for (let attempt = 1; ; attempt++) {
      let failure: unknown;
      try {
        const answer = await this.#attempt(url, request, Math.max(1, Math.min(this.#attemptMs, deadline - Date.now())));
        if (answer.status < 400) return answer;
        failure = new VacancyHttpError(answer.status, answer.body, answer.retryAfter);
      } catch (error) {
        failure = error;
      }
      const wait = attempt <= this.#retries ? retryDelay(failure, attempt) : undefined;
      if (wait === undefined || Date.now() + wait >= deadline) throw failure;
      onRetry?.(failure);
      await sleep(wait);
    }
  }

  /**
   * One attempt with a hard deadline: at `ms` the request is aborted and the attempt rejects
   * with a TimeoutError, whether or not the abort reaches the request (an abort signal can lose
   * its link to a response body that is still being read; the race answers the caller anyway).
   */
  async #attempt(url: string, request: VacancyRequest, ms: number): Promise<Answer> {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new DOMException(`no answer within ${ms} ms`, 'TimeoutError');
        controller.abort(error);
        reject(error);
      }, ms);
    });
    try {
      return await Promise.race([this.#exchange(url, request, controller.signal), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #exchange(url: string, request: VacancyRequest, signal: AbortSignal): Promise<Answer> {
    const response = await this.#fetch(url, {
      method: request.method,
      headers: request.headers,
      ...(request.body === undefined ? {} : { body: request.body }),
      signal,
    });
    const body = await response.text();
    const { status } = response;
    return {
      status,
      body,
      replayed: response.headers.get(IDEMPOTENT_REPLAYED_HEADER) === 'true',
      retryAfter: RETRY_AFTER_STATUSES.has(status) ? response.headers.get('retry-after') : null,
    };
  }

  /** The error a caller sees for a failed call to vacancy. */
  #translate(error: unknown, what: string, baseUrl: string, earlierAttemptMayHaveLanded: () => boolean): Error {
    if (error instanceof VacancyHttpError && error.status === 409) return new IdempotencyKeyInFlightError();
    if (error instanceof VacancyHttpError && error.status === 422 && isKeyReuse(error)) {
      return new IdempotencyKeyReusedError();
    }
    if (error instanceof VacancyHttpError && error.status < 500) {
      return new VacancyProtocolError(`vacancy refused ${what} with status ${error.status}`, { cause: error });
    }
    const outcomeUnknown =
      (what === 'reserve' || what === 'purchase') &&
      (earlierAttemptMayHaveLanded() || mayHaveReachedVacancy(error) || vacancySaysOutcomeUnknown(error));
    return new VacancyUnavailableError(describeFailure(error, baseUrl, this.#timeoutMs), {
      cause: error,
      outcomeUnknown,
    });
  }
}

/** What every call waiting for or travelling in a batch has: its request id and span. */
interface PendingCall {
  /** Whether the key is the caller's (a replay is then the caller's to see) or made for this call. */
  callerKeyed: boolean;
  requestId: string | undefined;
  /** The span of the request that made this call, when tracing. */
  span: SpanContext | undefined;
}

/** A command for POST /api/v1/batch: a purchase or hold under its key, or a confirm or release of a hold. */
type PendingCommand = PendingCall &
  (
    | { op: 'purchase'; eventId: string; items: PurchaseItem[]; buyer: string | null; key: string }
    | { op: 'hold'; eventId: string; items: PurchaseItem[]; buyer: string | null; ttlSeconds: number; key: string }
    | { op: 'confirm'; holdId: string }
    | { op: 'release'; holdId: string }
  );

type CommandAnswer = { order: OrderView; replayed: boolean } | { hold: HoldView; replayed: boolean };

/** A keyed call's key (the caller's, namespaced, or a fresh one: every retry must carry the same), request id and span. */
function keyed(context: CallContext, namespace: string): PendingCall & { key: string } {
  return {
    ...unkeyed(context),
    key: context.idempotencyKey ?? `${namespace}:${crypto.randomUUID()}`,
    callerKeyed: context.idempotencyKey !== undefined,
  };
}

function unkeyed(context: CallContext): PendingCall {
  // The request's span; undefined, at no cost, unless a tracer provider is registered.
  return { callerKeyed: true, requestId: context.requestId, span: trace.getActiveSpan()?.spanContext() };
}

/** How one kind of call travels in a batch: where, in what body, and what each result means. */
interface BatchProtocol<Item, Result> {
  path: string;
  what: string;
  body(items: Item[]): unknown;
  result(answer: unknown, item: Item, maybeMade: boolean): Result | Error;
}

const RESERVE_BATCH: BatchProtocol<PendingReserve, ReserveResult> = {
  path: 'reserve/batch',
  what: 'reserve',
  body: (items) => ({
    reserves: items.map(({ qty, key, requestId }) => ({ qty, key, ...(requestId === undefined ? {} : { requestId }) })),
  }),
  result: (answer, item, maybeMade) => batchResult(answer, item, maybeMade),
};

const COMMAND_BATCH: BatchProtocol<PendingCommand, CommandAnswer> = {
  path: 'batch',
  what: 'purchase',
  body: (items) => ({
    commands: items.map((item) => {
      const requestId = item.requestId === undefined ? {} : { requestId: item.requestId };
      if (item.op === 'confirm' || item.op === 'release') return { op: item.op, holdId: item.holdId, ...requestId };
      return {
        op: item.op,
        eventId: item.eventId,
        items: item.items.map(({ typeId, qty }) => ({ ticketType: typeId, qty })),
        ...(item.buyer === null ? {} : { buyer: item.buyer }),
        ...(item.op === 'hold' ? { ttlSeconds: item.ttlSeconds } : {}),
        key: item.key,
        ...requestId,
      };
    }),
  }),
  result: (answer, item, maybeMade) => commandResult(answer, item, maybeMade),
};

/** A batch result worth sending again under its key: still in flight there, or vacancy could not decide it. */
function isRetryable(answer: Record<string, unknown>): boolean {
  return answer.status === 503 || (answer.status === 409 && answer.type === problemTypes.idempotencyKeyInFlight.type);
}

/** One command of a batch, as its own call would have ended: its order or hold, or its error. */
function commandResult(entry: unknown, item: PendingCommand, maybeMade: boolean): CommandAnswer | Error {
  if (!isRecord(entry)) return new VacancyProtocolError('vacancy answered a batch with a result that is not an object');
  // A replay is the caller's only under the caller's own key, and only if it is not the answer
  // to an attempt of this very call that was lost on the way back.
  const replayed = entry.replayed === true && item.callerKeyed && !maybeMade;
  if (entry.status === 200 || entry.status === 201) {
    if ((item.op === 'purchase' || item.op === 'confirm') && isOrderView(entry.order)) {
      return { order: entry.order, replayed };
    }
    if ((item.op === 'hold' || item.op === 'release') && isHoldView(entry.hold)) return { hold: entry.hold, replayed };
    return new VacancyProtocolError(
      `vacancy answered a ${item.op} without its ${item.op === 'purchase' || item.op === 'confirm' ? 'order' : 'hold'}`,
    );
  }
  const detail = typeof entry.detail === 'string' ? entry.detail : `status ${String(entry.status)}`;
  const firstError = Array.isArray(entry.errors) && isRecord(entry.errors[0]) ? entry.errors[0] : undefined;
  switch (entry.type) {
    case problemTypes.insufficientInventory.type:
      if (!Array.isArray(entry.items)) break;
      return new InsufficientInventoryError(
        (entry.items as Array<Record<string, unknown>>).map((line): Shortfall => ({
          typeId: String(line.ticketType),
          requested: Number(line.requested),
          available: Number(line.available),
        })),
        replayed,
      );
    case problemTypes.buyerLimitReached.type:
      return new BuyerLimitError(
        firstError ? String(firstError.reason) : detail,
        firstError ? String(firstError.name) : 'items',
      );
    case problemTypes.holdExpired.type:
      return new HoldGoneError('expired');
    case problemTypes.holdReleased.type:
      return new HoldGoneError('released');
    case problemTypes.holdConfirmed.type:
      return new HoldConfirmedError();
    case problemTypes.idempotencyKeyReused.type:
      return new IdempotencyKeyReusedError();
    case problemTypes.idempotencyKeyInFlight.type:
      return new IdempotencyKeyInFlightError();
  }
  if (entry.status === 404) {
    return item.op === 'confirm' || item.op === 'release'
      ? new UnknownHoldOrOrderError('hold', item.holdId)
      : new UnknownEventError(item.eventId);
  }
  if (entry.status === 422) {
    return new InvalidOrderError(
      firstError ? String(firstError.reason) : detail,
      firstError ? String(firstError.name) : 'items',
    );
  }
  if (entry.status === 503) {
    return new VacancyUnavailableError(`The vacancy service could not make the ${item.op}: ${detail}`, {
      outcomeUnknown: entry.outcomeUnknown === true || maybeMade,
    });
  }
  return new VacancyProtocolError(
    `vacancy refused a batched ${item.op} with status ${String(entry.status)}: ${detail}`,
  );
}

function isHoldView(value: unknown): value is HoldView {
  return isRecord(value) && typeof value.holdId === 'string' && typeof value.status === 'string';
}

function isEventView(value: unknown): value is EventView {
  return (
    isRecord(value) &&
    typeof value.id === 'string' &&
    typeof value.name === 'string' &&
    isCount(value.sold) &&
    isCount(value.available) &&
    Array.isArray(value.ticketTypes)
  );
}

function isOrderView(value: unknown): value is OrderView {
  return isRecord(value) && typeof value.orderId === 'string' && Array.isArray(value.items);
}

/** One purchase's reserve, waiting for or travelling in a call to vacancy. */
interface PendingReserve extends PendingCall {
  qty: number;
  key: string;
}

const tracer = trace.getTracer('ticket-system');

/**
 * A lone reserve's call in its purchase's trace. The coalescer sends in the
 * async context of whichever purchase started its current run of sends (a
 * send made as another ends inherits that one's context), so the purchase's
 * own span is put back.
 */
function inTraceOf<T>(item: PendingCall, call: () => Promise<T>): Promise<T> {
  return item.span ? otelContext.with(trace.setSpanContext(ROOT_CONTEXT, item.span), call) : call();
}

/**
 * A batch's call under a span of its own, in a trace of its own: it belongs to
 * every purchase it carries, not to the one whose turn sent it, so it starts
 * from the root context and links to each purchase's span. Without tracing
 * (no purchase has a span), no span.
 */
function inBatchSpan<T>(items: PendingCall[], call: () => Promise<T>): Promise<T> {
  const links: Link[] = [];
  for (const { span } of items) if (span) links.push({ context: span });
  if (links.length === 0) return call();
  const options = { kind: SpanKind.INTERNAL, links, attributes: { 'vacancy.reserve.batch_size': items.length } };
  return tracer.startActiveSpan('vacancy reserve batch', options, ROOT_CONTEXT, async (span) => {
    try {
      return await call();
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** The fields of a reserve's answer, or undefined when they are not there. */
function reserveResult(body: unknown): Omit<ReserveResult, 'replayed'> | undefined {
  if (!isRecord(body) || typeof body.success !== 'boolean' || !isCount(body.remaining)) return undefined;
  return {
    success: body.success,
    remaining: body.remaining,
    ...(typeof body.reservationId === 'string' ? { reservationId: body.reservationId } : {}),
    ...(isTicketRange(body.tickets) ? { tickets: body.tickets } : {}),
  };
}

/** One result of a batch, as the single reserve would have ended: its answer or its error. */
function batchResult(entry: unknown, item: PendingReserve, maybeMade: boolean): ReserveResult | Error {
  if (!isRecord(entry)) return new VacancyProtocolError('vacancy answered a batch with a result that is not an object');
  if (entry.status === 200) {
    const result = reserveResult(entry);
    if (!result) return new VacancyProtocolError('vacancy answered a batched reserve without success and remaining');
    return { ...result, replayed: entry.replayed === true && item.callerKeyed && !maybeMade };
  }
  const detail = typeof entry.detail === 'string' ? entry.detail : `status ${String(entry.status)}`;
  if (entry.status === 409) return new IdempotencyKeyInFlightError();
  if (entry.status === 422 && entry.type === problemTypes.idempotencyKeyReused.type)
    return new IdempotencyKeyReusedError();
  if (entry.status === 503) {
    return new VacancyUnavailableError(`The vacancy service could not make the reserve: ${detail}`, {
      outcomeUnknown: entry.outcomeUnknown === true || maybeMade,
    });
  }
  return new VacancyProtocolError(`vacancy refused a batched reserve with status ${String(entry.status)}: ${detail}`);
}

function refusedAsTooLarge(error: unknown): boolean {
  return error instanceof VacancyProtocolError && error.cause instanceof VacancyHttpError && error.cause.status === 413;
}

/**
 * How long to wait before attempt `attempt + 1` after `failure`, or undefined when it is not
 * worth another attempt: an answer outside {@link RETRY_STATUSES}. Any failure without an answer
 * (refused, reset, timed out) is tried again. A 429 or 503 with Retry-After waits that long.
 */
function retryDelay(failure: unknown, attempt: number): number | undefined {
  if (failure instanceof VacancyHttpError) {
    if (!RETRY_STATUSES.has(failure.status)) return undefined;
    const after = retryAfterMs(failure.retryAfter);
    if (after !== undefined) return after;
  }
  return Math.min(BACKOFF_LIMIT_MS, Math.random() * 25 * 2 ** (attempt - 1));
}

/** A Retry-After value (seconds or an HTTP date) in ms from now, or undefined. */
function retryAfterMs(value: string | null): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(ms) ? Math.max(0, ms) : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function requestIdHeader(context: CallContext): Record<string, string> {
  return context.requestId ? { 'X-Request-Id': context.requestId } : {};
}

/**
 * Whether a failed attempt may have been received by vacancy: anything but a
 * refused connection (nothing was sent) or an HTTP error answer (vacancy
 * answered, so it did not sell: a 5xx or 409 means the reserve was not made).
 */
function mayHaveReachedVacancy(error: unknown): boolean {
  if (error instanceof VacancyHttpError) return false;
  for (let cause: unknown = error; cause instanceof Error; cause = cause.cause) {
    if ((cause as Error & { code?: unknown }).code === 'ECONNREFUSED') return false;
  }
  return true;
}

/** The problem vacancy answered with, if its body is one. */
function problemOf(error: VacancyHttpError): Record<string, unknown> | undefined {
  try {
    const problem: unknown = JSON.parse(error.body);
    return isRecord(problem) ? problem : undefined;
  } catch {
    return undefined;
  }
}

/** Vacancy's own 503 can say that its store may have made the change (a shared store that answered late). */
function vacancySaysOutcomeUnknown(error: unknown): boolean {
  return error instanceof VacancyHttpError && error.status === 503 && problemOf(error)?.outcomeUnknown === true;
}

function isKeyReuse(error: VacancyHttpError): boolean {
  return problemOf(error)?.type === problemTypes.idempotencyKeyReused.type;
}

function describeFailure(error: unknown, baseUrl: string, timeoutMs: number): string {
  if (error instanceof DOMException && error.name === 'TimeoutError') {
    return `The vacancy service did not answer within ${timeoutMs} ms`;
  }
  if (mayHaveReachedVacancy(error))
    return `The connection to the vacancy service at ${baseUrl} was lost before it answered`;
  if (error instanceof VacancyHttpError) return `The vacancy service answered ${error.status}`;
  return `The vacancy service at ${baseUrl} could not be reached`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function isTicketRange(value: unknown): value is TicketRange {
  return isRecord(value) && isCount(value.first) && isCount(value.last);
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}
