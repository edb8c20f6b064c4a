import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { SWAGGER_UI_FILES, type SwaggerUiFile } from '../system/docs.router.ts';
import { swaggerUiAssets } from './swagger-ui-assets.ts';

const require = createRequire(import.meta.url);
const lock = require('../../package-lock.json') as { packages: Record<string, { version: string }> };

describe('swaggerUiAssets', () => {
  it.each(Object.keys(SWAGGER_UI_FILES) as SwaggerUiFile[])(
    'reads %s from the swagger-ui-dist that package-lock.json pins',
    async (file) => {
      const installed = require('swagger-ui-dist/package.json') as { version: string };
      expect(installed.version).toBe(lock.packages['node_modules/swagger-ui-dist']?.version);
      const contents = await swaggerUiAssets()(file);
      expect(Buffer.from(contents).equals(readFileSync(require.resolve(`swagger-ui-dist/${file}`)))).toBe(true);
    },
  );

  it('reads each file once however often it is asked for', async () => {
    const assets = swaggerUiAssets();
    const first = await assets('swagger-ui.css');
    expect(await assets('swagger-ui.css')).toBe(first);
  });
});
