/**
 * What a benchmark records, and the pure judgements made on it: the stock
 * invariant after a run, the sell-out and memory checks, and the summary of
 * rounds (medians, ratios to the baseline) that the reports are drawn from.
 */
import type { LoadResult, PurchaseCounts } from './load.ts';
import type { Cell, Plan, Scenario, TargetName } from './plan.ts';
import { median, ratio } from './stats.ts';
import type { StockReading } from './targets.ts';

/** The stock invariant of one run that sold tickets. */
export interface StockCheck {
  initial: number;
  before: StockReading;
  after: StockReading;
  /** Tickets the target says it sold during the run. */
  soldInRun: number;
  /** Successful purchase answers the load generator received. */
  succeeded: number;
  /** soldInRun − succeeded: sales whose answer was still on its way when the run stopped its connections. */
  unanswered: number;
  ok: boolean;
  problems: string[];
}

/** One run of one target in one round. */
export interface RunRecord extends Omit<LoadResult, 'purchases'> {
  scenario: Scenario;
  connections: number;
  /** Round within its cell, from 0. */
  round: number;
  /** Round number across the whole benchmark: the baseline run to compare with has the same one. */
  roundId: number;
  /** Place of the target in this round's order, from 0. */
  position: number;
  target: TargetName;
  purchases: PurchaseCounts;
  /** Peak RSS during the run per process role (micro: ticket, vacancy), MB. */
  peakRssMb: Record<string, number | null>;
  /**
   * CPU time the target's processes used during the run (all threads, user and
   * system; micro: ticket and vacancy together) per completed request, in µs.
   */
  cpuUsPerRequest: number | null;
  stock: StockCheck | null;
}

export interface SelloutRecord {
  target: TargetName;
  initialStock: number;
  requests: number;
  connections: number;
  succeeded: number;
  refused: number;
  errors: number;
  non2xx: number;
  after: StockReading | null;
  /** GET /api/v1/available after the sell-out. */
  availableAfter: number | null;
  ok: boolean;
  problems: string[];
}

export interface MemoryRecord {
  target: TargetName;
  requests: number;
  connections: number;
  durationSeconds: number;
  rps: number;
  errors: number;
  non2xx: number;
  succeeded: number;
  sold: number | null;
  /** Idempotency keys the stock actor holds afterwards (health details), if reported. */
  idempotencyKeys: number | null;
  peakRssMb: number | null;
  limitMb: number;
  /** After the load, the process killed (SIGKILL) and started again on its DATA_DIR: ms until /ready answered 200. */
  restartReadyMs: number | null;
  restartLimitMs: number;
  ok: boolean;
  problems: string[];
}

/**
 * The expiry check: `holds` holds of one ticket each on the bench event, all expiring at the same
 * millisecond, during a run of one-item purchases of that event; against a run of the same load
 * on the same process without expiries.
 */
export interface ExpiryRecord {
  target: TargetName;
  holds: number;
  connections: number;
  durationSeconds: number;
  /** The run without expiries. */
  quiet: { rps: number; p99: number | null; errors: number; non2xx: number };
  /** The run during which every hold expired. */
  expiring: { rps: number; p99: number | null; errors: number; non2xx: number };
  /** ms from the holds' expiresAt until the event read back no tickets held (null: not within the run). */
  clearedAfterMs: number | null;
  /** The event at the end: sold + held + available must be its capacity, nothing held. */
  after: { capacity: number; sold: number; held: number; available: number } | null;
  /** The p99 during expiry may be at most this many times the quiet run's. */
  p99Factor: number;
  /** The stock of expired holds must be back on sale within this many ms. */
  clearLimitMs: number;
  ok: boolean;
  problems: string[];
}

export interface TargetSummary {
  target: TargetName;
  runs: number;
  rps: number | null;
  /** Median over rounds of (this target's req/s ÷ the baseline's in the same round). */
  ratio: number | null;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  errors: number;
  timeouts: number;
  non2xx: number;
  /** Highest peak RSS over the runs, per process role. */
  peakRssMb: Record<string, number | null>;
  /** Median over rounds of the CPU time per request, µs. */
  cpuUsPerRequest: number | null;
  /**
   * Median over rounds of (the baseline's CPU time per request ÷ this target's):
   * what a request costs, apart from how the target and the load generator
   * happened to share the cores in that run.
   */
  cpuRatio: number | null;
  /** Whether every run's stock invariant held; null when the scenario sells nothing. */
  stockOk: boolean | null;
}

export interface CellSummary extends Cell {
  targets: TargetSummary[];
}

export interface BenchReport {
  meta: {
    startedAt: string;
    finishedAt: string;
    profile: Plan['profile'];
    node: string;
    cpus: number;
    cpuModel: string;
    loadAverageAtStart: number[];
    loadAverageAtEnd: number[];
    commit: string | null;
    bundle: string;
    /** Set when the run was cut short (global timeout, signal, failure). */
    aborted: string | null;
  };
  plan: Plan;
  runs: RunRecord[];
  summary: CellSummary[];
  sellout: SelloutRecord[];
  memory: MemoryRecord | null;
  expiry: ExpiryRecord | null;
  /** Every stock invariant, sell-out and memory check passed, and the run completed. */
  ok: boolean;
}

/**
 * Judges the stock after a run that sold tickets. Every successful answer must
 * be a sale (sold ≥ answered successes); a sale may lack an answer only if its
 * request was in flight when the run closed its connections or timed out
 * (at most one per connection, plus timeouts); and sold + remaining must still
 * equal the initial stock. With a stock far larger than the run can sell, every
 * 2xx purchase answer must be a success.
 */
export function checkStock(
  initial: number,
  before: StockReading,
  after: StockReading,
  purchases: PurchaseCounts,
  limits: { connections: number; timeouts: number },
): StockCheck {
  const soldInRun = after.sold - before.sold;
  const unanswered = soldInRun - purchases.succeeded;
  const problems: string[] = [];
  if (after.sold + after.remaining !== initial) {
    problems.push(
      `sold ${after.sold} + remaining ${after.remaining} = ${after.sold + after.remaining}, not the initial ${initial}`,
    );
  }
  if (after.remaining < 0) problems.push(`remaining is ${after.remaining}`);
  if (unanswered < 0) problems.push(`${purchases.succeeded} successful answers but only ${soldInRun} tickets sold`);
  if (unanswered > limits.connections + limits.timeouts) {
    problems.push(
      `${soldInRun} sold but only ${purchases.succeeded} answered (more than one unanswered per connection)`,
    );
  }
  if (purchases.answered2xx !== purchases.succeeded) {
    problems.push(
      `${purchases.answered2xx - purchases.succeeded} of ${purchases.answered2xx} 2xx purchase answers were not a success`,
    );
  }
  return {
    initial,
    before,
    after,
    soldInRun,
    succeeded: purchases.succeeded,
    unanswered,
    ok: problems.length === 0,
    problems,
  };
}

/**
 * Judges the bench event after a run of the events API: every 201 a
 * purchase or confirmation got is a ticket sold, and at most one sale per
 * connection (plus timeouts) may lack its answer.
 */
export function checkEventSales(
  soldInRun: number,
  answered: number,
  limits: { connections: number; timeouts: number },
): StockCheck {
  const unanswered = soldInRun - answered;
  const problems: string[] = [];
  if (unanswered < 0) problems.push(`${answered} tickets answered as sold but only ${soldInRun} sold`);
  if (unanswered > limits.connections + limits.timeouts) {
    problems.push(`${soldInRun} sold but only ${answered} answered (more than one unanswered per connection)`);
  }
  const reading = { sold: soldInRun, remaining: 0 };
  return {
    initial: 0,
    before: { sold: 0, remaining: 0 },
    after: reading,
    soldInRun,
    succeeded: answered,
    unanswered,
    ok: problems.length === 0,
    problems,
  };
}

/** Judges a sell-out: exactly the stock sold and answered as sold, the rest refused, nothing left, nothing failed. */
export function checkSellout(record: Omit<SelloutRecord, 'ok' | 'problems'>): SelloutRecord {
  const problems: string[] = [];
  const { initialStock: stock } = record;
  if (record.succeeded !== stock) problems.push(`${record.succeeded} successful answers for a stock of ${stock}`);
  if (record.refused !== record.requests - stock) {
    problems.push(`${record.refused} "Insufficient inventory" answers, expected ${record.requests - stock}`);
  }
  if (record.errors > 0) problems.push(`${record.errors} errors`);
  if (record.non2xx > 0) problems.push(`${record.non2xx} non-2xx answers`);
  if (!record.after) problems.push('stock could not be read');
  else if (record.after.sold !== stock || record.after.remaining !== 0) {
    problems.push(`stock says sold ${record.after.sold}, remaining ${record.after.remaining}`);
  }
  if (record.availableAfter !== 0) problems.push(`GET /api/v1/available says ${record.availableAfter}`);
  return { ...record, ok: problems.length === 0, problems };
}

/** Judges the memory check: every purchase sold and answered, peak RSS under the limit. */
export function checkMemory(record: Omit<MemoryRecord, 'ok' | 'problems'>): MemoryRecord {
  const problems: string[] = [];
  if (record.errors > 0 || record.non2xx > 0)
    problems.push(`${record.errors} errors, ${record.non2xx} non-2xx answers`);
  if (record.succeeded !== record.requests)
    problems.push(`${record.succeeded} of ${record.requests} purchases succeeded`);
  if (record.sold !== record.requests) problems.push(`stock says ${record.sold} sold for ${record.requests} purchases`);
  if (record.peakRssMb === null) problems.push('peak RSS could not be read');
  else if (record.peakRssMb >= record.limitMb) {
    problems.push(`peak RSS ${record.peakRssMb.toFixed(1)} MB is not under ${record.limitMb} MB`);
  }
  if (record.restartReadyMs === null) problems.push('the restart was not measured');
  else if (record.restartReadyMs >= record.restartLimitMs) {
    problems.push(
      `ready ${record.restartReadyMs.toFixed(0)} ms after a restart, not under ${record.restartLimitMs} ms`,
    );
  }
  return { ...record, ok: problems.length === 0, problems };
}

export function checkExpiry(record: Omit<ExpiryRecord, 'ok' | 'problems'>): ExpiryRecord {
  const problems: string[] = [];
  for (const [name, run] of [
    ['quiet', record.quiet],
    ['expiring', record.expiring],
  ] as const) {
    if (run.errors > 0 || run.non2xx > 0) problems.push(`${name} run: ${run.errors} errors, ${run.non2xx} non-2xx`);
  }
  const { p99: quiet } = record.quiet;
  const { p99: expiring } = record.expiring;
  if (quiet === null || expiring === null) problems.push('a p99 could not be measured');
  else if (expiring > quiet * record.p99Factor) {
    problems.push(
      `p99 ${expiring.toFixed(1)} ms while the holds expired is above ${record.p99Factor}× the ${quiet.toFixed(1)} ms without`,
    );
  }
  if (record.clearedAfterMs === null) problems.push('tickets were still held when the run ended');
  else if (record.clearedAfterMs > record.clearLimitMs) {
    problems.push(
      `the expired holds' tickets were back on sale ${record.clearedAfterMs.toFixed(0)} ms after they expired, not within ${record.clearLimitMs} ms`,
    );
  }
  const { after } = record;
  if (after === null) problems.push('the event could not be read afterwards');
  else {
    if (after.held !== 0) problems.push(`${after.held} tickets still held afterwards`);
    if (after.sold + after.held + after.available !== after.capacity) {
      problems.push(
        `sold ${after.sold} + held ${after.held} + available ${after.available} is not the capacity ${after.capacity}`,
      );
    }
  }
  return { ...record, ok: problems.length === 0, problems };
}

/** Each run's req/s divided by the baseline's in the same round (null without a baseline run). */
export function ratiosToBaseline(runs: readonly RunRecord[]): Map<RunRecord, number | null> {
  const baselineRps = new Map<number, number>();
  for (const run of runs) if (run.target === 'baseline') baselineRps.set(run.roundId, run.rps);
  return new Map(runs.map((run) => [run, ratio(run.rps, baselineRps.get(run.roundId))]));
}

/** The baseline's CPU time per request divided by each run's, in the same round (null without both). */
export function cpuRatiosToBaseline(runs: readonly RunRecord[]): Map<RunRecord, number | null> {
  const baselineCpu = new Map<number, number>();
  for (const run of runs)
    if (run.target === 'baseline' && run.cpuUsPerRequest !== null) baselineCpu.set(run.roundId, run.cpuUsPerRequest);
  return new Map(
    runs.map((run) => {
      const reference = baselineCpu.get(run.roundId);
      return [
        run,
        run.cpuUsPerRequest === null || reference === undefined ? null : ratio(reference, run.cpuUsPerRequest),
      ];
    }),
  );
}

/** Medians over rounds per cell and target, in the plan's order. */
export function summarize(
  runs: readonly RunRecord[],
  cells: readonly Cell[],
  targets: readonly TargetName[],
): CellSummary[] {
  const ratios = ratiosToBaseline(runs);
  const cpuRatios = cpuRatiosToBaseline(runs);
  return cells.map((cell) => ({
    ...cell,
    targets: targets.flatMap((target) => {
      const mine = runs.filter(
        (r) => r.scenario === cell.scenario && r.connections === cell.connections && r.target === target,
      );
      if (mine.length === 0) return [];
      const peakRssMb: Record<string, number | null> = {};
      for (const run of mine) {
        for (const [role, mb] of Object.entries(run.peakRssMb)) {
          const previous = peakRssMb[role] ?? null;
          peakRssMb[role] = mb === null ? previous : Math.max(previous ?? 0, mb);
        }
      }
      const stockRuns = mine.filter((r) => r.stock !== null);
      return [
        {
          target,
          runs: mine.length,
          rps: median(mine.map((r) => r.rps)),
          ratio: median(mine.map((r) => ratios.get(r))),
          p50: median(mine.map((r) => r.latency?.p50)),
          p95: median(mine.map((r) => r.latency?.p95)),
          p99: median(mine.map((r) => r.latency?.p99)),
          errors: mine.reduce((sum, r) => sum + r.errors, 0),
          timeouts: mine.reduce((sum, r) => sum + r.timeouts, 0),
          non2xx: mine.reduce((sum, r) => sum + r.non2xx, 0),
          peakRssMb,
          cpuUsPerRequest: median(mine.map((r) => r.cpuUsPerRequest)),
          cpuRatio: median(mine.map((r) => cpuRatios.get(r))),
          stockOk: stockRuns.length === 0 ? null : stockRuns.every((r) => r.stock?.ok),
        },
      ];
    }),
  }));
}
