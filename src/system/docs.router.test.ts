import { describe, expect, it } from 'vitest';
import { createApp } from '../app.ts';
import { parseConfig } from '../config.ts';
import { buildDependencies } from '../dependencies.ts';
import { PROBLEM_CONTENT_TYPE, problemTypes } from '../lib/problem.ts';
import { SWAGGER_UI_FILES, type SwaggerUiAssets, type SwaggerUiFile } from './docs.router.ts';

/** Stands in for the package's files: each file's name, as bytes. */
const fakeAssets: SwaggerUiAssets = async (file) => new TextEncoder().encode(`contents of ${file}`);

async function monolith(swaggerUiAssets?: SwaggerUiAssets) {
  const deps = await buildDependencies(parseConfig({ MODE: 'monolith', STOCK_STORE: 'memory' }));
  return createApp({ ...deps, swaggerUiAssets });
}

/** The directives of a Content-Security-Policy header, by name. */
function directives(policy: string | null): Map<string, string[]> {
  const parsed = new Map<string, string[]>();
  for (const directive of (policy ?? '').split(';')) {
    const [name, ...values] = directive.trim().split(/\s+/);
    if (name) parsed.set(name, values);
  }
  return parsed;
}

describe('GET /docs', () => {
  it('is an HTML page whose policy allows scripts and styles from the service itself only', async () => {
    const res = await (await monolith(fakeAssets)).request('/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const policy = directives(res.headers.get('content-security-policy'));
    expect(policy.get('script-src')).toEqual(["'self'"]);
    expect(policy.get('style-src')).toEqual(["'self'"]);
    expect(policy.get('default-src')).toEqual(["'none'"]);
    expect(policy.get('connect-src')).toEqual(["'self'"]);
  });

  it('names no other origin and has nothing inline for the policy to refuse', async () => {
    const html = await (await (await monolith(fakeAssets)).request('/docs')).text();
    const references = [...html.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((match) => match[1]);
    expect(references).toEqual([
      '/docs/swagger-ui.css',
      '/docs/favicon-32x32.png',
      '/openapi.json',
      '/docs/swagger-ui-bundle.js',
      '/docs/swagger-initializer.js',
    ]);
    expect(html).not.toMatch(/\/\/[a-z0-9.-]+\.[a-z]{2,}/i);
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)/);
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
  });

  it('starts Swagger UI from a served script, on the OpenAPI document of this service', async () => {
    const res = await (await monolith(fakeAssets)).request('/docs/swagger-initializer.js');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/javascript/);
    const script = await res.text();
    expect(script).toContain("url: '/openapi.json'");
    expect(script).toContain('validatorUrl: null');
  });

  it.each(Object.entries(SWAGGER_UI_FILES))(
    'serves %s from the assets it was given, as %s, revalidated by ETag',
    async (file, mediaType) => {
      const app = await monolith(fakeAssets);
      const res = await app.request(`/docs/${file}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(mediaType);
      expect(res.headers.get('cache-control')).toBe('no-cache');
      expect(await res.text()).toBe(`contents of ${file}`);
      const tag = res.headers.get('etag');
      expect(tag).toBeTruthy();
      const again = await app.request(`/docs/${file}`, { headers: { 'If-None-Match': tag! } });
      expect(again.status).toBe(304);
    },
  );

  it('compresses the script bundle for a client that accepts gzip', async () => {
    const big: SwaggerUiAssets = async () => new TextEncoder().encode('x'.repeat(64 * 1024));
    const res = await (
      await monolith(big)
    ).request('/docs/swagger-ui-bundle.js', {
      headers: { 'Accept-Encoding': 'gzip' },
    });
    expect(res.headers.get('content-encoding')).toBe('gzip');
    expect((await res.arrayBuffer()).byteLength).toBeLessThan(64 * 1024);
  });

  it('answers any other file under /docs with a 404 problem, without reading anything', async () => {
    const asked: SwaggerUiFile[] = [];
    const app = await monolith(async (file) => {
      asked.push(file);
      return new Uint8Array();
    });
    for (const path of ['/docs/index.html', '/docs/swagger-ui-bundle.js.map', '/docs/..%2Fpackage.json']) {
      const res = await app.request(path);
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toBe(PROBLEM_CONTENT_TYPE);
    }
    expect(asked).toEqual([]);
  });

  it('without the assets, still links the OpenAPI document and says why a file is missing', async () => {
    const app = await monolith();
    expect(await (await app.request('/docs')).text()).toContain('<a href="/openapi.json">');
    const res = await app.request('/docs/swagger-ui-bundle.js');
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({
      type: problemTypes.notFound.type,
      detail: expect.stringMatching(/built without Swagger UI's files/),
    });
  });
});
