import type { StockActor } from './stock-actor.ts';
import type { CallContext, VacancyClient, VacancyProbe } from '../stock/vacancy-client.ts';

/**
 * The monolith's vacancy client: a direct call into the stock actor, no
 * network in between. Store failures surface as the actor's own errors,
 * which the app maps to 503 like a remote failure.
 *
 * @example
 * const service = new TicketService(new LocalVacancyClient(actor));
 */
export class LocalVacancyClient implements VacancyClient {
  constructor(private readonly actor: StockActor) {}

  available() {
    return this.actor.available();
  }

  reserve(qty: number, context: CallContext = {}) {
    return this.actor.reserve(qty, { idempotencyKey: context.idempotencyKey });
  }

  async probe(): Promise<VacancyProbe> {
    const store = await this.actor.checkStore();
    return store.writable
      ? { ready: true, detail: `in-process, ${store.kind} store` }
      : { ready: false, detail: `the ${store.kind} store cannot record changes` };
  }

  async close(): Promise<void> {}
}
