/**
 * The runner's pure parts, from fixed inputs: the command line and profiles,
 * the statistics, the stock/sell-out/memory judgements, the summary of rounds,
 * and the markdown and SVG writers. No load is generated and nothing is timed.
 */
import { describe, expect, it } from 'vitest';
import { scenarioRequests } from './lib/load.ts';
import { estimateSeconds, parsePlan, UsageError, type Plan } from './lib/plan.ts';
import {
  escapeXml,
  formatRss,
  niceCeiling,
  renderCellTable,
  renderEventsComparison,
  renderMarkdown,
  renderSvg,
  renderTables,
} from './lib/report.ts';
import {
  checkExpiry,
  checkMemory,
  checkSellout,
  checkStock,
  cpuRatiosToBaseline,
  ratiosToBaseline,
  summarize,
  type BenchReport,
  type CellSummary,
  type RunRecord,
} from './lib/results.ts';
import { LatencyRecorder, median, percentile, ratio, rotate, summarizeLatencies } from './lib/stats.ts';
import { parseCpuSeconds, parseVmHwmMb, readCpuSeconds, stockFromHealth } from './lib/targets.ts';

const expiry = {
  target: 'monolith-sqlite' as const,
  holds: 100_000,
  connections: 100,
  durationSeconds: 10,
  quiet: { rps: 5000, p99: 10, errors: 0, non2xx: 0 },
  expiring: { rps: 4800, p99: 15, errors: 0, non2xx: 0 },
  clearedAfterMs: 600,
  after: { capacity: 1000, sold: 400, held: 0, available: 600 },
  p99Factor: 2,
  clearLimitMs: 1000,
};

function plan(argv: string[]): Plan {
  const parsed = parsePlan(argv);
  if (parsed === 'help') throw new Error('unexpected help');
  return parsed;
}

describe('parsePlan', () => {
  it('quick by default: purchase and mix at 100 connections in 3 rounds of 2.5 s, one purchase pass at 1000, sell-out check', () => {
    const quick = plan([]);
    expect(quick.profile).toBe('quick');
    expect(quick.targets).toEqual(['baseline', 'monolith-memory', 'monolith-sqlite', 'micro']);
    expect(quick.cells).toEqual([
      { scenario: 'purchase', connections: 100, rounds: 3, durationSeconds: 2.5 },
      { scenario: 'mix', connections: 100, rounds: 3, durationSeconds: 2.5 },
      { scenario: 'purchase', connections: 1000, rounds: 1, durationSeconds: 2.5 },
    ]);
    expect(quick.checks).toEqual(['sellout']);
    expect(quick.outDir).toBe('bench/results');
    // Fits the 2-minute budget on paper, and the global timeout leaves room above the estimate.
    expect(estimateSeconds(quick)).toBeLessThan(120);
    expect(quick.timeoutSeconds).toBeGreaterThan(estimateSeconds(quick));
  });

  it('full: the 1.0.0 scenarios at 10, 100 and 1000 connections, the events API at 100, and the memory check', () => {
    const full = plan(['--profile', 'full']);
    expect(full.cells).toHaveLength(12);
    expect(new Set(full.cells.map((c) => c.scenario))).toEqual(
      new Set(['purchase', 'availability', 'mix', 'event', 'zipf', 'checkout']),
    );
    expect(new Set(full.cells.map((c) => c.connections))).toEqual(new Set([10, 100, 1000]));
    expect(full.cells.every((c) => c.rounds >= 3)).toBe(true);
    expect(full.checks).toEqual(['sellout', 'memory']);
    expect(full.memoryRequests).toBe(1_000_000);
    expect(full.memoryLimitMb).toBe(150);
    expect(full.restartLimitMs).toBe(1_000);
  });

  it('--scenarios and --connections measure every combination with --rounds and --duration', () => {
    const p = plan([
      '--targets',
      'micro,baseline',
      '--scenarios',
      'availability,purchase',
      '--connections',
      '10,1000',
      '--rounds',
      '2',
      '--duration',
      '1.5',
    ]);
    expect(p.targets).toEqual(['micro', 'baseline']);
    expect(p.cells).toEqual([
      { scenario: 'availability', connections: 10, rounds: 2, durationSeconds: 1.5 },
      { scenario: 'availability', connections: 1000, rounds: 2, durationSeconds: 1.5 },
      { scenario: 'purchase', connections: 10, rounds: 2, durationSeconds: 1.5 },
      { scenario: 'purchase', connections: 1000, rounds: 2, durationSeconds: 1.5 },
    ]);
  });

  it('--rounds and --duration alone apply to each of the profile’s cells; --connections alone keeps its scenarios', () => {
    expect(plan(['--rounds', '5', '--duration', '2']).cells.map((c) => [c.rounds, c.durationSeconds])).toEqual([
      [5, 2],
      [5, 2],
      [5, 2],
    ]);
    expect(plan(['--connections', '10']).cells.map((c) => `${c.scenario}@${c.connections}`)).toEqual([
      'purchase@10',
      'mix@10',
    ]);
  });

  it('takes --checks, --memory-requests, --timeout, --out and --rebuild', () => {
    const p = plan([
      '--checks',
      'memory',
      '--memory-requests',
      '5000',
      '--timeout',
      '30',
      '--out',
      '/tmp/x',
      '--rebuild',
    ]);
    expect(p.checks).toEqual(['memory']);
    expect(p.memoryRequests).toBe(5000);
    expect(p.timeoutSeconds).toBe(30);
    expect(p.outDir).toBe('/tmp/x');
    expect(p.rebuild).toBe(true);
    expect(plan(['--checks', 'none']).checks).toEqual([]);
    expect(plan(['--scenarios', 'none', '--checks', 'memory']).cells).toEqual([]);
  });

  it('answers --help with the usage', () => {
    expect(parsePlan(['--help'])).toBe('help');
  });

  it.each([
    [['--profile', 'slow']],
    [['--targets', 'baseline,nginx']],
    [['--targets', 'none']],
    [['--scenarios', '']],
    [['--connections', '0']],
    [['--connections', '10,abc']],
    [['--rounds', '1.5']],
    [['--duration', '-1']],
    [['--duration', 'soon']],
    [['--checks', 'speed']],
    [['--frobnicate']],
    [['positional']],
  ])('refuses %j with a UsageError', (argv) => {
    expect(() => parsePlan(argv)).toThrow(UsageError);
  });
});

describe('statistics', () => {
  it('percentile is nearest-rank', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(sorted, 50)).toBe(50);
    expect(percentile(sorted, 95)).toBe(95);
    expect(percentile(sorted, 99)).toBe(99);
    expect(percentile(sorted, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(() => percentile([], 50)).toThrow(RangeError);
  });

  it('summarizeLatencies sorts numerically and reads p50, p95, p99, max', () => {
    const latencies = Array.from({ length: 200 }, (_, i) => ((i * 37) % 200) + 1); // 1 .. 200, shuffled
    expect(summarizeLatencies(latencies)).toEqual({ p50: 100, p95: 190, p99: 198, max: 200 });
    expect(summarizeLatencies([9, 10, 100])).toMatchObject({ p50: 10, max: 100 }); // numeric, not string, order
    expect(summarizeLatencies([])).toBeNull();
  });

  it('LatencyRecorder keeps every sample past its first buffer', () => {
    const recorder = new LatencyRecorder();
    for (let i = 1; i <= 100_000; i++) recorder.add(i / 1000);
    expect(recorder.count).toBe(100_000);
    expect(recorder.summary()).toEqual({ p50: 50, p95: 95, p99: 99, max: 100 });
    expect(new LatencyRecorder().summary()).toBeNull();
  });

  it('median skips missing values and averages the middle two of an even count', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, null, 1, 2, 3, undefined, Number.NaN])).toBe(2.5);
    expect(median([])).toBeNull();
    expect(median([null])).toBeNull();
  });

  it('ratio needs both values and a positive reference', () => {
    expect(ratio(50, 200)).toBe(0.25);
    expect(ratio(50, 0)).toBeNull();
    expect(ratio(null, 10)).toBeNull();
    expect(ratio(10, undefined)).toBeNull();
  });

  it('rotate turns the order by one place per round, wrapping', () => {
    expect(rotate(['a', 'b', 'c'], 0)).toEqual(['a', 'b', 'c']);
    expect(rotate(['a', 'b', 'c'], 1)).toEqual(['b', 'c', 'a']);
    expect(rotate(['a', 'b', 'c'], 4)).toEqual(['b', 'c', 'a']);
    expect(rotate(['a', 'b', 'c'], -1)).toEqual(['c', 'a', 'b']);
    expect(rotate([], 3)).toEqual([]);
  });
});

/** A sell-out check that went as it must: 200 tickets, 500 purchases, exactly 200 sold. */
const sellout = {
  target: 'micro' as const,
  initialStock: 200,
  requests: 500,
  connections: 100,
  succeeded: 200,
  refused: 300,
  errors: 0,
  non2xx: 0,
  after: { sold: 200, remaining: 0 },
  availableAfter: 0,
};

describe('checks', () => {
  const purchases = (succeeded: number, extra: Partial<{ answered2xx: number; refused: number }> = {}) => ({
    answered2xx: succeeded,
    succeeded,
    refused: 0,
    ...extra,
  });

  it('stock invariant: holds when every answer was a sale and the rest were in flight at the stop', () => {
    const check = checkStock(1000, { sold: 100, remaining: 900 }, { sold: 180, remaining: 820 }, purchases(75), {
      connections: 10,
      timeouts: 0,
    });
    expect(check).toMatchObject({ soldInRun: 80, succeeded: 75, unanswered: 5, ok: true, problems: [] });
  });

  it('stock invariant: fails on lost stock, on answers without sales, on too many unanswered sales, on refused purchases', () => {
    const lost = checkStock(1000, { sold: 0, remaining: 1000 }, { sold: 10, remaining: 989 }, purchases(10), {
      connections: 10,
      timeouts: 0,
    });
    expect(lost.ok).toBe(false);
    expect(lost.problems.join()).toMatch(/not the initial 1000/);

    const phantom = checkStock(1000, { sold: 0, remaining: 1000 }, { sold: 10, remaining: 990 }, purchases(11), {
      connections: 10,
      timeouts: 0,
    });
    expect(phantom.ok).toBe(false);
    expect(phantom.problems.join()).toMatch(/11 successful answers but only 10 tickets sold/);

    const unanswered = checkStock(1000, { sold: 0, remaining: 1000 }, { sold: 30, remaining: 970 }, purchases(10), {
      connections: 10,
      timeouts: 5,
    });
    expect(unanswered.ok).toBe(false);
    expect(unanswered.unanswered).toBe(20);

    const refused = checkStock(
      1000,
      { sold: 0, remaining: 1000 },
      { sold: 10, remaining: 990 },
      purchases(10, { answered2xx: 12, refused: 2 }),
      {
        connections: 10,
        timeouts: 0,
      },
    );
    expect(refused.ok).toBe(false);
    expect(refused.problems.join()).toMatch(/2 of 12 2xx purchase answers were not a success/);
  });

  it('sell-out: exactly the stock sold and answered, the rest refused, nothing left', () => {
    expect(checkSellout(sellout)).toMatchObject({ ok: true, problems: [] });
    expect(
      checkSellout({ ...sellout, succeeded: 201, refused: 299, after: { sold: 201, remaining: -1 } }).problems,
    ).toHaveLength(3);
    expect(checkSellout({ ...sellout, errors: 1 }).ok).toBe(false);
    expect(checkSellout({ ...sellout, non2xx: 2 }).ok).toBe(false);
    expect(checkSellout({ ...sellout, availableAfter: 5 }).ok).toBe(false);
    expect(checkSellout({ ...sellout, after: null }).ok).toBe(false);
  });

  it('memory: every purchase sold, peak RSS under the limit, ready soon after a restart', () => {
    const memory = {
      target: 'monolith-sqlite' as const,
      requests: 1000,
      connections: 100,
      durationSeconds: 1,
      rps: 1000,
      errors: 0,
      non2xx: 0,
      succeeded: 1000,
      sold: 1000,
      idempotencyKeys: 1000,
      peakRssMb: 120,
      limitMb: 150,
      restartReadyMs: 400,
      restartLimitMs: 1000,
    };
    expect(checkMemory(memory).ok).toBe(true);
    expect(checkMemory({ ...memory, peakRssMb: 150 }).problems).toEqual(['peak RSS 150.0 MB is not under 150 MB']);
    expect(checkMemory({ ...memory, peakRssMb: null }).ok).toBe(false);
    expect(checkMemory({ ...memory, sold: 999 }).ok).toBe(false);
    expect(checkMemory({ ...memory, restartReadyMs: 1000 }).problems).toEqual([
      'ready 1000 ms after a restart, not under 1000 ms',
    ]);
    expect(checkMemory({ ...memory, restartReadyMs: null }).ok).toBe(false);
  });

  it('judges the expiry check: p99 within the factor, stock back within the limit, nothing held, the stock adds up', () => {
    expect(checkExpiry(expiry)).toMatchObject({ ok: true, problems: [] });
    expect(checkExpiry({ ...expiry, expiring: { ...expiry.expiring, p99: 20.5 } }).problems).toEqual([
      'p99 20.5 ms while the holds expired is above 2× the 10.0 ms without',
    ]);
    expect(checkExpiry({ ...expiry, clearedAfterMs: null }).problems).toEqual([
      'tickets were still held when the run ended',
    ]);
    expect(checkExpiry({ ...expiry, after: { capacity: 1000, sold: 400, held: 1, available: 598 } }).problems).toEqual([
      '1 tickets still held afterwards',
      'sold 400 + held 1 + available 598 is not the capacity 1000',
    ]);
    expect(checkExpiry({ ...expiry, quiet: { ...expiry.quiet, non2xx: 3 } }).problems).toEqual([
      'quiet run: 0 errors, 3 non-2xx',
    ]);
  });
});

// ---- summaries and reports from fixed runs -------------------------------------------------------

function run(partial: Partial<RunRecord> & Pick<RunRecord, 'target' | 'roundId' | 'rps'>): RunRecord {
  return {
    scenario: 'purchase',
    connections: 100,
    round: partial.roundId,
    position: 0,
    requests: partial.rps * 3,
    durationSeconds: 3,
    latency: { p50: 1, p95: 2, p99: 3, max: 4 },
    errors: 0,
    timeouts: 0,
    non2xx: 0,
    statusCodes: { '200': partial.rps * 3 },
    purchases: { answered2xx: 0, succeeded: 0, refused: 0 },
    ticketsSold: 0,
    peakRssMb: { baseline: 50 },
    cpuUsPerRequest: null,
    stock: null,
    ...partial,
  };
}

const RUNS: RunRecord[] = [
  run({ target: 'baseline', roundId: 0, rps: 1000, latency: { p50: 1, p95: 2, p99: 3, max: 9 }, cpuUsPerRequest: 30 }),
  run({
    target: 'micro',
    roundId: 0,
    rps: 250,
    latency: { p50: 10, p95: 20, p99: 30, max: 90 },
    peakRssMb: { ticket: 80, vacancy: 60 },
    cpuUsPerRequest: 150,
  }),
  run({
    target: 'baseline',
    roundId: 1,
    rps: 800,
    latency: { p50: 1.5, p95: 2.5, p99: 3.5, max: 9 },
    cpuUsPerRequest: 40,
  }),
  run({
    target: 'micro',
    roundId: 1,
    rps: 240,
    latency: { p50: 12, p95: 22, p99: 32, max: 90 },
    peakRssMb: { ticket: 85, vacancy: 58 },
    errors: 2,
    timeouts: 1,
    cpuUsPerRequest: 100,
  }),
  run({
    target: 'baseline',
    roundId: 2,
    rps: 1200,
    latency: { p50: 0.5, p95: 1.5, p99: 2.5, max: 9 },
    cpuUsPerRequest: 35,
  }),
  run({
    target: 'micro',
    roundId: 2,
    rps: 200,
    latency: { p50: 11, p95: 21, p99: 31, max: 90 },
    peakRssMb: { ticket: 82, vacancy: 61 },
    non2xx: 3,
    cpuUsPerRequest: 175,
  }),
  run({ target: 'baseline', roundId: 3, rps: 500, connections: 1000, round: 0 }),
  run({ target: 'micro', roundId: 3, rps: 50, connections: 1000, round: 0, peakRssMb: { ticket: 120, vacancy: 70 } }),
];
const CELLS = [
  { scenario: 'purchase' as const, connections: 100, rounds: 3, durationSeconds: 3 },
  { scenario: 'purchase' as const, connections: 1000, rounds: 1, durationSeconds: 3 },
];

describe('summarize', () => {
  it('divides each run by the baseline of its own round', () => {
    const ratios = ratiosToBaseline(RUNS);
    expect(RUNS.map((r) => ratios.get(r))).toEqual([1, 0.25, 1, 0.3, 1, 1 / 6, 1, 0.1]);
  });

  it('divides the baseline’s CPU time per request by each run’s in the same round, where both were read', () => {
    const ratios = cpuRatiosToBaseline(RUNS);
    expect(RUNS.map((r) => ratios.get(r))).toEqual([1, 0.2, 1, 0.4, 1, 0.2, null, null]);
  });

  it('reports medians over rounds, the median ratio, summed errors and the highest peak RSS per process', () => {
    const [c100, c1000] = summarize(RUNS, CELLS, ['baseline', 'micro']);
    expect(c100?.targets.map((t) => t.target)).toEqual(['baseline', 'micro']);
    expect(c100?.targets[1]).toEqual({
      target: 'micro',
      runs: 3,
      rps: 240,
      ratio: 0.25, // median of 0.25, 0.3, 1/6, not 240 / 1000
      p50: 11,
      p95: 21,
      p99: 31,
      errors: 2,
      timeouts: 1,
      non2xx: 3,
      peakRssMb: { ticket: 85, vacancy: 61 },
      cpuUsPerRequest: 150, // median of 150, 100, 175
      cpuRatio: 0.2, // median of 0.2, 0.4, 0.2: each against its own round's baseline
      stockOk: null,
    });
    expect(c100?.targets[0]).toMatchObject({ rps: 1000, ratio: 1, p50: 1, p99: 3 });
    expect(c1000?.targets[1]).toMatchObject({ runs: 1, rps: 50, ratio: 0.1, peakRssMb: { ticket: 120, vacancy: 70 } });
  });

  it('marks a target whose stock check failed in any round', () => {
    const stock = (ok: boolean) => ({
      initial: 10,
      before: { sold: 0, remaining: 10 },
      after: { sold: 1, remaining: 9 },
      soldInRun: 1,
      succeeded: 1,
      unanswered: 0,
      ok,
      problems: ok ? [] : ['broken'],
    });
    const runs = [
      run({ target: 'micro', roundId: 0, rps: 1, stock: stock(true) }),
      run({ target: 'micro', roundId: 1, rps: 1, stock: stock(false) }),
    ];
    expect(summarize(runs, [CELLS[0]!], ['micro'])[0]?.targets[0]?.stockOk).toBe(false);
    expect(summarize(runs.slice(0, 1), [CELLS[0]!], ['micro'])[0]?.targets[0]?.stockOk).toBe(true);
  });
});

describe('markdown', () => {
  const summary = summarize(RUNS, CELLS, ['baseline', 'micro']);

  it('renders one table per scenario and connection count with the agreed columns', () => {
    expect(renderCellTable(summary[0] as CellSummary)).toBe(
      [
        '| target | req/s | ratio | p50 ms | p95 ms | p99 ms | errors | non-2xx | peak RSS MB | CPU µs/req | CPU ratio |',
        '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
        '| baseline | 1000 | 1.00 | 1.00 | 2.00 | 3.00 | 0 | 0 | 50 | 35 | 1.00 |',
        '| micro | 240 | 0.25 | 11.00 | 21.00 | 31.00 | 2 (1 timeouts) | 3 | 85 + 61 | 150 | 0.20 |',
      ].join('\n'),
    );
    const tables = renderTables(summary);
    expect(tables).toContain('### purchase, 100 connections (3 rounds × 3 s)');
    expect(tables).toContain('### purchase, 1000 connections (1 pass × 3 s)');
  });

  it('compares the events API with the 1.0.0 purchase of the same target, and checkout CPU per ticket with a purchase', () => {
    const cells = (['purchase', 'event', 'zipf', 'checkout'] as const).map((scenario) => ({
      scenario,
      connections: 100,
      rounds: 1,
      durationSeconds: 3,
    }));
    const runs = [
      run({ target: 'monolith-sqlite', roundId: 0, rps: 1000, cpuUsPerRequest: 50 }),
      run({ target: 'monolith-sqlite', roundId: 1, scenario: 'event', rps: 950, cpuUsPerRequest: 60 }),
      run({ target: 'monolith-sqlite', roundId: 2, scenario: 'zipf', rps: 800, cpuUsPerRequest: 70 }),
      run({ target: 'monolith-sqlite', roundId: 3, scenario: 'checkout', rps: 1200, cpuUsPerRequest: 63 }),
    ];
    const table = renderEventsComparison(summarize(runs, cells, ['monolith-sqlite']));
    expect(table).toContain('| monolith-sqlite | 100 | 1000 | 950 | 0.95 | 800 | 0.80 | 60 | 126 | 2.10 |');
    expect(renderEventsComparison(summarize(runs.slice(0, 1), cells.slice(0, 1), ['monolith-sqlite']))).toBe('');
  });

  it('formats peak RSS per process, and a dash when unknown', () => {
    expect(formatRss({ monolith: 101.6 })).toBe('102');
    expect(formatRss({ ticket: 80.2, vacancy: null })).toBe('80 + –');
    expect(formatRss({ monolith: null })).toBe('–');
    expect(formatRss({})).toBe('–');
  });

  it('renders the whole report with its context and every check', () => {
    const report: BenchReport = {
      meta: {
        startedAt: '2025-11-26T10:00:00.000Z',
        finishedAt: '2025-11-26T10:01:40.000Z',
        profile: 'quick',
        node: 'v20.20.2',
        cpus: 2,
        cpuModel: 'Test CPU',
        loadAverageAtStart: [1, 2, 3],
        loadAverageAtEnd: [1.5, 2, 3],
        commit: 'abc1234-dirty',
        bundle: '/x/dist/main.js',
        aborted: null,
      },
      plan: plan([]),
      runs: [
        run({
          target: 'micro',
          roundId: 0,
          rps: 10,
          stock: {
            initial: 10,
            before: { sold: 0, remaining: 10 },
            after: { sold: 3, remaining: 7 },
            soldInRun: 3,
            succeeded: 1,
            unanswered: 2,
            ok: false,
            problems: ['something broke'],
          },
        }),
      ],
      summary,
      sellout: [checkSellout({ ...sellout, target: 'baseline' })],
      memory: checkMemory({
        target: 'monolith-sqlite',
        requests: 1_000_000,
        connections: 100,
        durationSeconds: 200,
        rps: 5000,
        errors: 0,
        non2xx: 0,
        succeeded: 1_000_000,
        sold: 1_000_000,
        idempotencyKeys: 1_000_000,
        peakRssMb: 250.04,
        limitMb: 150,
        restartReadyMs: 350,
        restartLimitMs: 1000,
      }),
      expiry: checkExpiry({ ...expiry, clearedAfterMs: 1400 }),
      ok: false,
    };
    const md = renderMarkdown(report);
    expect(md).toMatch(/^# ticket-system benchmark \(quick profile\)\n/);
    expect(md).toContain('node v20.20.2 · 2 × Test CPU');
    expect(md).toContain('commit abc1234-dirty');
    expect(md).toContain(renderTables(summary));
    expect(md).toContain('0/1 runs ok');
    expect(md).toContain('- FAILED micro, purchase at 100 connections, round 1: something broke');
    expect(md).toContain('| baseline | 200 | 200 | 300 | 0 | 0 | 0 | 0 | ok |');
    expect(md).toContain('1,000,000 purchases, each with a new Idempotency-Key');
    expect(md).toContain(
      '| 1000000 | 5000 | 1000000 | 1000000 | 0 | 0 | 250.0 | 350 | FAILED: peak RSS 250.0 MB is not under 150 MB |',
    );
    expect(md).toContain('100,000 holds of the bench event on monolith-sqlite');
    expect(md).toContain(
      "| 5000 | 10.00 | 4800 | 15.00 | 1.50 | 1400 | FAILED: the expired holds' tickets were back on sale 1400 ms after they expired, not within 1000 ms |",
    );
    expect(md).not.toContain('Incomplete');
    expect(renderMarkdown({ ...report, meta: { ...report.meta, aborted: 'global timeout of 10 s' } })).toContain(
      '**Incomplete: global timeout of 10 s**',
    );
  });
});

describe('svg', () => {
  const summary = summarize(RUNS, CELLS, ['baseline', 'micro']);
  const svg = renderSvg(summary, 'bench <quick> & more');

  it('is one svg element with balanced tags and escaped text', () => {
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('bench &lt;quick&gt; &amp; more');
    const opened = (svg.match(/<(g|text|svg|circle|title)(\s[^>]*)?>/g) ?? []).filter(
      (tag) => !tag.endsWith('/>'),
    ).length;
    const closed = svg.match(/<\/(g|text|svg|circle|title)>/g)?.length ?? 0;
    expect(opened).toBe(closed);
    expect(escapeXml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;');
  });

  it('draws throughput and p99 against connections, one line per target with a point per connection count', () => {
    expect(svg).toContain('purchase: throughput');
    expect(svg).toContain('purchase: p99 latency');
    const lines = [...svg.matchAll(/<polyline data-target="([\w-]+)"[^>]* points="([^"]+)"/g)];
    expect(lines.map((m) => m[1])).toEqual(['baseline', 'micro', 'baseline', 'micro']);
    for (const line of lines) expect(line[2]?.split(' ')).toHaveLength(2); // 100 and 1000 connections
    expect(svg).toContain('<title>micro, 1000 connections: 50 req/s</title>');
    expect(svg).toContain('<title>micro, 100 connections: 31 ms</title>');
    // Legend and x-axis labels.
    expect(svg).toMatch(/>baseline<\/text>/);
    expect(svg).toMatch(/>1000<\/text>/);
  });

  it('puts higher values higher, on a log axis of connections', () => {
    const throughput = [...svg.matchAll(/<polyline data-target="([\w-]+)"[^>]* points="([^"]+)"/g)].slice(0, 2);
    const [baseline, micro] = throughput.map((m) => (m[2] ?? '').split(' ').map((p) => p.split(',').map(Number)));
    // SVG y grows downwards: the baseline's 1000 req/s at 100 connections sits above micro's 240.
    expect(baseline?.[0]?.[1]).toBeLessThan(micro?.[0]?.[1] as number);
    // x: 100 connections left of 1000.
    expect(baseline?.[0]?.[0]).toBeLessThan(baseline?.[1]?.[0] as number);
  });

  it('rounds axis maxima up to 1, 2, 2.5 or 5 × 10^k', () => {
    expect(niceCeiling(0)).toBe(1);
    expect(niceCeiling(1)).toBe(1);
    expect(niceCeiling(1.2)).toBe(2);
    expect(niceCeiling(2.2)).toBe(2.5);
    expect(niceCeiling(3)).toBe(5);
    expect(niceCeiling(7)).toBe(10);
    expect(niceCeiling(1234)).toBe(2000);
    expect(niceCeiling(0.031)).toBe(0.05);
  });
});

describe('load and target helpers', () => {
  it('builds the scenarios: purchase of 1, availability, and the 1.0.0 mix alternating both', () => {
    expect(scenarioRequests('purchase')).toEqual([
      { method: 'POST', path: '/api/v1/purchase', headers: { 'content-type': 'application/json' }, body: '{"qty":1}' },
    ]);
    expect(scenarioRequests('availability')).toEqual([{ method: 'GET', path: '/api/v1/available' }]);
    expect(scenarioRequests('mix').map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /api/v1/available',
      'POST /api/v1/purchase',
    ]);
  });

  it('gives every purchase of the memory check a new Idempotency-Key', () => {
    const [purchase] = scenarioRequests('purchase', { idempotencyKeys: true });
    const keys = new Set(
      Array.from({ length: 100 }, () => purchase?.setupRequest?.({ ...purchase }, {})?.headers?.['idempotency-key']),
    );
    expect(keys.size).toBe(100);
    expect([...keys].every((k) => typeof k === 'string' && k.length === 36)).toBe(true);
  });

  it('reads CPU time from /proc/<pid>/stat text, whatever the command name holds', () => {
    const rest = 'S 1 2 3 0 -1 4194560 100 0 0 0 1234 567 0 0 20 0 11 0 100 1000000 2000';
    expect(parseCpuSeconds(`4242 (node) ${rest}`)).toBeCloseTo(18.01, 10);
    expect(parseCpuSeconds(`4242 (a (b) c) ${rest}`)).toBeCloseTo(18.01, 10);
    expect(parseCpuSeconds('4242 (node) S 1 2')).toBeNull();
  });

  it('reads CPU time of a live process, and it grows with work', () => {
    const before = readCpuSeconds(process.pid);
    expect(before).not.toBeNull();
    const until = performance.now() + 150;
    while (performance.now() < until) Math.sqrt(Math.random());
    expect(readCpuSeconds(process.pid)!).toBeGreaterThan(before!);
    expect(readCpuSeconds(2 ** 22 + 12345)).toBeNull();
  });

  it('reads peak RSS from /proc/<pid>/status text', () => {
    expect(parseVmHwmMb('Name:\tnode\nVmPeak:\t 1000 kB\nVmHWM:\t  102400 kB\nVmRSS:\t 51200 kB\n')).toBe(100);
    expect(parseVmHwmMb('Name:\tnode\n')).toBeNull();
  });

  it('reads sold and remaining from the monolith’s and vacancy’s health', () => {
    expect(stockFromHealth({ details: { vacancy: { stock: { available: 994, sold: 6 } }, ticket: {} } })).toEqual({
      sold: 6,
      remaining: 994,
    });
    expect(stockFromHealth({ details: { stock: { available: 5, sold: 995 } } })).toEqual({ sold: 995, remaining: 5 });
    expect(() => stockFromHealth({ details: { ticket: {} } })).toThrow(/no stock figures/);
  });
});
