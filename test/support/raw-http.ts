/**
 * A minimal HTTP/1.1 client over one raw TCP socket, for tests that must
 * control exactly which connection a request travels on and when its bytes
 * are sent (keep-alive reuse, half-sent requests during shutdown).
 */
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export class RawConnection {
  readonly #socket: Socket;
  #buffer = Buffer.alloc(0);
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake?.();
    });
    socket.on('end', () => {
      this.#ended = true;
      this.#wake?.();
    });
    socket.on('close', () => {
      this.#ended = true;
      this.#wake?.();
    });
    socket.on('error', (error) => {
      this.#error = error;
      this.#wake?.();
    });
  }

  static open(port: number, host = '127.0.0.1'): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host }, () => {
        socket.off('error', reject);
        resolve(new RawConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Whether the server has closed (or reset) this connection. */
  get closed(): boolean {
    return this.#ended || this.#error !== undefined;
  }

  write(text: string): Promise<void> {
    return new Promise((resolve, reject) => this.#socket.write(text, (error) => (error ? reject(error) : resolve())));
  }

  /**
   * Reads one complete response (Content-Length or chunked body). Rejects if
   * the connection ends or fails first, or after `timeoutMs`.
   */
  async readResponse(timeoutMs = 5_000): Promise<RawResponse> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const parsed = this.#tryParse();
      if (parsed) return parsed;
      if (this.#error) throw this.#error;
      if (this.#ended)
        throw new Error(
          `connection closed before a complete response (got ${JSON.stringify(this.#buffer.toString())})`,
        );
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`no complete response within ${timeoutMs} ms (got ${JSON.stringify(this.#buffer.toString())})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /** Sends a request and reads its response. */
  async request(
    method: string,
    path: string,
    body?: string,
    headers: Record<string, string> = {},
  ): Promise<RawResponse> {
    await this.write(requestText(method, path, body, headers));
    return this.readResponse();
  }

  /** Resolves once the server has closed the connection (or after `timeoutMs`, with false). */
  async waitClosed(timeoutMs = 5_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
    return this.closed;
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #tryParse(): RawResponse | undefined {
    const headEnd = this.#buffer.indexOf('\r\n\r\n');
    if (headEnd < 0) return undefined;
    const head = this.#buffer.subarray(0, headEnd).toString('latin1');
    const [statusLine = '', ...headerLines] = head.split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? NaN);
    const headers: Record<string, string> = {};
    for (const line of headerLines) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const rest = this.#buffer.subarray(headEnd + 4);
    let body: Buffer;
    let consumed: number;
    if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      if (rest.length < length) return undefined;
      body = rest.subarray(0, length);
      consumed = headEnd + 4 + length;
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const chunks: Buffer[] = [];
      let offset = 0;
      for (;;) {
        const lineEnd = rest.indexOf('\r\n', offset);
        if (lineEnd < 0) return undefined;
        const size = parseInt(rest.subarray(offset, lineEnd).toString('latin1'), 16);
        if (rest.length < lineEnd + 2 + size + 2) return undefined;
        if (size === 0) {
          consumed = headEnd + 4 + lineEnd + 4;
          break;
        }
        chunks.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
        offset = lineEnd + 2 + size + 2;
      }
      body = Buffer.concat(chunks);
    } else {
      // No framing: the body runs to the end of the connection.
      if (!this.#ended) return undefined;
      body = rest;
      consumed = this.#buffer.length;
    }
    this.#buffer = this.#buffer.subarray(consumed);
    return { status, headers, body: body.toString('utf8') };
  }
}

/** The bytes of one HTTP/1.1 request (keep-alive, the 1.1 default). */
export function requestText(method: string, path: string, body?: string, headers: Record<string, string> = {}): string {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1'];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  if (body !== undefined) {
    lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
    if (!Object.keys(headers).some((name) => name.toLowerCase() === 'content-type')) {
      lines.push('Content-Type: application/json');
    }
  }
  return `${lines.join('\r\n')}\r\n\r\n${body ?? ''}`;
}
