/**
 * The k6 scripts, checked without k6 (it is not installable here):
 *
 * - each parses as an ES module, imports only k6 modules, and reads
 *   VU_BASE_URL, VU_VACANCY_URL and QTY with the 1.0.0 defaults;
 * - each exports `options` whose thresholds are non-empty, well-formed and
 *   name metrics that exist, and whose scenarios run functions it exports;
 * - every http call names an endpoint (method and path) of the service its
 *   base URL points at, in that service's OpenAPI document and the monolith's;
 * - each is run in a sandbox with a stand-in k6 runtime, and the requests it
 *   makes are replayed against the real apps (ticket → vacancy in process):
 *   every answer is 2xx and every k6 check in the script passes on it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.ts';
import { parseConfig } from '../../src/config.ts';
import { buildDependencies, type BuiltDependencies } from '../../src/dependencies.ts';

const DIR = new URL('./', import.meta.url);
const SCRIPTS = ['load.js', 'stress.js', 'autoscaling.js', 'arrival-rate.js'];

const ENV_DEFAULTS: Record<string, string> = {
  VU_BASE_URL: 'http://localhost:8002',
  VU_VACANCY_URL: 'http://localhost:8001',
  QTY: '1',
};
/** Which service each base-URL variable points at. */
const SERVICE_OF_ENV: Record<string, 'ticket' | 'vacancy'> = { VU_BASE_URL: 'ticket', VU_VACANCY_URL: 'vacancy' };

const EXECUTORS = [
  'shared-iterations',
  'per-vu-iterations',
  'constant-vus',
  'ramping-vus',
  'constant-arrival-rate',
  'ramping-arrival-rate',
  'externally-controlled',
];

type MetricType = 'counter' | 'gauge' | 'rate' | 'trend';
const BUILTIN_METRICS: Record<string, MetricType> = {
  checks: 'rate',
  data_received: 'counter',
  data_sent: 'counter',
  dropped_iterations: 'counter',
  group_duration: 'trend',
  http_req_blocked: 'trend',
  http_req_connecting: 'trend',
  http_req_duration: 'trend',
  http_req_failed: 'rate',
  http_req_receiving: 'trend',
  http_req_sending: 'trend',
  http_req_tls_handshaking: 'trend',
  http_req_waiting: 'trend',
  http_reqs: 'counter',
  iteration_duration: 'trend',
  iterations: 'counter',
  vus: 'gauge',
  vus_max: 'gauge',
};
/** The aggregations k6 allows in a threshold, per metric type. */
const AGGREGATIONS: Record<MetricType, RegExp> = {
  counter: /^(count|rate)$/,
  gauge: /^value$/,
  rate: /^rate$/,
  trend: /^(avg|min|max|med|p\(\d+(\.\d+)?\))$/,
};
const THRESHOLD = /^\s*(\w+|p\(\d+(?:\.\d+)?\))\s*(<=|>=|<|>|===|==|!=)\s*-?\d+(\.\d+)?\s*$/;

// ---- static analysis ---------------------------------------------------------------------------

interface HttpCall {
  method: string;
  /** The env variable of the base URL the call is made against, e.g. VU_BASE_URL. */
  env: string;
  path: string;
  line: number;
}

interface Analysis {
  syntaxErrors: string[];
  isModule: boolean;
  imports: string[];
  requireCalls: number;
  /** `__ENV.X || 'default'` reads: X → default (null when read without a default). */
  envReads: Map<string, string | null>;
  httpCalls: HttpCall[];
  /** http calls whose URL could not be read statically, with their source text. */
  unreadableCalls: string[];
}

function analyse(name: string, source: string): Analysis {
  const { diagnostics = [] } = ts.transpileModule(source, {
    fileName: name,
    reportDiagnostics: true,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, allowJs: true },
  });
  const file = ts.createSourceFile(name, source, ts.ScriptTarget.ES2022, true, ts.ScriptKind.JS);
  const line = (node: ts.Node) => file.getLineAndCharacterOfPosition(node.getStart()).line + 1;
  const result: Analysis = {
    syntaxErrors: diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')),
    isModule: file.statements.some(
      (s) => ts.isImportDeclaration(s) || ts.isExportAssignment(s) || ts.isExportDeclaration(s),
    ),
    imports: [],
    requireCalls: 0,
    envReads: new Map(),
    httpCalls: [],
    unreadableCalls: [],
  };

  // The local name of k6/http's default import, and which env variable each top-level constant reads.
  let httpName = 'http';
  const envOfConstant = new Map<string, string>();
  for (const statement of file.statements) {
    if (ts.isImportDeclaration(statement) && ts.isStringLiteral(statement.moduleSpecifier)) {
      result.imports.push(statement.moduleSpecifier.text);
      if (statement.moduleSpecifier.text === 'k6/http' && statement.importClause?.name)
        httpName = statement.importClause.name.text;
    }
    if (ts.isVariableStatement(statement)) {
      for (const declaration of statement.declarationList.declarations) {
        const env = declaration.initializer?.getText().match(/__ENV\.(\w+)/);
        if (ts.isIdentifier(declaration.name) && env?.[1]) envOfConstant.set(declaration.name.text, env[1]);
      }
    }
  }

  const baseAndPath = (node: ts.Expression): { base: string; path: string } | null => {
    // `${BASE_URL}/api/v1/x`
    if (ts.isTemplateExpression(node) && node.head.text === '' && node.templateSpans.length === 1) {
      const span = node.templateSpans[0] as ts.TemplateSpan;
      if (ts.isIdentifier(span.expression)) return { base: span.expression.text, path: span.literal.text };
    }
    // BASE_URL + '/api/v1/x'
    if (ts.isBinaryExpression(node) && node.operatorToken.kind === ts.SyntaxKind.PlusToken) {
      if (ts.isIdentifier(node.left) && ts.isStringLiteralLike(node.right))
        return { base: node.left.text, path: node.right.text };
    }
    return null;
  };

  const visit = (node: ts.Node) => {
    if (ts.isCallExpression(node)) {
      const callee = node.expression;
      if (ts.isIdentifier(callee) && callee.text === 'require') result.requireCalls++;
      if (callee.kind === ts.SyntaxKind.ImportKeyword) result.requireCalls++;
      if (
        ts.isPropertyAccessExpression(callee) &&
        ts.isIdentifier(callee.expression) &&
        callee.expression.text === httpName
      ) {
        const fn = callee.name.text;
        const methodOf: Record<string, string> = {
          get: 'GET',
          post: 'POST',
          put: 'PUT',
          patch: 'PATCH',
          del: 'DELETE',
          head: 'HEAD',
          options: 'OPTIONS',
        };
        let method = methodOf[fn];
        let urlArg = node.arguments[0];
        if (fn === 'request' && node.arguments[0] && ts.isStringLiteralLike(node.arguments[0])) {
          method = node.arguments[0].text.toUpperCase();
          urlArg = node.arguments[1];
        }
        const target = urlArg ? baseAndPath(urlArg) : null;
        const env = target ? envOfConstant.get(target.base) : undefined;
        if (method && target && env) result.httpCalls.push({ method, env, path: target.path, line: line(node) });
        else result.unreadableCalls.push(`line ${line(node)}: ${node.getText().slice(0, 80)}`);
      }
    }
    if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === '__ENV') {
      const parent = node.parent;
      const fallback =
        ts.isBinaryExpression(parent) &&
        parent.left === node &&
        (parent.operatorToken.kind === ts.SyntaxKind.BarBarToken ||
          parent.operatorToken.kind === ts.SyntaxKind.QuestionQuestionToken) &&
        ts.isStringLiteralLike(parent.right)
          ? parent.right.text
          : null;
      result.envReads.set(node.name.text, fallback);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return result;
}

// ---- a stand-in k6 runtime ---------------------------------------------------------------------

interface SentRequest {
  method: string;
  url: string;
  body: string | null;
  headers: Record<string, string>;
}

interface Answer {
  status: number;
  body: string;
}

interface Loaded {
  exports: Record<string, unknown>;
  metrics: Map<string, { type: MetricType; added: number[] }>;
  checks: Array<{ name: string; passed: boolean }>;
  requests: SentRequest[];
}

/**
 * Evaluates a script (transpiled to CommonJS) in a fresh context with stand-ins
 * for k6, k6/http and k6/metrics. Every http call is recorded and answered by
 * `answer`; Math.random cycles through `random` (an odd number of values, so a script drawing twice an
 * iteration still sees both sides of a branch), so runs are deterministic.
 */
function loadScript(
  source: string,
  options: { env?: Record<string, string>; answer?: (request: SentRequest) => Answer; random?: number[] } = {},
): Loaded {
  const loaded: Loaded = { exports: {}, metrics: new Map(), checks: [], requests: [] };
  const answer = options.answer ?? (() => ({ status: 200, body: '{}' }));
  const response = (a: Answer) => ({
    status: a.status,
    body: a.body,
    timings: { duration: 1 },
    json(selector?: string) {
      const value: unknown = JSON.parse(a.body);
      return selector
        ? selector.split('.').reduce<unknown>((v, key) => (v as Record<string, unknown> | undefined)?.[key], value)
        : value;
    },
  });
  const send = (method: string, url: string, body: unknown, params?: { headers?: Record<string, string> }) => {
    const request: SentRequest = {
      method,
      url,
      body: body === undefined || body === null ? null : String(body),
      headers: params?.headers ?? {},
    };
    loaded.requests.push(request);
    return response(answer(request));
  };
  const http = {
    get: (url: string, params?: object) => send('GET', url, null, params),
    post: (url: string, body?: unknown, params?: object) => send('POST', url, body, params),
    put: (url: string, body?: unknown, params?: object) => send('PUT', url, body, params),
    patch: (url: string, body?: unknown, params?: object) => send('PATCH', url, body, params),
    del: (url: string, body?: unknown, params?: object) => send('DELETE', url, body, params),
    request: (method: string, url: string, body?: unknown, params?: object) =>
      send(method.toUpperCase(), url, body, params),
  };
  const metric = (type: MetricType) =>
    class {
      readonly name: string;
      constructor(name: string) {
        this.name = name;
        loaded.metrics.set(name, { type, added: [] });
      }
      add(value: number | boolean) {
        loaded.metrics.get(this.name)?.added.push(Number(value));
      }
    };
  const k6 = {
    check(value: unknown, sets: Record<string, (v: unknown) => unknown>) {
      let all = true;
      for (const [name, predicate] of Object.entries(sets)) {
        const passed = Boolean(predicate(value));
        loaded.checks.push({ name, passed });
        all &&= passed;
      }
      return all;
    },
    sleep() {},
    group(_name: string, fn: () => unknown) {
      return fn();
    },
  };
  const modules: Record<string, unknown> = {
    k6: { __esModule: true, default: k6, ...k6 },
    'k6/http': { __esModule: true, default: http, ...http },
    'k6/metrics': {
      __esModule: true,
      Counter: metric('counter'),
      Gauge: metric('gauge'),
      Rate: metric('rate'),
      Trend: metric('trend'),
    },
  };
  const random = options.random ?? [0.25, 0.75, 0.5];
  let draws = 0;
  const module = { exports: loaded.exports };
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  });
  runInNewContext(outputText, {
    module,
    exports: module.exports,
    require: (specifier: string) => {
      if (!(specifier in modules)) throw new Error(`the k6 stand-in has no module ${specifier}`);
      return modules[specifier];
    },
    __ENV: { ...options.env },
    __VU: 1,
    __ITER: 0,
    Math: Object.assign(Object.create(Math) as Math, { random: () => random[draws++ % random.length] as number }),
    console,
  });
  loaded.exports = module.exports;
  return loaded;
}

interface K6Options {
  scenarios?: Record<string, { executor?: string; exec?: string }>;
  thresholds?: Record<string, Array<string | { threshold: string }>>;
}

/** Three iterations of each function: with Math.random cycling over three values, every branch runs. */
function runIterations(loaded: Loaded, names: readonly string[]): void {
  for (const exec of names) for (let i = 0; i < 3; i++) (loaded.exports[exec] as () => void)();
}

/** The functions the script's scenarios run (the default export when it has no scenarios). */
function execNames(options: K6Options): string[] {
  const scenarios = Object.values(options.scenarios ?? {});
  if (scenarios.length === 0) return ['default'];
  return [...new Set(scenarios.map((s) => s.exec ?? 'default'))];
}

// ---- the apps the requests are replayed against ------------------------------------------------

type Service = 'ticket' | 'vacancy' | 'monolith';
const apps = {} as Record<Service, ReturnType<typeof createApp>>;
const openApiPaths = {} as Record<Service, Record<string, Record<string, unknown>>>;
const closers: BuiltDependencies[] = [];

beforeAll(async () => {
  const vacancyDeps = await buildDependencies(
    parseConfig({ MODE: 'vacancy', STOCK_STORE: 'memory', INITIAL_STOCK: '1000' }),
  );
  apps.vacancy = createApp(vacancyDeps);
  // The ticket service reaches this vacancy app in process: its fetch is the vacancy app's request().
  const ticketDeps = await buildDependencies(
    parseConfig({ MODE: 'ticket', VACANCY_URL: 'http://vacancy.internal:8001' }),
    {
      fetch: (input, init) => Promise.resolve(apps.vacancy.request(input, init)),
    },
  );
  apps.ticket = createApp(ticketDeps);
  const monolithDeps = await buildDependencies(parseConfig({ MODE: 'monolith', STOCK_STORE: 'memory' }));
  apps.monolith = createApp(monolithDeps);
  closers.push(ticketDeps, vacancyDeps, monolithDeps);
  for (const service of ['ticket', 'vacancy', 'monolith'] as const) {
    const doc = (await (await apps[service].request('/openapi.json')).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    openApiPaths[service] = doc.paths;
  }
});

afterAll(async () => {
  for (const deps of closers) await deps.close();
});

/** Sends a recorded request to the app behind its origin (the default URLs: 8002 ticket, 8001 vacancy). */
async function replay(request: SentRequest): Promise<Answer> {
  const url = new URL(request.url);
  const service: Service | undefined = { '8002': 'ticket' as const, '8001': 'vacancy' as const }[url.port];
  if (!service) throw new Error(`no app behind ${request.url}`);
  const response = await apps[service].request(url.pathname + url.search, {
    method: request.method,
    headers: request.headers,
    ...(request.body === null ? {} : { body: request.body }),
  });
  return { status: response.status, body: await response.text() };
}

// ---- the tests ---------------------------------------------------------------------------------

it('checks every k6 script in bench/k6', () => {
  const onDisk = readdirSync(DIR).filter((name) => name.endsWith('.js'));
  expect(onDisk.sort()).toEqual([...SCRIPTS].sort());
});

describe.each(SCRIPTS)('bench/k6/%s', (name) => {
  const source = readFileSync(new URL(name, DIR), 'utf8');
  const analysis = analyse(name, source);

  it('parses as an ES module that imports only k6 modules', () => {
    expect(analysis.syntaxErrors).toEqual([]);
    expect(analysis.isModule).toBe(true);
    expect(analysis.imports).toContain('k6/http');
    for (const specifier of analysis.imports) expect(specifier).toMatch(/^k6(\/[\w-]+)*$/);
    expect(analysis.requireCalls, 'require() or dynamic import()').toBe(0);
  });

  it('reads VU_BASE_URL, VU_VACANCY_URL and QTY with the 1.0.0 defaults', () => {
    for (const [variable, fallback] of Object.entries(ENV_DEFAULTS)) {
      expect(analysis.envReads.has(variable), `reads __ENV.${variable}`).toBe(true);
      expect(analysis.envReads.get(variable), `__ENV.${variable} defaults to ${fallback}`).toBe(fallback);
    }
  });

  it('exports options with well-formed thresholds on metrics that exist, and the functions its scenarios run', () => {
    const { exports, metrics } = loadScript(source);
    const options = exports.options as K6Options | undefined;
    expect(options, 'export const options').toBeTypeOf('object');
    const thresholds = Object.entries(options?.thresholds ?? {});
    expect(thresholds.length, 'thresholds').toBeGreaterThan(0);
    for (const [key, rules] of thresholds) {
      const metricName = key.replace(/\{.*\}$/, '');
      const type = BUILTIN_METRICS[metricName] ?? metrics.get(metricName)?.type;
      expect(type, `threshold on ${key}: a built-in metric or one the script creates`).toBeDefined();
      expect(Array.isArray(rules) && rules.length > 0, `threshold ${key} has rules`).toBe(true);
      for (const rule of rules) {
        const expression = typeof rule === 'string' ? rule : rule.threshold;
        const match = THRESHOLD.exec(expression);
        expect(match, `threshold ${key}: "${expression}"`).not.toBeNull();
        expect(match?.[1], `threshold ${key}: "${expression}" on a ${type}`).toMatch(AGGREGATIONS[type as MetricType]);
      }
    }
    for (const [scenario, settings] of Object.entries(options?.scenarios ?? {})) {
      expect(EXECUTORS, `scenario ${scenario} executor`).toContain(settings.executor);
    }
    for (const exec of execNames(options ?? {})) {
      expect(exports[exec], `exported function ${exec}`).toBeTypeOf('function');
    }
  });

  it('calls only endpoints the services document in their OpenAPI', () => {
    expect(analysis.unreadableCalls, 'http calls must be `${BASE}/path` with BASE from __ENV').toEqual([]);
    expect(analysis.httpCalls.length).toBeGreaterThan(0);
    for (const call of analysis.httpCalls) {
      const where = `line ${call.line}: ${call.method} ${call.path} on ${call.env}`;
      expect(call.path, where).toMatch(/^\/api\/v1\//);
      const service = SERVICE_OF_ENV[call.env];
      expect(service, `${where}: a base URL from VU_BASE_URL or VU_VACANCY_URL`).toBeDefined();
      expect(
        openApiPaths[service as 'ticket' | 'vacancy'][call.path]?.[call.method.toLowerCase()],
        `${where}: in ${service}'s OpenAPI`,
      ).toBeDefined();
      expect(
        openApiPaths.monolith[call.path]?.[call.method.toLowerCase()],
        `${where}: in the monolith's OpenAPI`,
      ).toBeDefined();
    }
  });

  it('makes requests the services answer with 2xx, and every k6 check in it passes on those answers', async () => {
    const dryRun = loadScript(source);
    const names = execNames(dryRun.exports.options as K6Options);
    runIterations(dryRun, names);
    // The run went through every http call in the script (both sides of a Math.random branch too).
    const made = new Set(dryRun.requests.map((r) => `${r.method} ${r.url}`));
    for (const call of analysis.httpCalls)
      expect(made).toContain(`${call.method} ${ENV_DEFAULTS[call.env]}${call.path}`);

    const answers: Answer[] = [];
    for (const request of dryRun.requests) {
      const answer = await replay(request);
      expect(answer.status, `${request.method} ${request.url}: ${answer.body}`).toBeGreaterThanOrEqual(200);
      expect(answer.status, `${request.method} ${request.url}: ${answer.body}`).toBeLessThan(300);
      answers.push(answer);
    }

    // The same calls again, now answered with what the services said.
    let next = 0;
    const run = loadScript(source, {
      answer: (request) => {
        const expected = dryRun.requests[next];
        expect(`${request.method} ${request.url}`).toBe(`${expected?.method} ${expected?.url}`);
        return answers[next++] as Answer;
      },
    });
    runIterations(run, names);
    expect(run.checks.length, 'the script checks its answers').toBeGreaterThan(0);
    expect(run.checks.filter((c) => !c.passed).map((c) => c.name)).toEqual([]);
    const purchases = run.requests.filter((r) => r.url.endsWith('/api/v1/purchase')).length;
    const sales = run.metrics.get('purchase_success')?.added.reduce((a, b) => a + b, 0) ?? 0;
    if (purchases > 0 && run.metrics.has('purchase_success'))
      expect(sales, 'purchase_success counts the sales').toBe(purchases);
  });

  it('sends purchases of QTY tickets as JSON to VU_BASE_URL and availability checks to VU_VACANCY_URL', () => {
    const env = { VU_BASE_URL: 'http://ticket.example:9002', VU_VACANCY_URL: 'http://vacancy.example:9001', QTY: '3' };
    const run = loadScript(source, {
      env,
      answer: () => ({ status: 200, body: '{"success":true,"remaining":1,"qty":1}' }),
    });
    runIterations(run, execNames(run.exports.options as K6Options));
    for (const request of run.requests) {
      if (request.url.endsWith('/api/v1/purchase')) {
        expect(request.url).toBe('http://ticket.example:9002/api/v1/purchase');
        expect(JSON.parse(request.body ?? 'null')).toEqual({ qty: 3 });
        expect(request.headers['Content-Type']).toBe('application/json');
      } else {
        expect(request.url).toBe('http://vacancy.example:9001/api/v1/available');
      }
    }
    expect(run.requests.some((r) => r.url.endsWith('/api/v1/purchase'))).toBe(true);
  });
});
