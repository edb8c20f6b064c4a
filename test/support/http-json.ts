/**
 * Small HTTP helpers shared by the real-process tests of the file store and
 * of the microservice retries: one request, its status, headers and body as
 * text and (when it is JSON) parsed; plus temp dirs and a seeded generator.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface JsonReply<T = unknown> {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body, or undefined when it is not JSON. */
  body: T;
}

export async function requestJson<T = Record<string, unknown>>(
  url: string,
  options: { method?: string; json?: unknown; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<JsonReply<T>> {
  const init: RequestInit = {
    method: options.method ?? (options.json === undefined ? 'GET' : 'POST'),
    headers: { ...(options.json === undefined ? {} : { 'Content-Type': 'application/json' }), ...options.headers },
    signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
  };
  if (options.json !== undefined) init.body = JSON.stringify(options.json);
  const response = await fetch(url, init);
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: response.status, headers: response.headers, text, body: body as T };
}

/** POST /api/v1/purchase with `{qty}` and, if given, an Idempotency-Key. */
export function purchase(baseUrl: string, qty: number, key?: string, timeoutMs?: number) {
  return requestJson<PurchaseBody>(`${baseUrl}/api/v1/purchase`, {
    json: { qty },
    headers: key === undefined ? {} : { 'Idempotency-Key': key },
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
}

export interface PurchaseBody {
  success: boolean;
  remaining: number;
  message: string;
  purchaseId?: string;
  reservationId?: string;
  tickets?: { first: number; last: number };
}

export interface StockHealth {
  available: number;
  sold: number;
}

export interface StoreHealthBody {
  kind: string;
  durable: boolean;
  writable: boolean;
  lastCommitAgeMs: number | null;
  location?: string;
  error?: string;
}

/** The vacancy part of GET /api/v1/health, in the monolith (details.vacancy) or in vacancy (details). */
export async function stockHealth(baseUrl: string): Promise<{ stock: StockHealth; store: StoreHealthBody }> {
  const reply = await requestJson<{ details: Record<string, unknown> }>(`${baseUrl}/api/v1/health`);
  if (reply.status !== 200) throw new Error(`GET /api/v1/health answered ${reply.status}: ${reply.text}`);
  const details = reply.body.details;
  const vacancy = (details.vacancy ?? details) as { stock: StockHealth | null; store: StoreHealthBody };
  if (!vacancy.stock) throw new Error(`GET /api/v1/health has no stock: ${reply.text}`);
  return { stock: vacancy.stock, store: vacancy.store };
}

/** GET /api/v1/available → qty. */
export async function available(baseUrl: string): Promise<number> {
  const reply = await requestJson<{ qty: number }>(`${baseUrl}/api/v1/available`);
  if (reply.status !== 200) throw new Error(`GET /api/v1/available answered ${reply.status}: ${reply.text}`);
  return reply.body.qty;
}

/** A fresh directory under the OS temp dir; remove it with {@link removeDir}. */
export function makeTempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `${prefix}-`));
}

export function removeDir(dir: string | undefined): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
}

/** A small deterministic generator (mulberry32), so a failing run can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** The seed of this run: TEST_SEED if set (to replay a failure), else a fresh one. */
export function testSeed(): number {
  const fromEnv = Number(process.env.TEST_SEED);
  return Number.isSafeInteger(fromEnv) && fromEnv > 0 ? fromEnv : 1 + Math.floor(Math.random() * 2 ** 31);
}
