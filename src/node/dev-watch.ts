/**
 * What `just dev`, `just dev-micro` and `npm run dev` run: an entrypoint
 * under tsx, restarted when a file under src/ (or .env, package.json)
 * changes — like `tsx watch`, but a command that ends:
 *
 * - when the service stops on its own before any file has changed (it could
 *   not start: the port is in use, the data directory is locked, a variable
 *   is wrong), this exits with the service's status instead of waiting for
 *   changes that will not fix it; after a change, a failing service waits
 *   for the next change, as in any watch mode;
 * - SIGTERM and SIGINT stop the service gracefully, then this, with the
 *   service's status.
 *
 * @example
 * // node --import tsx src/node/dev-watch.ts src/main.ts
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { watch, type FSWatcher } from 'node:fs';
import { constants } from 'node:os';

/** How long a service being restarted may take to stop before it is killed. */
const RESTART_GRACE_MS = 10_000;
/** Editors write a file in several steps; one restart for all of them. */
const SETTLE_MS = 100;

const entry = process.argv.slice(2);
if (entry.length === 0) {
  process.stderr.write('usage: node --import tsx src/node/dev-watch.ts <entrypoint> [args...]\n');
  process.exit(2);
}

const log = (message: string) => process.stderr.write(`[dev] ${message}\n`);
const statusOf = (code: number | null, signal: NodeJS.Signals | null) =>
  code ?? 128 + (signal ? constants.signals[signal] : 0);

/** The service whose exit decides what happens next; one stopped for a restart is no longer it. */
let service: ChildProcess | undefined;
/** Every child not yet exited, the one being stopped for a restart included. */
const alive = new Set<ChildProcess>();
let anyFileChanged = false;
let stopping = false;
let lastStatus = 0;
const watchers: FSWatcher[] = [];

function exit(status: number): never {
  for (const watcher of watchers) watcher.close();
  process.exit(status);
}

function start(): void {
  // process.execArgv is this process's `--import tsx`, so the service runs TypeScript the same way.
  const child = spawn(process.execPath, [...process.execArgv, ...entry], { stdio: 'inherit' });
  service = child;
  alive.add(child);
  child.once('exit', (code, signal) => {
    alive.delete(child);
    const current = service === child;
    if (current) {
      service = undefined;
      lastStatus = statusOf(code, signal);
    }
    if (stopping) {
      if (alive.size === 0) exit(lastStatus);
      return;
    }
    if (!current) return; // stopped for a restart
    if (!anyFileChanged) {
      log(`the service stopped (status ${lastStatus}) before any file changed; not waiting for changes`);
      exit(lastStatus);
    }
    log(`the service stopped (status ${lastStatus}); waiting for a change to start it again`);
  });
}

async function restart(file: string): Promise<void> {
  anyFileChanged = true;
  const running = service;
  service = undefined;
  if (running && alive.has(running)) {
    log(`${file} changed; restarting`);
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGTERM');
    const force = setTimeout(() => running.kill('SIGKILL'), RESTART_GRACE_MS);
    await exited;
    clearTimeout(force);
  } else {
    log(`${file} changed; starting`);
  }
  if (!stopping) start();
}

let settling: ReturnType<typeof setTimeout> | undefined;
let restarts = Promise.resolve();
function changed(file: string): void {
  if (stopping || file.endsWith('.test.ts')) return;
  clearTimeout(settling);
  settling = setTimeout(() => {
    restarts = restarts.then(() => restart(file));
  }, SETTLE_MS);
}

watchers.push(watch('src', { recursive: true }, (_event, file) => changed(`src/${file ?? ''}`)));
watchers.push(
  watch('.', (_event, file) => {
    if (file === '.env' || file === 'package.json') changed(file);
  }),
);

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    clearTimeout(settling);
    if (alive.size === 0) exit(128 + constants.signals[signal]);
    for (const child of alive) child.kill(signal);
  });
}

start();
