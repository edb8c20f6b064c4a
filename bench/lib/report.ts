/**
 * The human-readable results: a markdown report (one table per scenario and
 * connection count, then the checks) and a hand-written SVG chart
 * (throughput and p99 against connections, one line per target).
 * Pure string building, so bench/run.test.ts checks both from fixed inputs.
 */
import { SCENARIOS, TARGETS, type TargetName } from './plan.ts';
import type { BenchReport, CellSummary, TargetSummary } from './results.ts';

const fixed = (value: number | null, digits = 2) => (value === null ? '–' : value.toFixed(digits));

/** "81" for one process, "62 + 58" for micro's ticket + vacancy; "–" when unknown. */
export function formatRss(peakRssMb: Record<string, number | null>): string {
  const values = Object.values(peakRssMb);
  if (values.length === 0 || values.every((v) => v === null)) return '–';
  return values.map((v) => fixed(v, 0)).join(' + ');
}

function tableRow(cells: readonly (string | number)[]): string {
  return `| ${cells.join(' | ')} |`;
}

/**
 * The markdown table of one cell: target, req/s, ratio, p50, p95, p99, errors, non-2xx, peak RSS MB,
 * CPU µs per request and the CPU ratio.
 */
export function renderCellTable(cell: CellSummary): string {
  const lines = [
    tableRow([
      'target',
      'req/s',
      'ratio',
      'p50 ms',
      'p95 ms',
      'p99 ms',
      'errors',
      'non-2xx',
      'peak RSS MB',
      'CPU µs/req',
      'CPU ratio',
    ]),
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const t of cell.targets) {
    const errors = t.timeouts > 0 ? `${t.errors} (${t.timeouts} timeouts)` : String(t.errors);
    const stock = t.stockOk === false ? ' ⚠ stock check failed' : '';
    lines.push(
      tableRow([
        t.target + stock,
        fixed(t.rps, 0),
        fixed(t.ratio),
        fixed(t.p50),
        fixed(t.p95),
        fixed(t.p99),
        errors,
        t.non2xx,
        formatRss(t.peakRssMb),
        fixed(t.cpuUsPerRequest, 0),
        fixed(t.cpuRatio),
      ]),
    );
  }
  return lines.join('\n');
}

function cellHeading(cell: CellSummary): string {
  const rounds = cell.rounds === 1 ? '1 pass' : `${cell.rounds} rounds`;
  return `### ${cell.scenario}, ${cell.connections} connections (${rounds} × ${cell.durationSeconds} s)`;
}

/** Just the tables (what the runner prints at the end). */
export function renderTables(summary: readonly CellSummary[]): string {
  return summary.map((cell) => `${cellHeading(cell)}\n\n${renderCellTable(cell)}`).join('\n\n');
}

/**
 * The events API against the 1.0.0 purchase on the same target and connections: event and zipf req/s as a
 * share of purchase req/s (medians over rounds), and the CPU a ticket costs through a hold and its
 * confirmation (two requests) against one direct event purchase. Empty when the run had no such cells.
 */
export function renderEventsComparison(summary: readonly CellSummary[]): string {
  const find = (scenario: string, connections: number, target: TargetName) =>
    summary
      .find((c) => c.scenario === scenario && c.connections === connections)
      ?.targets.find((t) => t.target === target);
  const share = (part: number | null | undefined, whole: number | null | undefined) =>
    part == null || whole == null || whole === 0 ? null : part / whole;
  const rows: string[] = [];
  const eventCells = summary.filter(
    (c) => c.scenario === 'event' || c.scenario === 'zipf' || c.scenario === 'checkout',
  );
  const keys = new Set(eventCells.flatMap((c) => c.targets.map((t) => `${c.connections}\u0000${t.target}`)));
  for (const key of keys) {
    const [connectionsText, target] = key.split('\u0000') as [string, TargetName];
    const connections = Number(connectionsText);
    const purchase = find('purchase', connections, target);
    const event = find('event', connections, target);
    const zipf = find('zipf', connections, target);
    const checkout = find('checkout', connections, target);
    const eventCpu = event?.cpuUsPerRequest ?? null;
    const checkoutCpu = checkout?.cpuUsPerRequest == null ? null : checkout.cpuUsPerRequest * 2;
    rows.push(
      tableRow([
        target,
        connections,
        fixed(purchase?.rps ?? null, 0),
        fixed(event?.rps ?? null, 0),
        fixed(share(event?.rps, purchase?.rps)),
        fixed(zipf?.rps ?? null, 0),
        fixed(share(zipf?.rps, purchase?.rps)),
        fixed(eventCpu, 0),
        fixed(checkoutCpu, 0),
        fixed(share(checkoutCpu, eventCpu)),
      ]),
    );
  }
  if (rows.length === 0) return '';
  return [
    '### Events API against the 1.0.0 purchase',
    '',
    'Medians over rounds of the same run. event ÷ purchase and zipf ÷ purchase: req/s of one-item purchases through ' +
      '`/events/{id}/purchase` (one event; 10,000 events picked by Zipf, s = 1) over req/s of `/purchase`; ' +
      'checkout: a hold and its confirmation, two requests a ticket, so CPU µs per ticket is twice the CPU µs per request.',
    '',
    tableRow([
      'target',
      'connections',
      'purchase req/s',
      'event req/s',
      'event ÷ purchase',
      'zipf req/s',
      'zipf ÷ purchase',
      'event CPU µs/ticket',
      'checkout CPU µs/ticket',
      'checkout ÷ event',
    ]),
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
    ...rows,
  ].join('\n');
}

/** The whole markdown report: context, the tables, and the correctness checks. */
export function renderMarkdown(report: BenchReport): string {
  const { meta } = report;
  const out: string[] = [];
  out.push(`# ticket-system benchmark (${meta.profile} profile)`);
  out.push('');
  out.push(
    `${meta.startedAt} · node ${meta.node} · ${meta.cpus} × ${meta.cpuModel} · load average at start ` +
      `${meta.loadAverageAtStart.map((n) => n.toFixed(2)).join(' ')}, at end ${meta.loadAverageAtEnd.map((n) => n.toFixed(2)).join(' ')}` +
      (meta.commit ? ` · commit ${meta.commit}` : ''),
  );
  if (meta.aborted) out.push('', `**Incomplete: ${meta.aborted}**`);
  out.push('');
  out.push(
    'Closed-loop load from autocannon running in the runner’s own process on the same machine as the targets, ' +
      'so the figures compare targets with each other in the same run, not with other machines. ' +
      'Each round runs every target once, in an order rotated per round. ' +
      'req/s, p50/p95/p99: medians over rounds; ratio: median of the per-round ratios of the target’s req/s to the baseline’s ' +
      '(a plain node:http server doing the same JSON work); errors (timeouts included) and non-2xx: summed over rounds; ' +
      'peak RSS: the highest VmHWM of a run (micro: ticket + vacancy); ' +
      'CPU µs/req: CPU time of the target’s processes (all threads, user and system; micro: both) per answered request, ' +
      'median over rounds; CPU ratio: median of the per-round ratios of the baseline’s CPU µs/req to the target’s, ' +
      'which does not depend on how the target and the load generator shared the cores.',
  );
  out.push('');
  out.push(renderTables(report.summary));
  const events = renderEventsComparison(report.summary);
  if (events) out.push('', events);
  out.push('');
  out.push('## Checks');
  out.push('');

  const stockRuns = report.runs.filter((r) => r.stock !== null);
  const failed = stockRuns.filter((r) => !r.stock?.ok);
  const unanswered = stockRuns.reduce((max, r) => Math.max(max, r.stock?.unanswered ?? 0), 0);
  if (stockRuns.length > 0) {
    out.push(
      `**Stock invariant** after every run that sold tickets (sold + remaining = initial stock; every successful answer is a sale; ` +
        `a sale without an answer only for a request still in flight when the run closed its connections): ` +
        `${stockRuns.length - failed.length}/${stockRuns.length} runs ok (at most ${unanswered} sales in flight at a run's end).`,
    );
  }
  for (const run of failed) {
    out.push(
      `- FAILED ${run.target}, ${run.scenario} at ${run.connections} connections, round ${run.round + 1}: ${run.stock?.problems.join('; ')}`,
    );
  }

  if (report.sellout.length > 0) {
    const first = report.sellout[0];
    out.push('');
    out.push(
      `**Sell-out**: fresh targets with ${first?.initialStock} tickets get ${first?.requests} purchases of 1 at ` +
        `${first?.connections} connections; exactly the stock must sell and be answered as sold, the rest answered ` +
        '"Insufficient inventory", nothing left.',
    );
    out.push('');
    out.push(
      tableRow([
        'target',
        'sold',
        'success answers',
        'refused answers',
        'remaining',
        'available',
        'errors',
        'non-2xx',
        'result',
      ]),
    );
    out.push('|---|--:|--:|--:|--:|--:|--:|--:|---|');
    for (const s of report.sellout) {
      out.push(
        tableRow([
          s.target,
          s.after?.sold ?? '–',
          s.succeeded,
          s.refused,
          s.after?.remaining ?? '–',
          s.availableAfter ?? '–',
          s.errors,
          s.non2xx,
          s.ok ? 'ok' : `FAILED: ${s.problems.join('; ')}`,
        ]),
      );
    }
  }

  if (report.memory) {
    const m = report.memory;
    out.push('');
    out.push(
      `**Memory**: ${m.requests.toLocaleString('en-US')} purchases, each with a new Idempotency-Key, against ${m.target} ` +
        `at ${m.connections} connections; peak RSS must stay under ${m.limitMb} MB, and after a kill -9 the ` +
        `service must be ready again within ${m.restartLimitMs} ms.`,
    );
    out.push('');
    out.push(
      tableRow([
        'requests',
        'req/s',
        'sold',
        'idempotency keys held',
        'errors',
        'non-2xx',
        'peak RSS MB',
        'ready after restart, ms',
        'result',
      ]),
    );
    out.push('|--:|--:|--:|--:|--:|--:|--:|--:|---|');
    out.push(
      tableRow([
        m.requests,
        fixed(m.rps, 0),
        m.sold ?? '–',
        m.idempotencyKeys ?? '–',
        m.errors,
        m.non2xx,
        fixed(m.peakRssMb, 1),
        fixed(m.restartReadyMs, 0),
        m.ok ? 'ok' : `FAILED: ${m.problems.join('; ')}`,
      ]),
    );
  }

  if (report.expiry) {
    const e = report.expiry;
    out.push('');
    out.push(
      `**Expiry**: ${e.holds.toLocaleString('en-US')} holds of the bench event on ${e.target}, all expiring at the same ` +
        `millisecond, during ${e.durationSeconds} s of one-item purchases of that event at ${e.connections} connections; ` +
        `the p99 must stay within ${e.p99Factor}× that of the same load without expiries, and the expired tickets ` +
        `must be back on sale within ${e.clearLimitMs} ms.`,
    );
    out.push('');
    out.push(
      tableRow([
        'req/s without',
        'p99 ms without',
        'req/s expiring',
        'p99 ms expiring',
        'p99 ratio',
        'back on sale after, ms',
        'result',
      ]),
    );
    out.push('|--:|--:|--:|--:|--:|--:|---|');
    out.push(
      tableRow([
        fixed(e.quiet.rps, 0),
        fixed(e.quiet.p99),
        fixed(e.expiring.rps, 0),
        fixed(e.expiring.p99),
        fixed(e.quiet.p99 && e.expiring.p99 !== null ? e.expiring.p99 / e.quiet.p99 : null),
        fixed(e.clearedAfterMs, 0),
        e.ok ? 'ok' : `FAILED: ${e.problems.join('; ')}`,
      ]),
    );
  }

  out.push('');
  out.push(
    'For orientation only: ticket-system 1.0.0 (Python) reported p95 10.75 ms and 197.86 req/s with k6 at 100 virtual users ' +
      '(open-ended VUs with pauses, on other hardware); the k6 scripts in bench/k6/ replay that load against this service.',
  );
  out.push('');
  return out.join('\n');
}

// ---- SVG --------------------------------------------------------------------------------------

const COLORS: Record<TargetName, string> = {
  baseline: '#7f7f7f',
  'hono-floor': '#bcbd22',
  'monolith-memory': '#1f77b4',
  'monolith-sqlite': '#ff7f0e',
  micro: '#2ca02c',
  'monolith-deno': '#9467bd',
  'monolith-bun': '#d62728',
  'monolith-no-metrics': '#17becf',
  'monolith-redis': '#8c564b',
  'monolith-redis-wait': '#e377c2',
};

/** Escapes text for XML content and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] as string,
  );
}

/** The smallest 1, 2, 2.5 or 5 × 10^k at or above `value` (an axis maximum); 1 for nothing positive. */
export function niceCeiling(value: number): number {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= value * (1 - 1e-12)) return step * power;
  }
  return 10 * power;
}

const fmt = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(2).replace(/\.?0+$/, ''));

interface Panel {
  title: string;
  unit: string;
  connections: number[];
  lines: Array<{ target: TargetName; points: Array<{ connections: number; value: number }> }>;
}

function renderPanel(panel: Panel, x0: number, y0: number, width: number, height: number): string {
  const pad = { left: 64, right: 16, top: 28, bottom: 40 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const left = x0 + pad.left;
  const top = y0 + pad.top;
  const max = niceCeiling(Math.max(0, ...panel.lines.flatMap((l) => l.points.map((p) => p.value))));
  const logs = panel.connections.map((c) => Math.log10(c));
  const minLog = Math.min(...logs);
  const spanLog = Math.max(...logs) - minLog;
  const xOf = (connections: number) =>
    spanLog === 0 ? left + plotW / 2 : left + ((Math.log10(connections) - minLog) / spanLog) * plotW;
  const yOf = (value: number) => top + plotH - (value / max) * plotH;

  const parts: string[] = [];
  parts.push(`<g class="panel">`);
  parts.push(
    `<text x="${x0 + width / 2}" y="${y0 + 16}" text-anchor="middle" font-weight="bold">${escapeXml(panel.title)}</text>`,
  );
  for (let i = 0; i <= 4; i++) {
    const value = (max * i) / 4;
    const y = yOf(value).toFixed(1);
    parts.push(`<line x1="${left}" y1="${y}" x2="${left + plotW}" y2="${y}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${fmt(value)}</text>`);
  }
  for (const c of panel.connections) {
    const x = xOf(c).toFixed(1);
    parts.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + plotH}" stroke="#f0f0f0"/>`);
    parts.push(`<text x="${x}" y="${top + plotH + 16}" text-anchor="middle">${c}</text>`);
  }
  parts.push(`<text x="${left + plotW / 2}" y="${top + plotH + 34}" text-anchor="middle">connections</text>`);
  parts.push(
    `<text x="${x0 + 14}" y="${top + plotH / 2}" text-anchor="middle" transform="rotate(-90 ${x0 + 14} ${top + plotH / 2})">${escapeXml(panel.unit)}</text>`,
  );
  parts.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`);
  for (const line of panel.lines) {
    if (line.points.length === 0) continue;
    const color = COLORS[line.target];
    const points = line.points.map((p) => `${xOf(p.connections).toFixed(1)},${yOf(p.value).toFixed(1)}`);
    parts.push(
      `<polyline data-target="${line.target}" fill="none" stroke="${color}" stroke-width="2" points="${points.join(' ')}"/>`,
    );
    for (const p of line.points) {
      parts.push(
        `<circle cx="${xOf(p.connections).toFixed(1)}" cy="${yOf(p.value).toFixed(1)}" r="3.5" fill="${color}">` +
          `<title>${escapeXml(`${line.target}, ${p.connections} connections: ${fmt(Number(p.value.toFixed(2)))} ${panel.unit}`)}</title></circle>`,
      );
    }
  }
  parts.push(`</g>`);
  return parts.join('\n');
}

/**
 * Throughput and p99 against connections, one line per target, one row of two
 * panels per scenario. The x axis is logarithmic over the connection counts measured.
 */
export function renderSvg(summary: readonly CellSummary[], title: string): string {
  const scenarios = SCENARIOS.filter((s) => summary.some((cell) => cell.scenario === s));
  const targets = TARGETS.filter((t) => summary.some((cell) => cell.targets.some((x) => x.target === t)));
  const width = 960;
  const panelW = width / 2;
  const panelH = 280;
  const headerH = 64;
  const height = headerH + Math.max(1, scenarios.length) * panelH + 8;

  const panelFor = (scenario: string, pick: (t: TargetSummary) => number | null, what: string, unit: string): Panel => {
    const cells = summary.filter((c) => c.scenario === scenario).sort((a, b) => a.connections - b.connections);
    return {
      title: `${scenario}: ${what}`,
      unit,
      connections: [...new Set(cells.map((c) => c.connections))],
      lines: targets.map((target) => ({
        target,
        points: cells.flatMap((cell) => {
          const t = cell.targets.find((x) => x.target === target);
          const value = t ? pick(t) : null;
          return value === null ? [] : [{ connections: cell.connections, value }];
        }),
      })),
    };
  };

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `font-family="sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  parts.push(
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
  );
  const legendW = 150;
  const legendX = (width - targets.length * legendW) / 2;
  targets.forEach((target, i) => {
    const x = legendX + i * legendW;
    parts.push(`<line x1="${x}" y1="44" x2="${x + 24}" y2="44" stroke="${COLORS[target]}" stroke-width="3"/>`);
    parts.push(`<text x="${x + 30}" y="44" dominant-baseline="middle">${escapeXml(target)}</text>`);
  });
  scenarios.forEach((scenario, row) => {
    const y = headerH + row * panelH;
    parts.push(
      renderPanel(
        panelFor(scenario, (t) => t.rps, 'throughput', 'req/s'),
        0,
        y,
        panelW,
        panelH,
      ),
    );
    parts.push(
      renderPanel(
        panelFor(scenario, (t) => t.p99, 'p99 latency', 'ms'),
        panelW,
        y,
        panelW,
        panelH,
      ),
    );
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
