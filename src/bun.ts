/**
 * The Bun entrypoint: the same app as the Node entry (same configuration,
 * same modes), served by Bun.serve. `npm run start:bun`.
 */
import { closeAndExit, exitOnStartFailure, KEEP_ALIVE_TIMEOUT_MS, loadConfigOrExit, logListening, prepare } from './node/bootstrap.ts';

interface BunServer {
  stop(closeActiveConnections?: boolean): Promise<void>;
}
declare const Bun: {
  version: string;
  serve(options: {
    port: number;
    hostname: string;
    idleTimeout?: number;
    fetch: (request: Request) => Response | Promise<Response>;
  }): BunServer;
};

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const started = await prepare(config, process.argv.slice(2));
  const { logger, lifecycle, app } = started;
  const server = Bun.serve({
    port: config.port,
    hostname: config.HOST,
    // Bun's idle timeout is in seconds and at most 255.
    idleTimeout: Math.min(255, Math.ceil(KEEP_ALIVE_TIMEOUT_MS / 1000)),
    fetch: app.fetch,
  });
  logListening(started, `bun ${Bun.version}`);

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    lifecycle.shuttingDown = true;
    logger.info({ signal }, 'shutting down: refusing new connections, finishing requests in flight');
    const deadline = setTimeout(() => {
      logger.warn({ timeoutSeconds: config.SHUTDOWN_TIMEOUT }, 'shutdown deadline passed; closing remaining connections');
      void server.stop(true).then(() => closeAndExit(started));
    }, config.SHUTDOWN_TIMEOUT * 1000);
    // stop(false) stops accepting and resolves once every request in flight is answered.
    void server.stop(false).then(() => {
      clearTimeout(deadline);
      return closeAndExit(started);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch(exitOnStartFailure);
