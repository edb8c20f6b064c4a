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
 * from run to run). The examples' ports (localhost:8000, 8001, 8002) are
 * mapped to free ones.
 */
import { execFile } from 'node:child_process';
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

/** The expected body with every "…" turned into "any value". */
function matcher(body: unknown): unknown {
  if (body === ANY_VALUE) return expect.anything();
  if (Array.isArray(body)) return body.map(matcher);
  if (body !== null && typeof body === 'object') {
    return Object.fromEntries(Object.entries(body).map(([key, value]) => [key, matcher(value)]));
  }
  return body;
}

function onPorts(text: string, ports: Record<string, number>): string {
  return text.replace(/localhost:(\d+)/g, (_all, port: string) => {
    const actual = ports[port];
    if (actual === undefined) throw new Error(`example uses port ${port}, which this test does not serve`);
    return `127.0.0.1:${actual}`;
  });
}

async function curl(command: string, ports: Record<string, number>): Promise<{ status: number; body: string }> {
  // The status goes on a line of its own after the body; the example itself runs exactly as written.
  const { stdout } = await run('bash', ['-c', `${onPorts(command, ports)} -w '\\n%{http_code}'`], { timeout: 10_000 });
  const cut = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
}

async function check(block: Block, ports: Record<string, number>, rewriteBody = (body: unknown) => body) {
  expect(block.expectations.length, block.where).toBeGreaterThan(3);
  for (const example of block.expectations) {
    const answer = await curl(example.command, ports);
    const actual = { where: block.where, command: example.command, status: answer.status };
    expect(actual).toEqual({ ...actual, status: example.status });
    if (example.body !== undefined) {
      expect({ ...actual, body: JSON.parse(answer.body) }).toEqual({
        ...actual,
        body: matcher(rewriteBody(example.body)),
      });
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

  it.each(EXAMPLES.filter((block) => block.name === 'monolith').map((block) => [block.where, block]))(
    '%s: a fresh monolith answers each as written',
    async (_where, block) => {
      const monolith = await startService({ MODE: 'monolith', STOCK_STORE: 'sqlite', DATA_DIR: freshDataDir() });
      await check(block, { 8000: monolith.port });
      await monolith.stop();
    },
  );

  it.each(EXAMPLES.filter((block) => block.name === 'microservices').map((block) => [block.where, block]))(
    '%s: fresh vacancy and ticket services answer each as written',
    async (_where, block) => {
      const vacancy = await startService({ MODE: 'vacancy', STOCK_STORE: 'sqlite', DATA_DIR: freshDataDir() });
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
