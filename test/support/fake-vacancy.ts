/**
 * A vacancy client for tests that care about one or two of its calls: each
 * call not given in `calls` rejects, saying the test did not expect it.
 */
import type { VacancyClient } from '../../src/stock/vacancy-client.ts';

export function fakeVacancyClient(calls: Partial<VacancyClient>): VacancyClient {
  const unexpected = (name: string) => () => Promise.reject(new Error(`this test's vacancy client has no ${name}`));
  return {
    available: unexpected('available'),
    reserve: unexpected('reserve'),
    purchase: unexpected('purchase'),
    getEvent: unexpected('getEvent'),
    listEvents: unexpected('listEvents'),
    probe: async () => ({ ready: true, detail: 'fake' }),
    close: async () => {},
    ...calls,
  };
}
