/**
 * A reader of server-sent events from a fetch body (or an `app.request()`
 * answer), message by message, as EventSource would dispatch them: for the
 * dashboard's stream in tests and in the benchmark.
 */

export interface SseMessage {
  /** `message` when the server named none. */
  event: string;
  data: string;
  id?: string;
  retry?: number;
}

/** Reads `body` as an event stream; {@link next} answers one message at a time, null at the end. */
export class SseReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();
  #buffer = '';
  #queued: SseMessage[] = [];
  #ended = false;
  /** Bytes read so far. */
  bytes = 0;

  constructor(body: ReadableStream<Uint8Array>) {
    this.#reader = body.getReader();
  }

  /** The next message; null once the stream has ended; rejects after `timeoutMs` with none. */
  async next(timeoutMs = 5_000): Promise<SseMessage | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.#queued.length === 0) {
      if (this.#ended) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no server-sent event within ${timeoutMs} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), left)));
      const read = await Promise.race([this.#pending ?? (this.#pending = this.#reader.read()), timeout]);
      clearTimeout(timer);
      if (read === 'timeout') continue;
      this.#pending = undefined;
      if (read.done) {
        this.#ended = true;
        this.#parse(true);
      } else {
        this.bytes += read.value.byteLength;
        this.#buffer += this.#decoder.decode(read.value, { stream: true });
        this.#parse(false);
      }
    }
    return this.#queued.shift() ?? null;
  }

  /** The next message named `event`, skipping others. */
  async nextOf(event: string, timeoutMs = 5_000): Promise<SseMessage | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = await this.next(Math.max(1, deadline - Date.now()));
      if (message === null || message.event === event) return message;
    }
  }

  /** Stops reading: the server sees the stream closed. */
  async cancel(): Promise<void> {
    this.#ended = true;
    await this.#reader.cancel().catch(() => undefined);
  }

  #pending: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;

  #parse(final: boolean): void {
    const blocks = this.#buffer.split(/\r\n\r\n|\n\n|\r\r/);
    this.#buffer = final ? '' : (blocks.pop() ?? '');
    for (const block of blocks) {
      const message: SseMessage = { event: 'message', data: '' };
      const data: string[] = [];
      for (const line of block.split(/\r\n|\n|\r/)) {
        if (line === '' || line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') message.event = value;
        else if (field === 'data') data.push(value);
        else if (field === 'id') message.id = value;
        else if (field === 'retry' && /^\d+$/.test(value)) message.retry = Number(value);
      }
      message.data = data.join('\n');
      if (data.length > 0) this.#queued.push(message);
    }
  }
}
