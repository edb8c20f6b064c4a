/**
 * The Deno entrypoint: the same app as the Node entry (same configuration,
 * same modes), served by Deno.serve. `npm run start:deno`.
 */
import {
  closeAndExit,
  exitOnStartFailure,
  loadConfigOrExit,
  logListening,
  prepare,
  shutdownOnSignals,
} from './node/bootstrap.ts';

interface DenoServer {
  shutdown(): Promise<void>;
  finished: Promise<void>;
}
declare const Deno: {
  args: string[];
  version: { deno: string };
  serve(
    options: { port: number; hostname: string; onListen?: () => void },
    handler: (request: Request) => Response | Promise<Response>,
  ): DenoServer;
  addSignalListener(signal: 'SIGTERM' | 'SIGINT', handler: () => void): void;
};

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const started = await prepare(config, Deno.args);
  const { app } = started;
  const server = Deno.serve(
    { port: config.port, hostname: config.HOST, onListen: () => logListening(started, `deno ${Deno.version.deno}`) },
    app.fetch,
  );

  shutdownOnSignals(started, (signal, handler) => Deno.addSignalListener(signal, handler), {
    // shutdown() stops accepting and resolves once every request in flight is answered.
    drain: () => server.shutdown(),
    force: () => closeAndExit(started),
  });
}

main().catch(exitOnStartFailure);
