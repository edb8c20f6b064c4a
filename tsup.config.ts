import { defineConfig } from 'tsup';

// One ESM bundle of our code; dependencies stay in node_modules (production installs them with npm ci --omit=dev).
export default defineConfig({
  entry: { main: 'src/main.ts' },
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  clean: true,
  splitting: false,
  shims: false,
});
