import type { FileHandle } from 'node:fs/promises';

const NEWLINE = 0x0a;

/** One line of a journal file: its bytes without the newline, where it starts, and whether a newline ends it. */
export interface JournalLine {
  bytes: Buffer;
  offset: number;
  /** False only for the file's last line when the file does not end with a newline. */
  ended: boolean;
}

/**
 * The lines of an open file, read `chunkBytes` at a time from the start, so
 * that recovery never holds more of the journal than one piece and the line
 * that runs across it.
 *
 * @example
 * for await (const { bytes, offset, ended } of journalLines(handle)) console.log(offset, ended, bytes.length);
 */
export async function* journalLines(file: FileHandle, chunkBytes = 1024 * 1024): AsyncGenerator<JournalLine> {
  let pending: Buffer | null = null;
  let pendingOffset = 0;
  for (let position = 0; ;) {
    const chunk = Buffer.allocUnsafe(chunkBytes);
    const { bytesRead } = await file.read(chunk, 0, chunkBytes, position);
    if (bytesRead === 0) break;
    const piece = chunk.subarray(0, bytesRead);
    let start = 0;
    for (let newline = piece.indexOf(NEWLINE); newline !== -1; newline = piece.indexOf(NEWLINE, start)) {
      const part = piece.subarray(start, newline);
      if (pending === null) {
        yield { bytes: part, offset: position + start, ended: true };
      } else {
        yield { bytes: Buffer.concat([pending, part]), offset: pendingOffset, ended: true };
        pending = null;
      }
      start = newline + 1;
    }
    if (start < bytesRead) {
      if (pending === null) pendingOffset = position + start;
      // A copy, so that a few bytes carried over do not keep the whole piece's buffer alive.
      pending = pending === null ? Buffer.from(piece.subarray(start)) : Buffer.concat([pending, piece.subarray(start)]);
    }
    position += bytesRead;
  }
  if (pending !== null) yield { bytes: pending, offset: pendingOffset, ended: false };
}
