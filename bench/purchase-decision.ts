/**
 * What the benchmark's two yardsticks (the node:http baseline and the Hono
 * floor) share: their limits and their purchase decision.
 */

/** The largest request body either yardstick reads, as the app's default BODY_LIMIT. */
export const BODY_LIMIT = 1024 * 1024;
/** Same keep-alive as the app (src/main.ts), so no side pays for reconnects the other does not. */
export const KEEP_ALIVE_TIMEOUT_MS = 76_000;

/**
 * What to answer for a parsed purchase body, apart from I/O. The same rules
 * as the app: qty a positive safe integer, else 422; all of it or nothing.
 */
export function decidePurchase(
  stock: { remaining: number; sold: number },
  body: unknown,
): { status: number; body: Record<string, unknown> } {
  const qty = typeof body === 'object' && body !== null ? (body as { qty?: unknown }).qty : undefined;
  if (typeof qty !== 'number' || !Number.isSafeInteger(qty) || qty < 1) {
    return { status: 422, body: { status: 422, detail: 'qty must be a positive whole number' } };
  }
  if (qty > stock.remaining) {
    return { status: 200, body: { success: false, remaining: stock.remaining, message: 'Insufficient inventory' } };
  }
  stock.remaining -= qty;
  stock.sold += qty;
  return {
    status: 200,
    body: { success: true, remaining: stock.remaining, message: `Purchased ${qty} ticket${qty === 1 ? '' : 's'}` },
  };
}
