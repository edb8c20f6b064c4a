import { z } from 'zod';
import { MAX_RESERVE_BATCH } from './lib/schemas.ts';

/** The three ways the program can run; each has its own default port. */
export const MODES = ['monolith', 'vacancy', 'ticket'] as const;
export type Mode = (typeof MODES)[number];

/** Where the stock actor records its decisions. */
export const STOCK_STORES = ['sqlite', 'memory', 'redis'] as const;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const integer = (min: number, max: number, what: string) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, `expected ${what}`)
    .transform(Number)
    .pipe(z.number().min(min, `expected ${what}`).max(max, `expected ${what}`));

const seconds = (what: string, max = 3600) =>
  z
    .string()
    .trim()
    .regex(/^\d+(\.\d+)?$/, `expected ${what}`)
    .transform(Number)
    .pipe(z.number().positive(`expected ${what}`).max(max, `expected ${what}`));

const secondsOrOff = (what: string, max = 3600) =>
  z
    .string()
    .trim()
    .regex(/^\d+(\.\d+)?$/, `expected ${what}`)
    .transform(Number)
    .pipe(z.number().min(0, `expected ${what}`).max(max, `expected ${what}`));

/** Variables whose values are secrets: a wrong one is named in errors, never echoed. */
const SECRET_VARIABLES = new Set(['INTERNAL_TOKEN', 'ADMIN_TOKEN', 'METRICS_TOKEN', 'REDIS_URL']);

/** A Redis node: a host name or IPv4 address, or an IPv6 address in brackets, and a port. */
export interface HostPort {
  host: string;
  port: number;
}

/**
 * Parses `host:port,host:port` (IPv6 as `[::1]:7000`); answers undefined for
 * anything else, so that the schema names the variable.
 *
 * @example
 * parseHostPorts('redis-0:7000, [::1]:7001'); // [{ host: 'redis-0', port: 7000 }, { host: '::1', port: 7001 }]
 */
export function parseHostPorts(value: string): HostPort[] | undefined {
  const nodes: HostPort[] = [];
  for (const item of value.split(',').map((part) => part.trim())) {
    const match = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?)):(\d{1,5})$/i.exec(item);
    const port = Number(match?.[3]);
    if (!match || port < 1 || port > 65_535) return undefined;
    nodes.push({ host: match[1] ?? match[2]!, port });
  }
  return nodes;
}

const hostPorts = (example: string) =>
  z
    .string()
    .trim()
    .transform((value, context) => {
      const nodes = parseHostPorts(value);
      if (nodes) return nodes;
      context.addIssue({ code: 'custom', message: `expected host:port pairs separated by commas, such as ${example}` });
      return z.NEVER;
    });

const port = (fallback: number) => integer(1, 65_535, 'a TCP port number between 1 and 65535').default(fallback);

const httpUrl = z
  .string()
  .trim()
  .url('expected an absolute http(s) URL such as http://vacancy:8001')
  .refine((value) => /^https?:\/\//i.test(value), 'expected an absolute http(s) URL such as http://vacancy:8001')
  .transform((value) => value.replace(/\/+$/, ''));

const origins = z
  .string()
  .trim()
  .transform((value) =>
    value
      .split(',')
      .map((origin) => origin.trim())
      .filter(Boolean),
  )
  .refine(
    (list) => !list.includes('*') || list.length === 1,
    'expected either "*" alone or a comma-separated list of origins such as https://shop.example',
  )
  .refine(
    (list) => list.every((origin) => origin === '*' || /^https?:\/\/[^/\s]+$/i.test(origin)),
    'expected origins as scheme://host[:port] with no path, separated by commas',
  );

/**
 * Every environment variable the program reads, with its default.
 * Names of the 1.0.0 service are kept; values arrive as strings and are
 * converted here, so the rest of the program sees typed values only.
 */
export const configSchema = z.object({
  MODE: z.enum(MODES, { error: `expected one of ${MODES.join(', ')}` }).default('monolith'),
  HOST: z.string().trim().min(1, 'expected a host name or address to listen on').default('0.0.0.0'),
  PORT: integer(1, 65_535, 'a TCP port number between 1 and 65535').optional(),
  MONOLITH_PORT: port(8000),
  VACANCY_PORT: port(8001),
  TICKET_PORT: port(8002),
  INITIAL_STOCK: integer(0, Number.MAX_SAFE_INTEGER, 'a whole number of tickets, 0 or more').default(1000),
  STOCK_STORE: z
    .string()
    .trim()
    .refine((value) => value !== 'file', {
      message:
        'the file store was replaced by sqlite (STOCK_STORE=sqlite, the default), which keeps the stock in DATA_DIR/ticket-system.db',
    })
    .pipe(z.enum(STOCK_STORES, { error: `expected one of ${STOCK_STORES.join(', ')}` }))
    .default('sqlite'),
  DATA_DIR: z.string().trim().min(1, 'expected a directory path').default('./data'),
  SQLITE_WAL_AUTOCHECKPOINT: integer(1, 1_000_000, 'a whole number of pages between 1 and 1000000').default(1000),
  REDIS_URL: z
    .string()
    .trim()
    .refine(
      (value) => /^rediss?:\/\/[^\s]+$/i.test(value) && URL.canParse(value),
      'expected a redis:// or rediss:// URL such as redis://127.0.0.1:6379/0',
    )
    .default('redis://127.0.0.1:6379'),
  REDIS_KEY_PREFIX: z
    .string()
    .trim()
    .regex(/^[\w.:-]{1,64}$/, 'expected 1 to 64 letters, digits, or . _ : -')
    .default('ticket-system'),
  REDIS_TIMEOUT: seconds('a positive number of seconds, at most 60', 60).default(1),
  REDIS_CLUSTER_NODES: hostPorts('redis-0:6379,redis-1:6379,redis-2:6379').optional(),
  REDIS_SENTINELS: hostPorts('sentinel-0:26379,sentinel-1:26379,sentinel-2:26379').optional(),
  REDIS_SENTINEL_NAME: z
    .string()
    .trim()
    .regex(/^[^\s]{1,128}$/, 'expected the name Sentinel monitors the primary under, such as mymaster')
    .optional(),
  REDIS_WAIT_REPLICAS: integer(0, 16, 'a whole number of replicas between 0 (off) and 16').default(0),
  REDIS_WAIT_TIMEOUT: seconds('a positive number of seconds, at most 60', 60).default(1),
  INTERNAL_TOKEN: z
    .string()
    .trim()
    .min(16, 'expected at least 16 characters (or leave it unset to leave service-to-service calls open)')
    .optional(),
  ADMIN_TOKEN: z
    .string()
    .trim()
    .min(16, 'expected at least 16 characters (or leave it unset to turn the admin API off)')
    .optional(),
  METRICS: z.stringbool({ error: 'expected true or false' }).default(true),
  METRICS_TOKEN: z
    .string()
    .trim()
    .min(16, 'expected at least 16 characters (or leave it unset to leave GET /metrics open)')
    .optional(),
  RATE_LIMIT: integer(0, 1_000_000, 'a whole number of requests between 0 (off) and 1000000').default(0),
  RATE_LIMIT_WINDOW: seconds('a positive number of seconds, at most 3600').default(60),
  TRUST_PROXY: z.stringbool({ error: 'expected true or false' }).default(false),
  REQUEST_TIMEOUT: secondsOrOff('0 (off) or a positive number of seconds, at most 3600').default(0),
  IDEMPOTENCY_TTL: seconds('a positive number of seconds, at most 2592000 (30 days)', 30 * 24 * 3600).default(86_400),
  IDEMPOTENCY_MAX_KEYS: integer(1, 100_000_000, 'a whole number of keys between 1 and 100000000').default(1_000_000),
  HOLD_TTL: integer(10, 86_400, 'a whole number of seconds between 10 and 86400').default(600),
  HOLD_TTL_MAX: integer(10, 86_400, 'a whole number of seconds between 10 and 86400').default(3_600),
  VACANCY_URL: z
    .string()
    .trim()
    .transform((value) => value.split(',').map((url) => url.trim()))
    .pipe(z.array(httpUrl).min(1))
    .transform((urls) => urls.join(','))
    .default('http://localhost:8001'),
  VACANCY_TIMEOUT: seconds('a positive number of seconds, at most 3600').default(5),
  VACANCY_RETRIES: integer(0, 10, 'a whole number of retries between 0 and 10').default(2),
  VACANCY_BATCH_MAX: integer(
    1,
    MAX_RESERVE_BATCH,
    `a whole number of reserves between 1 and ${MAX_RESERVE_BATCH}`,
  ).default(200),
  HTTP_MAX_CONNECTIONS: integer(1, 10_000, 'a whole number of connections between 1 and 10000').default(100),
  HTTP_KEEPALIVE_CONNECTIONS: integer(0, 10_000, 'a whole number of connections between 0 and 10000').default(20),
  LOG_LEVEL: z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')}` }))
    .default('info'),
  JSON_LOGS: z.stringbool({ error: 'expected true or false' }).optional(),
  SERVICE_NAME: z.string().trim().min(1, 'expected a non-empty name').optional(),
  ENVIRONMENT: z
    .string()
    .trim()
    .regex(/^[a-z][a-z0-9-]*$/i, 'expected a single word such as development or production')
    .default('production'),
  CORS_ORIGINS: origins.default([]),
  BODY_LIMIT: integer(1, 64 * 1024 * 1024, 'a number of bytes between 1 and 67108864').default(1024 * 1024),
  SHUTDOWN_TIMEOUT: seconds('a positive number of seconds, at most 3600').default(10),
});

type ParsedEnv = z.output<typeof configSchema>;

/** The validated configuration the program is built from. */
export interface Config extends Omit<ParsedEnv, 'PORT' | 'JSON_LOGS' | 'SERVICE_NAME'> {
  /** The port this process listens on: PORT if set, else the mode's own port. */
  port: number;
  /** Whether logs are JSON lines (true) or pretty-printed for a terminal. */
  JSON_LOGS: boolean;
  SERVICE_NAME: string;
}

/** Raised when the environment holds a value the program cannot run with. */
export class ConfigError extends Error {
  constructor(readonly problems: { variable: string; message: string; received?: string }[]) {
    super(
      'Invalid configuration:\n' +
        problems
          .map(
            (p) =>
              `  ${p.variable}: ${p.message}` +
              (p.received === undefined ? '' : ` (got ${JSON.stringify(p.received)})`),
          )
          .join('\n'),
    );
    this.name = 'ConfigError';
  }
}

/**
 * One way to reach Redis: REDIS_URL (one server), REDIS_CLUSTER_NODES (a
 * Cluster) or REDIS_SENTINELS with REDIS_SENTINEL_NAME (a primary Sentinel
 * names); two at once would leave it to chance which one holds the stock.
 */
function redisTopologyProblems(
  parsed: ParsedEnv,
  input: Record<string, string>,
): { variable: string; message: string }[] {
  const problems: { variable: string; message: string }[] = [];
  const set = ['REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_SENTINELS'].filter((name) => input[name] !== undefined);
  if (set.length > 1) {
    problems.push({
      variable: set[1]!,
      message: `set only one of ${set.join(' and ')}: REDIS_URL is one server, REDIS_CLUSTER_NODES a Redis Cluster, REDIS_SENTINELS a primary found through Sentinel`,
    });
  }
  if (parsed.REDIS_SENTINELS && !parsed.REDIS_SENTINEL_NAME) {
    problems.push({
      variable: 'REDIS_SENTINEL_NAME',
      message: 'REDIS_SENTINELS needs the name the sentinels monitor the primary under (sentinel monitor <name> …)',
    });
  }
  if (parsed.REDIS_SENTINEL_NAME && !parsed.REDIS_SENTINELS) {
    problems.push({
      variable: 'REDIS_SENTINELS',
      message: 'REDIS_SENTINEL_NAME is set: list the sentinels as host:port pairs separated by commas',
    });
  }
  return problems;
}

/**
 * Parses configuration from an environment map. Empty strings count as unset.
 * Throws a {@link ConfigError} naming every variable that is wrong.
 *
 * @example
 * const config = parseConfig({ MODE: 'ticket', VACANCY_URL: 'http://vacancy:8001' });
 * config.port; // 8002
 */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const input: Record<string, string> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') input[key] = value;
  }
  const result = configSchema.safeParse(input);
  if (!result.success) {
    const firstIssuePerVariable = new Map<string, { variable: string; message: string; received?: string }>();
    for (const issue of result.error.issues) {
      const variable = String(issue.path[0] ?? '(environment)');
      if (!firstIssuePerVariable.has(variable)) {
        const received = SECRET_VARIABLES.has(variable) ? undefined : input[variable];
        firstIssuePerVariable.set(variable, { variable, message: issue.message, received });
      }
    }
    throw new ConfigError([...firstIssuePerVariable.values()]);
  }
  const parsed = result.data;
  const redisProblems = redisTopologyProblems(parsed, input);
  if (redisProblems.length > 0) throw new ConfigError(redisProblems);
  if (parsed.HOLD_TTL > parsed.HOLD_TTL_MAX) {
    throw new ConfigError([
      {
        variable: 'HOLD_TTL',
        message: `expected at most HOLD_TTL_MAX (${parsed.HOLD_TTL_MAX} seconds)`,
        received: String(parsed.HOLD_TTL),
      },
    ]);
  }
  const modePorts: Record<Mode, number> = {
    monolith: parsed.MONOLITH_PORT,
    vacancy: parsed.VACANCY_PORT,
    ticket: parsed.TICKET_PORT,
  };
  const { PORT, JSON_LOGS, SERVICE_NAME, ...rest } = parsed;
  return {
    ...rest,
    port: PORT ?? modePorts[parsed.MODE],
    JSON_LOGS: JSON_LOGS ?? parsed.ENVIRONMENT !== 'development',
    SERVICE_NAME: SERVICE_NAME ?? `ticket-system-${parsed.MODE}`,
  };
}
