/**
 * Reads the file store's snapshot.json a piece at a time: with a million
 * idempotency keys it is about 150 MB of text, which read as one string and
 * parsed as one value took about 700 MB at start-up.
 */
import { open } from 'node:fs/promises';
import { crc32 } from 'node:zlib';

/** The snapshot's last member; the CRC-32 covers the text as if the object closed right before it. */
export const SNAPSHOT_TRAILER = /,"crc":"([0-9a-f]{8})"\}\n?$/;
/** Bytes at the end of the file that must hold the trailer. */
const TRAILER_WINDOW = 64;
const READ_BYTES = 1 << 20;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const KEYS_MEMBER = /"keys"\s*:\s*$/;

function isJsonWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
}

/**
 * Splits the text of one JSON object, fed in pieces, into the elements of
 * its top-level `keys` array, each handed to `onElement` as its own JSON
 * text, and everything else (the skeleton), in which that array is left
 * empty: `{"version":1,"seq":5,"levels":{...},"keys":[]}`. It only tracks
 * strings and nesting; the texts it hands out are for JSON.parse to check.
 *
 * @example
 * const splitter = new KeysArraySplitter((text) => records.push(JSON.parse(text)));
 * splitter.feed('{"seq":1,"keys":[{"key":"a"},');
 * splitter.feed('{"key":"b"}]}');
 * splitter.skeleton; // '{"seq":1,"keys":[]}'
 */
export class KeysArraySplitter {
  skeleton = '';
  /** Set once the text is not well-formed where the splitter looks (between the array's elements). */
  syntaxError: string | null = null;
  #depth = 0;
  #inString = false;
  #escaped = false;
  #inKeys = false;
  #inElement = false;
  #element = '';
  #elements = 0;
  #separatorSeen = false;

  constructor(private readonly onElement: (text: string) => void) {}

  feed(text: string): void {
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (this.#inString) {
        if (this.#escaped) this.#escaped = false;
        else if (c === BACKSLASH) this.#escaped = true;
        else if (c === QUOTE) this.#inString = false;
        continue;
      }
      if (this.#inKeys && this.#depth === 2) {
        if (this.#inElement && (c === COMMA || c === CLOSE_BRACKET)) {
          // The end of an element that is not an object or array (JSON.parse refuses it later).
          this.#emit(this.#element + text.slice(start, i));
        }
        if (!this.#inElement) {
          if (isJsonWhitespace(c)) continue;
          if (c === COMMA) {
            if (this.#separatorSeen) this.#fail('a comma where an element belongs in "keys"');
            this.#separatorSeen = true;
            continue;
          }
          if (c === CLOSE_BRACKET) {
            if (this.#separatorSeen && this.#elements > 0) this.#fail('a comma before the end of "keys"');
            this.#inKeys = false;
            this.#depth = 1;
            this.skeleton += ']';
            start = i + 1;
            continue;
          }
          if (!this.#separatorSeen) this.#fail('no comma between two elements of "keys"');
          this.#separatorSeen = false;
          this.#inElement = true;
          start = i;
        }
      }
      if (c === QUOTE) {
        this.#inString = true;
      } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
        if (c === OPEN_BRACKET && this.#depth === 1 && KEYS_MEMBER.test(this.skeleton + text.slice(start, i))) {
          this.skeleton += text.slice(start, i + 1);
          this.#inKeys = true;
          this.#separatorSeen = true;
          start = i + 1;
        }
        this.#depth += 1;
      } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
        this.#depth -= 1;
        if (this.#inElement && this.#depth === 2) {
          this.#emit(this.#element + text.slice(start, i + 1));
          start = i + 1;
        }
      }
    }
    if (this.#inElement) this.#element += text.slice(start);
    else if (!this.#inKeys) this.skeleton += text.slice(start);
  }

  /** Call after the last piece: an unfinished array or element is a syntax error. */
  end(): void {
    if (this.#inKeys || this.#inElement || this.#inString) this.#fail('the text ends inside "keys"');
  }

  #emit(text: string): void {
    this.#inElement = false;
    this.#element = '';
    this.#elements += 1;
    this.onElement(text);
  }

  #fail(why: string): void {
    this.syntaxError ??= why;
  }
}

export type SnapshotScan =
  | { trailer: false }
  | { trailer: true; expectedCrc: string; computedCrc: string; skeleton: string; syntaxError: string | null };

/**
 * Reads the snapshot at `path` in pieces: checks for the trailer, computes
 * the CRC-32 of the text it covers, and splits that text with
 * {@link KeysArraySplitter}, handing each key record's text to `onKey` as
 * it goes. Null when there is no such file.
 */
export async function scanSnapshot(path: string, onKey: (text: string) => void): Promise<SnapshotScan | null> {
  let file;
  try {
    file = await open(path, 'r');
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return null;
    throw error;
  }
  try {
    const { size } = await file.stat();
    const tail = Buffer.alloc(Math.min(size, TRAILER_WINDOW));
    await file.read(tail, 0, tail.length, size - tail.length);
    const trailer = SNAPSHOT_TRAILER.exec(tail.toString('latin1'));
    if (!trailer) return { trailer: false };
    const bodyBytes = size - (tail.length - trailer.index);

    const splitter = new KeysArraySplitter(onKey);
    const decoder = new TextDecoder();
    const buffer = Buffer.allocUnsafe(READ_BYTES);
    let crc = 0;
    for (let position = 0; position < bodyBytes;) {
      const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, bodyBytes - position), position);
      if (bytesRead === 0) break;
      const piece = buffer.subarray(0, bytesRead);
      crc = crc32(piece, crc);
      splitter.feed(decoder.decode(piece, { stream: true }));
      position += bytesRead;
    }
    splitter.feed(`${decoder.decode()}}`);
    splitter.end();
    crc = crc32('}', crc);
    return {
      trailer: true,
      expectedCrc: trailer[1]!,
      computedCrc: crc.toString(16).padStart(8, '0'),
      skeleton: splitter.skeleton,
      syntaxError: splitter.syntaxError,
    };
  } finally {
    await file.close();
  }
}
