import ky, { HTTPError, TimeoutError, type KyInstance } from 'ky';
import type { ReserveOutcome } from '../vacancy/stock-actor.ts';
import { VacancyUnavailableError, type CallContext, type VacancyClient, type VacancyProbe } from './vacancy-client.ts';

export interface RemoteVacancyClientOptions {
  /** Where the vacancy service listens, e.g. `http://vacancy:8001`. */
  baseUrl: string;
  /** How long one call may take before the ticket service gives up with a 503. */
  timeoutMs: number;
  /**
   * The fetch to call through. The Node entrypoint passes one bound to a
   * keep-alive connection pool; any runtime's global fetch works too.
   */
  fetch?: typeof globalThis.fetch;
}

/** Vacancy answered something that is not the vacancy API: a bug or a misconfigured URL. */
export class VacancyProtocolError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VacancyProtocolError';
  }
}

/**
 * The ticket service's vacancy client in microservices mode: ky over the
 * given fetch, with a timeout per call and no retries. Retrying a reserve is
 * only safe once reserves carry idempotency keys, so a reserve whose answer
 * is lost is reported as a 503 and not repeated.
 *
 * @example
 * const client = new RemoteVacancyClient({ baseUrl: 'http://127.0.0.1:8001', timeoutMs: 5000 });
 * await client.reserve(2, { requestId: 'abc' });
 */
export class RemoteVacancyClient implements VacancyClient {
  readonly #http: KyInstance;
  readonly #timeoutMs: number;
  readonly #baseUrl: string;

  constructor(options: RemoteVacancyClientOptions) {
    this.#timeoutMs = options.timeoutMs;
    this.#baseUrl = options.baseUrl;
    this.#http = ky.create({
      prefixUrl: `${options.baseUrl}/api/v1/`,
      timeout: options.timeoutMs,
      retry: 0,
      throwHttpErrors: true,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
  }

  async available(context: CallContext = {}): Promise<number> {
    const body = await this.#call('available', () => this.#http.get('available', { headers: headers(context) }).json());
    if (!isRecord(body) || !isCount(body.qty)) throw new VacancyProtocolError('vacancy answered /available without a qty');
    return body.qty;
  }

  async reserve(qty: number, context: CallContext = {}): Promise<ReserveOutcome> {
    const body = await this.#call('reserve', () =>
      this.#http.post('reserve', { json: { qty }, headers: headers(context) }).json(),
    );
    if (!isRecord(body) || typeof body.success !== 'boolean' || !isCount(body.remaining)) {
      throw new VacancyProtocolError('vacancy answered /reserve without success and remaining');
    }
    return { success: body.success, remaining: body.remaining };
  }

  async probe(context: CallContext = {}): Promise<VacancyProbe> {
    try {
      await this.#http.get('ready', { headers: headers(context) });
      return { ready: true, detail: `vacancy at ${this.#baseUrl} is ready` };
    } catch (error) {
      return { ready: false, detail: describeFailure(error, this.#baseUrl, this.#timeoutMs) };
    }
  }

  async close(): Promise<void> {}

  async #call(what: string, send: () => Promise<unknown>): Promise<unknown> {
    try {
      return await send();
    } catch (error) {
      if (error instanceof HTTPError && error.response.status < 500) {
        throw new VacancyProtocolError(`vacancy refused ${what} with status ${error.response.status}`, {
          cause: error,
        });
      }
      throw new VacancyUnavailableError(describeFailure(error, this.#baseUrl, this.#timeoutMs), { cause: error });
    }
  }
}

function headers(context: CallContext): Record<string, string> {
  return context.requestId ? { 'X-Request-Id': context.requestId } : {};
}

function describeFailure(error: unknown, baseUrl: string, timeoutMs: number): string {
  if (error instanceof TimeoutError) return `The vacancy service did not answer within ${timeoutMs} ms`;
  if (error instanceof HTTPError) return `The vacancy service answered ${error.response.status}`;
  return `The vacancy service at ${baseUrl} could not be reached`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}
