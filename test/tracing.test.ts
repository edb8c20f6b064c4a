/**
 * OpenTelemetry tracing end to end, with real processes and a fake OTLP
 * collector (OTLP/HTTP JSON on POST /v1/traces): a purchase's trace runs from
 * the caller through ticket into vacancy; a coalesced batch call has a trace
 * of its own that links to every purchase it carries; without OTEL_* (or with
 * tracing turned off) nothing is sent and nothing is propagated.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { tracesEndpoint, tracingConfigured } from '../src/node/tracing.ts';
import { sleep, startService, stopAllServices, type Service } from './support/processes.ts';

/** OTLP's span kinds (the API's plus one). */
const KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3 } as const;

const BATCH_SPAN = 'vacancy reserve batch';
const BATCH_SIZE = 'vacancy.reserve.batch_size';

interface CollectedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  kind: number;
  name: string;
  attributes: Record<string, unknown>;
  links: Array<{ traceId: string; spanId: string }>;
}

interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: number | string; doubleValue?: number; boolValue?: boolean };
}

interface OtlpBody {
  resourceSpans?: Array<{
    resource?: { attributes?: OtlpAttribute[] };
    scopeSpans?: Array<{
      spans?: Array<{
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        kind: number;
        name: string;
        attributes?: OtlpAttribute[];
        links?: Array<{ traceId: string; spanId: string }>;
      }>;
    }>;
  }>;
}

function attributes(list: OtlpAttribute[] = []): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const { key, value } of list) {
    result[key] =
      value.stringValue ??
      (value.intValue === undefined ? undefined : Number(value.intValue)) ??
      value.doubleValue ??
      value.boolValue;
  }
  return result;
}

/** A fake OpenTelemetry collector: keeps every span POSTed to /v1/traces. */
class FakeCollector {
  readonly spans: CollectedSpan[] = [];
  /** Export requests received, spans or not. */
  requests = 0;
  readonly problems: string[] = [];

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<FakeCollector> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const { port } = server.address() as AddressInfo;
    const collector = new FakeCollector(server, `http://127.0.0.1:${port}`);
    server.on(
      'request',
      (request: IncomingMessage, response: ServerResponse) => void collector.receive(request, response),
    );
    return collector;
  }

  private async receive(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    let raw = Buffer.concat(chunks);
    if (request.method !== 'POST' || request.url !== '/v1/traces') {
      this.problems.push(`${request.method} ${request.url}`);
      response.writeHead(404).end();
      return;
    }
    this.requests++;
    try {
      if (request.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
      const body = JSON.parse(raw.toString('utf8')) as OtlpBody;
      for (const resourceSpans of body.resourceSpans ?? []) {
        const service = String(attributes(resourceSpans.resource?.attributes)['service.name']);
        for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
          for (const span of scopeSpans.spans ?? []) {
            this.spans.push({
              service,
              traceId: span.traceId,
              spanId: span.spanId,
              parentSpanId: span.parentSpanId || undefined,
              kind: span.kind,
              name: span.name,
              attributes: attributes(span.attributes),
              links: (span.links ?? []).map(({ traceId, spanId }) => ({ traceId, spanId })),
            });
          }
        }
      }
      response.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
    } catch (error) {
      this.problems.push(`unreadable export (${request.headers['content-type']}): ${String(error)}`);
      response.writeHead(400).end();
    }
  }

  /**
   * Polls the spans until `find` returns something, for at most `timeoutMs`; `explain` says what
   * is missing when it fails.
   */
  async waitFor<T>(
    what: string,
    find: (spans: CollectedSpan[]) => T | undefined,
    explain: (spans: CollectedSpan[]) => string = () => '',
    timeoutMs = 15_000,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = find(this.spans);
      if (found !== undefined) return found;
      if (Date.now() > deadline) {
        throw new Error(
          `the collector got no ${what} within ${timeoutMs} ms. ${explain(this.spans)}\nIt got:\n${this.summary()}`,
        );
      }
      await sleep(25);
    }
  }

  /** The spans, one a line (the first 60), for failure messages. */
  summary(): string {
    const lines = this.spans.map(
      (s) =>
        `  ${s.service} ${s.name} kind=${s.kind} trace=${s.traceId} span=${s.spanId} parent=${s.parentSpanId ?? '-'} links=${s.links.length}`,
    );
    return lines.length > 60
      ? [...lines.slice(0, 60), `  ... and ${lines.length - 60} more`].join('\n')
      : lines.join('\n');
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function hex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/** A caller's trace: its ids and the W3C traceparent header that carries them. */
function callerTrace() {
  const traceId = hex(16);
  const spanId = hex(8);
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

async function buy(service: Service, traceparent: string) {
  const response = await fetch(`${service.url}/api/v1/purchase`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', traceparent },
    body: JSON.stringify({ qty: 1 }),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: response.status, text: await response.text() };
}

function tracingEnv(collector: FakeCollector): Record<string, string> {
  return { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_BSP_SCHEDULE_DELAY: '50' };
}

const isPurchase = (span: CollectedSpan) => span.kind === KIND.SERVER && span.name === 'POST /api/v1/purchase';
const urlPath = (span: CollectedSpan) => span.attributes['url.path'];

describe('which OTEL_* variables turn tracing on', () => {
  it.each<[Record<string, string>, boolean]>([
    [{}, false],
    [{ OTEL_SERVICE_NAME: 'shop', OTEL_BSP_SCHEDULE_DELAY: '50' }, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: ' ' }, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, true],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }, true],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'TRUE' }, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'false' }, true],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none' }, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'otlp' }, true],
  ])('%o: %s', (env, on) => {
    expect(tracingConfigured(env)).toBe(on);
  });

  it('reports the URL the exporter posts to, without credentials', () => {
    expect(tracesEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' })).toBe(
      'http://collector:4318/v1/traces',
    );
    expect(
      tracesEndpoint({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://user:secret@traces.example/otlp',
      }),
    ).toBe('https://traces.example/otlp');
  });
});

describe('tracing between ticket and vacancy', () => {
  let collector: FakeCollector;
  let vacancy: Service;
  let ticket: Service;

  beforeAll(async () => {
    collector = await FakeCollector.start();
    vacancy = await startService({ MODE: 'vacancy', INITIAL_STOCK: '100000', ...tracingEnv(collector) });
    ticket = await startService({
      MODE: 'ticket',
      VACANCY_URL: vacancy.url,
      LOG_LEVEL: 'info',
      ...tracingEnv(collector),
    });
  });

  afterAll(async () => {
    await stopAllServices();
    await collector?.close();
  });

  it('says where it sends spans', () => {
    const line = ticket.logEntries().find((entry) => /^tracing on/.test(String(entry.msg)));
    expect(line, ticket.output()).toMatchObject({
      endpoint: `${collector.url}/v1/traces`,
      serviceName: 'ticket-system-ticket',
    });
  });

  it('follows a purchase from the caller through ticket into vacancy', async () => {
    const caller = callerTrace();
    const purchase = await buy(ticket, caller.traceparent);
    expect(purchase.status, purchase.text).toBe(200);

    // Each process sends its spans as they end: vacancy's may come first.
    const trace = await collector.waitFor("both services' spans of the purchase", (spans) => {
      const inTrace = spans.filter((s) => s.traceId === caller.traceId);
      const seen = (service: string, kind: number) => inTrace.some((s) => s.service === service && s.kind === kind);
      const complete =
        seen('ticket-system-ticket', KIND.SERVER) &&
        seen('ticket-system-ticket', KIND.CLIENT) &&
        seen('ticket-system-vacancy', KIND.SERVER);
      return complete ? inTrace : undefined;
    });

    // Ticket continues the caller's trace ...
    const server = trace.find((s) => s.service === 'ticket-system-ticket' && s.kind === KIND.SERVER);
    expect(server, collector.summary()).toMatchObject({ name: 'POST /api/v1/purchase', parentSpanId: caller.spanId });
    // ... calls vacancy in it (the undici instrumentation sees the pooled fetch) ...
    const clients = trace.filter((s) => s.service === 'ticket-system-ticket' && s.kind === KIND.CLIENT);
    expect(clients.length, collector.summary()).toBeGreaterThanOrEqual(1);
    for (const client of clients) {
      expect(client.parentSpanId).toBe(server?.spanId);
      expect(client.attributes).toMatchObject({
        'http.request.method': 'POST',
        'url.full': `${vacancy.url}/api/v1/reserve`,
      });
    }
    // ... and vacancy's server span continues from ticket's call: the traceparent crossed.
    const reserved = trace.filter((s) => s.service === 'ticket-system-vacancy');
    expect(reserved.length).toBeGreaterThanOrEqual(1);
    for (const span of reserved) {
      expect(span).toMatchObject({ kind: KIND.SERVER, name: 'POST /api/v1/reserve' });
      expect(clients.map((c) => c.spanId)).toContain(span.parentSpanId);
    }
    // One purchase alone is not batched.
    expect(trace.filter((s) => s.name === BATCH_SPAN)).toEqual([]);
  });

  it('does not trace health, ready and /metrics (startService polled health; probes and scrapes are frequent)', async () => {
    for (const path of ['/api/v1/health', '/api/v1/ready', '/metrics'])
      expect((await fetch(`${ticket.url}${path}`)).status).toBe(200);
    const caller = callerTrace();
    expect((await buy(ticket, caller.traceparent)).status).toBe(200);
    // Once the purchase's spans are in, anything sent before them is in too.
    await collector.waitFor('the purchase after the probes', (spans) =>
      spans.some((s) => s.traceId === caller.traceId) ? true : undefined,
    );
    const probes = collector.spans.filter((s) => /health|ready|metrics/.test(s.name));
    expect(probes.map((s) => `${s.service} ${s.name}`)).toEqual([]);
  });

  it('gives a coalesced batch a trace of its own, linked to every purchase it carries', async () => {
    const purchases: Array<ReturnType<typeof callerTrace>> = [];
    // Concurrent purchases that ticket reads in one turn of its event loop go in one batch; send
    // bursts until one was batched (the first almost always is).
    let bursts = 0;
    while (bursts < 10) {
      bursts++;
      const callers = Array.from({ length: 40 }, callerTrace);
      purchases.push(...callers);
      const results = await Promise.all(callers.map((caller) => buy(ticket, caller.traceparent)));
      for (const result of results) expect(result.status, result.text).toBe(200);
      const batched = await waitForEveryReserve(callers);
      if (batched.some((batch) => batch.links.length > 1)) break;
    }
    // Purchases that keep coming while calls are under way: the coalescer sends what waits (often one
    // purchase alone) when a call ends, from that call's turn, i.e. from another purchase's context.
    const stream = Array.from({ length: 8 }, async () => {
      for (let i = 0; i < 10; i++) {
        const caller = callerTrace();
        purchases.push(caller);
        const result = await buy(ticket, caller.traceparent);
        expect(result.status, result.text).toBe(200);
      }
    });
    await Promise.all(stream);
    await waitForEveryReserve(purchases);

    const traces = new Set(purchases.map((p) => p.traceId));
    const serverSpanOf = new Map(
      collector.spans.filter((s) => isPurchase(s) && traces.has(s.traceId)).map((s) => [s.traceId, s] as const),
    );
    const batches = collector.spans.filter((s) => s.name === BATCH_SPAN && s.links.some((l) => traces.has(l.traceId)));
    console.info(
      `[tracing] ${purchases.length} purchases in ${bursts} burst(s): ${batches.length} batches of ` +
        `${batches.map((b) => b.links.length).join(', ')}; the rest alone`,
    );
    expect(Math.max(...batches.map((b) => b.links.length)), 'a burst was coalesced into a batch').toBeGreaterThan(1);

    const linkedTraces: string[] = [];
    for (const batch of batches) {
      // Its own trace, not the trace of the purchase whose turn sent it.
      expect(batch).toMatchObject({ service: 'ticket-system-ticket', kind: KIND.INTERNAL, parentSpanId: undefined });
      expect(traces.has(batch.traceId)).toBe(false);
      expect(batch.attributes[BATCH_SIZE]).toBe(batch.links.length);
      for (const link of batch.links) {
        // Each link points at the purchase's own server span.
        expect(link.spanId, `link to trace ${link.traceId}`).toBe(serverSpanOf.get(link.traceId)?.spanId);
        linkedTraces.push(link.traceId);
      }
      // Ticket's call to POST /api/v1/reserve/batch is the batch span's child, and vacancy's server span that call's.
      const calls = collector.spans.filter((s) => s.parentSpanId === batch.spanId);
      expect(calls.length, collector.summary()).toBeGreaterThanOrEqual(1);
      for (const call of calls) {
        expect(call).toMatchObject({ traceId: batch.traceId, kind: KIND.CLIENT, service: 'ticket-system-ticket' });
        expect(urlPath(call)).toBe('/api/v1/reserve/batch');
      }
      const received = collector.spans.filter(
        (s) => s.service === 'ticket-system-vacancy' && s.traceId === batch.traceId,
      );
      expect(received.length).toBeGreaterThanOrEqual(1);
      for (const span of received) {
        expect(span).toMatchObject({ kind: KIND.SERVER, name: 'POST /api/v1/reserve/batch' });
        expect(calls.map((c) => c.spanId)).toContain(span.parentSpanId);
      }
    }
    // Every purchase went to vacancy once: either linked from one batch, or alone in its own trace.
    expect(new Set(linkedTraces).size, 'no purchase is linked from two batches').toBe(linkedTraces.length);
    for (const { traceId } of purchases) {
      const server = serverSpanOf.get(traceId);
      const alone = collector.spans.filter((s) => s.traceId === traceId && s.kind === KIND.CLIENT);
      for (const call of alone) {
        expect(call.parentSpanId, `a lone reserve hangs under its own purchase (trace ${traceId})`).toBe(
          server?.spanId,
        );
        expect(urlPath(call)).toBe('/api/v1/reserve');
      }
      expect(
        linkedTraces.includes(traceId) !== alone.length > 0,
        `purchase ${traceId}: linked from a batch xor called alone`,
      ).toBe(true);
    }
  });

  /**
   * Waits until every purchase's reserve has been seen: as a call to vacancy in the purchase's own
   * trace, or as a link from a batch span whose call vacancy received. Answers the batch spans.
   */
  function waitForEveryReserve(callers: Array<{ traceId: string }>): Promise<CollectedSpan[]> {
    const batchesOf = (spans: CollectedSpan[]) =>
      spans.filter((s) => s.name === BATCH_SPAN && s.links.some((l) => callers.some((c) => c.traceId === l.traceId)));
    const unseen = (spans: CollectedSpan[]) => {
      const batches = batchesOf(spans);
      const receivedBatch = (batch: CollectedSpan) =>
        spans.some(
          (s) => s.service === 'ticket-system-vacancy' && s.traceId === batch.traceId && s.kind === KIND.SERVER,
        );
      return callers.filter(({ traceId }) => {
        if (!spans.some((s) => s.traceId === traceId && isPurchase(s))) return true;
        const inBatch = batches.find((b) => b.links.some((l) => l.traceId === traceId));
        if (inBatch) return !receivedBatch(inBatch);
        return !spans.some(
          (s) => s.traceId === traceId && s.service === 'ticket-system-vacancy' && s.kind === KIND.SERVER,
        );
      });
    };
    return collector.waitFor(
      `reserve of each of ${callers.length} purchases`,
      (spans) => (unseen(spans).length === 0 ? batchesOf(spans) : undefined),
      (spans) => {
        const missing = unseen(spans).map(({ traceId }) => {
          const calls = spans.filter((s) => s.traceId === traceId && s.kind === KIND.CLIENT).length;
          return `${traceId} (${calls} calls to vacancy in its trace)`;
        });
        const crowded = callers.flatMap(({ traceId }) => {
          const calls = spans.filter((s) => s.traceId === traceId && s.kind === KIND.CLIENT).length;
          return calls > 1 ? [`${traceId} (${calls} calls)`] : [];
        });
        return (
          `No reserve, alone or batched, for ${missing.length} purchases: ${missing.slice(0, 5).join(', ')}. ` +
          `Purchases whose trace holds more than one call to vacancy: ${crowded.slice(0, 5).join(', ') || 'none'}.`
        );
      },
    );
  }
});

describe('tracing off', () => {
  let collector: FakeCollector | undefined;

  afterEach(async () => {
    await stopAllServices();
    await collector?.close();
    collector = undefined;
  });

  it('a ticket without OTEL_* variables neither sends spans nor passes the trace on', async () => {
    collector = await FakeCollector.start();
    // Vacancy traces, so the collector shows what reached it.
    const vacancy = await startService({ MODE: 'vacancy', ...tracingEnv(collector) });
    const ticket = await startService({ MODE: 'ticket', VACANCY_URL: vacancy.url, LOG_LEVEL: 'info' });

    const caller = callerTrace();
    const purchase = await buy(ticket, caller.traceparent);
    expect(purchase.status, purchase.text).toBe(200);

    const reserved = await collector.waitFor("vacancy's span for the reserve", (spans) =>
      spans.find((s) => s.name === 'POST /api/v1/reserve'),
    );
    // The reserve came without a traceparent: vacancy started a trace of its own.
    expect(reserved.parentSpanId).toBeUndefined();
    expect(reserved.traceId).not.toBe(caller.traceId);

    // A traced process sends what it still holds when it stops (see the monolith test below): nothing here.
    expect(await ticket.stop()).toEqual({ code: 0, signal: null });
    expect(collector.spans.filter((s) => s.service !== 'ticket-system-vacancy')).toEqual([]);
    expect(collector.spans.filter((s) => s.traceId === caller.traceId)).toEqual([]);
    expect(ticket.logEntries().filter((entry) => /tracing/.test(String(entry.msg)))).toEqual([]);
    expect(collector.problems).toEqual([]);
  });

  it.each<Record<string, string>>([{ OTEL_SDK_DISABLED: 'true' }, { OTEL_TRACES_EXPORTER: 'none' }])(
    'a monolith with an OTLP endpoint and %o sends nothing',
    async (off) => {
      const sink = (collector = await FakeCollector.start());
      const monolith = await startService({ MODE: 'monolith', LOG_LEVEL: 'info', ...tracingEnv(sink), ...off });
      const purchase = await buy(monolith, callerTrace().traceparent);
      expect(purchase.status, purchase.text).toBe(200);
      // Longer than the schedule delay, and then the stop that would flush what is left.
      await sleep(500);
      expect(await monolith.stop()).toEqual({ code: 0, signal: null });
      expect(sink.requests).toBe(0);
      expect(monolith.logEntries().filter((entry) => /tracing/.test(String(entry.msg)))).toEqual([]);
    },
  );
});

describe('tracing in the monolith', () => {
  let collector: FakeCollector | undefined;

  afterEach(async () => {
    await stopAllServices();
    await collector?.close();
    collector = undefined;
  });

  it("continues the caller's trace, under OTEL_SERVICE_NAME, and sends the last spans when it stops", async () => {
    const sink = (collector = await FakeCollector.start());
    const monolith = await startService({
      MODE: 'monolith',
      OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
      OTEL_SERVICE_NAME: 'shop-monolith',
      // Nothing is sent on schedule during the test: what arrives was sent at shutdown.
      OTEL_BSP_SCHEDULE_DELAY: '600000',
    });
    const caller = callerTrace();
    const purchase = await buy(monolith, caller.traceparent);
    expect(purchase.status, purchase.text).toBe(200);

    expect(await monolith.stop()).toEqual({ code: 0, signal: null });
    const trace = sink.spans.filter((s) => s.traceId === caller.traceId);
    expect(trace, sink.summary()).toEqual([
      expect.objectContaining({
        service: 'shop-monolith',
        kind: KIND.SERVER,
        name: 'POST /api/v1/purchase',
        parentSpanId: caller.spanId,
      }),
    ]);
    // The monolith reserves in-process: no client spans at all.
    expect(sink.spans.filter((s) => s.kind === KIND.CLIENT)).toEqual([]);
    expect(sink.problems).toEqual([]);
  });
});
