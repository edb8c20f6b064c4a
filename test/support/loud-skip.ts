/** Under CI=true a test that cannot run is a failure; elsewhere it is skipped, loudly. */
export const IN_CI = process.env.CI === 'true';

/** Prints the banner of a skip that would be a failure under CI=true. */
export function warnSkipped(what: string, reason: string): void {
  const bar = '!'.repeat(100);
  console.warn(
    `\n${bar}\n!! SKIPPED ${what}\n!! ${reason}\n!! (under CI=true this is a failure, not a skip)\n${bar}\n`,
  );
}
