/**
 * The Bun entrypoint: the same app as the Node entry (same configuration,
 * same modes), served by Bun.serve. `npm run start:bun`.
 */
import {
  exitOnStartFailure,
  KEEP_ALIVE_TIMEOUT_MS,
  loadConfigOrExit,
  logListening,
  prepare,
  shutdownOnSignals,
} from './node/bootstrap.ts';

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
  const { app } = started;
  const server = Bun.serve({
    port: config.port,
    hostname: config.HOST,
    // Bun's idle timeout is in seconds and at most 255.
    idleTimeout: Math.min(255, Math.ceil(KEEP_ALIVE_TIMEOUT_MS / 1000)),
    fetch: app.fetch,
  });
  logListening(started, `bun ${Bun.version}`);

  shutdownOnSignals(started, (signal, handler) => process.on(signal, handler), {
    // stop(false) stops accepting and resolves once every request in flight is answered.
    drain: () => server.stop(false),
    force: () => server.stop(true),
  });
}

main().catch(exitOnStartFailure);
