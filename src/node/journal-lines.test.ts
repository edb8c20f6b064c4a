import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { journalLines, type JournalLine } from './journal-lines.ts';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'journal-lines-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function linesOf(content: Buffer, chunkBytes: number): Promise<JournalLine[]> {
  const path = join(dir, `file-${Math.random().toString(36).slice(2)}`);
  await writeFile(path, content);
  const file = await open(path, 'r');
  try {
    const lines: JournalLine[] = [];
    for await (const line of journalLines(file, chunkBytes)) lines.push({ ...line, bytes: Buffer.from(line.bytes) });
    return lines;
  } finally {
    await file.close();
  }
}

/** What the lines must be, from the whole content at once. */
function expectedLines(content: Buffer): Array<{ text: string; offset: number; ended: boolean }> {
  const out: Array<{ text: string; offset: number; ended: boolean }> = [];
  let offset = 0;
  while (offset < content.length) {
    const newline = content.indexOf(0x0a, offset);
    const end = newline === -1 ? content.length : newline;
    out.push({ text: content.subarray(offset, end).toString('hex'), offset, ended: newline !== -1 });
    offset = end + 1;
  }
  return out;
}

const CONTENTS: Array<[string, Buffer]> = [
  ['lines of many lengths, ending with a newline', Buffer.from('a\nbb\n\nccccccccccccccccccccc\nd\n')],
  ['a last line without its newline', Buffer.from('first\nsecond\nthe torn tail')],
  ['multibyte characters split anywhere', Buffer.from('{"key":"è€😀"}\n{"key":"😀😀😀😀"}\n')],
  ['NUL padding after the last line', Buffer.concat([Buffer.from('x\ny\n'), Buffer.alloc(19)])],
  ['only newlines', Buffer.from('\n\n\n')],
];

describe('journalLines', () => {
  it.each(
    CONTENTS.flatMap(([name, content]) =>
      [1, 2, 3, 7, 64, 1024 * 1024].map((chunkBytes) => ({ name, content, chunkBytes })),
    ),
  )(
    'yields every line of $name, with its offset, read $chunkBytes bytes at a time',
    async ({ content, chunkBytes }) => {
      const lines = await linesOf(content, chunkBytes);
      expect(lines.map((l) => ({ text: l.bytes.toString('hex'), offset: l.offset, ended: l.ended }))).toEqual(
        expectedLines(content),
      );
    },
  );

  it('yields nothing for an empty file', async () => {
    expect(await linesOf(Buffer.alloc(0), 7)).toEqual([]);
  });

  it('can be left early, as recovery does at a bad record', async () => {
    const path = join(dir, 'early');
    await writeFile(path, 'one\ntwo\nthree\n');
    const file = await open(path, 'r');
    const seen: string[] = [];
    for await (const { bytes } of journalLines(file, 2)) {
      seen.push(bytes.toString());
      if (seen.length === 2) break;
    }
    await file.close();
    expect(seen).toEqual(['one', 'two']);
  });
});
