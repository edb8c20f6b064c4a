import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { KeysArraySplitter, scanSnapshot } from './snapshot-scan.ts';

/** Feeds `text` to a splitter in pieces of `size` characters; returns the skeleton, the elements and any syntax error. */
function split(text: string, size = text.length) {
  const elements: string[] = [];
  const splitter = new KeysArraySplitter((element) => elements.push(element));
  for (let at = 0; at < text.length; at += size) splitter.feed(text.slice(at, at + size));
  splitter.end();
  return { skeleton: splitter.skeleton, elements, syntaxError: splitter.syntaxError };
}

const TRICKY_KEYS = [
  { key: 'plain', n: 1 },
  { key: '"keys":[ inside a string ]}{', n: 2 },
  { key: 'back\\slash\\', n: 3 },
  { key: 'quote " and \\" escaped', n: 4 },
  { key: 'an escaped quote before brackets: "]}, "[{', n: 6 },
  { key: 'ключ 🎟 é', n: 5, nested: { keys: [1, { a: ']' }] } },
];

describe('KeysArraySplitter', () => {
  const document = {
    version: 1,
    seq: 9,
    levels: { keys: { remaining: 1, sold: 2 }, '[': { remaining: 0, sold: 0 } },
    keys: TRICKY_KEYS,
  };
  const text = JSON.stringify(document);

  it('hands out each element of the top-level keys array and leaves it empty in the skeleton, at every piece size', () => {
    for (let size = 1; size <= text.length; size++) {
      const { skeleton, elements, syntaxError } = split(text, size);
      expect(syntaxError, `pieces of ${size}`).toBeNull();
      expect(JSON.parse(skeleton), `pieces of ${size}`).toEqual({ ...document, keys: [] });
      expect(
        elements.map((element) => JSON.parse(element)),
        `pieces of ${size}`,
      ).toEqual(TRICKY_KEYS);
    }
  });

  it('leaves arrays named keys below the top level alone, and keeps whitespace out of the elements', () => {
    const spaced = '{ "a" : { "keys" : [ 1 , 2 ] } ,\n "keys" : [ {"k":1} ,\t{"k":2} ] }';
    const { skeleton, elements, syntaxError } = split(spaced, 3);
    expect(syntaxError).toBeNull();
    expect(JSON.parse(skeleton)).toEqual({ a: { keys: [1, 2] }, keys: [] });
    expect(elements).toEqual(['{"k":1}', '{"k":2}']);
  });

  it('hands out elements that are not objects, for the caller to refuse', () => {
    expect(split('{"keys":[1,"two",null,{"k":3}]}').elements).toEqual(['1', '"two"', 'null', '{"k":3}']);
    expect(split('{"keys":[]}')).toEqual({ skeleton: '{"keys":[]}', elements: [], syntaxError: null });
  });

  it.each([
    ['a missing comma', '{"keys":[{"k":1}{"k":2}]}'],
    ['a doubled comma', '{"keys":[{"k":1},,{"k":2}]}'],
    ['a trailing comma', '{"keys":[{"k":1},]}'],
    ['a leading comma', '{"keys":[,{"k":1}]}'],
    ['an unclosed array', '{"keys":[{"k":1}'],
  ])('reports %s in the keys array', (_, broken) => {
    expect(split(broken).syntaxError).not.toBeNull();
  });
});

describe('scanSnapshot', () => {
  let dir: string | undefined;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function snapshotFile(text: string): Promise<string> {
    dir ??= await mkdtemp(join(tmpdir(), 'snapshot-scan-'));
    const path = join(dir, `snapshot-${Math.random().toString(36).slice(2)}.json`);
    await writeFile(path, text);
    return path;
  }

  it('reads a file larger than one read in pieces: same CRC as the whole text, every record once', async () => {
    const keys = Array.from({ length: 20_000 }, (_, i) => ({ key: `ключ-${i}-${'x'.repeat(i % 90)}`, qty: i }));
    const body = JSON.stringify({ version: 1, seq: 3, levels: {}, keys });
    const crc = crc32(body).toString(16).padStart(8, '0');
    const path = await snapshotFile(`${body.slice(0, -1)},"crc":"${crc}"}\n`);
    const seen: unknown[] = [];
    const scan = await scanSnapshot(path, (text) => seen.push(JSON.parse(text)));
    expect(scan).toEqual({
      trailer: true,
      expectedCrc: crc,
      computedCrc: crc,
      skeleton: '{"version":1,"seq":3,"levels":{},"keys":[]}',
      syntaxError: null,
    });
    expect(seen).toEqual(keys);
  });

  it('says when the trailer is missing, and answers null without a file', async () => {
    expect(await scanSnapshot(await snapshotFile('{"version":1,"keys":[]}'), () => {})).toEqual({ trailer: false });
    expect(await scanSnapshot(await snapshotFile(''), () => {})).toEqual({ trailer: false });
    expect(await scanSnapshot(join(tmpdir(), 'no-such-snapshot.json'), () => {})).toBeNull();
  });
});
