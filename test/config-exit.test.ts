/**
 * The bundle refuses to start on configuration it cannot run with: it exits
 * non-zero at once, naming the variable, without a stack trace; and it exits
 * non-zero when its port is taken.
 */
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, runBundle, stopAllServices } from './support/processes.ts';

/** "Quickly": no waiting on anything; a generous bound for a cold `node` start on a busy machine. */
const QUICK_MS = 5_000;
/** A line of a JavaScript stack trace, e.g. "    at main (file:///.../main.js:12:3)". */
const STACK_LINE = /^\s+at\s.+:\d+:\d+\)?\s*$/m;

afterEach(async () => {
  await stopAllServices();
});

describe('invalid configuration', () => {
  const cases: Array<{ name: string; env: Record<string, string>; variables: string[] }> = [
    { name: 'MODE=foo', env: { MODE: 'foo' }, variables: ['MODE'] },
    { name: 'PORT=abc', env: { PORT: 'abc' }, variables: ['PORT'] },
    { name: 'PORT=70000', env: { PORT: '70000' }, variables: ['PORT'] },
    { name: 'VACANCY_TIMEOUT=-1', env: { MODE: 'ticket', VACANCY_TIMEOUT: '-1' }, variables: ['VACANCY_TIMEOUT'] },
    { name: 'VACANCY_TIMEOUT=soon', env: { MODE: 'ticket', VACANCY_TIMEOUT: 'soon' }, variables: ['VACANCY_TIMEOUT'] },
    { name: 'VACANCY_URL=not-a-url', env: { MODE: 'ticket', VACANCY_URL: 'not-a-url' }, variables: ['VACANCY_URL'] },
    { name: 'INITIAL_STOCK=-5', env: { INITIAL_STOCK: '-5' }, variables: ['INITIAL_STOCK'] },
    { name: 'LOG_LEVEL=loud', env: { LOG_LEVEL: 'loud' }, variables: ['LOG_LEVEL'] },
    { name: 'SHUTDOWN_TIMEOUT=0', env: { SHUTDOWN_TIMEOUT: '0' }, variables: ['SHUTDOWN_TIMEOUT'] },
    { name: 'MODE=foo and PORT=abc together', env: { MODE: 'foo', PORT: 'abc' }, variables: ['MODE', 'PORT'] },
  ];

  it.each(cases)(
    '$name: exits non-zero at once, naming the variable, with no stack trace',
    async ({ env, variables }) => {
      // A free port, so that a wrongly accepted value would show as a process that keeps running.
      const port = env.PORT ?? String(await freePort());
      const result = await runBundle({ MODE: 'monolith', ...env, PORT: port }, QUICK_MS + 5_000);
      const output = `--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`;

      expect(result.timedOut, `the process did not exit by itself\n${output}`).toBe(false);
      expect(result.signal, output).toBeNull();
      expect(result.code, output).not.toBe(0);
      expect(result.code, output).not.toBeNull();
      expect(result.durationMs, output).toBeLessThan(QUICK_MS);
      for (const variable of variables) {
        expect(result.stderr, `stderr names ${variable}`).toMatch(new RegExp(`\\b${variable}\\b`));
      }
      expect(result.stderr, 'a configuration error is a message, not a crash').not.toMatch(STACK_LINE);
      expect(result.stdout, 'nothing is logged as if the service had started').not.toMatch(/listening/);
    },
  );
});

describe('port already in use', () => {
  let blocker: Server | undefined;

  afterEach(async () => {
    await new Promise<void>((resolve) => (blocker ? blocker.close(() => resolve()) : resolve()));
    blocker = undefined;
  });

  it('exits non-zero when another process holds the port', async () => {
    blocker = createServer((socket) => socket.destroy());
    const port = await new Promise<number>((resolve, reject) => {
      blocker?.once('error', reject);
      blocker?.listen(0, '127.0.0.1', () => {
        const address = blocker?.address();
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });

    const result = await runBundle({ MODE: 'monolith', PORT: String(port), INITIAL_STOCK: '10' }, QUICK_MS + 5_000);
    const output = `--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`;

    expect(result.timedOut, `the process kept running on a port it does not own\n${output}`).toBe(false);
    expect(result.signal, output).toBeNull();
    expect(result.code, output).not.toBe(0);
    expect(result.code, output).not.toBeNull();
    expect(result.durationMs, output).toBeLessThan(QUICK_MS);
    expect(`${result.stdout}${result.stderr}`, 'the reason is reported').toMatch(new RegExp(`EADDRINUSE|${port}`));
  });
});
