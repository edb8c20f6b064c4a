import type { IdempotencyRecord } from './stock-store.ts';

/** Slot flags. */
const LIVE = 1;
const SUCCESS = 2;
/** The key has a character above U+00FF and is stored as two bytes per character. */
const WIDE = 4;

/** Key lengths are kept in 16 bits; the API takes keys of at most 255 characters. */
const MAX_KEY_LENGTH = 0xffff;

/** log2 of the slots per page: a page is the unit the table grows and shrinks by. */
const PAGE_BITS = 12;
/** Key bytes per slot a fresh page starts with room for (a page's arena doubles when its keys need more). */
const ARENA_BYTES_PER_SLOT = 48;
const MIN_INDEX = 1024;

/** A hash of a key's UTF-16 code units: FNV-1a from a per-table seed, then murmur3's finalizer. */
export type KeyHash = (key: string, seed: number) => number;

export const fnv1aHash: KeyHash = (key, seed) => {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
};

export type KeyTableOptions = {
  /** For tests: a hash to use instead of {@link fnv1aHash} (a constant one makes every key collide). */
  hash?: KeyHash;
  /** For tests: log2 of the slots per page (small pages make the ring of pages wrap and grow often). */
  pageBits?: number;
};

/** A page of slots: the records' fields in typed arrays, the keys' characters in one byte buffer. */
class Page {
  readonly hashes: Uint32Array;
  readonly keyStart: Uint32Array;
  readonly keyLength: Uint16Array;
  readonly flags: Uint8Array;
  readonly inventory: Uint32Array;
  readonly qty: Float64Array;
  readonly remaining: Float64Array;
  readonly firstTicket: Float64Array;
  readonly expiresAt: Float64Array;
  arena: Uint8Array;
  arenaEnd = 0;

  constructor(slots: number) {
    this.hashes = new Uint32Array(slots);
    this.keyStart = new Uint32Array(slots);
    this.keyLength = new Uint16Array(slots);
    this.flags = new Uint8Array(slots);
    this.inventory = new Uint32Array(slots);
    this.qty = new Float64Array(slots);
    this.remaining = new Float64Array(slots);
    this.firstTicket = new Float64Array(slots);
    this.expiresAt = new Float64Array(slots);
    this.arena = new Uint8Array(slots * ARENA_BYTES_PER_SLOT);
  }

  keyEquals(offset: number, key: string): boolean {
    if (this.keyLength[offset] !== key.length) return false;
    const arena = this.arena;
    let at = this.keyStart[offset]!;
    if (this.flags[offset]! & WIDE) {
      for (let i = 0; i < key.length; i++, at += 2) {
        if ((arena[at]! | (arena[at + 1]! << 8)) !== key.charCodeAt(i)) return false;
      }
    } else {
      for (let i = 0; i < key.length; i++, at++) if (arena[at] !== key.charCodeAt(i)) return false;
    }
    return true;
  }

  readKey(offset: number): string {
    const length = this.keyLength[offset]!;
    const at = this.keyStart[offset]!;
    const arena = this.arena;
    let key = '';
    if (this.flags[offset]! & WIDE) {
      for (let i = 0; i < length; i++) key += String.fromCharCode(arena[at + 2 * i]! | (arena[at + 2 * i + 1]! << 8));
    } else {
      // One call for the whole key: a byte per character is exactly Latin-1.
      key = String.fromCharCode.apply(null, arena.subarray(at, at + length) as unknown as number[]);
    }
    return key;
  }

  /** Appends the key's characters to the arena (one byte each, or two when `wide`) and returns where they start. */
  writeKey(key: string, wide: boolean): number {
    const bytes = wide ? key.length * 2 : key.length;
    if (this.arenaEnd + bytes > this.arena.length) {
      const grown = new Uint8Array(Math.max(2 * this.arena.length, this.arenaEnd + bytes));
      grown.set(this.arena.subarray(0, this.arenaEnd));
      this.arena = grown;
    }
    const start = this.arenaEnd;
    const arena = this.arena;
    let at = start;
    if (wide) {
      for (let i = 0; i < key.length; i++, at += 2) {
        const code = key.charCodeAt(i);
        arena[at] = code & 0xff;
        arena[at + 1] = code >>> 8;
      }
    } else {
      for (let i = 0; i < key.length; i++, at++) arena[at] = key.charCodeAt(i);
    }
    this.arenaEnd = at;
    return start;
  }
}

/**
 * The idempotency keys the actor replays, in insertion order (which, with one
 * TTL for all, is expiry order), kept outside the JavaScript heap: each key's
 * characters in a byte buffer and its record's fields in typed arrays, in
 * pages of 4,096 slots, with an open-addressing index over the slots. A
 * key costs about 100 bytes this way, against about 230 bytes of heap (and
 * about 420 of peak RSS) as a Map entry holding a string and an object, and a
 * million keys give the garbage collector nothing to trace.
 *
 * Slots are appended at the tail and dropped from the head (prune) or marked
 * dead where they are (delete). Whole pages are added at the tail and let go
 * once the head has passed them, so the table never copies all its records
 * to grow; only the index is rebuilt, when it doubles.
 *
 * `set` always makes the key the newest entry, like `delete` then `set` on a
 * Map. Records handed out are fresh objects: changing one changes nothing here.
 *
 * @example
 * const keys = new KeyTable();
 * keys.set('k1', { key: 'k1', inventoryId: 'default', qty: 2, success: true, remaining: 8, firstTicket: 1, expiresAt: Date.now() + 60_000 });
 * keys.get('k1')?.firstTicket; // 1
 */
export class KeyTable {
  readonly #hash: KeyHash;
  readonly #seed = (Math.random() * 0x100000000) >>> 0;
  readonly #pageBits: number;
  readonly #pageSlots: number;
  readonly #offsetMask: number;

  #inventories: string[] = [];
  #inventoryIndex = new Map<string, number>();

  /**
   * Pages by ring position: absolute slot number `a` lives in page
   * `floor(a / pageSlots)` at ring position `page & (#pages.length - 1)`.
   * A slot's id (in the index) is its ring position and offset in the page.
   */
  #pages: Array<Page | undefined> = new Array<Page | undefined>(4);
  /** Absolute slot numbers: slots in [#head, #tail) are live or dead; everything before #head is gone. */
  #head = 0;
  #tail = 0;
  #size = 0;
  /** Slot id + 1 per entry, 0 for empty; at most half full. */
  #index = new Int32Array(MIN_INDEX);

  constructor(options: KeyTableOptions = {}) {
    this.#hash = options.hash ?? fnv1aHash;
    this.#pageBits = options.pageBits ?? PAGE_BITS;
    this.#pageSlots = 1 << this.#pageBits;
    this.#offsetMask = this.#pageSlots - 1;
  }

  /** A table holding the same records, in the same order. */
  static from(records: Iterable<IdempotencyRecord>, options?: KeyTableOptions): KeyTable {
    const table = new KeyTable(options);
    for (const record of records) table.set(record.key, record);
    return table;
  }

  get size(): number {
    return this.#size;
  }

  has(key: string): boolean {
    return this.#find(key, this.#hash(key, this.#seed)) !== -1;
  }

  get(key: string): IdempotencyRecord | undefined {
    const position = this.#find(key, this.#hash(key, this.#seed));
    if (position === -1) return undefined;
    const id = this.#index[position]! - 1;
    return this.#recordAt(this.#pages[id >>> this.#pageBits]!, id & this.#offsetMask, key);
  }

  /** Records `record` under `key` as the newest entry, replacing what `key` held. */
  set(key: string, record: IdempotencyRecord): this {
    if (record.key !== key)
      throw new Error(`KeyTable.set: the record's key ${JSON.stringify(record.key)} is not ${JSON.stringify(key)}`);
    if (key.length > MAX_KEY_LENGTH)
      throw new Error(`KeyTable.set: a key of ${key.length} characters is longer than ${MAX_KEY_LENGTH}`);
    const hash = this.#hash(key, this.#seed);
    const known = this.#find(key, hash);
    if (known !== -1) this.#deleteAt(known);

    if (2 * (this.#size + 1) > this.#index.length) this.#rebuildIndex(this.#pages.length, 2 * this.#index.length);
    const offset = this.#tail & this.#offsetMask;
    if (offset === 0) this.#addPage();
    const ring = (this.#tail / this.#pageSlots) & (this.#pages.length - 1);
    const page = this.#pages[ring]!;
    const wide = isWide(key);
    page.hashes[offset] = hash;
    page.keyStart[offset] = page.writeKey(key, wide);
    page.keyLength[offset] = key.length;
    page.flags[offset] = LIVE | (record.success ? SUCCESS : 0) | (wide ? WIDE : 0);
    page.inventory[offset] = this.#inventoryNumber(record.inventoryId);
    page.qty[offset] = record.qty;
    page.remaining[offset] = record.remaining;
    page.firstTicket[offset] = record.firstTicket;
    page.expiresAt[offset] = record.expiresAt;
    this.#insert(hash, (ring << this.#pageBits) | offset);
    this.#tail += 1;
    this.#size += 1;
    return this;
  }

  delete(key: string): boolean {
    const position = this.#find(key, this.#hash(key, this.#seed));
    if (position === -1) return false;
    this.#deleteAt(position);
    return true;
  }

  /**
   * Drops keys that expired by `now`, then the oldest keys beyond `maxKeys`.
   * Only the front is looked at: keys are in expiry order.
   */
  prune(now: number, maxKeys: number): void {
    if (this.#size === 0) return;
    while (this.#size > 0) {
      const ring = (this.#head / this.#pageSlots) & (this.#pages.length - 1);
      const page = this.#pages[ring]!;
      const offset = this.#head & this.#offsetMask;
      if (page.flags[offset]! & LIVE) {
        if (page.expiresAt[offset]! > now && this.#size <= maxKeys) break;
        this.#removeSlot(page, ring, offset);
      }
      this.#head += 1;
      if ((this.#head & this.#offsetMask) === 0) this.#pages[ring] = undefined;
    }
    if (this.#size === 0) this.clear();
  }

  /**
   * Drops every key that expired by `now`, wherever it is: after a change of
   * TTL between runs, expiry order is no longer insertion order.
   */
  dropExpired(now: number): void {
    for (let slot = this.#head; slot < this.#tail && this.#size > 0; slot++) {
      const ring = (slot / this.#pageSlots) & (this.#pages.length - 1);
      const page = this.#pages[ring];
      const offset = slot & this.#offsetMask;
      if (page === undefined || !(page.flags[offset]! & LIVE) || page.expiresAt[offset]! > now) continue;
      this.#removeSlot(page, ring, offset);
    }
    if (this.#size === 0) this.clear();
  }

  clear(): void {
    this.#pages = new Array<Page | undefined>(4);
    this.#index = new Int32Array(MIN_INDEX);
    this.#head = this.#tail = this.#size = 0;
  }

  /** The records, oldest first. Deleting entries while iterating is allowed; adding is not. */
  *values(): IterableIterator<IdempotencyRecord> {
    for (const [page, offset] of this.#liveSlots()) yield this.#recordAt(page, offset, page.readKey(offset));
  }

  /**
   * The records as they stand now, to be read later while the table goes on
   * changing (the file store writes a snapshot from one while commits go on):
   * records added afterwards are not in it, and records deleted or pruned
   * afterwards are left out when it is read. Costs a list of page references.
   */
  view(): Iterable<IdempotencyRecord> {
    const head = this.#head;
    const tail = this.#tail;
    const pageSlots = this.#pageSlots;
    const offsetMask = this.#offsetMask;
    const firstPage = Math.floor(head / pageSlots);
    // Pages are never reused: one dropped from the ring (or by clear) stays as it was, flags aside.
    const pages: Page[] = [];
    for (let page = firstPage; page * pageSlots < tail; page++)
      pages.push(this.#pages[page & (this.#pages.length - 1)]!);
    const recordAt = (page: Page, offset: number) => this.#recordAt(page, offset, page.readKey(offset));
    return {
      *[Symbol.iterator]() {
        for (let slot = head; slot < tail; slot++) {
          const page = pages[Math.floor(slot / pageSlots) - firstPage]!;
          const offset = slot & offsetMask;
          if (page.flags[offset]! & LIVE) yield recordAt(page, offset);
        }
      },
    };
  }

  *keys(): IterableIterator<string> {
    for (const [page, offset] of this.#liveSlots()) yield page.readKey(offset);
  }

  *entries(): IterableIterator<[string, IdempotencyRecord]> {
    for (const record of this.values()) yield [record.key, record];
  }

  [Symbol.iterator](): IterableIterator<[string, IdempotencyRecord]> {
    return this.entries();
  }

  *#liveSlots(): IterableIterator<[Page, number]> {
    for (let slot = this.#head; slot < this.#tail; slot++) {
      const page = this.#pages[(slot / this.#pageSlots) & (this.#pages.length - 1)];
      const offset = slot & this.#offsetMask;
      if (page !== undefined && page.flags[offset]! & LIVE) yield [page, offset];
    }
  }

  /** The index position holding `key`, or -1. */
  #find(key: string, hash: number): number {
    if (this.#size === 0) return -1;
    const index = this.#index;
    const mask = index.length - 1;
    for (let i = hash & mask; index[i] !== 0; i = (i + 1) & mask) {
      const id = index[i]! - 1;
      const page = this.#pages[id >>> this.#pageBits]!;
      const offset = id & this.#offsetMask;
      if (page.hashes[offset] === hash && page.keyEquals(offset, key)) return i;
    }
    return -1;
  }

  /** Removes a live slot found by walking the pages (its index position is looked up from its hash). */
  #removeSlot(page: Page, ring: number, offset: number): void {
    this.#removeFromIndex(this.#positionOf(page.hashes[offset]!, (ring << this.#pageBits) | offset));
    page.flags[offset] = 0;
    this.#size -= 1;
  }

  #deleteAt(position: number): void {
    const id = this.#index[position]! - 1;
    this.#pages[id >>> this.#pageBits]!.flags[id & this.#offsetMask] = 0;
    this.#removeFromIndex(position);
    this.#size -= 1;
  }

  #recordAt(page: Page, offset: number, key: string): IdempotencyRecord {
    return {
      key,
      inventoryId: this.#inventories[page.inventory[offset]!]!,
      qty: page.qty[offset]!,
      success: (page.flags[offset]! & SUCCESS) !== 0,
      remaining: page.remaining[offset]!,
      firstTicket: page.firstTicket[offset]!,
      expiresAt: page.expiresAt[offset]!,
    };
  }

  /** A fresh page at the tail; the ring of pages doubles (and the index is rebuilt) when it is full. */
  #addPage(): void {
    const pageNumber = this.#tail / this.#pageSlots;
    const headPage = Math.floor(this.#head / this.#pageSlots);
    if (pageNumber - headPage >= this.#pages.length) {
      if ((2 * this.#pages.length) << this.#pageBits > 2 ** 31) throw new Error('KeyTable: too many keys');
      this.#rebuildIndex(2 * this.#pages.length, this.#index.length);
    }
    this.#pages[pageNumber & (this.#pages.length - 1)] = new Page(this.#pageSlots);
  }

  /** Moves the pages to a ring of `ringSize` and rebuilds an index of `indexSize` positions over the live slots. */
  #rebuildIndex(ringSize: number, indexSize: number): void {
    const pages = new Array<Page | undefined>(ringSize);
    const firstPage = Math.floor(this.#head / this.#pageSlots);
    const endPage = Math.ceil(this.#tail / this.#pageSlots);
    for (let n = firstPage; n < endPage; n++) pages[n & (ringSize - 1)] = this.#pages[n & (this.#pages.length - 1)];
    this.#pages = pages;
    this.#index = new Int32Array(indexSize);
    for (let slot = this.#head; slot < this.#tail; slot++) {
      const ring = (slot / this.#pageSlots) & (ringSize - 1);
      const page = pages[ring]!;
      const offset = slot & this.#offsetMask;
      if (page.flags[offset]! & LIVE) this.#insert(page.hashes[offset]!, (ring << this.#pageBits) | offset);
    }
  }

  #insert(hash: number, id: number): void {
    const index = this.#index;
    const mask = index.length - 1;
    let i = hash & mask;
    while (index[i] !== 0) i = (i + 1) & mask;
    index[i] = id + 1;
  }

  /** The index position of slot `id`, whose hash is `hash`. */
  #positionOf(hash: number, id: number): number {
    const index = this.#index;
    const mask = index.length - 1;
    let i = hash & mask;
    while (index[i] !== id + 1) i = (i + 1) & mask;
    return i;
  }

  #hashOf(id: number): number {
    return this.#pages[id >>> this.#pageBits]!.hashes[id & this.#offsetMask]!;
  }

  /** Empties index position `hole` and shifts back the entries after it that probed past it (no tombstones). */
  #removeFromIndex(hole: number): void {
    const index = this.#index;
    const mask = index.length - 1;
    index[hole] = 0;
    for (let j = (hole + 1) & mask; index[j] !== 0; j = (j + 1) & mask) {
      const home = this.#hashOf(index[j]! - 1) & mask;
      // The entry at j may move to the hole unless its home lies cyclically in (hole, j].
      const staysPut = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (staysPut) continue;
      index[hole] = index[j]!;
      index[j] = 0;
      hole = j;
    }
  }

  #inventoryNumber(inventoryId: string): number {
    let number = this.#inventoryIndex.get(inventoryId);
    if (number === undefined) {
      number = this.#inventories.length;
      this.#inventories.push(inventoryId);
      this.#inventoryIndex.set(inventoryId, number);
    }
    return number;
  }
}

function isWide(key: string): boolean {
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) > 0xff) return true;
  return false;
}
