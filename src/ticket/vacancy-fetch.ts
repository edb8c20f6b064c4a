/**
 * What the ticket service's vacancy client asks of an HTTP client: one
 * request, one answer, nothing more. It is a subset of the Fetch API, so any
 * runtime's `fetch` is one (Deno, Bun, tests that call `app.fetch`); the Node
 * entrypoint passes a leaner one over undici's dispatcher API
 * (src/node/dispatcher-fetch.ts) that builds no web Request, Response or
 * stream. Retries, timeouts and replicas are the client's own business
 * (src/ticket/remote-vacancy-client.ts), the same whatever fetch is behind it.
 */

/** The one request the client sends: its method, headers, a JSON text body (POST) and a signal that aborts it. */
export interface VacancyFetchInit {
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
}

/** The answer the client reads: status, a header by name, and the whole body as text. */
export interface VacancyFetchResponse {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  text(): Promise<string>;
}

/**
 * Sends one request to vacancy. Rejects when no answer arrives (refused,
 * reset, aborted by the signal); an answer of any status resolves.
 *
 * @example
 * const send: VacancyFetch = fetch; // any runtime's fetch fits
 * const answer = await send('http://vacancy:8001/api/v1/available', { method: 'GET', headers: {}, signal });
 */
export type VacancyFetch = (url: string, init: VacancyFetchInit) => Promise<VacancyFetchResponse>;
