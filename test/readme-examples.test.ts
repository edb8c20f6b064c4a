/**
 * Runs the examples of README.md and docs/*.md as written and checks each
 * answer against the `# → STATUS [BODY]` line under its command, so a
 * document that drifts from what the service answers fails here.
 *
 * - `<!-- examples:SETUP -->` blocks: every `curl` line, in order, against a
 *   fresh start of SETUP from the built bundle (`monolith`, or
 *   `microservices`: vacancy and ticket), on the default SQLite store in an
 *   empty DATA_DIR.
 * - `<!-- script:NAME -->` blocks: the whole block, by bash, in a fresh copy
 *   of the project; what it prints must be the body of its one `# →` line.
 *
 * In an expected body the string "…" stands for any value (ids that differ
 * from run to run), and a string "$NAME" (capitals, digits, _) for an id an
 * example goes on with: its first place in a block takes the answer's string
 * there as the variable NAME, every later place must be that same string,
 * and the block's later commands get it in their environment (`$NAME` in a
 * URL). A command may name only the variables set before it, and
 * ADMIN_TOKEN, the token the services are started with. The examples' ports
 * (localhost:8000, 8001, 8002) are mapped to free ones.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, startService, stopAllServices } from './support/processes.ts';
import { cleanUpCommands, exitOf, expectGroupGone, projectCopy, runCommand } from './support/project-copy.ts';

const run = promisify(execFile);
const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const DOCUMENTS = [
  join(ROOT, 'README.md'),
  ...readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => join(ROOT, 'docs', name)),
];
/** In an expected body, a value that may be anything. */
const ANY_VALUE = '…';
/** In an expected body, an id later examples go on with: `"$HOLD"`. */
const VARIABLE = /^\$([A-Z][A-Z0-9_]*)$/;
/** A variable inside a longer expected string: `/api/v1/holds/$HOLD/confirm`. */
const VARIABLE_IN_TEXT = /\$([A-Z][A-Z0-9_]*)/g;
/** Where a command uses a variable: `$HOLD` or `${HOLD}`. */
const VARIABLE_USE = /\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g;
/** What a variable may hold: ids, which go into URLs and shell words as they are. */
const VARIABLE_VALUE = /^[A-Za-z0-9_.~-]+$/;
/** The admin token the services are started with, and the examples' $ADMIN_TOKEN. */
const ADMIN_TOKEN = randomBytes(24).toString('hex');

interface Expectation {
  command: string;
  status: number;
  body?: unknown;
}

interface Block {
  kind: 'examples' | 'script';
  /** The setup (monolith, microservices) of an examples block; the name of a script block. */
  name: string;
  where: string;
  text: string;
  expectations: Expectation[];
}

function blocks(path: string): Block[] {
  const text = readFileSync(path, 'utf8');
  return [...text.matchAll(/<!-- (examples|script):([\w-]+) -->([\s\S]*?)<!-- \/\1:\2 -->/g)].map((match) => {
    const [, kind, name = '', inside = ''] = match;
    const code = inside.match(/```sh\n([\s\S]*?)```/)?.[1] ?? '';
    const line = text.slice(0, match.index).split('\n').length;
    return {
      kind: kind as Block['kind'],
      name,
      where: `${relative(ROOT, path)}:${line} (${kind}:${name})`,
      text: code,
      expectations: expectations(code),
    };
  });
}

/** Each command followed by a `# → STATUS [BODY]` line (a command continued with `\` counts from its first line). */
function expectations(code: string): Expectation[] {
  const lines = code.split('\n');
  const found: Expectation[] = [];
  lines.forEach((line, index) => {
    const expectation = line.match(/^# → (\d{3})(?: (.+))?$/);
    if (!expectation) return;
    let first = index - 1;
    while (first > 0 && lines[first - 1]?.endsWith('\\')) first--;
    found.push({
      command: lines.slice(first, index).join('\n'),
      status: Number(expectation[1]),
      body: expectation[2] === undefined ? undefined : JSON.parse(expectation[2]),
    });
  });
  return found;
}

/** In an examples block every curl is an example: one without a `# →` line would be run unchecked. */
function expectEveryCurlChecked(block: Block): void {
  const lines = block.text.split('\n');
  for (const [index, line] of lines.entries()) {
    if (line.startsWith('curl ') && !lines[index + 1]?.startsWith('# → ')) {
      throw new Error(`${block.where}: an example has no "# → STATUS" line under it: ${line}`);
    }
  }
}

/**
 * The expected body with every "…" turned into "any value", a variable set
 * already into its value, and a variable not set yet into "any id". Inside a
 * longer string (`"/api/v1/holds/$HOLD"`) a variable must be set already.
 */
function matcher(body: unknown, variables: ReadonlyMap<string, string> = new Map()): unknown {
  if (body === ANY_VALUE) return expect.anything();
  if (typeof body === 'string') {
    const name = VARIABLE.exec(body)?.[1];
    if (name !== undefined) return variables.get(name) ?? expect.stringMatching(VARIABLE_VALUE);
    return body.replace(VARIABLE_IN_TEXT, (_all, inner: string) => {
      const value = variables.get(inner);
      if (value === undefined) throw new Error(`$${inner} is used before an example's answer sets it: "${body}"`);
      return value;
    });
  }
  if (Array.isArray(body)) return body.map((item) => matcher(item, variables));
  if (body !== null && typeof body === 'object') {
    return Object.fromEntries(Object.entries(body).map(([key, value]) => [key, matcher(value, variables)]));
  }
  return body;
}

/** Sets each variable the expected body names for the first time to the actual body's string in its place. */
function capture(expected: unknown, actual: unknown, variables: Map<string, string>): void {
  if (typeof expected === 'string') {
    const name = VARIABLE.exec(expected)?.[1];
    if (name !== undefined && !variables.has(name)) variables.set(name, String(actual));
    return;
  }
  if (Array.isArray(expected)) {
    expected.forEach((item, index) => capture(item, (actual as unknown[])[index], variables));
    return;
  }
  if (expected !== null && typeof expected === 'object') {
    for (const [key, value] of Object.entries(expected)) {
      capture(value, (actual as Record<string, unknown>)[key], variables);
    }
  }
}

/** A command may use only the variables set before it (and ADMIN_TOKEN): anything else would expand to nothing. */
function expectVariablesSet(command: string, variables: ReadonlyMap<string, string>, where: string): void {
  for (const [, name = ''] of command.matchAll(VARIABLE_USE)) {
    if (name !== 'ADMIN_TOKEN' && !variables.has(name)) {
      throw new Error(`${where}: $${name} is used before an example's answer sets it: ${command}`);
    }
  }
}

function onPorts(text: string, ports: Record<string, number>): string {
  return text.replace(/localhost:(\d+)/g, (_all, port: string) => {
    const actual = ports[port];
    if (actual === undefined) throw new Error(`example uses port ${port}, which this test does not serve`);
    return `127.0.0.1:${actual}`;
  });
}

async function curl(
  command: string,
  ports: Record<string, number>,
  variables: ReadonlyMap<string, string> = new Map(),
): Promise<{ status: number; body: string }> {
  // The status goes on a line of its own after the body; the example itself runs exactly as written.
  const { stdout } = await run('bash', ['-c', `${onPorts(command, ports)} -w '\\n%{http_code}'`], {
    timeout: 10_000,
    env: { ...process.env, ADMIN_TOKEN, ...Object.fromEntries(variables) },
  });
  const cut = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
}

async function check(block: Block, ports: Record<string, number>, rewriteBody = (body: unknown) => body) {
  expect(block.expectations.length, block.where).toBeGreaterThan(3);
  const variables = new Map<string, string>();
  for (const example of block.expectations) {
    expectVariablesSet(example.command, variables, block.where);
    const answer = await curl(example.command, ports, variables);
    const actual = { where: block.where, command: example.command, status: answer.status };
    expect(actual).toEqual({ ...actual, status: example.status });
    if (example.body !== undefined) {
      const body: unknown = JSON.parse(answer.body);
      const expected = rewriteBody(example.body);
      expect({ ...actual, body }).toEqual({ ...actual, body: matcher(expected, variables) });
      capture(expected, body, variables);
    }
  }
}

const dataDirs: string[] = [];
/** An empty DATA_DIR, as on a fresh clone. */
function freshDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ticket-system-examples-'));
  dataDirs.push(dir);
  return dir;
}

afterAll(async () => {
  await stopAllServices();
  cleanUpCommands();
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

const ALL = DOCUMENTS.flatMap(blocks);
const EXAMPLES = ALL.filter((block) => block.kind === 'examples');
for (const block of EXAMPLES) expectEveryCurlChecked(block);
const SCRIPTS = ALL.filter((block) => block.kind === 'script');

describe('the examples in the documents', () => {
  it('are found: the README tour, and docs/api.md for both setups and the admin script', () => {
    expect(EXAMPLES.map((block) => block.where)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^README\.md:\d+ \(examples:monolith\)$/),
        expect.stringMatching(/^docs\/api\.md:\d+ \(examples:monolith\)$/),
        expect.stringMatching(/^docs\/api\.md:\d+ \(examples:microservices\)$/),
      ]),
    );
    expect(SCRIPTS.map((block) => block.name)).toContain('admin');
    for (const block of EXAMPLES) expect(['monolith', 'microservices'], block.where).toContain(block.name);
  });

  it('walk the events API and the checkout flow in docs/api.md', () => {
    const commands = EXAMPLES.filter((block) => block.where.startsWith('docs/api.md')).flatMap((block) =>
      block.expectations.map((example) => example.command),
    );
    for (const call of [
      /-X PUT \S+\/api\/v1\/events\/[\w-]+ /,
      /curl -s '?\S+\/api\/v1\/events\?\S+$/,
      /curl -s \S+\/api\/v1\/events\/[\w-]+$/,
      /-X POST \S+\/api\/v1\/events\/[\w-]+\/purchase /,
      /-X POST \S+\/api\/v1\/events\/[\w-]+\/holds /,
      /curl -s \S+\/api\/v1\/holds\/\$\w+$/,
      /-X POST \S+\/api\/v1\/holds\/\$\w+\/confirm$/,
      /-X DELETE \S+\/api\/v1\/holds\/\$\w+$/,
      /curl -s \S+\/api\/v1\/orders\/\$\w+$/,
      /-X POST \S+\/api\/v1\/orders\/\$\w+\/cancel /,
    ]) {
      expect(
        commands.some((command) => call.test(command)),
        `docs/api.md has no example matching ${call}`,
      ).toBe(true);
    }
  });

  it('check their variables for real: set by a first place, held to it after, never used unset', () => {
    const variables = new Map<string, string>();
    capture({ holdId: '$HOLD', items: [{ qty: 1 }] }, { holdId: 'hld_abc', items: [{ qty: 1 }] }, variables);
    expect(variables).toEqual(new Map([['HOLD', 'hld_abc']]));
    expect({ holdId: 'hld_abc' }).toEqual(matcher({ holdId: '$HOLD' }, variables));
    expect({ holdId: 'hld_other' }).not.toEqual(matcher({ holdId: '$HOLD' }, variables));
    expect({ orderId: 'ord_x' }).toEqual(matcher({ orderId: '$ORDER' }, variables));
    expect({ orderId: 'two words' }).not.toEqual(matcher({ orderId: '$ORDER' }, variables));
    expect({ orderId: 42 }).not.toEqual(matcher({ orderId: '$ORDER' }, variables));
    expect({ instance: '/api/v1/holds/hld_abc/confirm' }).toEqual(
      matcher({ instance: '/api/v1/holds/$HOLD/confirm' }, variables),
    );
    expect(() => matcher({ instance: '/api/v1/orders/$ORDER/cancel' }, variables)).toThrow(/\$ORDER is used before/);
    expect(() => expectVariablesSet('curl -s localhost:8000/api/v1/holds/$HOLD', variables, 'here')).not.toThrow();
    expect(() =>
      expectVariablesSet('curl -s -H "Authorization: Bearer $ADMIN_TOKEN" x', variables, 'here'),
    ).not.toThrow();
    expect(() => expectVariablesSet('curl -s localhost:8000/api/v1/orders/${ORDER}', variables, 'here')).toThrow(
      /\$ORDER is used before/,
    );
  });

  it.each(EXAMPLES.filter((block) => block.name === 'monolith').map((block) => [block.where, block]))(
    '%s: a fresh monolith answers each as written',
    async (_where, block) => {
      const monolith = await startService({
        MODE: 'monolith',
        STOCK_STORE: 'sqlite',
        DATA_DIR: freshDataDir(),
        ADMIN_TOKEN,
      });
      await check(block, { 8000: monolith.port });
      await monolith.stop();
    },
  );

  it.each(EXAMPLES.filter((block) => block.name === 'microservices').map((block) => [block.where, block]))(
    '%s: fresh vacancy and ticket services answer each as written',
    async (_where, block) => {
      const vacancy = await startService({
        MODE: 'vacancy',
        STOCK_STORE: 'sqlite',
        DATA_DIR: freshDataDir(),
        ADMIN_TOKEN,
      });
      const ticket = await startService({ MODE: 'ticket', VACANCY_URL: `http://127.0.0.1:${vacancy.port}` });
      // The ready detail names vacancy's address, which is a free port here.
      const onVacancyPort = (body: unknown) =>
        JSON.parse(JSON.stringify(body).replace('127.0.0.1:8001', `127.0.0.1:${vacancy.port}`)) as unknown;
      await check(block, { 8001: vacancy.port, 8002: ticket.port }, onVacancyPort);
      await ticket.stop();
      await vacancy.stop();
    },
  );

  it.each(SCRIPTS.map((block) => [block.where, block]))(
    '%s: runs as written on a fresh clone, prints what it shows, and leaves nothing running',
    async (_where, block) => {
      expect(block.expectations).toHaveLength(1);
      const [expected] = block.expectations;
      const port = await freePort();
      // LOG_LEVEL=warn: the service's request log would share the script's stdout with what curl prints.
      const script = runCommand(projectCopy(), ['bash', '-c', onPorts(block.text, { 8000: port })], {
        PORT: String(port),
        LOG_LEVEL: 'warn',
      });
      expect(await exitOf(script, 90_000)).toBe(0);
      expect(JSON.parse(script.stdout()), script.output()).toEqual(matcher(expected?.body));
      await expectGroupGone(script);
    },
  );
});
