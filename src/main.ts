#!/usr/bin/env node
/**
 * The Node entrypoint: prepares the app for MODE (see node/bootstrap.ts),
 * serves it with @hono/node-server, and shuts down gracefully on SIGTERM /
 * SIGINT. The ticket service reaches vacancy through an undici keep-alive
 * pool sized by HTTP_MAX_CONNECTIONS, with undici's own request API
 * (node/dispatcher-fetch.ts). With OTEL_* set, it traces (see
 * node/tracing.ts).
 */
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { Agent } from 'undici';
import {
  exitOnStartFailure,
  KEEP_ALIVE_TIMEOUT_MS,
  loadConfigOrExit,
  logListening,
  prepare,
  shutdownOnSignals,
} from './node/bootstrap.ts';
import { dispatcherFetch } from './node/dispatcher-fetch.ts';
import { startTracing } from './node/tracing.ts';

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const { MODE, HTTP_MAX_CONNECTIONS, VACANCY_TIMEOUT } = config;
  const pool =
    MODE === 'ticket'
      ? new Agent({
          connections: HTTP_MAX_CONNECTIONS,
          keepAliveTimeout: 30_000,
          pipelining: 1,
          // A last line of defence under the client's own deadline: no socket waits longer than a call may.
          headersTimeout: Math.ceil(VACANCY_TIMEOUT * 1000),
          bodyTimeout: Math.ceil(VACANCY_TIMEOUT * 1000),
        })
      : undefined;
  const started = await prepare(config, process.argv.slice(2), pool ? dispatcherFetch(pool) : undefined, {
    startTracing,
  });
  const { logger, app } = started;

  const server = serve({ fetch: app.fetch, port: config.port, hostname: config.HOST }) as Server;
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1_000;
  server.on('error', (error) => {
    logger.error({ err: error }, `cannot listen on ${config.HOST}:${config.port}`);
    process.exit(1);
  });
  server.on('listening', () => logListening(started, `node ${process.versions.node}`));

  shutdownOnSignals(started, (signal, handler) => process.on(signal, handler), {
    drain: () =>
      new Promise<void>((resolve) => {
        // A connection busy at the signal becomes idle once its answer is sent; close those as they appear.
        const closeIdle = setInterval(() => server.closeIdleConnections(), 50);
        server.close(() => {
          clearInterval(closeIdle);
          resolve();
        });
        server.closeIdleConnections();
      }),
    force: () => server.closeAllConnections(),
    release: async () => {
      await pool?.close();
      // Last, so that the spans of the last requests are sent too.
      await started.tracing?.shutdown();
    },
  });
}

main().catch(exitOnStartFailure);
