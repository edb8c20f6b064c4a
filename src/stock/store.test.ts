import { describe, expect, it } from 'vitest';
import type { HoldRecord, StockCommand } from './model.ts';
import { MemoryStockStore } from './store.ts';

const HOUR = 3_600_000;

/** A generator of the same numbers on every run, so a failure can be replayed. */
function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

describe('MemoryStockStore', () => {
  it('lists the held holds that expire first, over all events or one, however many were confirmed or released', async () => {
    const random = seeded(17);
    const store = new MemoryStockStore();
    const now = Date.now();
    const options = { now, idempotencyTtlMs: HOUR };
    const definition = {
      name: 'Show',
      capacity: null,
      ticketTypes: [{ id: 'general', name: 'General', capacity: 1_000_000, maxPerOrder: null }],
    };
    await store.decide(
      ['north', 'south'].map((eventId) => ({ kind: 'put-event', eventId, definition })),
      options,
    );
    const holds: Array<{ id: string; eventId: string; expiresAt: number }> = [];
    for (let batch = 0; batch < 20; batch++) {
      const commands: StockCommand[] = [];
      for (let i = 0; i < 50; i++) {
        const eventId = random() < 0.5 ? 'north' : 'south';
        const ttlMs = 10_000 + Math.floor(random() * HOUR);
        const id = `hld_memorystoretest${String(holds.length).padStart(5, '0')}${eventId}`;
        holds.push({ id, eventId, expiresAt: now + ttlMs });
        commands.push({
          kind: 'hold',
          eventId,
          items: [{ typeId: 'general', qty: 1 }],
          buyer: null,
          holdId: id,
          at: now,
          ttlMs,
        });
      }
      // Some of the earlier holds end: released or confirmed, so the deadline index keeps entries of holds no longer held.
      for (const hold of holds) {
        const roll = random();
        if (roll < 0.15) commands.push({ kind: 'release', holdId: hold.id });
        else if (roll < 0.25) {
          commands.push({ kind: 'confirm', holdId: hold.id, orderId: hold.id.replace('hld_', 'ord_'), at: now });
        }
      }
      await store.decide(commands, options);
    }

    const held = new Set<string>();
    for (const hold of holds) {
      const [decision] = await store.decide([{ kind: 'get-hold', holdId: hold.id }], options);
      if (decision?.kind === 'hold' && decision.hold.status === 'held') held.add(hold.id);
    }
    expect(held.size).toBeGreaterThan(50);
    expect(held.size).toBeLessThan(holds.length / 2);
    for (const [eventId, limit] of [
      [null, 40],
      ['north', 25],
      ['south', 1],
      ['south', 10_000],
    ] as const) {
      const expected = holds
        .filter((hold) => held.has(hold.id) && (eventId === null || hold.eventId === eventId))
        .sort((a, b) => a.expiresAt - b.expiresAt)
        .slice(0, limit)
        .map((hold) => hold.expiresAt);
      const [decision] = await store.decide([{ kind: 'expiring-holds', eventId, limit }], options);
      expect(decision?.kind).toBe('holds');
      const listed = (decision as { holds: HoldRecord[] }).holds;
      expect(listed.every((hold) => hold.status === 'held' && (eventId === null || hold.eventId === eventId))).toBe(
        true,
      );
      expect(listed.map((hold) => hold.expiresAt)).toEqual(expected);
    }
  });
});
