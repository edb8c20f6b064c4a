/**
 * Commands run as a user runs them on a fresh clone: in a copy of the project
 * (sources, justfile, package.json, .npmrc; node_modules linked), so that a
 * developer's .env, data/, dist/ or edits in progress stay out of it, each
 * command the leader of its own process group, so that a test can tell when
 * everything it started is gone. Call {@link cleanUpCommands} in afterAll.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getStatus, sleep } from './processes.ts';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const PROJECT_FILES = ['src', 'justfile', 'package.json', '.npmrc', 'tsconfig.json', 'tsup.config.ts'];

const copies: string[] = [];
const started: Command[] = [];

/** A fresh clone, as far as the commands can tell: no dist/, no data/, no .env. */
export function projectCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ticket-system-copy-'));
  copies.push(dir);
  for (const file of PROJECT_FILES) cpSync(join(ROOT, file), join(dir, file), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

export interface Command {
  child: ChildProcess;
  stdout(): string;
  /** stdout and stderr as they came. */
  output(): string;
  exited: Promise<number | null>;
}

/** Runs `command` in `cwd` as the leader of a new process group, with only PATH, HOME, HOST=127.0.0.1 and `env`. */
export function runCommand(cwd: string, command: string[], env: Record<string, string>): Command {
  const [file = '', ...args] = command;
  const child = spawn(file, args, {
    cwd,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? tmpdir(), HOST: '127.0.0.1', ...env },
  });
  let stdout = '';
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    output += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<number | null>((resolveExit) => child.once('close', (code) => resolveExit(code)));
  const handle: Command = { child, stdout: () => stdout, output: () => output, exited };
  started.push(handle);
  return handle;
}

/** Kills whatever a failed test left behind (each command's whole process group) and removes the copies. */
export function cleanUpCommands(): void {
  for (const { child } of started.splice(0)) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const dir of copies.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Polls GET /api/v1/health on `port` until it answers 200; fails at once if the command exits. */
export async function waitForHealth(command: Command, port: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exitCode: number | null | undefined;
  void command.exited.then((code) => (exitCode = code));
  while (Date.now() < deadline) {
    if (exitCode !== undefined) {
      throw new Error(`exited with ${exitCode} before port ${port} was healthy:\n${command.output()}`);
    }
    if ((await getStatus(`http://127.0.0.1:${port}/api/v1/health`).catch(() => 0)) === 200) return;
    await sleep(100);
  }
  throw new Error(`port ${port} not healthy within ${timeoutMs} ms:\n${command.output()}`);
}

/** Resolves with the exit code, or rejects with the output if it does not exit within `timeoutMs`. */
export async function exitOf(command: Command, timeoutMs = 30_000): Promise<number | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${timeoutMs} ms:\n${command.output()}`)), timeoutMs);
  });
  try {
    return await Promise.race([command.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function groupIsGone(command: Command): boolean {
  try {
    process.kill(-command.child.pid!, 0);
    return false;
  } catch {
    return true;
  }
}

/** Polls `condition` until it holds; else fails with `what` and the command's output. */
export async function waitUntil(
  command: Command,
  what: string,
  condition: () => boolean,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not ${what} within ${timeoutMs} ms:\n${command.output()}`);
    await sleep(100);
  }
}

/**
 * Waits until nothing is left of the command's process group. npx returns as soon as rust-just's
 * launcher has passed the signal on, before the service has finished its graceful shutdown.
 */
export function expectGroupGone(command: Command): Promise<void> {
  return waitUntil(command, 'all its processes gone', () => groupIsGone(command), 15_000);
}
