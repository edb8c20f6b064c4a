/**
 * One autocannon run against one target, through autocannon's programmatic API.
 * Besides autocannon's own counts it records every response time (for exact
 * p50/p95/p99; autocannon's histogram has whole milliseconds and no p95) and
 * counts purchase answers by outcome, for the stock invariant.
 */
import { randomUUID } from 'node:crypto';
import autocannon from 'autocannon';
import { ZIPF_EVENTS, type Scenario } from './plan.ts';
import { LatencyRecorder, type LatencySummary } from './stats.ts';

export interface LoadOptions {
  url: string;
  scenario: Scenario;
  connections: number;
  /** Seconds of load; or set `amount`. */
  durationSeconds?: number;
  /** Exactly this many requests, every one answered before the run ends. */
  amount?: number;
  /** Send a new Idempotency-Key with every purchase. */
  idempotencyKeys?: boolean;
  /** Stops the run early (the result covers what was done). */
  signal?: AbortSignal;
}

export interface PurchaseCounts {
  /** Purchase answers with a 2xx status. */
  answered2xx: number;
  /** 200 answers with success: true. */
  succeeded: number;
  /** 200 answers with success: false (insufficient inventory). */
  refused: number;
}

export interface LoadResult {
  /** Tickets of events the run sold (201 answers to purchases and confirmations). */
  ticketsSold: number;
  requests: number;
  durationSeconds: number;
  rps: number;
  latency: LatencySummary | null;
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodes: Record<string, number>;
  purchases: PurchaseCounts;
}

/** Whether a scenario sells from the 1.0.0 stock (and so needs its invariant checked). */
export function sellsTickets(scenario: Scenario): boolean {
  return scenario === 'purchase' || scenario === 'mix';
}

/** The event the event and checkout scenarios sell from; the zipf scenario's are `zipf-00000`… */
export const BENCH_EVENT = 'bench';
export const zipfEventId = (index: number) => `zipf-${String(index).padStart(5, '0')}`;

/**
 * Picks event indexes 0…n-1 by a Zipf law with exponent s (P(k) ∝ 1/(k+1)^s):
 * a few events take most purchases, as on a real sale day.
 */
export function zipfPicker(n: number, s = 1, random: () => number = Math.random): () => number {
  const cumulative = new Float64Array(n);
  let total = 0;
  for (let k = 0; k < n; k++) cumulative[k] = total += 1 / (k + 1) ** s;
  return () => {
    const target = random() * total;
    let low = 0;
    let high = n - 1;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (cumulative[middle]! < target) low = middle + 1;
      else high = middle;
    }
    return low;
  };
}

/** The autocannon request sequence of a scenario; each connection cycles through it. */
export function scenarioRequests(
  scenario: Scenario,
  options: {
    idempotencyKeys?: boolean;
    onPurchase?: (status: number, body: string) => void;
    /** Told of every answer that may have sold tickets of an event: how many (one per 201). */
    onTicketsSold?: (tickets: number) => void;
  } = {},
): autocannon.Request[] {
  const purchase: autocannon.Request = {
    method: 'POST',
    path: '/api/v1/purchase',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ qty: 1 }),
    ...(options.onPurchase ? { onResponse: options.onPurchase } : {}),
    ...(options.idempotencyKeys
      ? {
          setupRequest: (request) => ({ ...request, headers: { ...request.headers, 'idempotency-key': randomUUID() } }),
        }
      : {}),
  };
  const availability: autocannon.Request = { method: 'GET', path: '/api/v1/available' };
  const oneTicket = JSON.stringify({ items: [{ ticketType: 'general', qty: 1 }] });
  const sold = (status: number) => options.onTicketsSold?.(status === 201 ? 1 : 0);
  switch (scenario) {
    case 'purchase':
      return [purchase];
    case 'availability':
      return [availability];
    case 'mix':
      return [availability, purchase];
    case 'event':
      return [{ ...purchase, path: `/api/v1/events/${BENCH_EVENT}/purchase`, body: oneTicket, onResponse: sold }];
    case 'zipf': {
      const pick = zipfPicker(ZIPF_EVENTS);
      return [
        {
          ...purchase,
          body: oneTicket,
          onResponse: sold,
          setupRequest: (request) => ({ ...request, path: `/api/v1/events/${zipfEventId(pick())}/purchase` }),
        },
      ];
    }
    case 'checkout':
      return [
        {
          method: 'POST',
          path: `/api/v1/events/${BENCH_EVENT}/holds`,
          headers: { 'content-type': 'application/json' },
          body: oneTicket,
          onResponse: (status, body, context) => {
            context.holdId = status === 201 ? (JSON.parse(body) as { holdId: string }).holdId : undefined;
          },
        },
        {
          method: 'POST',
          path: '/api/v1/holds/none/confirm',
          setupRequest: (request, context) => ({ ...request, path: `/api/v1/holds/${String(context.holdId)}/confirm` }),
          onResponse: sold,
        },
      ];
  }
}

/** Runs the load and resolves with what it measured (autocannon errors reject). */
export function runLoad(options: LoadOptions): Promise<LoadResult> {
  const purchases: PurchaseCounts = { answered2xx: 0, succeeded: 0, refused: 0 };
  const onPurchase = (status: number, body: string) => {
    if (status < 200 || status > 299) return;
    purchases.answered2xx++;
    if (body.includes('"success":true')) purchases.succeeded++;
    else if (body.includes('"success":false')) purchases.refused++;
  };
  const latencies = new LatencyRecorder();
  let ticketsSold = 0;
  const onTicketsSold = (tickets: number) => (ticketsSold += tickets);

  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        ...(options.amount ? { amount: options.amount } : { duration: options.durationSeconds ?? 10 }),
        timeout: 10,
        // autocannon stops on a sample tick: short ticks end a run close to its duration.
        sampleInt: 200,
        requests: scenarioRequests(options.scenario, {
          idempotencyKeys: options.idempotencyKeys,
          onPurchase,
          onTicketsSold,
        }),
      },
      (error, result) => {
        options.signal?.removeEventListener('abort', stop);
        if (error) return reject(error);
        const requests = result['1xx'] + result['2xx'] + result['3xx'] + result['4xx'] + result['5xx'];
        const statusCodes: Record<string, number> = {};
        for (const [code, { count }] of Object.entries(result.statusCodeStats)) statusCodes[code] = count;
        resolve({
          ticketsSold,
          requests,
          durationSeconds: result.duration,
          rps: result.duration > 0 ? requests / result.duration : 0,
          latency: latencies.summary(),
          errors: result.errors,
          timeouts: result.timeouts,
          non2xx: result.non2xx,
          statusCodes,
          purchases,
        });
      },
    );
    instance.on('response', (_client, _status, _bytes, responseTime) => latencies.add(responseTime));
    const stop = () => instance.stop();
    if (options.signal?.aborted) stop();
    options.signal?.addEventListener('abort', stop, { once: true });
  });
}
