import { createRequire } from 'node:module';
import { defineConfig } from 'tsup';

const resolve = createRequire(import.meta.url).resolve;

/**
 * pino runs a transport (pino-pretty, when JSON_LOGS=false) in a worker thread that loads these
 * files by path, so a bundle must ship them as files of their own and say where they are in
 * `globalThis.__bundlerPathsOverrides` (pino's docs/bundling.md).
 */
const PINO_WORKER_FILES = {
  'pino-worker': resolve('pino/lib/worker.js'),
  'pino-file': resolve('pino/file.js'),
  'thread-stream-worker': resolve('thread-stream/lib/worker.js'),
  'pino-pretty': resolve('pino-pretty'),
};
const pinoOverrides = Object.keys(PINO_WORKER_FILES)
  .map((name) => {
    const id = name === 'pino-file' ? 'pino/file' : name;
    return `${JSON.stringify(id)}: __bundleFileURLToPath(new URL('./${name}.js', import.meta.url))`;
  })
  .join(', ');

/**
 * Everything in one file per entry, dependencies included, so that the container image needs no
 * node_modules but the packages that must stay files (see `external`). dist/main.js is the Node
 * entry, dist/bun.js the Bun one (the image's `bun` target).
 */
export default defineConfig({
  entry: { main: 'src/main.ts', bun: 'src/bun.ts', ...PINO_WORKER_FILES },
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  clean: true,
  // One file per entry: lazily imported modules (ioredis, OpenTelemetry) are inlined and still
  // initialised only when imported, and a bundle being rebuilt never has a chunk missing under it.
  splitting: false,
  noExternal: [/.*/],
  // swagger-ui-dist: /docs reads its files from the installed package. better-sqlite3: a native
  // addon (Node 20 only; an optional dependency, imported by name at run time).
  external: ['swagger-ui-dist', 'better-sqlite3'],
  shims: true,
  banner: {
    // The CommonJS packages inside an ESM bundle still call require() for Node's built-ins.
    js: [
      `import { createRequire as __bundleCreateRequire } from 'node:module';`,
      `import { fileURLToPath as __bundleFileURLToPath } from 'node:url';`,
      `const require = __bundleCreateRequire(import.meta.url);`,
      `globalThis.__bundlerPathsOverrides = { ...globalThis.__bundlerPathsOverrides, ${pinoOverrides} };`,
    ].join('\n'),
  },
  esbuildOptions(options) {
    // Stack traces map back to src/ without the sources themselves in the image.
    options.sourcesContent = false;
  },
});
