/**
 * Reading the deployment files for tests: compose.yaml (with Compose's
 * `${VAR:-default}` interpolation and `<<` merges), dotenv files, and the app
 * each MODE builds (to ask whether a probe path exists). The Containerfile is
 * read by the engine that builds it (test/support/containers.ts), the
 * Kubernetes overlays by `kubectl kustomize` (test/support/kubernetes.ts).
 *
 * @example
 * const compose = loadCompose({ INTERNAL_TOKEN: 'x'.repeat(24) });
 * environmentOf(compose.services.ticket); // { MODE: 'ticket', PORT: '8002', ... }
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { createApp } from '../../src/app.ts';
import { configSchema, parseConfig } from '../../src/config.ts';
import { buildDependencies } from '../../src/dependencies.ts';

export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const fromRoot = (...parts: string[]) => resolve(ROOT, ...parts);

export const PACKAGE = JSON.parse(readFileSync(fromRoot('package.json'), 'utf8')) as {
  name: string;
  version: string;
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** Every environment variable the program reads. */
export const CONFIG_KEYS: ReadonlySet<string> = new Set(Object.keys(configSchema.shape));

/**
 * Variables a deployment may set that are not the program's configuration,
 * with why: each is read by Node itself, not by src/config.ts.
 */
export const DOCUMENTED_EXTRA_VARIABLES: Readonly<Record<string, string>> = {
  NODE_ENV: 'read by libraries; production is the only value used',
  NODE_OPTIONS: 'flags for node itself (--enable-source-maps)',
};

export function isKnownVariable(name: string): boolean {
  return CONFIG_KEYS.has(name) || name in DOCUMENTED_EXTRA_VARIABLES;
}

// ---- dotenv --------------------------------------------------------------------------------------

/** KEY=value lines (comments and blank lines skipped, surrounding quotes removed), as Compose's env_file reads them. */
export function parseDotenv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    let value = m[2] as string;
    if (/^(["']).*\1$/.test(value)) value = value.slice(1, -1);
    env[m[1] as string] = value;
  }
  return env;
}

// ---- compose.yaml ---------------------------------------------------------------------------------

export interface ComposeService {
  image?: string;
  build?: { context?: string; dockerfile?: string; target?: string };
  command?: unknown;
  entrypoint?: unknown;
  environment?: Record<string, string | number | boolean | null> | string[];
  env_file?: Array<string | { path: string; required?: boolean }> | string;
  ports?: Array<string | { target: number; published?: string | number }>;
  expose?: Array<string | number>;
  volumes?: Array<string | { type?: string; source?: string; target: string }>;
  healthcheck?: {
    test: string[] | string;
    interval?: string;
    timeout?: string;
    retries?: number;
    start_period?: string;
  };
  depends_on?: Record<string, { condition?: string }> | string[];
  profiles?: string[];
  deploy?: { replicas?: number | string };
  networks?: Record<string, { aliases?: string[] } | null> | string[];
  stop_grace_period?: string;
  read_only?: boolean;
  [field: string]: unknown;
}

export interface ComposeFile {
  name?: string;
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

/**
 * compose.yaml with `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}` and `$$`
 * interpolated from `variables` (as Compose does from the shell and .env), anchors and `<<` merged.
 */
export function loadCompose(
  variables: Record<string, string | undefined> = {},
  file = fromRoot('compose.yaml'),
): ComposeFile {
  const document = parseDocument(readFileSync(file, 'utf8'), { merge: true, uniqueKeys: true });
  const problems = [...document.errors, ...document.warnings];
  if (problems.length > 0) throw new Error(`${file}: ${problems.map((p) => p.message).join('; ')}`);
  return interpolate(document.toJS({ maxAliasCount: 100 }), variables) as ComposeFile;
}

function interpolate(value: unknown, variables: Record<string, string | undefined>): unknown {
  if (typeof value === 'string') return interpolateString(value, variables);
  if (Array.isArray(value)) return value.map((v) => interpolate(v, variables));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, variables)]));
  }
  return value;
}

function interpolateString(text: string, variables: Record<string, string | undefined>): string {
  return text.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (whole, braced, colon, op, arg, bare) => {
      if (whole === '$$') return '$';
      const name = (braced ?? bare) as string;
      const value = variables[name];
      const missing = colon === ':' ? value === undefined || value === '' : value === undefined;
      if (op === '-') return missing ? (arg as string) : (value as string);
      if (op === '?') {
        if (missing) throw new Error(`compose: ${name} is required: ${arg as string}`);
        return value as string;
      }
      return value ?? '';
    },
  );
}

/** A service's `environment:` as a map (list form `KEY=value` too); null values (`KEY:` alone) are left out. */
export function environmentOf(service: ComposeService): Record<string, string> {
  const env: Record<string, string> = {};
  const raw = service.environment ?? {};
  if (Array.isArray(raw)) {
    for (const entry of raw) {
      const at = entry.indexOf('=');
      if (at > 0) env[entry.slice(0, at)] = entry.slice(at + 1);
    }
  } else {
    for (const [key, value] of Object.entries(raw)) if (value !== null) env[key] = String(value);
  }
  return env;
}

/** Published and container ports of a service: "8001:8001", "127.0.0.1:8001:8001", "8001", or the long form. */
export function portsOf(service: ComposeService): Array<{ published?: string; target: number }> {
  return (service.ports ?? []).map((port) => {
    if (typeof port === 'object')
      return {
        published: port.published === undefined ? undefined : String(port.published),
        target: Number(port.target),
      };
    const parts = String(port).split('/')[0]?.split(':') ?? [];
    const target = Number(parts.at(-1));
    const published = parts.length >= 2 ? parts.at(-2) : undefined;
    return { published: published === '' ? undefined : published, target };
  });
}

/** The other names a service answers to on the compose network (`networks: {default: {aliases}}`). */
export function networkAliases(service: ComposeService): string[] {
  const networks = service.networks;
  if (!networks || Array.isArray(networks)) return [];
  return Object.values(networks).flatMap((network) => network?.aliases ?? []);
}

/** Compose durations (`20s`, `1m30s`, `500ms`) in seconds. */
export function durationSeconds(text: string): number {
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s|us)/g;
  let m: RegExpExecArray | null;
  let consumed = '';
  while ((m = re.exec(text))) {
    const n = Number(m[1]);
    total += m[2] === 'h' ? n * 3600 : m[2] === 'm' ? n * 60 : m[2] === 's' ? n : m[2] === 'ms' ? n / 1000 : n / 1e6;
    consumed += m[0];
  }
  if (consumed !== text) throw new Error(`not a duration: ${JSON.stringify(text)}`);
  return total;
}

// ---- the app of a MODE ------------------------------------------------------------------------------

/** A valid stand-in for a secret in configuration that is only built, never used. */
export const DUMMY_TOKEN = 'test-token-0123456789abcdef';

/**
 * Builds the app a workload with `env` serves (store memory, vacancy unreachable and not retried:
 * nothing leaves the process) and answers whether `path` is routed: the first of GET, then POST
 * with an empty JSON body, that is not a 404.
 */
export async function routeExists(
  env: Record<string, string>,
  path: string,
): Promise<{ exists: boolean; statuses: string }> {
  const config = parseConfig({
    ...env,
    STOCK_STORE: 'memory',
    VACANCY_URL: 'http://127.0.0.1:9',
    VACANCY_RETRIES: '0',
    VACANCY_TIMEOUT: '1',
  });
  const deps = await buildDependencies(config);
  const app = createApp(deps);
  const statuses: string[] = [];
  try {
    for (const init of [
      { method: 'GET' },
      { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' },
    ]) {
      const response = await app.request(path, init);
      await response.arrayBuffer();
      statuses.push(`${init.method} ${response.status}`);
      if (response.status !== 404) return { exists: true, statuses: statuses.join(', ') };
    }
    return { exists: false, statuses: statuses.join(', ') };
  } finally {
    await deps.close();
  }
}
