import { describe, expect, it } from 'vitest';
import { Coalescer } from './coalescer.ts';

/** A send that records its batches and answers when the test says so. */
function controlledSend() {
  const sends: Array<{
    items: number[];
    answer: (results: Array<number | Error>) => void;
    fail: (error: Error) => void;
  }> = [];
  const send = (items: number[]) =>
    new Promise<Array<number | Error>>((resolve, reject) => {
      sends.push({ items, answer: resolve, fail: reject });
    });
  return { sends, send };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('Coalescer', () => {
  it('sends items submitted in one turn together, and at once when nothing is in flight', async () => {
    const { sends, send } = controlledSend();
    const coalescer = new Coalescer(send, { maxItems: 100, maxInFlight: 1 });
    const results = [1, 2, 3].map((item) => coalescer.submit(item));
    await turn();
    expect(sends.map((s) => s.items)).toEqual([[1, 2, 3]]);
    sends[0]!.answer([10, 20, 30]);
    expect(await Promise.all(results)).toEqual([10, 20, 30]);
  });

  it('holds what arrives while maxInFlight sends are under way, then sends it as one batch', async () => {
    const { sends, send } = controlledSend();
    const coalescer = new Coalescer(send, { maxItems: 100, maxInFlight: 2 });
    const first = coalescer.submit(1);
    await turn();
    const second = coalescer.submit(2);
    await turn();
    const waiting = [3, 4, 5].map((item) => coalescer.submit(item));
    await turn();
    await turn();
    expect(sends.map((s) => s.items)).toEqual([[1], [2]]);
    sends[0]!.answer([100]);
    expect(await first).toBe(100);
    await turn();
    expect(sends.map((s) => s.items)).toEqual([[1], [2], [3, 4, 5]]);
    sends[1]!.answer([200]);
    sends[2]!.answer([300, 400, 500]);
    expect(await second).toBe(200);
    expect(await Promise.all(waiting)).toEqual([300, 400, 500]);
  });

  it('never puts more than maxItems in one send', async () => {
    const { sends, send } = controlledSend();
    const coalescer = new Coalescer(send, { maxItems: 3, maxInFlight: 10 });
    const results = Array.from({ length: 8 }, (_, index) => coalescer.submit(index));
    await turn();
    expect(sends.map((s) => s.items)).toEqual([
      [0, 1, 2],
      [3, 4, 5],
      [6, 7],
    ]);
    for (const s of sends) s.answer(s.items.map((item) => item * 2));
    expect(await Promise.all(results)).toEqual([0, 2, 4, 6, 8, 10, 12, 14]);
  });

  it('fails only the item whose result is an Error, and every item of a send that rejects', async () => {
    const { sends, send } = controlledSend();
    const coalescer = new Coalescer(send, { maxItems: 2, maxInFlight: 2 });
    const [a, b, c, d] = [1, 2, 3, 4].map((item) => coalescer.submit(item));
    await turn();
    sends[0]!.answer([11, new Error('item 2 refused')]);
    sends[1]!.fail(new Error('call lost'));
    expect(await a).toBe(11);
    await expect(b).rejects.toThrow('item 2 refused');
    await expect(c).rejects.toThrow('call lost');
    await expect(d).rejects.toThrow('call lost');
  });

  it('fails an item the send left without a result', async () => {
    const { sends, send } = controlledSend();
    const coalescer = new Coalescer(send, { maxItems: 10, maxInFlight: 1 });
    const [a, b] = [1, 2].map((item) => coalescer.submit(item));
    await turn();
    sends[0]!.answer([5]);
    expect(await a).toBe(5);
    await expect(b).rejects.toThrow(/no result for item 1 of a batch of 2/);
  });

  it('keeps sending after a failed send', async () => {
    const { sends, send } = controlledSend();
    const coalescer = new Coalescer(send, { maxItems: 10, maxInFlight: 1 });
    const lost = coalescer.submit(1);
    await turn();
    const next = coalescer.submit(2);
    sends[0]!.fail(new Error('down'));
    await expect(lost).rejects.toThrow('down');
    await turn();
    expect(sends).toHaveLength(2);
    sends[1]!.answer([22]);
    expect(await next).toBe(22);
  });

  it('with spareAfterMs, starts another send only once every send under way is that old', async () => {
    const { sends, send } = controlledSend();
    const coalescer = new Coalescer(send, { maxItems: 100, maxInFlight: 4, spareAfterMs: 1000 });
    const first = coalescer.submit(1);
    await turn();
    const waiting = [2, 3].map((item) => coalescer.submit(item));
    await turn();
    await turn();
    // The first send is younger than 1 s: the others wait for it instead of a send of their own.
    expect(sends.map((s) => s.items)).toEqual([[1]]);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    // Still no answer after 1 s: the waiting items go in a spare send, together.
    expect(sends.map((s) => s.items)).toEqual([[1], [2, 3]]);
    const late = coalescer.submit(4);
    await turn();
    await turn();
    expect(sends).toHaveLength(2);
    sends[0]!.answer([10]);
    expect(await first).toBe(10);
    await turn();
    // The youngest send under way is still fresh, so item 4 still waits; it goes once that one ends.
    expect(sends).toHaveLength(2);
    sends[1]!.answer([20, 30]);
    expect(await Promise.all(waiting)).toEqual([20, 30]);
    await turn();
    expect(sends.map((s) => s.items)).toEqual([[1], [2, 3], [4]]);
    sends[2]!.answer([40]);
    expect(await late).toBe(40);
  });

  it('refuses limits below 1', () => {
    expect(() => new Coalescer(async () => [], { maxItems: 0, maxInFlight: 1 })).toThrow();
    expect(() => new Coalescer(async () => [], { maxItems: 1, maxInFlight: 0 })).toThrow();
  });
});
