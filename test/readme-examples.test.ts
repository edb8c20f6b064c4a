/**
 * Runs the curl examples of README.md, in order, against the built bundle and
 * checks each against the `# → STATUS [BODY]` line under it. A README that
 * drifts from what the service answers fails here.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { startService, stopAllServices } from './support/processes.ts';

const run = promisify(execFile);
const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

interface Example {
  command: string;
  status: number;
  body?: unknown;
}

function examples(section: string): Example[] {
  const match = README.match(new RegExp(`<!-- examples:${section} -->([\\s\\S]*?)<!-- /examples:${section} -->`));
  if (!match?.[1]) throw new Error(`README.md has no examples:${section} block`);
  const lines = match[1].split('\n');
  const found: Example[] = [];
  lines.forEach((line, index) => {
    if (!line.startsWith('curl ')) return;
    const expectation = lines[index + 1]?.match(/^# → (\d{3})(?: (.+))?$/);
    if (!expectation) throw new Error(`README example has no "# → STATUS" line under it: ${line}`);
    found.push({
      command: line,
      status: Number(expectation[1]),
      body: expectation[2] === undefined ? undefined : JSON.parse(expectation[2]),
    });
  });
  return found;
}

async function curl(command: string, ports: Record<string, number>): Promise<{ status: number; body: string }> {
  const local = command.replace(/localhost:(\d+)/g, (_all, port: string) => {
    const actual = ports[port];
    if (actual === undefined) throw new Error(`example uses port ${port}, which this test does not serve`);
    return `127.0.0.1:${actual}`;
  });
  // The status goes on a line of its own after the body; the example itself runs exactly as written.
  const { stdout } = await run('bash', ['-c', `${local} -w '\\n%{http_code}'`], { timeout: 10_000 });
  const cut = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
}

async function check(list: Example[], ports: Record<string, number>) {
  expect(list.length).toBeGreaterThan(5);
  for (const example of list) {
    const answer = await curl(example.command, ports);
    expect({ command: example.command, status: answer.status }).toEqual({
      command: example.command,
      status: example.status,
    });
    if (example.body !== undefined) {
      expect({ command: example.command, body: JSON.parse(answer.body) }).toEqual({
        command: example.command,
        body: example.body,
      });
    }
  }
}

const dataDirs: string[] = [];
/** An empty DATA_DIR, as on a fresh clone, for the default SQLite store. */
function freshDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ticket-system-readme-'));
  dataDirs.push(dir);
  return dir;
}

afterAll(async () => {
  await stopAllServices();
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

describe('README curl examples', () => {
  it('the monolith answers every monolith example as written', async () => {
    const monolith = await startService({ MODE: 'monolith', STOCK_STORE: 'sqlite', DATA_DIR: freshDataDir() });
    await check(examples('monolith'), { 8000: monolith.port });
  });

  it('vacancy and ticket answer every microservices example as written', async () => {
    const vacancy = await startService({ MODE: 'vacancy', STOCK_STORE: 'sqlite', DATA_DIR: freshDataDir() });
    const ticket = await startService({ MODE: 'ticket', VACANCY_URL: `http://127.0.0.1:${vacancy.port}` });
    const list = examples('microservices').map((example) => ({
      ...example,
      // The ready detail names vacancy's address, which is a free port here.
      body:
        JSON.parse(JSON.stringify(example.body ?? null).replace('127.0.0.1:8001', `127.0.0.1:${vacancy.port}`)) ??
        undefined,
    }));
    await check(list, { 8001: vacancy.port, 8002: ticket.port });
  });
});
