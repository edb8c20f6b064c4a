/** Under CI=true a test that cannot run is a failure; elsewhere it is skipped, loudly. */
export const IN_CI = process.env.CI === 'true';

/**
 * Prints the banner of a skip that would be a failure under CI=true: straight
 * to stderr, past vitest's console capture, which shows a passing or skipped
 * test's logs to nobody (`silent: 'passed-only'` in vitest.config.ts).
 */
export function warnSkipped(what: string, reason: string): void {
  const bar = '!'.repeat(100);
  process.stderr.write(
    `\n${bar}\n!! SKIPPED ${what}\n!! ${reason}\n!! (under CI=true this is a failure, not a skip)\n${bar}\n`,
  );
}
