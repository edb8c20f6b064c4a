/**
 * What a benchmark run does: the profiles and the command line that adjusts
 * them, turned into a plan of cells (scenario × connections) with rounds.
 * Pure, so bench/run.test.ts checks it without starting anything.
 */
import { parseArgs } from 'node:util';

export const TARGETS = [
  'baseline',
  'hono-floor',
  'monolith-memory',
  'monolith-sqlite',
  'micro',
  'monolith-deno',
  'monolith-bun',
  'monolith-no-metrics',
  'monolith-redis',
  'monolith-redis-wait',
] as const;
export type TargetName = (typeof TARGETS)[number];
/**
 * What a run measures unless --targets says otherwise; the Hono floor and the Deno and Bun monoliths
 * are `npm run bench:runtimes`.
 */
export const DEFAULT_TARGETS: readonly TargetName[] = ['baseline', 'monolith-memory', 'monolith-sqlite', 'micro'];

/**
 * purchase: POST qty 1; availability: GET; mix: the 1.0.0 load test, half each, alternating per connection;
 * event: POST /api/v1/events/bench/purchase, one item of one type; zipf: the same over 10,000 events, picked
 * by a Zipf law (s = 1); checkout: a hold of one ticket, then its confirmation (two requests a ticket).
 */
export const SCENARIOS = ['purchase', 'availability', 'mix', 'event', 'zipf', 'checkout'] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** Scenarios of the events API: only the service's own targets answer them (not the yardsticks). */
export const EVENT_SCENARIOS: readonly Scenario[] = ['event', 'zipf', 'checkout'];

/** How many events the zipf scenario spreads its purchases over. */
export const ZIPF_EVENTS = 10_000;

/**
 * sellout: every target sells a small stock out exactly; memory: 1M idempotent purchases, then peak RSS;
 * expiry: 100,000 holds expire at the same millisecond under purchase load (monolith-sqlite).
 */
export const CHECKS = ['sellout', 'memory', 'expiry'] as const;
export type Check = (typeof CHECKS)[number];

export const PROFILES = ['quick', 'full'] as const;
export type Profile = (typeof PROFILES)[number];

/** One scenario at one connection count, measured `rounds` times on every target. */
export interface Cell {
  scenario: Scenario;
  connections: number;
  rounds: number;
  durationSeconds: number;
}

export interface Plan {
  profile: Profile;
  targets: TargetName[];
  cells: Cell[];
  checks: Check[];
  /** Seconds of unmeasured purchase load each target gets before the first round (JIT warm-up). */
  warmupSeconds: number;
  /** Purchases (each with a new Idempotency-Key) of the memory check. */
  memoryRequests: number;
  /** Peak RSS the memory check must stay under, in MB. */
  memoryLimitMb: number;
  /** How long a restart on the memory check's database may take until the service is ready. */
  restartLimitMs: number;
  /** Holds of the expiry check, all expiring at the same millisecond. */
  expiryHolds: number;
  /** Tickets each target starts with in the sell-out check. */
  selloutStock: number;
  /** The whole run is stopped (targets killed, partial results written) after this many seconds. */
  timeoutSeconds: number;
  /** Where results go. */
  outDir: string;
  /** Rebuild dist/main.js even when it is newer than src/. */
  rebuild: boolean;
  /** Keep a live dashboard open (GET /dashboard/stream) on each target's stock owner during its measured runs. */
  dashboard: boolean;
}

/** The expiry check: its holds expire this long after it starts seeding them, within its second run of this length. */
export const EXPIRY_LEAD_SECONDS = 60;
export const EXPIRY_RUN_SECONDS = 10;

/** Stock of the measured targets: large enough that every purchase of a full profile succeeds. */
export const HUGE_STOCK = 1_000_000_000_000;

const PROFILE_DEFAULTS: Record<
  Profile,
  { cells: Cell[]; rounds: number; durationSeconds: number; checks: Check[]; warmupSeconds: number }
> = {
  // < 2 minutes wall-clock on 2 busy cores: 28 runs of 2.5 s (4 targets × (3 + 3 rounds at 100 connections,
  // 1 pass at 1000)) take ~85 s with their set-up; start-up, warm-up (2 s per target, one at a time)
  // and the sell-out check ~20 s.
  quick: {
    cells: [
      { scenario: 'purchase', connections: 100, rounds: 3, durationSeconds: 2.5 },
      { scenario: 'mix', connections: 100, rounds: 3, durationSeconds: 2.5 },
      { scenario: 'purchase', connections: 1000, rounds: 1, durationSeconds: 2.5 },
    ],
    rounds: 3,
    durationSeconds: 2.5,
    checks: ['sellout'],
    warmupSeconds: 2,
  },
  // Everything: the 1.0.0 scenarios at 3 connection counts and the events API's at 100, × 5 rounds × 8 s
  // × 4 targets (~30 min), plus the memory check.
  full: {
    cells: [
      ...(['purchase', 'availability', 'mix'] as const).flatMap((scenario) =>
        [10, 100, 1000].map((connections) => ({ scenario, connections, rounds: 5, durationSeconds: 8 })),
      ),
      ...EVENT_SCENARIOS.map((scenario) => ({ scenario, connections: 100, rounds: 5, durationSeconds: 8 })),
    ],
    rounds: 5,
    durationSeconds: 8,
    checks: ['sellout', 'memory'],
    warmupSeconds: 4,
  },
};

export const USAGE = `Usage: tsx bench/run.ts [options]

  --profile quick|full     quick (default): purchase and mix at 100 connections, 3 rounds x 2.5 s,
                           one purchase pass at 1000 connections, sell-out check (< 2 min);
                           full: all scenarios at 10, 100, 1000 connections, 5 rounds x 8 s,
                           sell-out and memory checks (~30 min)
  --targets a,b            ${TARGETS.join(', ')} (default: ${DEFAULT_TARGETS.join(', ')})
  --scenarios a,b|none     ${SCENARIOS.join(', ')} (with --connections: every combination)
  --connections 10,100     connection counts
  --rounds N               rounds per scenario/connections (median over rounds is reported)
  --duration S             seconds per run
  --checks a,b|none        ${CHECKS.join(', ')} (default: the profile's)
  --memory-requests N      purchases of the memory check (default 1000000)
  --timeout S              stop everything after S seconds (default: from the plan)
  --out DIR                results directory (default bench/results)
  --rebuild                rebuild dist/main.js even if it is up to date
  --dashboard              keep a live dashboard open on each target (its stock owner) during its runs
  --help                   this text
`;

/** A command line the runner cannot follow; the message says why. */
export class UsageError extends Error {
  override name = 'UsageError';
}

function list<T extends string>(value: string | undefined, allowed: readonly T[], flag: string): T[] | undefined {
  if (value === undefined) return undefined;
  if (flag !== '--targets' && value.trim() === 'none') return [];
  const items = value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  if (items.length === 0) throw new UsageError(`${flag} needs at least one of ${allowed.join(', ')}`);
  for (const item of items) {
    if (!allowed.includes(item as T))
      throw new UsageError(`${flag}: unknown "${item}"; expected ${allowed.join(', ')}`);
  }
  return [...new Set(items as T[])];
}

function positiveInteger(value: string | undefined, flag: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1 || Number(value) > max) {
    throw new UsageError(`${flag}: expected a whole number from 1 to ${max}, got "${value}"`);
  }
  return Number(value);
}

function positiveNumber(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number) || number <= 0) {
    throw new UsageError(`${flag}: expected a positive number of seconds, got "${value}"`);
  }
  return number;
}

/**
 * Turns the command line (without `node` and the script) into a plan.
 * Without --scenarios/--connections the profile's own cells are kept
 * (--rounds/--duration then apply to each); with either, every combination
 * of scenarios and connection counts is measured.
 *
 * @example
 * parsePlan(['--profile', 'quick', '--targets', 'baseline,micro']).targets; // ['baseline', 'micro']
 */
export function parsePlan(argv: readonly string[]): Plan | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        profile: { type: 'string' },
        targets: { type: 'string' },
        scenarios: { type: 'string' },
        connections: { type: 'string' },
        rounds: { type: 'string' },
        duration: { type: 'string' },
        checks: { type: 'string' },
        'memory-requests': { type: 'string' },
        timeout: { type: 'string' },
        out: { type: 'string' },
        rebuild: { type: 'boolean' },
        dashboard: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const v = parsed.values;
  if (v.help) return 'help';

  const profile = (v.profile ?? 'quick') as Profile;
  if (!PROFILES.includes(profile))
    throw new UsageError(`--profile: expected ${PROFILES.join(' or ')}, got "${v.profile}"`);
  const defaults = PROFILE_DEFAULTS[profile];

  const scenarios = list(v.scenarios, SCENARIOS, '--scenarios');
  const connections = v.connections?.split(',').map((item) => positiveInteger(item, '--connections', 10_000) as number);
  if (connections && connections.length === 0) throw new UsageError('--connections needs at least one number');
  const rounds = positiveInteger(v.rounds, '--rounds', 1000);
  const durationSeconds = positiveNumber(v.duration, '--duration');

  let cells: Cell[];
  if (scenarios || connections) {
    const profileScenarios = [...new Set(defaults.cells.map((cell) => cell.scenario))];
    const profileConnections = [...new Set(defaults.cells.map((cell) => cell.connections))];
    cells = (scenarios ?? profileScenarios).flatMap((scenario) =>
      [...new Set(connections ?? profileConnections)].map((c) => ({
        scenario,
        connections: c,
        rounds: rounds ?? defaults.rounds,
        durationSeconds: durationSeconds ?? defaults.durationSeconds,
      })),
    );
  } else {
    cells = defaults.cells.map((cell) => ({
      ...cell,
      rounds: rounds ?? cell.rounds,
      durationSeconds: durationSeconds ?? cell.durationSeconds,
    }));
  }

  const plan: Plan = {
    profile,
    targets: list(v.targets, TARGETS, '--targets') ?? [...DEFAULT_TARGETS],
    cells,
    checks: list(v.checks, CHECKS, '--checks') ?? [...defaults.checks],
    warmupSeconds: defaults.warmupSeconds,
    memoryRequests: positiveInteger(v['memory-requests'], '--memory-requests', 100_000_000) ?? 1_000_000,
    memoryLimitMb: 150,
    restartLimitMs: 1_000,
    expiryHolds: 100_000,
    selloutStock: 200,
    timeoutSeconds: 0,
    outDir: v.out ?? 'bench/results',
    rebuild: v.rebuild ?? false,
    dashboard: v.dashboard ?? false,
  };
  plan.timeoutSeconds = positiveNumber(v.timeout, '--timeout') ?? Math.ceil(estimateSeconds(plan) * 1.5 + 60);
  return plan;
}

/**
 * A rough wall-clock estimate of a plan, in seconds: the load itself plus a
 * little per run for settling and checks, start-ups and the extra checks.
 * (The memory check is estimated at 2,500 purchases a second, creating the zipf events at 10 s a target.)
 */
export function estimateSeconds(plan: Plan): number {
  const runs = plan.cells.reduce(
    (sum, cell) => sum + cell.rounds * plan.targets.length * (cell.durationSeconds + 0.3),
    0,
  );
  const warmup = plan.warmupSeconds + 1;
  // Creating the zipf scenario's 10,000 events takes a few seconds on each target.
  const events = plan.cells.some((cell) => cell.scenario === 'zipf') ? 10 * plan.targets.length : 0;
  const checks =
    (plan.checks.includes('sellout') ? 2 + plan.targets.length * 2 : 0) +
    (plan.checks.includes('memory') ? 5 + plan.memoryRequests / 2_500 : 0) +
    (plan.checks.includes('expiry') ? EXPIRY_LEAD_SECONDS + EXPIRY_RUN_SECONDS + 10 : 0);
  return Math.ceil(10 + runs + warmup + events + checks);
}
