import type { Dispatcher } from 'undici';
import type { VacancyFetch } from '../ticket/vacancy-fetch.ts';

/**
 * The ticket service's fetch on Node: one `dispatcher.request` of undici's
 * dispatcher API (the keep-alive pool the entrypoint made), its body read
 * whole as text. It builds none of what a web `fetch` builds per call (a
 * Request, its body and response streams, a Headers list, a Response), which
 * cost several times the request itself on Node 20 (docs/adr/0010). Aborting
 * `init.signal` aborts the request, also while its body is being read.
 *
 * @example
 * const pool = new Agent({ connections: 100 });
 * const client = new RemoteVacancyClient({ baseUrl, timeoutMs: 5000, fetch: dispatcherFetch(pool) });
 */
export function dispatcherFetch(dispatcher: Dispatcher): VacancyFetch {
  return async (url, init) => {
    const { origin, path } = splitUrl(url);
    const response = await dispatcher.request({
      origin,
      path,
      method: init.method,
      headers: init.headers,
      body: init.body,
      signal: init.signal,
    });
    const text = await response.body.text();
    const headers = response.headers;
    return {
      status: response.statusCode,
      headers: { get: (name) => headerValue(headers[name.toLowerCase()]) },
      text: () => Promise.resolve(text),
    };
  };
}

/** `http://host:port/path?query` as origin and path (with the query), without parsing a URL object per call. */
export function splitUrl(url: string): { origin: string; path: string } {
  const scheme = url.indexOf('://');
  if (scheme < 0) throw new TypeError(`not an absolute URL: ${url}`);
  const slash = url.indexOf('/', scheme + 3);
  return slash < 0 ? { origin: url, path: '/' } : { origin: url.slice(0, slash), path: url.slice(slash) };
}

function headerValue(value: string | string[] | undefined): string | null {
  if (value === undefined) return null;
  return typeof value === 'string' ? value : value.join(', ');
}
