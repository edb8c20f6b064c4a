/**
 * Vacancy clients for tests that care about one or two of its calls: every
 * call a test does not give rejects, saying the test did not expect it.
 */
import type { VacancyClient, VacancyProbe } from '../../src/stock/vacancy-client.ts';

function unexpected(name: string): () => Promise<never> {
  return () => Promise.reject(new Error(`this test's vacancy client has no ${name}`));
}

/** A client whose calls all reject, but `probe` (ready) and `close`; subclasses give what they need. */
export class UnexpectedVacancyClient implements VacancyClient {
  available: VacancyClient['available'] = unexpected('available');
  reserve: VacancyClient['reserve'] = unexpected('reserve');
  purchase: VacancyClient['purchase'] = unexpected('purchase');
  hold: VacancyClient['hold'] = unexpected('hold');
  confirm: VacancyClient['confirm'] = unexpected('confirm');
  release: VacancyClient['release'] = unexpected('release');
  getHold: VacancyClient['getHold'] = unexpected('getHold');
  getOrder: VacancyClient['getOrder'] = unexpected('getOrder');
  getEvent: VacancyClient['getEvent'] = unexpected('getEvent');
  listEvents: VacancyClient['listEvents'] = unexpected('listEvents');
  async probe(): Promise<VacancyProbe> {
    return { ready: true, detail: 'fake' };
  }
  async close(): Promise<void> {}
}

/** A client with `calls` and nothing else. */
export function fakeVacancyClient(calls: Partial<VacancyClient>): VacancyClient {
  return Object.assign(new UnexpectedVacancyClient(), calls);
}
