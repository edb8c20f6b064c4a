import type { AppDependencies } from './app.ts';
import type { Config } from './config.ts';
import type { Logger } from './lib/logger.ts';
import { Metrics } from './lib/metrics.ts';
import { LocalVacancyClient } from './vacancy/local-vacancy-client.ts';
import { MeasuredVacancyClient } from './ticket/measured-vacancy-client.ts';
import { RemoteVacancyClient } from './ticket/remote-vacancy-client.ts';
import type { VacancyFetch } from './ticket/vacancy-fetch.ts';
import { StockActor } from './vacancy/stock-actor.ts';
import { DEFAULT_EVENT_ID, defaultEventDefinition } from './stock/model.ts';
import { MemoryStockStore, type StockStore } from './stock/store.ts';

export interface BuiltDependencies extends AppDependencies {
  /** Stops the actor (answering what it holds) and closes the store. */
  close(): Promise<void>;
}

/**
 * Makes what the configured mode needs: the stock actor on its store where
 * this process owns the stock, and the vacancy client (local or remote)
 * where it sells. The one place that decides local versus remote.
 *
 * @example
 * const deps = await buildDependencies(parseConfig(process.env), { logger });
 * const app = createApp(deps);
 */
export async function buildDependencies(
  config: Config,
  options: {
    logger?: Logger;
    /** What the ticket service calls vacancy through (default: the global fetch). */
    fetch?: VacancyFetch;
    /** The store the actor records into; required unless STOCK_STORE=memory (the runtime edge makes durable ones). */
    store?: StockStore;
  } = {},
): Promise<BuiltDependencies> {
  const mode = config.MODE;
  const metrics = new Metrics();
  let actor: StockActor | undefined;
  if (mode === 'monolith' || mode === 'vacancy') {
    let store = options.store;
    if (!store) {
      if (config.STOCK_STORE !== 'memory') {
        throw new Error(`STOCK_STORE=${config.STOCK_STORE} needs a store from the runtime entrypoint`);
      }
      store = new MemoryStockStore({ maxKeys: config.IDEMPOTENCY_MAX_KEYS });
    }
    const seed = [{ eventId: DEFAULT_EVENT_ID, definition: defaultEventDefinition(config.INITIAL_STOCK) }];
    actor = await StockActor.start(store, seed, {
      idempotencyTtlMs: config.IDEMPOTENCY_TTL * 1000,
      observer: metrics.actorObserver,
      onOutcome: metrics.stockOutcome,
    });
    metrics.watchStock(actor);
  }

  let vacancyClient: AppDependencies['vacancyClient'];
  let vacancyClientDescription: string | undefined;
  if (mode === 'monolith' && actor) {
    vacancyClient = new LocalVacancyClient(actor);
    vacancyClientDescription = 'local (in-process actor)';
  } else if (mode === 'ticket') {
    const remote = new RemoteVacancyClient({
      baseUrl: config.VACANCY_URL.split(','),
      timeoutMs: Math.round(config.VACANCY_TIMEOUT * 1000),
      retries: config.VACANCY_RETRIES,
      batchMax: config.VACANCY_BATCH_MAX,
      internalToken: config.INTERNAL_TOKEN,
      fetch: options.fetch,
    });
    vacancyClient = new MeasuredVacancyClient(remote, metrics);
    vacancyClientDescription = `remote ${config.VACANCY_URL}`;
  }

  return {
    config,
    actor,
    vacancyClient,
    vacancyClientDescription,
    metrics,
    logger: options.logger,
    async close() {
      await vacancyClient?.close();
      await actor?.close();
    },
  };
}
