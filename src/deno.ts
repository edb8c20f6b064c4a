/**
 * The Deno entrypoint: the same app as the Node entry (same configuration,
 * same modes), served by Deno.serve. `npm run start:deno`.
 */
import { closeAndExit, exitOnStartFailure, loadConfigOrExit, logListening, prepare } from './node/bootstrap.ts';

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
  const { logger, lifecycle, app } = started;
  const server = Deno.serve(
    { port: config.port, hostname: config.HOST, onListen: () => logListening(started, `deno ${Deno.version.deno}`) },
    app.fetch,
  );

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    lifecycle.shuttingDown = true;
    logger.info({ signal }, 'shutting down: refusing new connections, finishing requests in flight');
    const deadline = setTimeout(() => {
      logger.warn({ timeoutSeconds: config.SHUTDOWN_TIMEOUT }, 'shutdown deadline passed; exiting');
      void closeAndExit(started);
    }, config.SHUTDOWN_TIMEOUT * 1000);
    // shutdown() stops accepting and resolves once every request in flight is answered.
    void server.shutdown().then(() => {
      clearTimeout(deadline);
      return closeAndExit(started);
    });
  };
  Deno.addSignalListener('SIGTERM', () => shutdown('SIGTERM'));
  Deno.addSignalListener('SIGINT', () => shutdown('SIGINT'));
}

main().catch(exitOnStartFailure);
