import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from './config.ts';

/** Runs parseConfig and returns the ConfigError it must throw. */
function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    parseConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`parseConfig accepted ${JSON.stringify(env)}`);
}

describe('parseConfig defaults', () => {
  it('runs a monolith on port 8000 with the documented defaults', () => {
    const config = parseConfig({});
    expect(config).toMatchObject({
      MODE: 'monolith',
      port: 8000,
      HOST: '0.0.0.0',
      INITIAL_STOCK: 1000,
      STOCK_STORE: 'sqlite',
      DATA_DIR: './data',
      SQLITE_WAL_AUTOCHECKPOINT: 1000,
      IDEMPOTENCY_TTL: 86_400,
      IDEMPOTENCY_MAX_KEYS: 1_000_000,
      VACANCY_RETRIES: 2,
      VACANCY_URL: 'http://localhost:8001',
      VACANCY_TIMEOUT: 5,
      HTTP_MAX_CONNECTIONS: 100,
      HTTP_KEEPALIVE_CONNECTIONS: 20,
      LOG_LEVEL: 'info',
      BODY_LIMIT: 1_048_576,
      CORS_ORIGINS: [],
      ENVIRONMENT: 'production',
      JSON_LOGS: true,
      SERVICE_NAME: 'ticket-system-monolith',
      SHUTDOWN_TIMEOUT: 10,
    });
  });

  it.each([
    ['monolith', 8000],
    ['vacancy', 8001],
    ['ticket', 8002],
  ])('MODE=%s listens on %i by default', (mode, port) => {
    const config = parseConfig({ MODE: mode });
    expect(config.MODE).toBe(mode);
    expect(config.port).toBe(port);
    expect(config.SERVICE_NAME).toBe(`ticket-system-${mode}`);
  });

  it.each([['monolith'], ['vacancy'], ['ticket']])('PORT overrides the port of MODE=%s', (mode) => {
    expect(parseConfig({ MODE: mode, PORT: '9123' }).port).toBe(9123);
  });

  it('the per-mode port variables move only their own mode', () => {
    const env = { MONOLITH_PORT: '7000', VACANCY_PORT: '7001', TICKET_PORT: '7002' };
    expect(parseConfig({ ...env, MODE: 'monolith' }).port).toBe(7000);
    expect(parseConfig({ ...env, MODE: 'vacancy' }).port).toBe(7001);
    expect(parseConfig({ ...env, MODE: 'ticket' }).port).toBe(7002);
    expect(parseConfig({ ...env, MODE: 'ticket', PORT: '7777' }).port).toBe(7777);
  });

  it('reads numbers, URLs and lists', () => {
    const config = parseConfig({
      INITIAL_STOCK: '0',
      VACANCY_URL: 'http://vacancy:8001/',
      VACANCY_TIMEOUT: '0.25',
      BODY_LIMIT: '64',
      CORS_ORIGINS: 'https://a.example, https://b.example:8443',
    });
    expect(config.INITIAL_STOCK).toBe(0);
    expect(config.VACANCY_URL).toBe('http://vacancy:8001');
    expect(config.VACANCY_TIMEOUT).toBe(0.25);
    expect(config.BODY_LIMIT).toBe(64);
    expect(config.CORS_ORIGINS).toEqual(['https://a.example', 'https://b.example:8443']);
    expect(parseConfig({ CORS_ORIGINS: '*' }).CORS_ORIGINS).toEqual(['*']);
  });

  it('reads the Redis topology: a Cluster, or Sentinel with its name, and WAIT for replicas', () => {
    expect(parseConfig({})).toMatchObject({
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_WAIT_REPLICAS: 0,
      REDIS_WAIT_TIMEOUT: 1,
    });
    expect(parseConfig({}).REDIS_CLUSTER_NODES).toBeUndefined();
    expect(parseConfig({ REDIS_CLUSTER_NODES: ' redis-0:7000, 10.0.0.7:7001,[::1]:7002,redis_3:7003 ' })).toMatchObject(
      {
        REDIS_CLUSTER_NODES: [
          { host: 'redis-0', port: 7000 },
          { host: '10.0.0.7', port: 7001 },
          { host: '::1', port: 7002 },
          { host: 'redis_3', port: 7003 },
        ],
      },
    );
    expect(
      parseConfig({
        REDIS_SENTINELS: 'sentinel-0:26379,sentinel-1:26379',
        REDIS_SENTINEL_NAME: 'tickets',
        REDIS_WAIT_REPLICAS: '1',
        REDIS_WAIT_TIMEOUT: '0.5',
      }),
    ).toMatchObject({
      REDIS_SENTINELS: [
        { host: 'sentinel-0', port: 26379 },
        { host: 'sentinel-1', port: 26379 },
      ],
      REDIS_SENTINEL_NAME: 'tickets',
      REDIS_WAIT_REPLICAS: 1,
      REDIS_WAIT_TIMEOUT: 0.5,
    });
  });

  it.each([
    ['INFO', 'info'],
    ['Debug', 'debug'],
    [' warn ', 'warn'],
    ['silent', 'silent'],
  ])('LOG_LEVEL=%j is read as %s', (value, level) => {
    expect(parseConfig({ LOG_LEVEL: value }).LOG_LEVEL).toBe(level);
  });

  it.each([
    ['true', true],
    ['false', false],
    ['1', true],
    ['0', false],
  ])('JSON_LOGS=%s is %s', (value, expected) => {
    expect(parseConfig({ JSON_LOGS: value }).JSON_LOGS).toBe(expected);
  });

  it('JSON_LOGS defaults to pretty logs in development only', () => {
    expect(parseConfig({ ENVIRONMENT: 'development' }).JSON_LOGS).toBe(false);
    expect(parseConfig({ ENVIRONMENT: 'staging' }).JSON_LOGS).toBe(true);
    expect(parseConfig({ ENVIRONMENT: 'development', JSON_LOGS: 'true' }).JSON_LOGS).toBe(true);
  });

  it('empty and blank strings count as unset', () => {
    const config = parseConfig({
      MODE: '',
      PORT: '',
      INITIAL_STOCK: '   ',
      VACANCY_URL: '',
      VACANCY_TIMEOUT: '',
      LOG_LEVEL: '',
      JSON_LOGS: '',
      CORS_ORIGINS: '',
      BODY_LIMIT: ' ',
      SERVICE_NAME: '',
    });
    expect(config).toMatchObject({
      MODE: 'monolith',
      port: 8000,
      INITIAL_STOCK: 1000,
      VACANCY_URL: 'http://localhost:8001',
      VACANCY_TIMEOUT: 5,
      LOG_LEVEL: 'info',
      JSON_LOGS: true,
      CORS_ORIGINS: [],
      BODY_LIMIT: 1_048_576,
      SERVICE_NAME: 'ticket-system-monolith',
    });
  });

  it('ignores variables it does not know', () => {
    expect(parseConfig({ PATH: '/usr/bin', HOME: '/root', UNRELATED: 'x' }).MODE).toBe('monolith');
  });
});

describe('parseConfig refuses wrong values', () => {
  it.each([
    ['MODE', 'foo', /expected one of monolith, vacancy, ticket/],
    ['PORT', '70000', /expected a TCP port number between 1 and 65535/],
    ['PORT', 'abc', /expected a TCP port number between 1 and 65535/],
    ['PORT', '0', /expected a TCP port number/],
    ['PORT', '80.5', /expected a TCP port number/],
    ['VACANCY_PORT', '-1', /expected a TCP port number/],
    ['INITIAL_STOCK', '-1', /expected a whole number of tickets, 0 or more/],
    ['INITIAL_STOCK', '1.5', /expected a whole number of tickets/],
    ['INITIAL_STOCK', '9007199254740992', /expected a whole number of tickets/],
    ['VACANCY_URL', 'not-a-url', /expected an absolute http\(s\) URL/],
    ['VACANCY_URL', 'ftp://vacancy:8001', /expected an absolute http\(s\) URL/],
    ['VACANCY_TIMEOUT', '0', /expected a positive number of seconds/],
    ['VACANCY_TIMEOUT', '-5', /expected a positive number of seconds/],
    ['VACANCY_TIMEOUT', 'soon', /expected a positive number of seconds/],
    ['JSON_LOGS', 'maybe', /expected true or false/],
    ['LOG_LEVEL', 'loud', /expected one of fatal, error, warn, info, debug, trace, silent/],
    ['CORS_ORIGINS', '*,https://a.example', /expected either "\*" alone/],
    ['CORS_ORIGINS', 'https://a.example/path', /expected origins as scheme:\/\/host\[:port\]/],
    ['BODY_LIMIT', '0', /expected a number of bytes between 1 and 67108864/],
    ['BODY_LIMIT', '1mb', /expected a number of bytes/],
    ['STOCK_STORE', 'postgres', /expected one of sqlite, memory, redis/],
    ['STOCK_STORE', 'file', /the file store was replaced by sqlite \(STOCK_STORE=sqlite, the default\)/],
    ['IDEMPOTENCY_TTL', '0', /positive number of seconds/],
    ['IDEMPOTENCY_MAX_KEYS', 'lots', /whole number of keys/],
    ['VACANCY_RETRIES', '11', /between 0 and 10/],
    ['SQLITE_WAL_AUTOCHECKPOINT', '0', /whole number of pages/],
    ['ENVIRONMENT', 'two words', /expected a single word/],
    ['REDIS_CLUSTER_NODES', '127.0.0.1', /expected host:port pairs separated by commas/],
    ['REDIS_CLUSTER_NODES', 'redis-0:7000,,redis-1:7001', /expected host:port pairs/],
    ['REDIS_CLUSTER_NODES', 'redis-0:70000', /expected host:port pairs/],
    ['REDIS_CLUSTER_NODES', 'redis://redis-0:7000', /expected host:port pairs/],
    ['REDIS_CLUSTER_NODES', '::1:7000', /expected host:port pairs/],
    ['REDIS_SENTINELS', 'sentinel-0:0', /expected host:port pairs/],
    ['REDIS_SENTINEL_NAME', 'my master', /expected the name Sentinel monitors the primary under/],
    ['REDIS_WAIT_REPLICAS', '-1', /between 0 \(off\) and 16/],
    ['REDIS_WAIT_REPLICAS', 'all', /whole number of replicas/],
    ['REDIS_WAIT_TIMEOUT', '0', /positive number of seconds, at most 60/],
    ['REDIS_WAIT_TIMEOUT', '61', /at most 60/],
  ])('%s=%j', (variable, value, expected) => {
    const error = configError({ [variable]: value });
    expect(error.name).toBe('ConfigError');
    expect(error.message).toContain(variable);
    expect(error.message).toMatch(expected);
    expect(error.message).toContain(JSON.stringify(value));
    expect(error.problems.length).toBeGreaterThan(0);
    for (const problem of error.problems) expect(problem).toMatchObject({ variable, received: value });
    expect(error.problems.some((problem) => expected.test(problem.message))).toBe(true);
  });

  it.each([
    [
      { REDIS_URL: 'redis://a:6379', REDIS_CLUSTER_NODES: 'b:7000' },
      'REDIS_CLUSTER_NODES',
      /set only one of REDIS_URL and REDIS_CLUSTER_NODES/,
    ],
    [
      { REDIS_URL: 'redis://a:6379', REDIS_SENTINELS: 's:26379', REDIS_SENTINEL_NAME: 'mymaster' },
      'REDIS_SENTINELS',
      /set only one of REDIS_URL and REDIS_SENTINELS/,
    ],
    [
      { REDIS_CLUSTER_NODES: 'b:7000', REDIS_SENTINELS: 's:26379', REDIS_SENTINEL_NAME: 'mymaster' },
      'REDIS_SENTINELS',
      /set only one of REDIS_CLUSTER_NODES and REDIS_SENTINELS/,
    ],
    [
      { REDIS_SENTINELS: 's:26379,t:26379' },
      'REDIS_SENTINEL_NAME',
      /REDIS_SENTINELS needs the name the sentinels monitor/,
    ],
    [{ REDIS_SENTINEL_NAME: 'mymaster' }, 'REDIS_SENTINELS', /REDIS_SENTINEL_NAME is set: list the sentinels/],
  ])('one way to reach Redis: %j is refused, naming %s', (env, variable, expected) => {
    const error = configError(env);
    expect(error.problems.map((problem) => problem.variable)).toEqual([variable]);
    expect(error.message).toMatch(expected);
    // REDIS_URL may carry a password: never echoed.
    expect(error.message).not.toContain('redis://a:6379');
  });

  it('reports every wrong variable at once', () => {
    const error = configError({
      MODE: 'foo',
      PORT: 'abc',
      INITIAL_STOCK: '-1',
      VACANCY_URL: 'not-a-url',
      VACANCY_TIMEOUT: '0',
      JSON_LOGS: 'maybe',
      LOG_LEVEL: 'loud',
      CORS_ORIGINS: '*,https://a.example',
      BODY_LIMIT: '0',
      HOST: '127.0.0.1',
    });
    const variables = error.problems.map((p) => p.variable);
    const wrong = [
      'MODE',
      'PORT',
      'INITIAL_STOCK',
      'VACANCY_URL',
      'VACANCY_TIMEOUT',
      'JSON_LOGS',
      'LOG_LEVEL',
      'CORS_ORIGINS',
      'BODY_LIMIT',
    ];
    expect(new Set(variables)).toEqual(new Set(wrong));
    for (const variable of wrong) expect(error.message).toContain(`${variable}:`);
    expect(error.message).not.toContain('HOST');
    expect(error.message.split('\n')[0]).toBe('Invalid configuration:');
  });
});
