/**
 * The commands the README gives do what they say, run as a user runs them:
 * `npm start` on a fresh clone builds before it serves; SIGTERM or SIGINT to
 * `npx just dev` / `npx just dev-micro` stops every process they started and
 * frees their ports; a service that cannot start under `just dev` makes the
 * command exit non-zero instead of waiting for file changes; and a change
 * under src/ restarts it. Each runs in a copy of the project (sources,
 * justfile, package.json, .npmrc; node_modules linked), in its own process
 * group, so that a developer's .env, data/ or edits in progress stay out of it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, getStatus, sleep } from './support/processes.ts';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const PROJECT_FILES = ['src', 'justfile', 'package.json', '.npmrc', 'tsconfig.json', 'tsup.config.ts'];

const copies: string[] = [];
afterAll(() => {
  for (const dir of copies) rmSync(dir, { recursive: true, force: true });
});

/** A fresh clone, as far as these commands can tell: no dist/, no data/, no .env. */
function projectCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ticket-system-commands-'));
  copies.push(dir);
  for (const file of PROJECT_FILES) cpSync(join(ROOT, file), join(dir, file), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

interface Command {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

const started: Command[] = [];
afterAll(() => {
  // Whatever a failed test left behind: its whole process group.
  for (const { child } of started) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Runs `command` in `cwd` as the leader of a new process group, with only PATH, HOME and `env`. */
function run(cwd: string, command: string[], env: Record<string, string>): Command {
  const [file = '', ...args] = command;
  const child = spawn(file, args, {
    cwd,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? tmpdir(), HOST: '127.0.0.1', ...env },
  });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<number | null>((resolveExit) => child.once('close', (code) => resolveExit(code)));
  const handle = { child, output: () => output, exited };
  started.push(handle);
  return handle;
}

async function waitForHealth(command: Command, port: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exitCode: number | null | undefined;
  void command.exited.then((code) => (exitCode = code));
  while (Date.now() < deadline) {
    if (exitCode !== undefined)
      throw new Error(`exited with ${exitCode} before port ${port} was healthy:\n${command.output()}`);
    if ((await getStatus(`http://127.0.0.1:${port}/api/v1/health`).catch(() => 0)) === 200) return;
    await sleep(100);
  }
  throw new Error(`port ${port} not healthy within ${timeoutMs} ms:\n${command.output()}`);
}

/** Resolves with the exit code, or rejects with the output if it does not exit within `timeoutMs`. */
async function exitOf(command: Command, timeoutMs = 30_000): Promise<number | null> {
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

function groupIsGone(command: Command): boolean {
  try {
    process.kill(-command.child.pid!, 0);
    return false;
  } catch {
    return true;
  }
}

/** Polls `condition` until it holds; else fails with `what` and the command's output. */
async function waitUntil(command: Command, what: string, condition: () => boolean, timeoutMs = 30_000): Promise<void> {
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
function expectGroupGone(command: Command): Promise<void> {
  return waitUntil(command, 'all its processes gone', () => groupIsGone(command), 15_000);
}

function listen(port: number): Promise<Server> {
  return new Promise((resolveListen, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolveListen(server));
  });
}

async function expectPortFree(port: number): Promise<void> {
  const server = await listen(port).catch((error: Error) => {
    throw new Error(`port ${port} is still taken: ${error.message}`);
  });
  await new Promise((resolveClose) => server.close(resolveClose));
}

const QUIET = { LOG_LEVEL: 'warn', STOCK_STORE: 'memory' };

// Each test has its own copy, ports and process group, so they run side by side.
describe.concurrent('commands', () => {
  describe('npm start', () => {
    it('builds first on a fresh clone, serves, and stops on SIGTERM with its port freed', async () => {
      const dir = projectCopy();
      const port = await freePort();
      const start = run(dir, ['npm', 'start'], { ...QUIET, PORT: String(port) });
      await waitForHealth(start, port);
      expect(existsSync(join(dir, 'dist/main.js'))).toBe(true);
      start.child.kill('SIGTERM');
      await exitOf(start);
      await expectGroupGone(start);
      await expectPortFree(port);
    });
  });

  describe.each(['SIGTERM', 'SIGINT'] as const)('%s to the npx process', (signal) => {
    it('stops every process `npx just dev` started, and frees its port', async () => {
      const port = await freePort();
      const dev = run(projectCopy(), ['npx', 'just', 'dev'], { ...QUIET, PORT: String(port) });
      await waitForHealth(dev, port);
      dev.child.kill(signal);
      await exitOf(dev);
      await expectGroupGone(dev);
      await expectPortFree(port);
    });

    it('stops both services `npx just dev-micro` started, and frees their ports', async () => {
      const [vacancyPort, ticketPort] = [await freePort(), await freePort()];
      const micro = run(projectCopy(), ['npx', 'just', 'dev-micro'], {
        ...QUIET,
        VACANCY_PORT: String(vacancyPort),
        TICKET_PORT: String(ticketPort),
        VACANCY_URL: `http://127.0.0.1:${vacancyPort}`,
      });
      await waitForHealth(micro, vacancyPort);
      await waitForHealth(micro, ticketPort);
      micro.child.kill(signal);
      await exitOf(micro);
      await expectGroupGone(micro);
      await expectPortFree(vacancyPort);
      await expectPortFree(ticketPort);
    });
  });

  describe('a service that cannot start', () => {
    it('makes `npx just dev` exit non-zero instead of waiting for changes', async () => {
      const port = await freePort();
      const taken = await listen(port);
      try {
        const dev = run(projectCopy(), ['npx', 'just', 'dev'], { ...QUIET, PORT: String(port) });
        expect(await exitOf(dev)).not.toBe(0);
        expect(dev.output()).toMatch(/cannot listen on 127\.0\.0\.1:\d+/);
        expect(dev.output()).toContain('before any file changed; not waiting for changes');
        await expectGroupGone(dev);
      } finally {
        taken.close();
      }
    });

    it('makes `npx just dev-micro` exit non-zero and stop the other service', async () => {
      const [vacancyPort, ticketPort] = [await freePort(), await freePort()];
      const taken = await listen(vacancyPort);
      try {
        const micro = run(projectCopy(), ['npx', 'just', 'dev-micro'], {
          ...QUIET,
          VACANCY_PORT: String(vacancyPort),
          TICKET_PORT: String(ticketPort),
          VACANCY_URL: `http://127.0.0.1:${vacancyPort}`,
        });
        expect(await exitOf(micro)).not.toBe(0);
        await expectGroupGone(micro);
        await expectPortFree(ticketPort);
      } finally {
        taken.close();
      }
    });
  });

  describe('`npx just dev` watching src/', () => {
    it('restarts the service when a file changes, and keeps waiting when the changed code fails', async () => {
      const dir = projectCopy();
      const port = await freePort();
      const dev = run(dir, ['npx', 'just', 'dev'], { ...QUIET, LOG_LEVEL: 'info', PORT: String(port) });
      const startsLogged = () => dev.output().match(/monolith listening on/g)?.length ?? 0;
      await waitForHealth(dev, port);
      await waitUntil(dev, 'started', () => startsLogged() === 1);

      appendFileSync(join(dir, 'src/app.ts'), '\n// changed by the test\n');
      await waitUntil(dev, 'restarted', () => startsLogged() === 2);
      expect(dev.output()).toContain('src/app.ts changed; restarting');
      await waitForHealth(dev, port);

      appendFileSync(join(dir, 'src/app.ts'), '\nthrow new Error("broken by the test");\n');
      await waitUntil(dev, 'waiting after a failed restart', () =>
        dev.output().includes('waiting for a change to start it again'),
      );
      expect(groupIsGone(dev)).toBe(false);

      dev.child.kill('SIGTERM');
      await exitOf(dev);
      await expectGroupGone(dev);
      await expectPortFree(port);
    });
  });
});
