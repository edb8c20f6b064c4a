/**
 * Operations across real processes: one request id in the logs of both
 * services, and secrets (INTERNAL_TOKEN, ADMIN_TOKEN, METRICS_TOKEN) in no
 * log line, whatever callers send and at the most verbose log level.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { parseLogLines, runBundle, startService, stopAllServices, type Service } from './support/processes.ts';

afterAll(() => stopAllServices());

const INTERNAL_TOKEN = 'internal-secret-6c1f0e2a9d';
const ADMIN_TOKEN = 'admin-secret-7d2e1f3b0a';
const METRICS_TOKEN = 'metrics-secret-8e3f2a4c1b';
const SECRETS = [INTERNAL_TOKEN, ADMIN_TOKEN, METRICS_TOKEN];
const VERBOSE = { LOG_LEVEL: 'trace', JSON_LOGS: 'true' };

async function call(url: string, init: RequestInit & { headers?: Record<string, string> } = {}) {
  const response = await fetch(url, init);
  return { status: response.status, body: await response.text() };
}

const postJson = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  call(url, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json', ...headers },
  });

function expectNoSecret(service: Service, label: string) {
  const output = service.output();
  for (const secret of SECRETS) expect(output.includes(secret), `${label} logged a token`).toBe(false);
}

function vacancyRequestIds(vacancy: Service): Set<unknown> {
  const requests = parseLogLines(vacancy.stdout()).filter((l) => l.msg === 'request');
  return new Set(requests.flatMap((l) => [l.requestId, ...((l.requestIds as string[] | undefined) ?? [])]));
}

function loggedCoalescedBatch(vacancy: Service): boolean {
  return parseLogLines(vacancy.stdout()).some(
    (l) => l.path === '/api/v1/reserve/batch' && ((l.requestIds as string[] | undefined)?.length ?? 0) > 1,
  );
}

/** Log lines reach this process through a pipe, a little after the answers they describe. */
async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe('between ticket and vacancy', () => {
  it('logs one request id in both services, and no token anywhere', async () => {
    const vacancy = await startService({ MODE: 'vacancy', INTERNAL_TOKEN, ADMIN_TOKEN, METRICS_TOKEN, ...VERBOSE });
    const ticket = await startService({
      MODE: 'ticket',
      VACANCY_URL: vacancy.url,
      INTERNAL_TOKEN,
      METRICS_TOKEN,
      ...VERBOSE,
    });

    // A lone purchase (single reserve, X-Request-Id header) and a burst (coalesced, request ids in the batch).
    expect((await postJson(`${ticket.url}/api/v1/purchase`, { qty: 1 }, { 'X-Request-Id': 'trace-solo' })).status).toBe(
      200,
    );
    // Purchases ticket reads in one turn of its event loop go in one batch. Whether a burst arrives
    // that way is up to the scheduler, so send bursts until vacancy has logged a batch of several.
    const burstIds: string[] = [];
    for (let round = 0; round < 10 && !loggedCoalescedBatch(vacancy); round++) {
      const ids = Array.from({ length: 30 }, (_, i) => `trace-burst-${round}-${i}`);
      burstIds.push(...ids);
      const burst = await Promise.all(
        ids.map((id) => postJson(`${ticket.url}/api/v1/purchase`, { qty: 1 }, { 'X-Request-Id': id })),
      );
      expect(burst.map((r) => r.status)).toEqual(burst.map(() => 200));
      await waitUntil(() => ids.every((id) => vacancyRequestIds(vacancy).has(id)));
    }

    // Callers with right and wrong secrets, in every place a secret is taken.
    const wrong = 'Bearer not-the-token-000000';
    for (const authorization of [
      `Bearer ${INTERNAL_TOKEN}`,
      `Bearer ${ADMIN_TOKEN}`,
      `Bearer ${METRICS_TOKEN}`,
      wrong,
    ]) {
      await postJson(`${vacancy.url}/api/v1/reserve`, { qty: 1 }, { Authorization: authorization });
      await postJson(`${vacancy.url}/api/v1/admin/stock`, { op: 'add', qty: 1 }, { Authorization: authorization });
      await call(`${vacancy.url}/metrics`, { headers: { Authorization: authorization } });
      await call(`${ticket.url}/metrics`, { headers: { Authorization: authorization } });
    }
    expect(
      (await call(`${vacancy.url}/metrics`, { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } })).status,
    ).toBe(200);
    expect((await call(`${vacancy.url}/metrics`)).status).toBe(401);
    expect((await postJson(`${vacancy.url}/api/v1/reserve`, { qty: 1 })).status).toBe(401);

    await ticket.stop('SIGTERM');
    await vacancy.stop('SIGTERM');

    const ticketLines = parseLogLines(ticket.stdout());
    const ticketIds = new Set(ticketLines.filter((l) => l.msg === 'request').map((l) => l.requestId));
    const vacancyIds = vacancyRequestIds(vacancy);
    for (const id of ['trace-solo', ...burstIds]) {
      expect(ticketIds.has(id), `ticket logged ${id}`).toBe(true);
      expect(vacancyIds.has(id), `vacancy logged ${id}`).toBe(true);
    }
    expect(loggedCoalescedBatch(vacancy), 'a coalesced batch was logged with the request ids it carried').toBe(true);

    expectNoSecret(ticket, 'ticket');
    expectNoSecret(vacancy, 'vacancy');
  });
});

describe('configuration errors', () => {
  it.each(['INTERNAL_TOKEN', 'ADMIN_TOKEN', 'METRICS_TOKEN'])(
    'name a %s that is too short without printing it',
    async (variable) => {
      const secret = 'short-secret';
      const exit = await runBundle({ MODE: 'monolith', [variable]: secret });
      expect(exit.code).toBe(2);
      expect(exit.stderr).toContain(variable);
      expect(exit.stdout + exit.stderr).not.toContain(secret);
    },
  );
});
