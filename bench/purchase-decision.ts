/**
 * The purchase decision of the benchmark's yardsticks (the node:http baseline
 * and the Hono floor), apart from I/O: what to answer for a parsed body. The
 * same rules as the app: qty a positive safe integer, else 422; all of it
 * or nothing.
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

