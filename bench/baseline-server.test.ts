/**
 * The baseline server answers like the app on the paths the benchmark uses,
 * so that "ratio to baseline" compares the same JSON work.
 */
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBaselineServer } from './baseline-server.ts';
import { decidePurchase } from './purchase-decision.ts';

describe('decidePurchase', () => {
  it('sells while the stock lasts, then answers 200 "Insufficient inventory" and changes nothing', () => {
    const stock = { remaining: 3, sold: 0 };
    expect(decidePurchase(stock, { qty: 2 })).toEqual({
      status: 200,
      body: { success: true, remaining: 1, message: 'Purchased 2 tickets' },
    });
    expect(decidePurchase(stock, { qty: 1 }).body).toEqual({
      success: true,
      remaining: 0,
      message: 'Purchased 1 ticket',
    });
    expect(decidePurchase(stock, { qty: 1 })).toEqual({
      status: 200,
      body: { success: false, remaining: 0, message: 'Insufficient inventory' },
    });
    expect(stock).toEqual({ remaining: 0, sold: 3 });
  });

  it.each([
    [{ qty: 0 }],
    [{ qty: -1 }],
    [{ qty: 1.5 }],
    [{ qty: '1' }],
    [{ qty: 2 ** 53 }],
    [{}],
    [null],
    [[1]],
    ['qty'],
  ])('answers 422 to %j and changes nothing', (body) => {
    const stock = { remaining: 10, sold: 0 };
    expect(decidePurchase(stock, body).status).toBe(422);
    expect(stock).toEqual({ remaining: 10, sold: 0 });
  });
});

describe('the baseline server over HTTP', () => {
  const server = createBaselineServer(5);
  let base = '';
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const purchase = (body: string, contentType = 'application/json') =>
    fetch(`${base}/api/v1/purchase`, { method: 'POST', headers: { 'content-type': contentType }, body });

  it('sells, reports availability and the stats the runner checks the invariant with', async () => {
    const sold = await purchase('{"qty":2}');
    expect(sold.status).toBe(200);
    expect(await sold.json()).toEqual({ success: true, remaining: 3, message: 'Purchased 2 tickets' });
    expect(await (await fetch(`${base}/api/v1/available`)).json()).toEqual({ qty: 3 });
    expect(await (await fetch(`${base}/stats`)).json()).toEqual({ sold: 2, remaining: 3 });
    expect((await fetch(`${base}/api/v1/health`)).status).toBe(200);
  });

  it('answers bad input with 4xx and sells nothing', async () => {
    const before = await (await fetch(`${base}/stats`)).json();
    expect((await purchase('{"qty": ')).status).toBe(400);
    expect((await purchase('{"qty":0}')).status).toBe(422);
    expect((await purchase('qty=1', 'text/plain')).status).toBe(415);
    expect((await purchase(JSON.stringify({ qty: 1, pad: 'x'.repeat(1024 * 1024) }))).status).toBe(413);
    expect((await fetch(`${base}/nothing`)).status).toBe(404);
    expect(await (await fetch(`${base}/stats`)).json()).toEqual(before);
  });
});
