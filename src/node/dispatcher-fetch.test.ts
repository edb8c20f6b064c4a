import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../test/support/processes.ts';
import { dispatcherFetch, splitUrl } from './dispatcher-fetch.ts';

/** What the server saw of the last request. */
let seen: { method?: string; url?: string; headers?: IncomingMessage['headers']; body?: string } = {};
let server: Server;
let base: string;
const pool = new Agent({ connections: 4 });
const send = dispatcherFetch(pool);
/** Set once /stall's first bytes are written. */
let stalled = false;
/** Answers that never finish, closed when the tests end. */
const hanging: ServerResponse[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      seen = { method: request.method, url: request.url, headers: request.headers, body };
      if (request.url === '/stall') {
        // Headers and the start of the body, then nothing.
        response.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '64' });
        response.write('{"started":', () => (stalled = true));
        hanging.push(response);
        return;
      }
      const status = request.url === '/busy' ? 503 : 200;
      response.writeHead(status, { 'Content-Type': 'application/json', 'Idempotent-Replayed': 'true' });
      response.end(JSON.stringify({ echo: body, path: request.url }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const response of hanging) response.destroy();
  await pool.close();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('dispatcherFetch', () => {
  it('sends the method, headers and body, and answers the status, headers by name and body', async () => {
    const answer = await send(`${base}/api/v1/reserve/batch?x=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'X-Request-Id': 'abc' },
      body: '{"qty":1}',
      signal: new AbortController().signal,
    });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('Idempotent-Replayed')).toBe('true');
    expect(answer.headers.get('x-missing')).toBeNull();
    expect(JSON.parse(await answer.text())).toEqual({ echo: '{"qty":1}', path: '/api/v1/reserve/batch?x=1' });
    expect(seen).toMatchObject({ method: 'POST', url: '/api/v1/reserve/batch?x=1', body: '{"qty":1}' });
    expect(seen.headers).toMatchObject({ 'content-type': 'application/json', 'x-request-id': 'abc' });
  });

  it('answers an error status rather than rejecting', async () => {
    const answer = await send(`${base}/busy`, { method: 'GET', headers: {}, signal: new AbortController().signal });
    expect(answer.status).toBe(503);
    expect(JSON.parse(await answer.text())).toMatchObject({ path: '/busy' });
  });

  it('rejects with the signal once aborted, also while the body is still coming', async () => {
    const controller = new AbortController();
    const answer = send(`${base}/stall`, { method: 'GET', headers: {}, signal: controller.signal });
    await expect.poll(() => stalled).toBe(true);
    // Time for the headers and the first bytes to cross loopback: the answer is now waiting mid-body.
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort(new DOMException('gave up', 'TimeoutError'));
    await expect(answer).rejects.toThrow();
  });

  it('rejects a refused connection with its ECONNREFUSED code, which says nothing was sent', async () => {
    const port = await freePort();
    const error: unknown = await send(`http://127.0.0.1:${port}/api/v1/available`, {
      method: 'GET',
      headers: {},
      signal: new AbortController().signal,
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error & { code?: string }).code).toBe('ECONNREFUSED');
  });
});

describe('splitUrl', () => {
  it('splits an absolute URL into origin and path with its query', () => {
    expect(splitUrl('http://vacancy:8001/api/v1/events?limit=5')).toEqual({
      origin: 'http://vacancy:8001',
      path: '/api/v1/events?limit=5',
    });
    expect(splitUrl('https://vacancy')).toEqual({ origin: 'https://vacancy', path: '/' });
    expect(() => splitUrl('/api/v1/available')).toThrow(/absolute/);
  });
});
