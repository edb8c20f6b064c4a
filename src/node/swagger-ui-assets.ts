import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { SwaggerUiAssets, SwaggerUiFile } from '../system/docs.router.ts';

/**
 * Swagger UI's files from the installed swagger-ui-dist package (the version
 * package-lock.json pins), for /docs. The package is found from this module,
 * so it works from src/ (tsx, Deno, Bun) and from the bundle in dist/ alike;
 * a missing package stops the start-up here rather than at the first visit.
 * Each file is read once, on its first request.
 *
 * @example
 * const app = createApp({ ...deps, swaggerUiAssets: swaggerUiAssets() });
 */
export function swaggerUiAssets(): SwaggerUiAssets {
  const dir = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  const read = new Map<SwaggerUiFile, Promise<Uint8Array>>();
  return (file) => {
    let contents = read.get(file);
    if (!contents) {
      contents = readFile(join(dir, file));
      // A failed read is tried again on the next request.
      contents.catch(() => read.delete(file));
      read.set(file, contents);
    }
    return contents;
  };
}
