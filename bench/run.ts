/**
 * The benchmark runner: starts the targets itself (from the built bundle
 * dist/main.js and the plain node:http baseline) on free loopback ports,
 * drives them with autocannon in rounds, checks the stock invariant after
 * every run that sells, and writes bench/results/.
 *
 *   tsx bench/run.ts [--profile quick|full] [--targets a,b] [--scenarios ...]
 *                    [--connections 10,100,1000] [--rounds N] [--duration S] ...
 *
 * `tsx bench/run.ts --help` lists every option; bench/README.md explains the figures.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { newHoldId } from '../src/stock/model.ts';
import { SqliteStockStore } from '../src/node/sqlite-stock-store.ts';
import { BUNDLE } from '../test/support/processes.ts';
import { openDashboard } from './lib/dashboard.ts';
import { BENCH_EVENT, runLoad, sellsTickets } from './lib/load.ts';
import {
  EVENT_SCENARIOS,
  EXPIRY_LEAD_SECONDS,
  EXPIRY_RUN_SECONDS,
  HUGE_STOCK,
  parsePlan,
  UsageError,
  USAGE,
  ZIPF_EVENTS,
  type Plan,
  type TargetName,
} from './lib/plan.ts';
import { renderMarkdown, renderSvg, renderTables } from './lib/report.ts';
import {
  checkExpiry,
  checkMemory,
  checkSellout,
  checkEventSales,
  checkStock,
  summarize,
  type BenchReport,
  type ExpiryRecord,
  type MemoryRecord,
  type RunRecord,
  type SelloutRecord,
} from './lib/results.ts';
import { round, rotate } from './lib/stats.ts';
import { buildBenchServers, type BenchServers } from './lib/servers.ts';
import {
  BENCH_ADMIN_TOKEN,
  createBenchEvents,
  readCpuSeconds,
  readPeakRssMb,
  resetPeakRss,
  startTarget,
  startTargets,
  type StockReading,
  type Target,
} from './lib/targets.ts';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const started = Date.now();
const log = (line: string) =>
  process.stderr.write(`[${String(Math.round((Date.now() - started) / 1000)).padStart(4)} s] ${line}\n`);

// ---- set-up --------------------------------------------------------------------------------------

function newestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return readdirSync(path)
    .filter((name) => !name.endsWith('.test.ts'))
    .reduce((newest, name) => Math.max(newest, newestMtime(join(path, name))), stat.mtimeMs);
}

/** Builds dist/main.js with the project's tsup config when it is missing or older than what it is built from. */
function ensureBundle(force: boolean): void {
  let builtAt = 0;
  try {
    builtAt = statSync(BUNDLE).mtimeMs;
  } catch {
    // missing: build
  }
  const sourcesAt = Math.max(
    newestMtime(join(ROOT, 'src')),
    ...['package.json', 'tsup.config.ts'].map((f) => statSync(join(ROOT, f)).mtimeMs),
  );
  if (!force && builtAt > sourcesAt) {
    log('dist/main.js is up to date');
    return;
  }
  log('building dist/main.js (tsup)');
  execFileSync(process.execPath, [join(ROOT, 'node_modules/tsup/dist/cli-default.js'), '--silent'], {
    cwd: ROOT,
    stdio: 'inherit',
    timeout: 120_000,
  });
}

function gitDescribe(): string | null {
  try {
    return execFileSync('git', ['describe', '--always', '--dirty'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return null;
  }
}

// ---- measuring -----------------------------------------------------------------------------------

/**
 * Reads the stock until two readings 150 ms apart agree. When a run stops, the requests it left
 * inside a target are still being decided (micro at 1000 connections: seconds of queued reserves);
 * the next run must neither share the machine with them nor have their sales counted as its own.
 */
async function settledStock(target: Target, timeoutMs = 60_000): Promise<StockReading> {
  const deadline = Date.now() + timeoutMs;
  let previous = await target.readStock();
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 150));
    const current = await target.readStock();
    if (current.sold === previous.sold && current.remaining === previous.remaining) return current;
    previous = current;
  }
  throw new Error(`${target.name}: the stock was still changing ${timeoutMs / 1000} s after the run`);
}

/**
 * Waits until what a run left queued inside a target has been served: a GET /api/v1/available
 * queues behind it (micro: in the ticket service's pool to vacancy; monolith: in the actor's mailbox).
 */
async function drained(target: Target): Promise<void> {
  const response = await fetch(`${target.url}/api/v1/available`, { signal: AbortSignal.timeout(60_000) });
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`${target.name}: GET /api/v1/available answered ${response.status} after a run`);
}

function peakRss(target: Target): Record<string, number | null> {
  return Object.fromEntries(target.processes.map((p) => [p.role, readPeakRssMb(p.pid)]));
}

/** CPU seconds used so far by all of a target's processes together, or null if any cannot be read. */
function cpuSeconds(target: Target): number | null {
  let total = 0;
  for (const p of target.processes) {
    const seconds = readCpuSeconds(p.pid);
    if (seconds === null) return null;
    total += seconds;
  }
  return total;
}

function describeRun(run: RunRecord): string {
  const rss = Object.values(run.peakRssMb)
    .map((mb) => (mb === null ? '?' : mb.toFixed(0)))
    .join('+');
  const stock =
    run.stock === null ? '' : run.stock.ok ? '  stock ok' : `  STOCK FAILED: ${run.stock.problems.join('; ')}`;
  return (
    `${run.scenario} c=${run.connections} round ${run.round + 1}  ${run.target.padEnd(15)} ` +
    `${run.rps.toFixed(0).padStart(6)} req/s  p99 ${(run.latency?.p99 ?? NaN).toFixed(1)} ms  ` +
    `errors ${run.errors}  non-2xx ${run.non2xx}  rss ${rss} MB  cpu ${(run.cpuUsPerRequest ?? NaN).toFixed(0)} µs/req${stock}`
  );
}

/** The bench event's tickets sold, through the events API. */
async function benchEventSold(target: Target): Promise<number> {
  const response = await fetch(`${target.url}/api/v1/events/${BENCH_EVENT}`, { signal: AbortSignal.timeout(60_000) });
  const event = (await response.json()) as { sold?: unknown };
  if (typeof event.sold !== 'number') throw new Error(`${target.name}: GET /api/v1/events/${BENCH_EVENT} has no sold`);
  return event.sold;
}

async function measure(plan: Plan, targets: Target[], signal: AbortSignal, runs: RunRecord[]): Promise<void> {
  const scenarios = new Set(plan.cells.map((cell) => cell.scenario));
  if (EVENT_SCENARIOS.some((scenario) => scenarios.has(scenario))) {
    const zipf = scenarios.has('zipf') ? ZIPF_EVENTS : 0;
    log(`creating the benchmark's events on each target${zipf ? ` (${zipf} for the zipf scenario)` : ''}`);
    await Promise.all(targets.filter((target) => target.adminUrl).map((target) => createBenchEvents(target, zipf)));
  }
  if (plan.warmupSeconds > 0) {
    // Unmeasured, one target at a time so that each gets the machine to itself, as in a round: the
    // hot paths (and, between services, the coalescing path that only load takes) must be compiled
    // before the first round, or the first rounds of the slowest-warming target measure the JIT.
    log(`warming up each target in turn (${plan.warmupSeconds} s of purchases at 100 connections)`);
    for (const target of targets) {
      await runLoad({
        url: target.url,
        scenario: 'purchase',
        connections: 100,
        durationSeconds: plan.warmupSeconds,
        signal,
      });
      await drained(target);
    }
  }
  // The stock after a target's last run is the stock before its next one (only these runs change it).
  const lastStock = new Map<Target, StockReading>();
  let roundId = 0;
  for (const cell of plan.cells) {
    for (let r = 0; r < cell.rounds; r++, roundId++) {
      const eventScenario = EVENT_SCENARIOS.includes(cell.scenario);
      // The yardsticks have no events API: they sit the event scenarios out.
      const order = rotate(
        targets.filter((target) => !eventScenario || target.adminUrl),
        roundId,
      );
      for (const [position, target] of order.entries()) {
        if (signal.aborted) return;
        const sells = sellsTickets(cell.scenario);
        const before = sells ? (lastStock.get(target) ?? (await settledStock(target))) : null;
        const countsBenchEvent = cell.scenario === 'event' || cell.scenario === 'checkout';
        const benchSoldBefore = countsBenchEvent ? await benchEventSold(target) : null;
        for (const p of target.processes) resetPeakRss(p.pid);
        // --dashboard: an organizer's browser tab on the stock, live for the whole run (the yardsticks have none).
        const dashboard =
          plan.dashboard && target.adminUrl ? await openDashboard(target.adminUrl, BENCH_ADMIN_TOKEN) : null;
        const cpuBefore = cpuSeconds(target);
        const result = await runLoad({
          url: target.url,
          scenario: cell.scenario,
          connections: cell.connections,
          durationSeconds: cell.durationSeconds,
          signal,
        });
        const cpuAfter = cpuSeconds(target);
        const watched = await dashboard?.close();
        await drained(target);
        const after = sells ? await settledStock(target) : null;
        if (after) lastStock.set(target, after);
        const benchSold = benchSoldBefore === null ? null : (await benchEventSold(target)) - benchSoldBefore;
        const { purchases, ...load } = result;
        const run: RunRecord = {
          ...load,
          purchases,
          scenario: cell.scenario,
          connections: cell.connections,
          round: r,
          roundId,
          position,
          target: target.name,
          peakRssMb: peakRss(target),
          cpuUsPerRequest:
            cpuBefore === null || cpuAfter === null || result.requests === 0
              ? null
              : ((cpuAfter - cpuBefore) * 1e6) / result.requests,
          stock:
            before && after
              ? checkStock(target.initialStock, before, after, purchases, {
                  connections: cell.connections,
                  timeouts: result.timeouts,
                })
              : benchSold !== null
                ? checkEventSales(benchSold, result.ticketsSold, {
                    connections: cell.connections,
                    timeouts: result.timeouts,
                  })
                : null,
        };
        runs.push(run);
        log(describeRun(run));
        if (watched)
          log(`  with a dashboard open: ${watched.updates} updates, ${Math.round(watched.bytes / 1024)} KiB`);
      }
    }
  }
}

/** Sells out fresh targets (started with `plan.selloutStock` tickets) one after the other. */
async function selloutCheck(plan: Plan, targets: Target[], signal: AbortSignal): Promise<SelloutRecord[]> {
  const stock = plan.selloutStock;
  const requests = Math.round(stock * 2.5);
  const connections = 100;
  log(
    `sell-out check: ${targets.length} fresh targets with ${stock} tickets, ${requests} purchases each at ${connections} connections`,
  );
  const records: SelloutRecord[] = [];
  for (const target of targets) {
    if (signal.aborted) break;
    const result = await runLoad({ url: target.url, scenario: 'purchase', connections, amount: requests, signal });
    const after = await settledStock(target).catch(() => null);
    const available = await fetch(`${target.url}/api/v1/available`, { signal: AbortSignal.timeout(5_000) })
      .then(async (r) => ((await r.json()) as { qty: number }).qty)
      .catch(() => null);
    const record = checkSellout({
      target: target.name,
      initialStock: stock,
      requests,
      connections,
      succeeded: result.purchases.succeeded,
      refused: result.purchases.refused,
      errors: result.errors,
      non2xx: result.non2xx,
      after,
      availableAfter: available,
    });
    records.push(record);
    log(
      `sell-out ${target.name}: sold ${after?.sold}, ${record.succeeded} sold answers, ${record.refused} refused, ${record.ok ? 'ok' : `FAILED: ${record.problems.join('; ')}`}`,
    );
  }
  return records;
}

async function memoryCheck(plan: Plan, servers: BenchServers, signal: AbortSignal): Promise<MemoryRecord> {
  const name: TargetName = 'monolith-sqlite';
  const connections = 100;
  log(`memory check: ${plan.memoryRequests} purchases with unique Idempotency-Keys against a fresh ${name}`);
  const dataDir = mkdtempSync(join(tmpdir(), 'ticket-bench-memory-'));
  const target = await startTarget(name, { servers, initialStock: HUGE_STOCK, dataDir });
  let stopped = false;
  try {
    const result = await runLoad({
      url: target.url,
      scenario: 'purchase',
      connections,
      amount: plan.memoryRequests,
      idempotencyKeys: true,
      signal,
    });
    const stock = await settledStock(target).catch(() => null);
    const health = (await fetch(`${target.url}/api/v1/health`)
      .then((r) => r.json())
      .catch(() => null)) as {
      details?: { vacancy?: { actor?: { idempotencyKeys?: number } } };
    } | null;
    const peakRssMb = target.processes[0] ? readPeakRssMb(target.processes[0].pid) : null;
    // A crash and a restart on what the load left: the time until the service is ready to sell again.
    if (target.processes[0]) process.kill(target.processes[0].pid, 'SIGKILL');
    await target.stop();
    stopped = true;
    const restartReadyMs = await timeRestart(servers, dataDir);
    const record = checkMemory({
      target: name,
      requests: plan.memoryRequests,
      connections,
      durationSeconds: result.durationSeconds,
      rps: result.rps,
      errors: result.errors,
      non2xx: result.non2xx,
      succeeded: result.purchases.succeeded,
      sold: stock?.sold ?? null,
      idempotencyKeys: health?.details?.vacancy?.actor?.idempotencyKeys ?? null,
      peakRssMb,
      limitMb: plan.memoryLimitMb,
      restartReadyMs,
      restartLimitMs: plan.restartLimitMs,
    });
    log(
      `memory: peak RSS ${record.peakRssMb?.toFixed(1)} MB after ${record.sold} purchases at ${record.rps.toFixed(0)} req/s, ready ${record.restartReadyMs?.toFixed(0)} ms after a restart, ${record.ok ? 'ok' : `FAILED: ${record.problems.join('; ')}`}`,
    );
    return record;
  } finally {
    if (!stopped) await target.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

interface EventReading {
  capacity: number;
  sold: number;
  held: number;
  available: number;
}

/** The bench event's only ticket type, through the events API. */
async function readBenchType(url: string): Promise<EventReading> {
  const response = await fetch(`${url}/api/v1/events/${BENCH_EVENT}`, { signal: AbortSignal.timeout(10_000) });
  const event = (await response.json()) as { ticketTypes: EventReading[] };
  const type = event.ticketTypes[0];
  if (!type) throw new Error(`GET /api/v1/events/${BENCH_EVENT} answered no ticket type`);
  const { capacity, sold, held, available } = type;
  return { capacity, sold, held, available };
}

/**
 * Writes `holds` holds of one ticket of the bench event into a new SQLite DATA_DIR, through the
 * store itself (as if made ten minutes earlier), all expiring at `expiresAt`; then measures, on a
 * monolith started on it, one run of event purchases without expiries and one across `expiresAt`,
 * polling the event for the moment nothing is held any more.
 */
async function expiryCheck(plan: Plan, servers: BenchServers, signal: AbortSignal): Promise<ExpiryRecord> {
  const name: TargetName = 'monolith-sqlite';
  const connections = 100;
  const capacity = 1_000_000_000;
  const ttlMs = 600_000;
  const dataDir = mkdtempSync(join(tmpdir(), 'ticket-bench-expiry-'));
  const expiresAt = Date.now() + EXPIRY_LEAD_SECONDS * 1000;
  log(`expiry check: writing ${plan.expiryHolds} holds that all expire in ${EXPIRY_LEAD_SECONDS} s`);
  const quietLogger = { info: () => {}, warn: () => {} };
  const store = new SqliteStockStore({ dataDir, maxKeys: 1_000_000, logger: quietLogger });
  await store.open([]);
  const decideOptions = { now: expiresAt - ttlMs, idempotencyTtlMs: 86_400_000 };
  await store.decide(
    [
      {
        kind: 'put-event',
        eventId: BENCH_EVENT,
        definition: {
          name: 'Benchmark',
          capacity: null,
          maxPerBuyer: null,
          ticketTypes: [{ id: 'general', name: 'General', capacity, maxPerOrder: null, maxPerBuyer: null }],
        },
      },
    ],
    decideOptions,
  );
  for (let written = 0; written < plan.expiryHolds; written += 1000) {
    const batch = Array.from({ length: Math.min(1000, plan.expiryHolds - written) }, () => ({
      kind: 'hold' as const,
      eventId: BENCH_EVENT,
      items: [{ typeId: 'general', qty: 1 }],
      buyer: null,
      holdId: newHoldId(BENCH_EVENT),
      at: expiresAt - ttlMs,
      ttlMs,
    }));
    const decisions = await store.decide(batch, decideOptions);
    const refused = decisions.find((d) => d.kind !== 'hold');
    if (refused) throw new Error(`expiry check: the store refused a hold: ${JSON.stringify(refused)}`);
  }
  await store.close();

  const target = await startTarget(name, { servers, initialStock: HUGE_STOCK, dataDir });
  try {
    const load = (durationSeconds: number) =>
      runLoad({ url: target.url, scenario: 'event', connections, durationSeconds, signal });
    await load(plan.warmupSeconds || 2);
    const seeded = await readBenchType(target.url);
    if (seeded.held !== plan.expiryHolds) {
      throw new Error(`expiry check: ${seeded.held} tickets held after start, ${plan.expiryHolds} written`);
    }
    const quiet = await load(EXPIRY_RUN_SECONDS);
    await drained(target);
    // The expiring run starts 3 s before the holds expire.
    const wait = expiresAt - 3_000 - Date.now();
    if (wait < 0) {
      throw new Error(
        `expiry check: writing the holds and the run without expiries took past their expiry (${-wait} ms late)`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, wait));
    let clearedAt: number | null = null;
    const watching = (async () => {
      while (clearedAt === null && !signal.aborted && Date.now() < expiresAt + EXPIRY_RUN_SECONDS * 1000) {
        const reading = await readBenchType(target.url).catch(() => null);
        if (reading?.held === 0) clearedAt = Date.now();
        else await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const expiring = await load(EXPIRY_RUN_SECONDS);
    await watching;
    await drained(target);
    const after = await readBenchType(target.url).catch(() => null);
    const record = checkExpiry({
      target: name,
      holds: plan.expiryHolds,
      connections,
      durationSeconds: EXPIRY_RUN_SECONDS,
      quiet: { rps: quiet.rps, p99: quiet.latency?.p99 ?? null, errors: quiet.errors, non2xx: quiet.non2xx },
      expiring: {
        rps: expiring.rps,
        p99: expiring.latency?.p99 ?? null,
        errors: expiring.errors,
        non2xx: expiring.non2xx,
      },
      clearedAfterMs: clearedAt === null ? null : Math.max(0, clearedAt - expiresAt),
      after,
      p99Factor: 2,
      clearLimitMs: 1_000,
    });
    log(
      `expiry: p99 ${record.quiet.p99?.toFixed(1)} ms without, ${record.expiring.p99?.toFixed(1)} ms while ${record.holds} holds expired; ` +
        `nothing held ${record.clearedAfterMs?.toFixed(0)} ms after expiry; ${record.ok ? 'ok' : `FAILED: ${record.problems.join('; ')}`}`,
    );
    return record;
  } finally {
    await target.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Starts monolith-sqlite on `dataDir` and answers the ms from spawn until GET /api/v1/ready is 200. */
async function timeRestart(servers: BenchServers, dataDir: string): Promise<number | null> {
  const started = performance.now();
  const target = await startTarget('monolith-sqlite', { servers, initialStock: HUGE_STOCK, dataDir });
  try {
    for (;;) {
      const ready = await fetch(`${target.url}/api/v1/ready`)
        .then((r) => r.status)
        .catch(() => 0);
      if (ready === 200) return performance.now() - started;
      if (performance.now() - started > 60_000) return null;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  } finally {
    await target.stop();
  }
}

// ---- output --------------------------------------------------------------------------------------

function writeAtomically(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

function writeResults(report: BenchReport, outDir: string): string {
  const dir = resolve(ROOT, outDir);
  mkdirSync(dir, { recursive: true });
  const stamp = report.meta.startedAt.replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
  const json = `${JSON.stringify(report, null, 2)}\n`;
  writeAtomically(join(dir, `${stamp}.json`), json);
  writeAtomically(join(dir, 'latest.json'), json);
  writeAtomically(join(dir, 'latest.md'), renderMarkdown(report));
  writeAtomically(
    join(dir, 'latest.svg'),
    renderSvg(
      report.summary,
      `ticket-system benchmark, ${report.meta.profile} profile, ${report.meta.startedAt.slice(0, 16)}`,
    ),
  );
  return dir;
}

// ---- main ----------------------------------------------------------------------------------------

async function main(): Promise<number> {
  let plan: Plan | 'help';
  try {
    plan = parsePlan(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${error.message}\n\n${USAGE}`);
    return 2;
  }
  if (plan === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }

  const abort = new AbortController();
  const stopWith = (reason: string) => {
    if (abort.signal.aborted) return;
    log(`stopping: ${reason}`);
    abort.abort(reason);
    // Whatever happens next, the process ends: the exit handlers SIGKILL every target.
    setTimeout(() => {
      process.stderr.write('runner did not stop within 30 s of the abort; exiting\n');
      process.exit(1);
    }, 30_000).unref();
  };
  const globalTimer = setTimeout(
    () => stopWith(`global timeout of ${plan.timeoutSeconds} s`),
    plan.timeoutSeconds * 1000,
  );
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => (abort.signal.aborted ? process.exit(130) : stopWith(`${signal} received`)));
  }

  const startedAt = new Date().toISOString();
  const loadAverageAtStart = loadavg();
  log(
    `${plan.profile} profile: ${plan.targets.join(', ')}; ` +
      plan.cells.map((c) => `${c.scenario}@${c.connections} ${c.rounds}×${c.durationSeconds}s`).join(', ') +
      `; checks: ${plan.checks.join(', ') || 'none'}; global timeout ${plan.timeoutSeconds} s`,
  );

  const runs: RunRecord[] = [];
  let sellout: SelloutRecord[] = [];
  let memory: MemoryRecord | null = null;
  let expiry: ExpiryRecord | null = null;
  let failure: string | null = null;
  const workDir = mkdtempSync(join(tmpdir(), 'ticket-bench-'));
  try {
    ensureBundle(plan.rebuild);
    const servers = await buildBenchServers(workDir);
    const startAll = (initialStock: number) => startTargets(plan.targets, { servers, initialStock });
    // Both sets start at once (start-up is most of a sell-out's time); the sell-out set idles until its turn.
    if (plan.cells.length > 0 || plan.checks.includes('sellout')) {
      log(
        `starting ${plan.targets.join(', ')}${plan.checks.includes('sellout') ? ' (and a fresh set for the sell-out check)' : ''}`,
      );
    }
    const [measured, sellingOut] = await Promise.all([
      plan.cells.length > 0 ? startAll(HUGE_STOCK) : [],
      plan.checks.includes('sellout') ? startAll(plan.selloutStock) : [],
    ]);
    try {
      if (measured.length > 0) await measure(plan, measured, abort.signal, runs);
      await Promise.all(measured.map((t) => t.stop()));
      if (sellingOut.length > 0 && !abort.signal.aborted) sellout = await selloutCheck(plan, sellingOut, abort.signal);
    } finally {
      await Promise.all([...measured, ...sellingOut].map((t) => t.stop()));
    }
    if (plan.checks.includes('memory') && !abort.signal.aborted)
      memory = await memoryCheck(plan, servers, abort.signal);
    if (plan.checks.includes('expiry') && !abort.signal.aborted)
      expiry = await expiryCheck(plan, servers, abort.signal);
  } catch (error) {
    failure = error instanceof Error ? error.message : String(error);
    log(`failed: ${failure}`);
  } finally {
    clearTimeout(globalTimer);
    rmSync(workDir, { recursive: true, force: true });
  }

  const aborted = failure ?? (abort.signal.aborted ? String(abort.signal.reason) : null);
  const report: BenchReport = {
    meta: {
      startedAt,
      finishedAt: new Date().toISOString(),
      profile: plan.profile,
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model.trim() ?? 'unknown CPU',
      loadAverageAtStart: loadAverageAtStart.map((n) => round(n)),
      loadAverageAtEnd: loadavg().map((n) => round(n)),
      commit: gitDescribe(),
      bundle: BUNDLE,
      aborted,
    },
    plan,
    runs,
    summary: summarize(runs, plan.cells, plan.targets),
    sellout,
    memory,
    expiry,
    ok: false,
  };
  report.ok =
    aborted === null &&
    runs.every((r) => r.stock === null || r.stock.ok) &&
    sellout.every((s) => s.ok) &&
    (memory === null || memory.ok) &&
    (expiry === null || expiry.ok);

  const dir = writeResults(report, plan.outDir);
  if (report.summary.length > 0) process.stdout.write(`\n${renderTables(report.summary)}\n\n`);
  log(
    `results in ${dir}/latest.{md,json,svg}; ${report.ok ? 'every check passed' : 'SOME CHECKS FAILED or the run was incomplete (see latest.md)'}`,
  );
  return report.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
