/**
 * Builds the benchmark's yardsticks, the node:http baseline and the Hono
 * floor, into self-contained .mjs bundles (tsup, with every import inlined),
 * so that each runs on bare `node` with no loader in the process whose
 * memory is measured, and from any directory.
 */
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'tsup';

const BENCH = resolve(fileURLToPath(new URL('..', import.meta.url)));

export interface BenchServers {
  /** bench/baseline-server.ts, bundled. */
  baseline: string;
  /** bench/hono-floor-server.ts, bundled with hono and @hono/node-server. */
  honoFloor: string;
}

/** Bundles both servers into `dir` and returns their paths. */
export async function buildBenchServers(dir: string): Promise<BenchServers> {
  await build({
    config: false,
    entry: {
      'baseline-server': join(BENCH, 'baseline-server.ts'),
      'hono-floor-server': join(BENCH, 'hono-floor-server.ts'),
    },
    outDir: dir,
    format: ['esm'],
    outExtension: () => ({ js: '.mjs' }),
    platform: 'node',
    target: 'node20',
    noExternal: [/.*/],
    splitting: false,
    sourcemap: false,
    clean: false,
    silent: true,
  });
  return { baseline: join(dir, 'baseline-server.mjs'), honoFloor: join(dir, 'hono-floor-server.mjs') };
}
