/**
 * A monolith built in-process on the memory store, for the `app.request()`
 * tests beside the modules: no socket, no files, any configuration.
 */
import { createApp } from '../../src/app.ts';
import { parseConfig } from '../../src/config.ts';
import { buildDependencies } from '../../src/dependencies.ts';

export async function monolith(env: Record<string, string> = {}) {
  const deps = await buildDependencies(
    parseConfig({ MODE: 'monolith', STOCK_STORE: 'memory', INITIAL_STOCK: '10', ...env }),
  );
  return { app: createApp(deps), actor: deps.actor! };
}

export type App = ReturnType<typeof createApp>;

/** POST /api/v1/purchase with a JSON body; `env` stands in for the server's bindings (e.g. the client's socket). */
export function purchase(app: App, body = '{"qty":1}', headers: Record<string, string> = {}, env?: object) {
  return app.request(
    '/api/v1/purchase',
    { method: 'POST', body, headers: { 'Content-Type': 'application/json', ...headers } },
    env,
  );
}
