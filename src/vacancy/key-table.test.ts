import { describe, expect, it } from 'vitest';
import { KeyTable, fnv1aHash, type KeyHash } from './key-table.ts';
import type { IdempotencyRecord } from './stock-store.ts';

function record(key: string, n: number, overrides: Partial<IdempotencyRecord> = {}): IdempotencyRecord {
  return {
    key,
    inventoryId: n % 3 === 0 ? 'default' : `inventory-${n % 5}`,
    qty: (n % 7) + 1,
    success: n % 4 !== 0,
    remaining: 1_000_000_000_000 - n,
    firstTicket: n % 4 !== 0 ? n * 3 + 1 : 0,
    expiresAt: 1_800_000_000_000 + n,
    ...overrides,
  };
}

/** A small deterministic generator, so a failure can be replayed from its seed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return state / 0x100000000;
  };
}

const KEY_SHAPES = [
  (n: number) => `k${n}`,
  (n: number) => `${n}-${'x'.repeat(n % 40)}`,
  (n: number) => `clé-${n}-é`, // Latin-1: one byte per character
  (n: number) => `ключ-${n}`, // above U+00FF: two bytes per character
  (n: number) => `🎟️${n}`, // surrogate pairs
  (n: number) => `purchase:${'a'.repeat(255)}${n}`.slice(0, 264),
];

const HASHES: Array<[string, KeyHash]> = [
  ['fnv1a', fnv1aHash],
  ['a constant (every key collides)', () => 7],
  ['four buckets', (key) => key.length % 4],
];
/** Default pages, and pages of 2 and 8 slots: the ring of pages wraps and grows while its head is mid-ring. */
const PAGE_SIZES = [undefined, 1, 3];
const CASES = HASHES.flatMap(([name, hash]) => PAGE_SIZES.map((pageBits) => [name, pageBits, hash] as const));

describe('KeyTable', () => {
  it.each(CASES)(
    'behaves like a Map in insertion order under random set, delete and prune (hash: %s, pageBits: %s)',
    (_, pageBits, hash) => {
      for (const seed of [1, 2, 3]) {
        const next = random(seed);
        const table = new KeyTable({ hash, pageBits });
        const model = new Map<string, IdempotencyRecord>();
        let now = 0;
        const steps = hash === fnv1aHash ? 20_000 : 3_000;
        for (let step = 0; step < steps; step++) {
          const n = Math.floor(next() * (steps / 4));
          const key = KEY_SHAPES[n % KEY_SHAPES.length]!(n);
          const roll = next();
          if (roll < 0.6) {
            const value = record(key, step, { expiresAt: now + 50 + Math.floor(next() * 10) });
            table.set(key, value);
            model.delete(key);
            model.set(key, value);
          } else if (roll < 0.85) {
            expect(table.delete(key), `delete ${key} at step ${step} (seed ${seed})`).toBe(model.delete(key));
          } else if (roll < 0.97) {
            expect(table.get(key), `get ${key} at step ${step} (seed ${seed})`).toEqual(model.get(key));
            expect(table.has(key)).toBe(model.has(key));
          } else {
            now += 5;
            const maxKeys = Math.floor(next() * 200) + 1;
            table.prune(now, maxKeys);
            for (const [k, v] of model) {
              if (v.expiresAt > now && model.size <= maxKeys) break;
              model.delete(k);
            }
          }
          expect(table.size).toBe(model.size);
        }
        expect([...table]).toEqual([...model]);
        expect([...table.keys()]).toEqual([...model.keys()]);
        for (const [key, value] of model) expect(table.get(key)).toEqual(value);
      }
    },
  );

  it.each(CASES)(
    'a view holds the records live when it was taken, less those deleted, replaced or pruned since (hash: %s, pageBits: %s)',
    (_, pageBits, hash) => {
      for (const seed of [4, 5]) {
        const next = random(seed);
        const table = new KeyTable({ hash, pageBits });
        const model = new Map<string, IdempotencyRecord>();
        let views: Array<{ view: Iterable<IdempotencyRecord>; then: IdempotencyRecord[]; gone: Set<string> }> = [];
        const remove = (key: string) => {
          for (const v of views) v.gone.add(key);
          model.delete(key);
        };
        let now = 0;
        for (let step = 0; step < 3_000; step++) {
          const n = Math.floor(next() * 500);
          const key = KEY_SHAPES[n % KEY_SHAPES.length]!(n);
          const roll = next();
          if (roll < 0.6) {
            const value = record(key, step, { expiresAt: now + 50 + Math.floor(next() * 10) });
            table.set(key, value);
            remove(key);
            model.set(key, value);
          } else if (roll < 0.8) {
            table.delete(key);
            remove(key);
          } else if (roll < 0.9) {
            now += 5;
            const maxKeys = Math.floor(next() * 100) + 1;
            table.prune(now, maxKeys);
            for (const [k, v] of model) {
              if (v.expiresAt > now && model.size <= maxKeys) break;
              remove(k);
            }
          } else if (roll < 0.95) {
            views.push({ view: table.view(), then: [...model.values()], gone: new Set() });
          } else if (views.length > 0) {
            const { view, then, gone } = views.shift()!;
            expect([...view], `a view read at step ${step} (seed ${seed})`).toEqual(
              then.filter((r) => !gone.has(r.key)),
            );
          }
        }
        for (const { view, then, gone } of views) expect([...view]).toEqual(then.filter((r) => !gone.has(r.key)));
        views = [];
      }
    },
  );

  it('keeps a million keys with their records, and finds each', () => {
    const table = new KeyTable();
    const count = 1_000_000;
    for (let n = 0; n < count; n++)
      table.set(
        `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
        record(`00000000-0000-4000-8000-${String(n).padStart(12, '0')}`, n),
      );
    expect(table.size).toBe(count);
    for (const n of [0, 1, 65_535, 65_536, 524_287, 999_999]) {
      const key = `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
      expect(table.get(key)).toEqual(record(key, n));
    }
    expect(table.get('00000000-0000-4000-8000-000001000000')).toBeUndefined();
  });

  it('set makes a key the newest entry and replaces its record; values are copies', () => {
    const table = new KeyTable();
    table.set('a', record('a', 1));
    table.set('b', record('b', 2));
    table.set('a', record('a', 3));
    expect([...table.keys()]).toEqual(['b', 'a']);
    expect(table.get('a')).toEqual(record('a', 3));
    table.get('a')!.qty = 99;
    expect(table.get('a')!.qty).toBe(record('a', 3).qty);
  });

  it('prune drops expired keys from the front, then the oldest beyond maxKeys', () => {
    const table = KeyTable.from([
      record('a', 1, { expiresAt: 10 }),
      record('b', 2, { expiresAt: 20 }),
      record('c', 3, { expiresAt: 30 }),
    ]);
    table.prune(10, 10);
    expect([...table.keys()]).toEqual(['b', 'c']);
    table.prune(10, 1);
    expect([...table.keys()]).toEqual(['c']);
    table.prune(30, 10);
    expect(table.size).toBe(0);
    expect([...table]).toEqual([]);
    table.set('d', record('d', 4));
    expect([...table.keys()]).toEqual(['d']);
  });

  it('allows deleting while iterating, as the file store does when it drops expired keys', () => {
    const table = KeyTable.from(Array.from({ length: 100 }, (_, n) => record(`k${n}`, n, { expiresAt: n })));
    for (const [key, value] of table) if (value.expiresAt % 2 === 0) table.delete(key);
    expect([...table.keys()]).toEqual(Array.from({ length: 50 }, (_, n) => `k${2 * n + 1}`));
  });

  it('dropExpired drops expired keys wherever they are (a TTL changed between runs), keeping the order of the rest', () => {
    for (const pageBits of [undefined, 1]) {
      const expiries = [50, 10, 70, 10, 30, 90, 20];
      const table = KeyTable.from(
        expiries.map((expiresAt, n) => record(`k${n}`, n, { expiresAt })),
        { pageBits },
      );
      table.dropExpired(30);
      expect([...table.keys()]).toEqual(['k0', 'k2', 'k5']);
      expect(table.get('k4')).toBeUndefined();
      expect(table.get('k5')?.expiresAt).toBe(90);
      table.dropExpired(100);
      expect(table.size).toBe(0);
    }
  });

  it('refuses a record filed under another key', () => {
    expect(() => new KeyTable().set('a', record('b', 1))).toThrow(/not "a"/);
  });

  it('keeps numbers beyond 32 bits exactly', () => {
    const table = new KeyTable();
    const big = record('big', 1, {
      qty: Number.MAX_SAFE_INTEGER,
      remaining: 2 ** 53 - 2,
      firstTicket: 2 ** 40 + 1,
      expiresAt: 8.64e15,
    });
    table.set('big', big);
    expect(table.get('big')).toEqual(big);
  });
});
