/**
 * The documents stay true to each other and to the code: every relative link
 * between README.md, CHANGELOG.md and docs/ reaches a file that exists (and,
 * with a #fragment, a heading in it, as GitHub names headings); the
 * configuration table in docs/operations.md names exactly the variables the
 * program reads and .env.example lists; and the problem table in docs/api.md
 * is the service's catalogue of problem types.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../src/config.ts';
import { problemTypes } from '../src/lib/problem.ts';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

function markdownFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return markdownFiles(path);
    return entry.name.endsWith('.md') ? [path] : [];
  });
}

const DOCUMENTS = [join(ROOT, 'README.md'), join(ROOT, 'CHANGELOG.md'), ...markdownFiles(join(ROOT, 'docs'))];

/** The document's text outside fenced code blocks, where links and headings count. */
function prose(path: string): string {
  return readFileSync(path, 'utf8').replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
}

/** The fragments GitHub gives a document's headings: lower case, punctuation dropped, spaces to dashes, repeats numbered. */
function anchors(path: string): Set<string> {
  const seen = new Map<string, number>();
  const found = new Set<string>();
  for (const [, heading = ''] of prose(path).matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const slug = heading
      .replace(/<[^>]*>/g, '')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    found.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return found;
}

interface Link {
  from: string;
  target: string;
}

function relativeLinks(path: string): Link[] {
  const text = prose(path).replace(/`[^`\n]*`/g, '');
  return [...text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)]
    .map((match) => match[1] ?? '')
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target))
    .map((target) => ({ from: relative(ROOT, path), target }));
}

/** Why a link does not resolve, or undefined when it does. */
function brokenReason({ from, target }: Link): string | undefined {
  const [file = '', fragment] = target.split('#', 2);
  const path = file === '' ? join(ROOT, from) : resolve(dirname(join(ROOT, from)), decodeURIComponent(file));
  if (!existsSync(path)) return `${relative(ROOT, path)} does not exist`;
  if (fragment === undefined || !path.endsWith('.md')) return undefined;
  return anchors(path).has(fragment) ? undefined : `${relative(ROOT, path)} has no heading #${fragment}`;
}

/** The first column of the table under `heading` in a document: the names in backticks. */
function firstColumn(path: string, heading: string): string[] {
  const text = readFileSync(path, 'utf8');
  const start = text.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`${relative(ROOT, path)} has no "${heading}"`);
  const lines = text.slice(start + heading.length + 2).split('\n');
  const first = lines.findIndex((line) => line.startsWith('|'));
  const end = lines.findIndex((line, index) => index > first && !line.startsWith('|'));
  const rows = lines.slice(first + 2, end < 0 ? undefined : end);
  return rows.map((row) => row.split('|')[1]?.trim().replace(/`/g, '') ?? '');
}

describe('links between README.md and docs/', () => {
  it('are there: the README links every document in docs/', () => {
    const fromReadme = new Set(relativeLinks(join(ROOT, 'README.md')).map((link) => link.target.split('#')[0]));
    for (const doc of [
      'api',
      'architecture',
      'operations',
      'deployment',
      'troubleshooting',
      'development',
      'performance',
    ]) {
      expect(fromReadme).toContain(`docs/${doc}.md`);
    }
    expect(fromReadme).toContain('docs/adr/README.md');
  });

  it('all resolve, to a file and to a heading in it', () => {
    const links = DOCUMENTS.flatMap(relativeLinks);
    expect(links.length).toBeGreaterThan(40);
    const broken = links.flatMap((link) => {
      const reason = brokenReason(link);
      return reason === undefined ? [] : [`${link.from}: (${link.target}) ${reason}`];
    });
    expect(broken).toEqual([]);
  });

  it('are checked for real: a wrong file or a wrong heading is reported', () => {
    expect(brokenReason({ from: 'README.md', target: 'docs/nothing.md' })).toMatch(/does not exist/);
    expect(brokenReason({ from: 'README.md', target: 'docs/api.md#no-such-heading' })).toMatch(/no heading/);
    expect(brokenReason({ from: 'docs/api.md', target: '#idempotency-key' })).toBeUndefined();
  });
});

describe('docs/operations.md, the configuration table', () => {
  const table = firstColumn(join(ROOT, 'docs/operations.md'), '## Configuration');
  const envExample = [...readFileSync(join(ROOT, '.env.example'), 'utf8').matchAll(/^#? ?([A-Z][A-Z0-9_]+)=/gm)].map(
    (match) => match[1],
  );

  it('names every variable the program reads, once', () => {
    const read = Object.keys(configSchema.shape);
    expect(table.filter((name) => !name.startsWith('OTEL_')).sort()).toEqual([...read].sort());
    expect(new Set(table).size).toBe(table.length);
  });

  it('and .env.example list the same variables', () => {
    expect([...envExample].sort()).toEqual([...table].sort());
  });
});

describe('docs/api.md, the problem table', () => {
  it('is the catalogue of problem types: status, type and title of each', () => {
    const text = readFileSync(join(ROOT, 'docs/api.md'), 'utf8');
    const rows = [...text.matchAll(/^\| (\d{3}) +\| `([a-z-]+)` +\| ([^|]+?) +\|/gm)].map(
      ([, status, type, title]) => ({
        status: Number(status),
        type: `https://ticket-system.dev/problems/${type}`,
        title,
      }),
    );
    const catalogue = Object.values(problemTypes).map(({ status, type, title }) => ({ status, type, title }));
    const byType = (a: { type: string }, b: { type: string }) => a.type.localeCompare(b.type);
    expect(rows.sort(byType)).toEqual(catalogue.sort(byType));
  });
});
