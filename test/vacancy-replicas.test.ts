/**
 * A ticket service in front of several vacancy replicas (VACANCY_URL with
 * commas): calls take the replicas in turn, and a replica that refuses
 * connections is skipped, since nothing reached it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startService, stopAllServices } from './support/processes.ts';

afterAll(() => stopAllServices());

async function purchase(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${url}/api/v1/purchase`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: '{"qty":1}',
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('ticket in front of two vacancy replicas', () => {
  it('takes the replicas in turn, skips one that is down, and is unready only when all are', async () => {
    // Memory stores of different sizes, so each answer shows which replica made it.
    const small = await startService({ MODE: 'vacancy', INITIAL_STOCK: '100' });
    const large = await startService({ MODE: 'vacancy', INITIAL_STOCK: '1000' });
    const ticket = await startService({
      MODE: 'ticket',
      VACANCY_URL: `${small.url},${large.url}`,
      VACANCY_TIMEOUT: '2',
    });

    // One after the other: each call then carries one reserve (concurrent ones would be coalesced into fewer calls).
    const first = [];
    for (let i = 0; i < 4; i++) first.push(await purchase(ticket.url));
    const remaining = first.map((answer) => answer.body.remaining as number).sort((a, b) => a - b);
    expect(remaining).toEqual([98, 99, 998, 999]);

    await small.stop('SIGKILL');
    const afterKill = await Promise.all(Array.from({ length: 6 }, () => purchase(ticket.url)));
    expect(afterKill.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(afterKill.every((answer) => (answer.body.remaining as number) >= 992)).toBe(true);
    expect((await fetch(`${ticket.url}/api/v1/ready`)).status).toBe(200);

    await large.stop('SIGKILL');
    const none = await purchase(ticket.url);
    expect(none.status).toBe(503);
    expect(none.body).toMatchObject({ outcomeUnknown: false });
    expect((await fetch(`${ticket.url}/api/v1/ready`)).status).toBe(503);
  });
});
