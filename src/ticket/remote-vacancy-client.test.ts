/**
 * The client's own retry loop on real sockets, as the Node entrypoint wires
 * it (dispatcherFetch over an undici Agent): a stand-in vacancy answers each
 * request as the test scripts it and records what it got.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dispatcherFetch } from '../node/dispatcher-fetch.ts';
import { VacancyUnavailableError } from '../stock/vacancy-client.ts';
import { RemoteVacancyClient, VacancyProtocolError } from './remote-vacancy-client.ts';

const TOKEN = 'an-internal-token-for-tests';

type Answer = (response: ServerResponse) => void;

/** An answer of `status` with a JSON body and any extra headers. */
const json =
  (status: number, body: unknown, headers: Record<string, string> = {}): Answer =>
  (response) => {
    response.writeHead(status, { 'Content-Type': 'application/json', ...headers });
    response.end(JSON.stringify(body));
  };
const reserved = json(200, {
  success: true,
  remaining: 8,
  message: 'Reserved 2 tickets',
  reservationId: 'ord_x',
  tickets: { first: 1, last: 2 },
});
const unavailable = (headers: Record<string, string> = {}) =>
  json(503, { type: 'about:blank', title: 'Service Unavailable', status: 503, detail: 'busy' }, headers);
/** No answer at all: the request is left hanging (closed when the test ends). */
const silence: Answer = (response) => void hanging.push(response);

const received: Array<{ method: string; url: string; headers: IncomingHttpHeaders; body: string }> = [];
const script: Answer[] = [];
const hanging: ServerResponse[] = [];
let server: Server;
let baseUrl: string;
const pool = new Agent({ connections: 8 });

beforeAll(async () => {
  server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      received.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, body });
      (script.shift() ?? reserved)(response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(() => {
  received.length = 0;
  script.length = 0;
  for (const response of hanging.splice(0)) response.destroy();
});

afterAll(async () => {
  await pool.close();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function client(options: { timeoutMs?: number; retries?: number } = {}) {
  return new RemoteVacancyClient({
    baseUrl,
    timeoutMs: options.timeoutMs ?? 3_000,
    retries: options.retries ?? 2,
    internalToken: TOKEN,
    fetch: dispatcherFetch(pool),
  });
}

describe('RemoteVacancyClient over undici', () => {
  it('sends a reserve with its key, request id and the internal token, and retries a 503 under the same key', async () => {
    script.push(unavailable());
    const result = await client().reserve(2, { requestId: 'req-1', idempotencyKey: 'purchase:caller-key' });
    expect(result).toMatchObject({ success: true, remaining: 8, tickets: { first: 1, last: 2 }, replayed: false });
    expect(received).toHaveLength(2);
    for (const request of received) {
      expect(request).toMatchObject({ method: 'POST', url: '/api/v1/reserve', body: '{"qty":2}' });
      expect(request.headers).toMatchObject({
        'idempotency-key': 'purchase:caller-key',
        'x-request-id': 'req-1',
        authorization: `Bearer ${TOKEN}`,
        'content-type': 'application/json',
      });
    }
  });

  it("waits a 503's Retry-After when the wait ends before the call's deadline", async () => {
    script.push(unavailable({ 'Retry-After': '0' }));
    await expect(client().reserve(1)).resolves.toMatchObject({ success: true });
    expect(received).toHaveLength(2);
    expect(received[1]!.headers['idempotency-key']).toBe(received[0]!.headers['idempotency-key']);
  });

  it('ends the call with the 503 when its Retry-After outlasts the deadline: vacancy answered, so nothing was sold', async () => {
    script.push(unavailable({ 'Retry-After': '30' }));
    const error: unknown = await client({ timeoutMs: 2_000 })
      .reserve(1)
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(VacancyUnavailableError);
    expect(error).toMatchObject({ outcomeUnknown: false, message: 'The vacancy service answered 503' });
    expect(received).toHaveLength(1);
  });

  it('does not send again what vacancy refused as a bad request', async () => {
    script.push(json(400, { type: 'about:blank', title: 'Bad request', status: 400, detail: 'no' }));
    await expect(client().reserve(1)).rejects.toBeInstanceOf(VacancyProtocolError);
    expect(received).toHaveLength(1);
  });

  it('gives each attempt its share of the time, sends an unanswered reserve again, then says the outcome is unknown', async () => {
    script.push(silence, silence, silence);
    const error: unknown = await client({ timeoutMs: 600, retries: 2 })
      .reserve(1)
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(VacancyUnavailableError);
    expect(error).toMatchObject({
      outcomeUnknown: true,
      message: 'The vacancy service did not answer within 600 ms',
    });
    expect(received).toHaveLength(3);
    expect(new Set(received.map((request) => request.headers['idempotency-key'])).size).toBe(1);
  });

  it('reads availability with a GET that carries the request id', async () => {
    script.push(json(200, { qty: 42 }));
    await expect(client().available({ requestId: 'req-2' })).resolves.toBe(42);
    expect(received[0]).toMatchObject({ method: 'GET', url: '/api/v1/available' });
    expect(received[0]!.headers).toMatchObject({ 'x-request-id': 'req-2', authorization: `Bearer ${TOKEN}` });
  });
});
