import { describe, expect, it } from 'vitest';
import { createApp, VERSION } from './app.ts';
import { parseConfig, type Config } from './config.ts';
import { buildDependencies } from './dependencies.ts';
import { PROBLEM_CONTENT_TYPE } from './lib/problem.ts';
import { LocalVacancyClient } from './vacancy/local-vacancy-client.ts';
import { VacancyProtocolError } from './ticket/remote-vacancy-client.ts';
import {
  VacancyUnavailableError,
  type CallContext,
  type VacancyClient,
  type VacancyProbe,
} from './stock/vacancy-client.ts';
import { defaultEventDefinition } from './stock/model.ts';
import { MemoryStockStore, type StockStore } from './stock/store.ts';
import { StockActor } from './vacancy/stock-actor.ts';
import { ControlledStore } from '../test/support/controlled-store.ts';
import { fakeVacancyClient, UnexpectedVacancyClient } from '../test/support/fake-vacancy.ts';

type App = ReturnType<typeof createApp>;

const INITIAL_STOCK = 10;
/** Every 1.0.0 purchase is an order: its purchaseId is a random order id of the default event. */
const PURCHASE_ID = /^ord_[A-Za-z0-9_-]{30}default$/;
const QTY_PATHS = ['/api/v1/purchase', '/api/v1/reserve'] as const;

// ---------------------------------------------------------------------------
// Building apps
// ---------------------------------------------------------------------------

function configFor(env: Record<string, string> = {}): Config {
  return parseConfig({ MODE: 'monolith', STOCK_STORE: 'memory', INITIAL_STOCK: String(INITIAL_STOCK), ...env });
}

/** A monolith or vacancy app on a memory store (or the given store). */
async function ownedStockApp(env: Record<string, string> = {}, store?: StockStore) {
  const config = configFor(env);
  const deps = await buildDependencies(config, store ? { store } : {});
  const app = createApp(deps);
  return { app, deps, actor: deps.actor! };
}

const monolithApp = (env: Record<string, string> = {}, store?: StockStore) =>
  ownedStockApp({ MODE: 'monolith', ...env }, store);

/** A ticket app whose vacancy client is a real actor in this process, recording the contexts it is called with. */
async function ticketApp(env: Record<string, string> = {}) {
  const config = configFor({ MODE: 'ticket', ...env });
  const actor = await StockActor.start(new MemoryStockStore(), [
    { eventId: 'default', definition: defaultEventDefinition(INITIAL_STOCK) },
  ]);
  const client = new RecordingClient(new LocalVacancyClient(actor));
  const app = createApp({ config, vacancyClient: client });
  return { app, actor, client };
}

function ticketAppWith(client: VacancyClient, env: Record<string, string> = {}) {
  return createApp({ config: configFor({ MODE: 'ticket', ...env }), vacancyClient: client });
}

// ---------------------------------------------------------------------------
// Fakes
// ---------------------------------------------------------------------------

/** Passes every call through and remembers what it was called with. */
class RecordingClient extends UnexpectedVacancyClient {
  readonly calls: { method: string; qty?: number; context?: CallContext }[] = [];
  constructor(private readonly inner: VacancyClient) {
    super();
    this.available = (context) => this.#record('available', context, () => inner.available(context));
    this.reserve = (qty, context) => this.#record('reserve', context, () => inner.reserve(qty, context), qty);
    this.purchase = (eventId, items, context) =>
      this.#record('purchase', context, () => inner.purchase(eventId, items, context));
    this.hold = (eventId, items, context) => this.#record('hold', context, () => inner.hold(eventId, items, context));
    this.confirm = (holdId, context) => this.#record('confirm', context, () => inner.confirm(holdId, context));
    this.release = (holdId, context) => this.#record('release', context, () => inner.release(holdId, context));
    this.getHold = (holdId, context) => this.#record('hold', context, () => inner.getHold(holdId, context));
    this.getOrder = (orderId, context) => this.#record('order', context, () => inner.getOrder(orderId, context));
    this.getEvent = (eventId, context) => this.#record('event', context, () => inner.getEvent(eventId, context));
    this.listEvents = (query, context) => this.#record('events', context, () => inner.listEvents(query, context));
  }

  #record<T>(method: string, context: CallContext | undefined, call: () => Promise<T>, qty?: number): Promise<T> {
    this.calls.push({ method, context, ...(qty === undefined ? {} : { qty }) });
    return call();
  }

  override probe(context?: CallContext): Promise<VacancyProbe> {
    this.calls.push({ method: 'probe', context });
    return this.inner.probe(context);
  }
}

/** A client whose every call fails with `error()`; `reserveCalls` counts reserves. */
class FailingVacancy extends UnexpectedVacancyClient {
  reserveCalls = 0;
  constructor(error: (what: string) => Error, probe: VacancyProbe) {
    super();
    const fail = (what: string) => () => Promise.reject(error(what));
    this.available = fail('available');
    this.reserve = () => {
      this.reserveCalls += 1;
      return Promise.reject(error('reserve'));
    };
    for (const what of [
      'purchase',
      'hold',
      'confirm',
      'release',
      'getHold',
      'getOrder',
      'getEvent',
      'listEvents',
    ] as const) {
      this[what] = fail(what);
    }
    this.probe = async () => probe;
  }
}

/** Vacancy cannot be reached at all. */
class UnreachableVacancy extends FailingVacancy {
  constructor() {
    super(
      (what) =>
        new VacancyUnavailableError(
          what === 'reserve'
            ? 'The vacancy service did not answer within 5000 ms'
            : 'The vacancy service at http://vacancy:8001 could not be reached',
        ),
      { ready: false, detail: 'The vacancy service at http://vacancy:8001 could not be reached' },
    );
  }
}

/** Vacancy answers, but not with the vacancy API. */
class ConfusedVacancy extends FailingVacancy {
  constructor() {
    super(
      (what) =>
        new VacancyProtocolError(
          what === 'available'
            ? 'vacancy answered /available without a qty'
            : what === 'reserve'
              ? 'vacancy answered /reserve without success and remaining'
              : `vacancy answered ${what} with something else`,
        ),
      { ready: true, detail: 'looks fine' },
    );
  }
}

// ---------------------------------------------------------------------------
// Requests and assertions
// ---------------------------------------------------------------------------

async function postJson(app: App, path: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return app.request(path, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

async function stockOf(app: App): Promise<number> {
  const res = await app.request('/api/v1/available');
  expect(res.status).toBe(200);
  const body = (await res.json()) as { qty: number };
  return body.qty;
}

interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  errors?: { name: string; reason: string }[];
}

/** Asserts an RFC 9457 problem with this status and returns it. */
async function expectProblem(res: Response, status: number, instance?: string): Promise<Problem> {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const text = await res.text();
  expectNoStackTrace(text);
  const problem = JSON.parse(text) as Problem;
  expect(problem).toMatchObject({
    type: expect.stringMatching(/^https?:\/\/\S+$/),
    title: expect.any(String),
    status,
    detail: expect.any(String),
    instance: expect.any(String),
  });
  expect(problem.title.length).toBeGreaterThan(0);
  expect(problem.detail.length).toBeGreaterThan(0);
  if (instance !== undefined) expect(problem.instance).toBe(instance);
  return problem;
}

function expectNoStackTrace(text: string) {
  expect(text).not.toMatch(/\n\s+at /);
  expect(text).not.toMatch(/ {4}at /);
  expect(text).not.toMatch(/\\n\s+at /);
}

function streamOf(text: string, chunkSize = 16): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(offset, offset + chunkSize));
      offset += chunkSize;
    },
  });
}

/** A request whose body is a stream, so it has no Content-Length (as with chunked transfer encoding). */
function streamedRequest(path: string, body: string, contentType = 'application/json'): Request {
  const init: RequestInit & { duplex: 'half' } = {
    method: 'POST',
    body: streamOf(body),
    headers: { 'content-type': contentType },
    duplex: 'half',
  };
  return new Request(`http://localhost${path}`, init);
}

/** A valid qty body padded with an ignored field to exactly `bytes` bytes. */
function paddedBody(bytes: number): string {
  const base = '{"qty":1,"pad":""}';
  const body = `{"qty":1,"pad":"${'x'.repeat(bytes - base.length)}"}`;
  expect(new TextEncoder().encode(body).length).toBe(bytes);
  return body;
}

// ---------------------------------------------------------------------------
// Happy paths
// ---------------------------------------------------------------------------

describe('monolith', () => {
  it('GET / names the service, version and mode', async () => {
    const { app } = await monolithApp();
    const res = await app.request('/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toMatchObject({ service: 'ticket-system-monolith', version: VERSION, mode: 'monolith' });
  });

  it('GET / uses SERVICE_NAME when given', async () => {
    const { app } = await monolithApp({ SERVICE_NAME: 'box-office' });
    expect(await (await app.request('/')).json()).toMatchObject({ service: 'box-office', mode: 'monolith' });
  });

  it('GET /api/v1/available answers {qty}', async () => {
    const { app } = await monolithApp();
    const res = await app.request('/api/v1/available');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ qty: INITIAL_STOCK });
  });

  it('POST /api/v1/reserve takes tickets and answers {success, remaining, message}', async () => {
    const { app, actor } = await monolithApp();
    const res = await postJson(app, '/api/v1/reserve', '{"qty":3}');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({
      success: true,
      remaining: 7,
      message: 'Reserved 3 tickets',
      reservationId: expect.stringMatching(PURCHASE_ID),
      tickets: { first: 1, last: 3 },
    });
    expect(await stockOf(app)).toBe(7);
    expect(actor.snapshot()).toEqual({ remaining: 7, sold: 3 });
  });

  it('POST /api/v1/purchase sells tickets and answers {success, remaining, message}', async () => {
    const { app, actor } = await monolithApp();
    const first = await postJson(app, '/api/v1/purchase', '{"qty":1}');
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({
      success: true,
      remaining: 9,
      message: 'Purchased 1 ticket',
      purchaseId: expect.stringMatching(PURCHASE_ID),
      tickets: { first: 1, last: 1 },
    });
    const second = await postJson(app, '/api/v1/purchase', '{"qty":2}');
    expect(await second.json()).toEqual({
      success: true,
      remaining: 7,
      message: 'Purchased 2 tickets',
      purchaseId: expect.stringMatching(PURCHASE_ID),
      tickets: { first: 2, last: 3 },
    });
    expect(await stockOf(app)).toBe(7);
    expect(actor.snapshot()).toEqual({ remaining: 7, sold: 3 });
  });

  it('purchase and reserve draw from the same stock', async () => {
    const { app } = await monolithApp();
    await postJson(app, '/api/v1/purchase', '{"qty":4}');
    await postJson(app, '/api/v1/reserve', '{"qty":4}');
    expect(await stockOf(app)).toBe(2);
  });

  it.each(QTY_PATHS)(
    '%s: insufficient stock is 200 success:false "Insufficient inventory", stock unchanged',
    async (path) => {
      const { app, actor } = await monolithApp();
      const res = await postJson(app, path, `{"qty":${INITIAL_STOCK + 1}}`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ success: false, remaining: INITIAL_STOCK, message: 'Insufficient inventory' });
      expect(await stockOf(app)).toBe(INITIAL_STOCK);
      expect(actor.snapshot()).toEqual({ remaining: INITIAL_STOCK, sold: 0 });
    },
  );

  it.each(QTY_PATHS)('%s: the last tickets can be taken, then nothing more', async (path) => {
    const { app } = await monolithApp();
    expect(await (await postJson(app, path, `{"qty":${INITIAL_STOCK}}`)).json()).toMatchObject({
      success: true,
      remaining: 0,
    });
    expect(await (await postJson(app, path, '{"qty":1}')).json()).toEqual({
      success: false,
      remaining: 0,
      message: 'Insufficient inventory',
    });
    expect(await stockOf(app)).toBe(0);
  });

  it('concurrent purchases never oversell', async () => {
    const { app, actor } = await monolithApp();
    const answers = await Promise.all(
      Array.from({ length: 25 }, () => postJson(app, '/api/v1/purchase', '{"qty":1}').then((r) => r.json())),
    );
    const sold = answers.filter((a) => (a as { success: boolean }).success).length;
    expect(sold).toBe(INITIAL_STOCK);
    expect(actor.snapshot()).toEqual({ remaining: 0, sold: INITIAL_STOCK });
  });

  it('GET /api/v1/health reports vacancy and ticket details', async () => {
    const { app } = await monolithApp();
    await postJson(app, '/api/v1/purchase', '{"qty":2}');
    const res = await app.request('/api/v1/health');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; service: string; details: Record<string, unknown> };
    expect(body.status).toBe('healthy');
    expect(body.service).toBe('monolith');
    expect(body.details.vacancy).toMatchObject({ status: 'healthy', stock: { available: 8, sold: 2 } });
    expect(body.details.ticket).toMatchObject({ status: 'healthy' });
  });

  it('GET /api/v1/ready is 200', async () => {
    const { app } = await monolithApp();
    const res = await app.request('/api/v1/ready');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ready' });
  });

  it('GET /openapi.json is an OpenAPI 3.1 document of every route and its problems', async () => {
    const { app } = await monolithApp();
    const res = await app.request('/openapi.json');
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }> }>>;
    };
    expect(doc.openapi.startsWith('3.1')).toBe(true);
    for (const path of [
      '/api/v1/purchase',
      '/api/v1/reserve',
      '/api/v1/available',
      '/api/v1/health',
      '/api/v1/ready',
    ]) {
      expect(doc.paths, path).toHaveProperty([path]);
    }
    for (const path of QTY_PATHS) {
      const post = doc.paths[path]?.post;
      expect(post, path).toBeDefined();
      expect(post?.responses['200']?.content).toHaveProperty(['application/json']);
      for (const status of ['400', '413', '415', '422', '503']) {
        expect(post?.responses[status]?.content, `${path} ${status}`).toHaveProperty([PROBLEM_CONTENT_TYPE]);
      }
    }
    expect(doc.paths['/api/v1/ready']?.get?.responses['503']?.content).toHaveProperty([PROBLEM_CONTENT_TYPE]);
  });

  it('GET /docs serves the Swagger UI', async () => {
    const { app } = await monolithApp();
    const res = await app.request('/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toMatch(/<html/i);
    expect(html).toContain('/openapi.json');
  });
});

describe('vacancy mode', () => {
  it('serves /available, /reserve and /health as service "vacancy"', async () => {
    const { app } = await ownedStockApp({ MODE: 'vacancy' });
    expect(await (await app.request('/')).json()).toMatchObject({ mode: 'vacancy', service: 'ticket-system-vacancy' });
    expect(await stockOf(app)).toBe(INITIAL_STOCK);
    const reserve = await postJson(app, '/api/v1/reserve', '{"qty":4}');
    expect(reserve.status).toBe(200);
    expect(await reserve.json()).toEqual({
      success: true,
      remaining: 6,
      message: 'Reserved 4 tickets',
      reservationId: expect.stringMatching(PURCHASE_ID),
      tickets: { first: 1, last: 4 },
    });
    const health = await app.request('/api/v1/health');
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({
      status: 'healthy',
      service: 'vacancy',
      details: { stock: { available: 6, sold: 4 } },
    });
    expect((await app.request('/api/v1/ready')).status).toBe(200);
  });

  it('has no POST /api/v1/purchase', async () => {
    const { app } = await ownedStockApp({ MODE: 'vacancy' });
    await expectProblem(await postJson(app, '/api/v1/purchase', '{"qty":1}'), 404, '/api/v1/purchase');
    expect(await stockOf(app)).toBe(INITIAL_STOCK);
  });

  it('documents only its own routes', async () => {
    const { app } = await ownedStockApp({ MODE: 'vacancy' });
    const doc = (await (await app.request('/openapi.json')).json()) as { paths: Record<string, unknown> };
    expect(doc.paths).toHaveProperty(['/api/v1/reserve']);
    expect(doc.paths).not.toHaveProperty(['/api/v1/purchase']);
  });
});

describe('ticket mode', () => {
  it('sells through the vacancy client and reports service "ticket"', async () => {
    const { app, actor } = await ticketApp();
    expect(await (await app.request('/')).json()).toMatchObject({ mode: 'ticket', service: 'ticket-system-ticket' });
    const res = await postJson(app, '/api/v1/purchase', '{"qty":3}');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      success: true,
      remaining: 7,
      message: 'Purchased 3 tickets',
      purchaseId: expect.stringMatching(PURCHASE_ID),
      tickets: { first: 1, last: 3 },
    });
    expect(actor.snapshot()).toEqual({ remaining: 7, sold: 3 });
    expect(await stockOf(app)).toBe(7);
    const health = await app.request('/api/v1/health');
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'healthy', service: 'ticket' });
  });

  it('insufficient stock is 200 success:false through the client', async () => {
    const { app, actor } = await ticketApp();
    const res = await postJson(app, '/api/v1/purchase', '{"qty":11}');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ success: false, remaining: 10, message: 'Insufficient inventory' });
    expect(actor.snapshot()).toEqual({ remaining: 10, sold: 0 });
  });

  it('is ready when the vacancy probe is', async () => {
    const { app } = await ticketApp();
    const res = await app.request('/api/v1/ready');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ready' });
  });

  it('is not ready (503 problem) when the vacancy probe is not', async () => {
    const app = ticketAppWith(new UnreachableVacancy());
    const res = await app.request('/api/v1/ready');
    const problem = await expectProblem(res, 503, '/api/v1/ready');
    expect(problem.detail).toContain('could not be reached');
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
  });

  it('has no POST /api/v1/reserve', async () => {
    const { app, actor, client } = await ticketApp();
    await expectProblem(await postJson(app, '/api/v1/reserve', '{"qty":1}'), 404, '/api/v1/reserve');
    expect(client.calls.filter((c) => c.method === 'reserve')).toHaveLength(0);
    expect(actor.snapshot()).toEqual({ remaining: INITIAL_STOCK, sold: 0 });
  });

  describe('when vacancy is unavailable', () => {
    it('purchase is a 503 problem with Retry-After that says nothing was sold', async () => {
      const vacancy = new UnreachableVacancy();
      const app = ticketAppWith(vacancy);
      const res = await postJson(app, '/api/v1/purchase', '{"qty":1}');
      const problem = await expectProblem(res, 503, '/api/v1/purchase');
      expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(problem.detail).toMatch(/nothing was sold/i);
      expect(vacancy.reserveCalls).toBe(1);
    });

    it('available is a 503 problem', async () => {
      const res = await ticketAppWith(new UnreachableVacancy()).request('/api/v1/available');
      await expectProblem(res, 503, '/api/v1/available');
      expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    });

    it('health still answers 200 (liveness)', async () => {
      const res = await ticketAppWith(new UnreachableVacancy()).request('/api/v1/health');
      expect(res.status).toBe(200);
    });
  });

  describe('when vacancy answers something that is not the vacancy API', () => {
    it('purchase is a 502 problem', async () => {
      const res = await postJson(ticketAppWith(new ConfusedVacancy()), '/api/v1/purchase', '{"qty":1}');
      const problem = await expectProblem(res, 502, '/api/v1/purchase');
      expect(problem.detail).toContain('vacancy answered /reserve');
    });

    it('available is a 502 problem', async () => {
      const res = await ticketAppWith(new ConfusedVacancy()).request('/api/v1/available');
      await expectProblem(res, 502, '/api/v1/available');
    });
  });
});

// ---------------------------------------------------------------------------
// Bad input: never a 500, never a stack trace, never a change of stock
// ---------------------------------------------------------------------------

const MALFORMED_JSON: [label: string, body: string][] = [
  ['an unterminated object', '{"qty"'],
  ['an empty body', ''],
  ['unquoted keys', '{qty:1}'],
  ['a trailing comma', '{"qty":1,}'],
];

const SCHEMA_INVALID: [label: string, body: string, field: 'qty' | 'body'][] = [
  ['qty 0', '{"qty":0}', 'qty'],
  ['qty -1', '{"qty":-1}', 'qty'],
  ['qty 1.5', '{"qty":1.5}', 'qty'],
  ['qty "1"', '{"qty":"1"}', 'qty'],
  ['qty null', '{"qty":null}', 'qty'],
  ['qty true', '{"qty":true}', 'qty'],
  ['qty {}', '{"qty":{}}', 'qty'],
  ['missing qty', '{}', 'qty'],
  ['an empty array', '[]', 'body'],
  ['an array of objects', '[{"qty":1}]', 'body'],
  ['a number', '1', 'body'],
  ['a string', '"x"', 'body'],
  ['null', 'null', 'body'],
  ['true', 'true', 'body'],
  ['qty 2**53', '{"qty":9007199254740992}', 'qty'],
  ['qty 1e300', '{"qty":1e300}', 'qty'],
  ['qty -0', '{"qty":-0}', 'qty'],
];

const UNSUPPORTED_TYPES: [label: string, contentType: string | undefined, body: string][] = [
  ['text/plain', 'text/plain', '{"qty":1}'],
  ['application/x-www-form-urlencoded', 'application/x-www-form-urlencoded', 'qty=1'],
  [
    'multipart/form-data',
    'multipart/form-data; boundary=x',
    '--x\r\nContent-Disposition: form-data; name="qty"\r\n\r\n1\r\n--x--\r\n',
  ],
  ['application/xml', 'application/xml', '<qty>1</qty>'],
  ['application/jsonp', 'application/jsonp', '{"qty":1}'],
  ['no content type', undefined, '{"qty":1}'],
];

describe.each(QTY_PATHS)('bad input on POST %s', (path) => {
  it.each(MALFORMED_JSON)('%s is a 400 problem and changes nothing', async (_label, body) => {
    const { app, actor } = await monolithApp();
    const problem = await expectProblem(await postJson(app, path, body), 400, path);
    expect(problem.detail).toMatch(/json/i);
    expect(await stockOf(app)).toBe(INITIAL_STOCK);
    expect(actor.snapshot()).toEqual({ remaining: INITIAL_STOCK, sold: 0 });
  });

  it('a JSON content type with no body at all is a 400 problem', async () => {
    const { app } = await monolithApp();
    const res = await app.request(path, { method: 'POST', headers: { 'content-type': 'application/json' } });
    await expectProblem(res, 400, path);
    expect(await stockOf(app)).toBe(INITIAL_STOCK);
  });

  it.each(SCHEMA_INVALID)('%s (%s) is a 422 problem naming %s', async (_label, body, field) => {
    const { app, actor } = await monolithApp();
    const problem = await expectProblem(await postJson(app, path, body), 422, path);
    expect(problem.errors).toBeInstanceOf(Array);
    expect(problem.errors!.length).toBeGreaterThan(0);
    for (const error of problem.errors!) {
      expect(error).toEqual({ name: expect.any(String), reason: expect.any(String) });
      expect(error.reason.length).toBeGreaterThan(0);
    }
    expect(problem.errors!.map((e) => e.name)).toContain(field);
    expect(problem.detail).toContain(field);
    expect(await stockOf(app)).toBe(INITIAL_STOCK);
    expect(actor.snapshot()).toEqual({ remaining: INITIAL_STOCK, sold: 0 });
  });

  it.each([
    ['2**53, past the safe integers', '9007199254740992', `qty must be at most ${Number.MAX_SAFE_INTEGER}`],
    ['1e21', '1e21', `qty must be at most ${Number.MAX_SAFE_INTEGER}`],
    ['1e400, parsed as Infinity', '1e400', `qty must be at most ${Number.MAX_SAFE_INTEGER}`],
    ['-2**53', '-9007199254740992', 'qty must be at least 1'],
    ['-1.5', '-1.5', 'qty must be at least 1'],
    ['1.5', '1.5', 'qty must be a whole number'],
  ])('qty %s gets exactly one detail, the true one', async (_label, qty, reason) => {
    const { app, actor } = await monolithApp();
    const problem = await expectProblem(await postJson(app, path, `{"qty":${qty}}`), 422, path);
    expect(problem.errors).toEqual([{ name: 'qty', reason }]);
    expect(problem.detail).toBe(`qty: ${reason}`);
    expect(actor.snapshot()).toEqual({ remaining: INITIAL_STOCK, sold: 0 });
  });

  it.each(UNSUPPORTED_TYPES)('%s is a 415 problem and changes nothing', async (_label, contentType, body) => {
    const { app, actor } = await monolithApp();
    // A byte body, so that the Request does not invent a text/plain content type of its own.
    const res = await app.request(path, {
      method: 'POST',
      body: new TextEncoder().encode(body),
      headers: contentType === undefined ? {} : { 'content-type': contentType },
    });
    const problem = await expectProblem(res, 415, path);
    expect(problem.detail).toMatch(/application\/json/);
    expect(res.headers.get('accept-post')).toBe('application/json');
    expect(await stockOf(app)).toBe(INITIAL_STOCK);
    expect(actor.snapshot()).toEqual({ remaining: INITIAL_STOCK, sold: 0 });
  });

  it.each([
    ['application/json; charset=utf-8'],
    ['application/json;charset=UTF-8'],
    ['Application/JSON'],
    ['application/merge-patch+json'],
    ['application/vnd.api+json'],
  ])('%s is accepted as JSON', async (contentType) => {
    const { app } = await monolithApp();
    const res = await postJson(app, path, '{"qty":2}', { 'content-type': contentType });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ success: true, remaining: 8 });
    expect(await stockOf(app)).toBe(8);
  });

  // Media types that pass the service's own JSON check but differ from `application/json; charset=...`:
  // each must be either read as JSON (200, one sale) or refused with a 415 problem, never a 500.
  it.each([
    ['application/json ; charset=utf-8'],
    ['application/json;'],
    ['application/json; foo'],
    ['application/vnd.example.v1+json'],
    ['application/vnd.a+b+json'],
  ])('%s is read as JSON or refused with 415, never a 500', async (contentType) => {
    const { app } = await monolithApp();
    const res = await postJson(app, path, '{"qty":1}', { 'content-type': contentType });
    if (res.status === 200) {
      expect(await stockOf(app)).toBe(INITIAL_STOCK - 1);
    } else {
      await expectProblem(res, 415, path);
      expect(await stockOf(app)).toBe(INITIAL_STOCK);
    }
  });

  it.each([
    ['deeply nested arrays', `${'['.repeat(100_000)}${']'.repeat(100_000)}`, 'body'],
    ['a deeply nested qty', `{"qty":${'['.repeat(100_000)}${']'.repeat(100_000)}}`, 'qty'],
    ['qty under __proto__', '{"__proto__":{"qty":1}}', 'qty'],
  ])('%s is a 422 problem', async (_label, body, field) => {
    const { app } = await monolithApp();
    const problem = await expectProblem(await postJson(app, path, body), 422, path);
    expect(problem.errors?.map((e) => e.name)).toContain(field);
    expect(await stockOf(app)).toBe(INITIAL_STOCK);
  });

  it('qty 1.0 is the integer 1; qty 2**53-1 is valid and simply more than the stock', async () => {
    const { app } = await monolithApp();
    expect(await (await postJson(app, path, '{"qty":1.0}')).json()).toMatchObject({ success: true, remaining: 9 });
    const huge = await postJson(app, path, `{"qty":${Number.MAX_SAFE_INTEGER}}`);
    expect(huge.status).toBe(200);
    expect(await huge.json()).toEqual({ success: false, remaining: 9, message: 'Insufficient inventory' });
    expect(await stockOf(app)).toBe(9);
  });

  describe('with BODY_LIMIT=64', () => {
    it('a body of exactly 64 bytes is accepted', async () => {
      const { app } = await monolithApp({ BODY_LIMIT: '64' });
      const body = paddedBody(64);
      const res = await postJson(app, path, body, { 'content-length': '64' });
      expect(res.status).toBe(200);
      expect(await stockOf(app)).toBe(9);
      const streamed = await app.request(streamedRequest(path, body));
      expect(streamed.status).toBe(200);
      expect(await stockOf(app)).toBe(8);
    });

    it('a larger body with a Content-Length is a 413 problem and changes nothing', async () => {
      const { app, actor } = await monolithApp({ BODY_LIMIT: '64' });
      const body = paddedBody(65);
      const res = await postJson(app, path, body, { 'content-length': '65' });
      const problem = await expectProblem(res, 413, path);
      expect(problem.detail).toContain('64');
      expect(await stockOf(app)).toBe(INITIAL_STOCK);
      expect(actor.snapshot()).toEqual({ remaining: INITIAL_STOCK, sold: 0 });
    });

    it('a much larger body with a Content-Length is a 413 problem', async () => {
      const { app } = await monolithApp({ BODY_LIMIT: '64' });
      const body = paddedBody(100_000);
      await expectProblem(await postJson(app, path, body, { 'content-length': String(body.length) }), 413, path);
      expect(await stockOf(app)).toBe(INITIAL_STOCK);
    });

    it('a larger streamed body without a Content-Length is a 413 problem and changes nothing', async () => {
      const { app, actor } = await monolithApp({ BODY_LIMIT: '64' });
      const request = streamedRequest(path, paddedBody(200));
      expect(request.headers.has('content-length')).toBe(false);
      const problem = await expectProblem(await app.request(request), 413, path);
      expect(problem.detail).toContain('64');
      expect(await stockOf(app)).toBe(INITIAL_STOCK);
      expect(actor.snapshot()).toEqual({ remaining: INITIAL_STOCK, sold: 0 });
    });

    it('the content type is checked before the size', async () => {
      const { app } = await monolithApp({ BODY_LIMIT: '64' });
      const body = paddedBody(200);
      const res = await app.request(path, {
        method: 'POST',
        body,
        headers: { 'content-type': 'text/plain', 'content-length': String(body.length) },
      });
      await expectProblem(res, 415, path);
      expect(await stockOf(app)).toBe(INITIAL_STOCK);
    });
  });

  it(`GET ${path} is a 404 problem`, async () => {
    const { app } = await monolithApp();
    await expectProblem(await app.request(path), 404, path);
  });
});

describe('bad input in ticket mode never reaches vacancy', () => {
  const cases: [label: string, status: number, init: RequestInit][] = [
    ...MALFORMED_JSON.map(([label, body]): [string, number, RequestInit] => [
      label,
      400,
      { body, headers: { 'content-type': 'application/json' } },
    ]),
    ...SCHEMA_INVALID.map(([label, body]): [string, number, RequestInit] => [
      label,
      422,
      { body, headers: { 'content-type': 'application/json' } },
    ]),
    ...UNSUPPORTED_TYPES.map(([label, contentType, body]): [string, number, RequestInit] => [
      label,
      415,
      { body: new TextEncoder().encode(body), headers: contentType ? { 'content-type': contentType } : {} },
    ]),
  ];

  it.each(cases)('%s → %i', async (_label, status, init) => {
    const { app, actor, client } = await ticketApp();
    await expectProblem(await app.request('/api/v1/purchase', { method: 'POST', ...init }), status, '/api/v1/purchase');
    expect(client.calls.filter((c) => c.method === 'reserve')).toHaveLength(0);
    expect(actor.snapshot()).toEqual({ remaining: INITIAL_STOCK, sold: 0 });
  });

  it('an oversized body → 413', async () => {
    const { app, actor, client } = await ticketApp({ BODY_LIMIT: '64' });
    await expectProblem(
      await app.request(streamedRequest('/api/v1/purchase', paddedBody(200))),
      413,
      '/api/v1/purchase',
    );
    expect(client.calls).toHaveLength(0);
    expect(actor.snapshot()).toEqual({ remaining: INITIAL_STOCK, sold: 0 });
  });
});

describe('unknown routes', () => {
  it.each([
    ['GET', '/nope'],
    ['GET', '/api/v1'],
    ['GET', '/api/v2/available'],
    ['POST', '/api/v1/available'],
    ['DELETE', '/api/v1/reserve'],
    ['PUT', '/api/v1/purchase'],
  ])('%s %s is a 404 problem', async (method, path) => {
    const { app } = await monolithApp();
    const res = await app.request(path, { method });
    const problem = await expectProblem(res, 404, path);
    expect(problem.detail).toContain(path);
    expect(await stockOf(app)).toBe(INITIAL_STOCK);
  });
});

// ---------------------------------------------------------------------------
// Cross-cutting behaviour
// ---------------------------------------------------------------------------

describe('X-Request-Id', () => {
  it('echoes a valid incoming id', async () => {
    const { app } = await monolithApp();
    const res = await app.request('/api/v1/available', { headers: { 'x-request-id': 'abc-123_XYZ' } });
    expect(res.headers.get('x-request-id')).toBe('abc-123_XYZ');
  });

  it('generates a uuid when none is given', async () => {
    const { app } = await monolithApp();
    const res = await app.request('/api/v1/available');
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
    const other = await app.request('/api/v1/available');
    expect(other.headers.get('x-request-id')).not.toBe(res.headers.get('x-request-id'));
  });

  it('replaces an id that is not safe to log', async () => {
    const { app } = await monolithApp();
    const res = await app.request('/api/v1/available', { headers: { 'x-request-id': 'a b;<script>' } });
    const id = res.headers.get('x-request-id');
    expect(id).toBeTruthy();
    expect(id).not.toBe('a b;<script>');
  });

  const errorRequests: [label: string, status: number, send: (app: App, id: string) => Promise<Response>][] = [
    ['malformed JSON', 400, (app, id) => postJson(app, '/api/v1/purchase', '{"qty"', { 'x-request-id': id })],
    ['unknown route', 404, async (app, id) => app.request('/nope', { headers: { 'x-request-id': id } })],
    [
      'unsupported media type',
      415,
      (app, id) => postJson(app, '/api/v1/purchase', '{"qty":1}', { 'content-type': 'text/plain', 'x-request-id': id }),
    ],
    ['schema-invalid body', 422, (app, id) => postJson(app, '/api/v1/purchase', '{"qty":0}', { 'x-request-id': id })],
  ];

  it.each(errorRequests)('is echoed on a %s problem (%i) too', async (_label, status, send) => {
    const { app } = await monolithApp();
    const res = await send(app, 'err-42');
    expect(res.status).toBe(status);
    expect(res.headers.get('x-request-id')).toBe('err-42');
  });

  it.each(errorRequests)('a %s problem (%i) keeps the security headers', async (_label, status, send) => {
    const { app } = await monolithApp();
    const res = await send(app, 'err-43');
    expect(res.status).toBe(status);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('reaches the vacancy client in ticket mode', async () => {
    const { app, client } = await ticketApp();
    await postJson(app, '/api/v1/purchase', '{"qty":1}', { 'x-request-id': 'buy-1' });
    await app.request('/api/v1/available', { headers: { 'x-request-id': 'look-1' } });
    await app.request('/api/v1/ready', { headers: { 'x-request-id': 'probe-1' } });
    expect(client.calls).toEqual([
      { method: 'reserve', qty: 1, context: { requestId: 'buy-1' } },
      { method: 'available', context: { requestId: 'look-1' } },
      { method: 'probe', context: { requestId: 'probe-1' } },
    ]);
  });

  it('a generated id reaches the vacancy client in ticket mode', async () => {
    const { app, client } = await ticketApp();
    const res = await postJson(app, '/api/v1/purchase', '{"qty":1}');
    const id = res.headers.get('x-request-id');
    expect(id).toBeTruthy();
    expect(client.calls[0]?.context?.requestId).toBe(id);
  });
});

describe('security headers', () => {
  const API_HEADERS = {
    'cache-control': 'no-store',
    'content-security-policy': "frame-ancestors 'none'",
    'strict-transport-security': 'max-age=15552000; includeSubDomains',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
  };
  const headersOf = (res: Response) =>
    Object.fromEntries(Object.keys(API_HEADERS).map((name) => [name, res.headers.get(name)]));

  it.each([
    ['a purchase', (app: App) => postJson(app, '/api/v1/purchase', '{"qty":1}')],
    ['a reserve', (app: App) => postJson(app, '/api/v1/reserve', '{"qty":1}')],
    ['availability', (app: App) => app.request('/api/v1/available')],
    ['a 422 problem', (app: App) => postJson(app, '/api/v1/purchase', '{"qty":0}')],
    ['a 404 problem', (app: App) => app.request('/nowhere')],
    ['health', (app: App) => app.request('/api/v1/health')],
  ])('are on %s, with an X-Request-Id', async (_what, send) => {
    const { app } = await monolithApp();
    const res = await send(app);
    expect(headersOf(res)).toEqual(API_HEADERS);
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('leave the HTML document headers to /docs', async () => {
    const { app } = await monolithApp();
    const purchase = await postJson(app, '/api/v1/purchase', '{"qty":1}');
    expect(purchase.headers.get('x-xss-protection')).toBeNull();
    const docs = await app.request('/docs');
    expect(docs.status).toBe(200);
    expect(docs.headers.get('x-xss-protection')).toBe('0');
    expect(docs.headers.get('x-content-type-options')).toBe('nosniff');
  });
});

describe('CORS', () => {
  const preflight = (app: App, origin: string) =>
    app.request('/api/v1/purchase', {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });

  it('allows a listed origin, with credentials', async () => {
    const { app } = await monolithApp({ CORS_ORIGINS: 'https://shop.example' });
    const res = await preflight(app, 'https://shop.example');
    expect(res.status).toBeLessThan(300);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://shop.example');
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    expect(res.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('content-type');
    const actual = await postJson(app, '/api/v1/purchase', '{"qty":1}', { origin: 'https://shop.example' });
    expect(actual.status).toBe(200);
    expect(actual.headers.get('access-control-allow-origin')).toBe('https://shop.example');
    expect(actual.headers.get('access-control-expose-headers')?.toLowerCase()).toContain('x-request-id');
  });

  it('does not allow an origin that is not listed', async () => {
    const { app } = await monolithApp({ CORS_ORIGINS: 'https://shop.example' });
    const res = await preflight(app, 'https://evil.example');
    const allowed = res.headers.get('access-control-allow-origin');
    expect(allowed === null || allowed === 'https://shop.example').toBe(true);
    expect(allowed).not.toBe('https://evil.example');
    expect(allowed).not.toBe('*');
  });

  it('answers * for CORS_ORIGINS=*, without credentials', async () => {
    const { app } = await monolithApp({ CORS_ORIGINS: '*' });
    const res = await preflight(app, 'https://anyone.example');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.has('access-control-allow-credentials')).toBe(false);
    const actual = await app.request('/api/v1/available', { headers: { origin: 'https://anyone.example' } });
    expect(actual.headers.get('access-control-allow-origin')).toBe('*');
    expect(actual.headers.has('access-control-allow-credentials')).toBe(false);
  });

  it('sends no CORS headers when CORS_ORIGINS is unset', async () => {
    const { app } = await monolithApp();
    const res = await preflight(app, 'https://shop.example');
    for (const name of res.headers.keys()) expect(name).not.toMatch(/^access-control-/);
    const actual = await app.request('/api/v1/available', { headers: { origin: 'https://shop.example' } });
    for (const name of actual.headers.keys()) expect(name).not.toMatch(/^access-control-/);
  });

  it('error responses of a listed origin carry CORS headers too', async () => {
    const { app } = await monolithApp({ CORS_ORIGINS: 'https://shop.example' });
    const res = await postJson(app, '/api/v1/purchase', '{"qty":0}', { origin: 'https://shop.example' });
    expect(res.status).toBe(422);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://shop.example');
  });
});

describe('shutting down', () => {
  it('ready is a 503 problem and answers ask the client to close the connection', async () => {
    const config = configFor();
    const deps = await buildDependencies(config);
    const app = createApp({ ...deps, lifecycle: { shuttingDown: true } });
    const ready = await app.request('/api/v1/ready');
    const problem = await expectProblem(ready, 503, '/api/v1/ready');
    expect(problem.detail).toMatch(/shutting down/i);
    expect(ready.headers.get('connection')).toBe('close');
    expect(ready.headers.get('retry-after')).toMatch(/^\d+$/);

    const root = await app.request('/');
    expect(root.status).toBe(200);
    expect(root.headers.get('connection')).toBe('close');

    const health = await app.request('/api/v1/health');
    expect(health.status).toBe(200);
    expect(health.headers.get('connection')).toBe('close');
    expect(await health.json()).toMatchObject({ status: 'shutting-down' });

    const bad = await postJson(app, '/api/v1/purchase', '{"qty":0}');
    expect(bad.status).toBe(422);
    expect(bad.headers.get('connection')).toBe('close');
  });

  it('a lifecycle that starts shutting down later takes effect at once', async () => {
    const deps = await buildDependencies(configFor());
    const lifecycle = { shuttingDown: false };
    const app = createApp({ ...deps, lifecycle });
    const before = await app.request('/api/v1/ready');
    expect(before.status).toBe(200);
    expect(before.headers.has('connection')).toBe(false);
    lifecycle.shuttingDown = true;
    await expectProblem(await app.request('/api/v1/ready'), 503);
  });
});

describe('store failure', () => {
  it.each(QTY_PATHS)('%s is a 503 problem when the store cannot commit, and nothing is taken', async (path) => {
    const store = new ControlledStore();
    store.failing = true;
    const { app, actor } = await monolithApp({}, store);
    const res = await postJson(app, path, '{"qty":2}');
    const problem = await expectProblem(res, 503, path);
    expect(problem.detail).toMatch(/nothing was sold/i);
    expect(problem.detail).not.toContain('EIO');
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await stockOf(app)).toBe(INITIAL_STOCK);
    expect(actor.snapshot()).toEqual({ remaining: INITIAL_STOCK, sold: 0 });
  });

  it('concurrent purchases in a failed batch all fail, and the stock recovers when the store does', async () => {
    const store = new ControlledStore();
    store.failing = true;
    const { app, actor } = await monolithApp({}, store);
    const failed = await Promise.all(Array.from({ length: 5 }, () => postJson(app, '/api/v1/purchase', '{"qty":1}')));
    for (const res of failed) await expectProblem(res, 503);
    expect(await stockOf(app)).toBe(INITIAL_STOCK);

    store.failing = false;
    const ok = await postJson(app, '/api/v1/purchase', '{"qty":1}');
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({
      success: true,
      remaining: 9,
      message: 'Purchased 1 ticket',
      purchaseId: expect.stringMatching(PURCHASE_ID),
      tickets: { first: 1, last: 1 },
    });
    expect(actor.snapshot()).toEqual({ remaining: 9, sold: 1 });
    expect(store.committed).toBe(1);
  });

  it('a closed actor is a 503 problem', async () => {
    const { app, actor } = await monolithApp();
    await actor.close();
    const res = await postJson(app, '/api/v1/purchase', '{"qty":1}');
    await expectProblem(res, 503, '/api/v1/purchase');
  });
});

describe('responses never leak internals', () => {
  it('an unexpected error is a 500 problem without a stack trace', async () => {
    const failing = fakeVacancyClient({
      available: () => Promise.reject(new TypeError('boom\n    at secret (internal.ts:1:1)')),
      reserve: () => Promise.reject(new TypeError('boom\n    at secret (internal.ts:1:1)')),
    });
    const res = await postJson(ticketAppWith(failing), '/api/v1/purchase', '{"qty":1}');
    const problem = await expectProblem(res, 500, '/api/v1/purchase');
    expect(problem.detail).not.toContain('boom');
  });
});
