import { Hono } from 'hono';
import { compress } from 'hono/compress';
import { etag } from 'hono/etag';
import { secureHeaders } from 'hono/secure-headers';
import { ProblemError } from '../lib/problem.ts';

/** The files of the swagger-ui-dist package that /docs serves, with their media types. */
export const SWAGGER_UI_FILES = {
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui.css': 'text/css; charset=utf-8',
  'favicon-32x32.png': 'image/png',
} as const;

export type SwaggerUiFile = keyof typeof SWAGGER_UI_FILES;

/**
 * Reads one of Swagger UI's files. Reading files is the runtime edge's job
 * (src/node/swagger-ui-assets.ts reads them from the installed package), so
 * the core stays free of Node built-ins.
 */
export type SwaggerUiAssets = (file: SwaggerUiFile) => Promise<Uint8Array>;

/**
 * Only the service's own origin, for everything: the page works with no
 * network but the service's own. Swagger UI's icons are data: URIs in its
 * stylesheet, hence `img-src data:`.
 */
export const DOCS_CONTENT_SECURITY_POLICY = {
  defaultSrc: ["'none'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'data:'],
  connectSrc: ["'self'"],
  baseUri: ["'none'"],
  formAction: ["'none'"],
  frameAncestors: ["'none'"],
};

/** Starts Swagger UI on the service's own OpenAPI document; a file, because the policy allows no inline script. */
const INITIALIZER = `window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  validatorUrl: null,
});
`;

function page(title: string): string {
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>${title}</title>
    <link rel="stylesheet" href="/docs/swagger-ui.css" />
    <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" />
  </head>
  <body>
    <div id="swagger-ui">
      <p>Loading the API reference&hellip; The OpenAPI document itself is at <a href="/openapi.json">/openapi.json</a>.</p>
    </div>
    <script src="/docs/swagger-ui-bundle.js"></script>
    <script src="/docs/swagger-initializer.js"></script>
  </body>
</html>
`;
}

export interface DocsRouterOptions {
  /** The page's title, e.g. `ticket-system (monolith)`. */
  title: string;
  /** Where Swagger UI's files come from; without it the page shows only a link to /openapi.json. */
  assets?: SwaggerUiAssets;
}

/**
 * GET /docs, the API reference (Swagger UI on /openapi.json), and the files
 * it loads, all from this service: the page names no other origin, and its
 * Content-Security-Policy allows scripts and styles from 'self' only.
 *
 * @example
 * app.route('/', createDocsRouter({ title: 'ticket-system (monolith)', assets: swaggerUiAssets() }));
 */
export function createDocsRouter({ title, assets }: DocsRouterOptions): Hono {
  const router = new Hono();
  const html = page(title);
  // The HTML page gets the document headers of secureHeaders too; its own, set first, win over the API's.
  router.use('/docs', compress(), secureHeaders({ contentSecurityPolicy: DOCS_CONTENT_SECURITY_POLICY }));
  router.use('/docs/*', compress(), etag({ weak: true }));

  router.get('/docs', (c) => c.html(html));
  router.get('/docs/swagger-initializer.js', (c) =>
    c.body(INITIALIZER, 200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-cache' }),
  );
  router.get('/docs/:file', async (c) => {
    const file = c.req.param('file');
    if (!Object.hasOwn(SWAGGER_UI_FILES, file)) {
      throw new ProblemError('notFound', `No route for GET ${c.req.path}`);
    }
    if (!assets) {
      throw new ProblemError('notFound', `${file}: this app was built without Swagger UI's files`);
    }
    const body = await assets(file as SwaggerUiFile);
    return c.body(body as Uint8Array<ArrayBuffer>, 200, {
      'Content-Type': SWAGGER_UI_FILES[file as SwaggerUiFile],
      // Revalidated on every visit (the ETag makes that a 304), so an upgraded package is never stale.
      'Cache-Control': 'no-cache',
    });
  });
  return router;
}
