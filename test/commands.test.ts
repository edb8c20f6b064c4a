/**
 * The commands the README gives do what they say, run as a user runs them:
 * `npm start` on a fresh clone builds before it serves; SIGTERM or SIGINT to
 * `npx just dev` / `npx just dev-micro` stops every process they started and
 * frees their ports; a service that cannot start under `just dev` makes the
 * command exit non-zero instead of waiting for file changes; and a change
 * under src/ restarts it. Each runs in a fresh copy of the project, in its
 * own process group (test/support/project-copy.ts).
 */
import { appendFileSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from './support/processes.ts';
import {
  cleanUpCommands,
  exitOf,
  expectGroupGone,
  groupIsGone,
  projectCopy,
  runCommand,
  waitForHealth,
  waitUntil,
} from './support/project-copy.ts';

afterAll(cleanUpCommands);

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
      const start = runCommand(dir, ['npm', 'start'], { ...QUIET, PORT: String(port) });
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
      const dev = runCommand(projectCopy(), ['npx', 'just', 'dev'], { ...QUIET, PORT: String(port) });
      await waitForHealth(dev, port);
      dev.child.kill(signal);
      await exitOf(dev);
      await expectGroupGone(dev);
      await expectPortFree(port);
    });

    it('stops both services `npx just dev-micro` started, and frees their ports', async () => {
      const [vacancyPort, ticketPort] = [await freePort(), await freePort()];
      const micro = runCommand(projectCopy(), ['npx', 'just', 'dev-micro'], {
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
        const dev = runCommand(projectCopy(), ['npx', 'just', 'dev'], { ...QUIET, PORT: String(port) });
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
        const micro = runCommand(projectCopy(), ['npx', 'just', 'dev-micro'], {
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
      const dev = runCommand(dir, ['npx', 'just', 'dev'], { ...QUIET, LOG_LEVEL: 'info', PORT: String(port) });
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
