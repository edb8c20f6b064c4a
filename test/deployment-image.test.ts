/**
 * The container image without a container engine: the build context that
 * .containerignore/.dockerignore leave, and the runtime stage's file layout
 * assembled by hand — dist/, package.json and exactly the packages
 * `npm ci --omit=dev` installs (read from package-lock.json) — then run the
 * way the image runs it: `node dist/main.js` from /app with the image's ENV,
 * as uid 65532 over files it cannot write (when this test runs as root), with
 * only DATA_DIR writable.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromRoot, isIgnored, PACKAGE, parseContainerfile, ROOT } from './support/deployment.ts';
import { requestJson, type PurchaseBody } from './support/http-json.ts';
import { freePort, getStatus, sleep } from './support/processes.ts';

const containerfile = parseContainerfile();
const runtime = containerfile.final;
const IGNORE = readFileSync(fromRoot('.containerignore'), 'utf8').split('\n');
const NONROOT = 65532;

describe('build context (.containerignore, .dockerignore)', () => {
  it('is the same file under both names', () => {
    expect(readFileSync(fromRoot('.dockerignore'), 'utf8')).toBe(readFileSync(fromRoot('.containerignore'), 'utf8'));
  });

  it('leaves out what is made, secret or large, and keeps README.md', () => {
    const out = [
      'node_modules/hono/package.json',
      'dist/main.js',
      'data/journal.log',
      'test/microservices.test.ts',
      'bench/results/run.json',
      '.git/HEAD',
      'coverage/index.html',
      '.env',
      '.env.production',
      'CHANGELOG.md',
      'docs/guide.md',
      'src/config.test.ts',
    ];
    expect(
      out.filter((path) => !isIgnored(path, IGNORE)),
      'should be left out',
    ).toEqual([]);
    expect(isIgnored('README.md', IGNORE)).toBe(false);
  });

  it('keeps every file the build stages COPY from the context, and all of src/ but its tests', () => {
    const sources = containerfile.stages.flatMap((stage) =>
      stage.instructions
        .filter((i) => i.keyword === 'COPY' && i.flags.from === undefined)
        .flatMap((i) => i.args.split(/\s+/).slice(0, -1)),
    );
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) {
      expect(existsSync(fromRoot(source)), `${source} exists`).toBe(true);
      expect(isIgnored(source, IGNORE), `${source} is in the build context`).toBe(false);
    }
    const srcFiles = listFiles(fromRoot('src')).map((f) => relative(ROOT, f));
    expect(srcFiles.filter((f) => !f.endsWith('.test.ts') && isIgnored(f, IGNORE))).toEqual([]);
    // tsup reads these; the build stage copies them.
    for (const needed of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsup.config.ts', 'src'])
      expect(sources).toContain(needed);
  });
});

describe('the runtime stage`s files, run as the image runs them', () => {
  it('the bundle imports only Node built-ins and production dependencies (the rest is bundled)', () => {
    const bundle = readFileSync(fromRoot('dist/main.js'), 'utf8');
    const specifiers = new Set<string>();
    for (const m of bundle.matchAll(
      /(?:^|\n)\s*import\s+(?:[\w*{}\s,]+\s+from\s+)?["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g,
    )) {
      specifiers.add((m[1] ?? m[2]) as string);
    }
    expect(specifiers.size).toBeGreaterThan(0);
    const builtins = new Set(builtinModules);
    const outside = [...specifiers].filter((s) => {
      if (s.startsWith('node:') || builtins.has(s) || builtins.has(s.split('/')[0] as string)) return false;
      if (s.startsWith('.')) return true; // a relative import would need src/ in the image
      const name = s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : (s.split('/')[0] as string);
      return !(name in PACKAGE.dependencies);
    });
    expect(outside, 'imports the runtime image cannot resolve').toEqual([]);
  });

  describe('dist/ + package.json + npm ci --omit=dev, from /app, with the image ENV', () => {
    const asNonRoot = process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;
    let root: string;
    let app: string;
    let dataDir: string;
    let child: ChildProcess | undefined;
    let output = '';
    let port: number;
    let env: Record<string, string>;
    let before: string[];

    const run = (args: string[]) => {
      const command = asNonRoot
        ? ['setpriv', [`--reuid=${NONROOT}`, `--regid=${NONROOT}`, '--clear-groups', process.execPath, ...args]]
        : [process.execPath, args];
      return spawn(command[0] as string, command[1] as string[], { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
    };

    beforeAll(async () => {
      if (!asNonRoot) console.warn('not root or no setpriv: the image layout runs as this user, not uid 65532');
      root = mkdtempSync(join(tmpdir(), 'ticket-system-image-'));
      chmodSync(root, 0o755);
      app = join(root, 'app');
      dataDir = join(root, 'data');
      assembleRuntimeLayout(app);
      mkdirSync(dataDir);
      if (asNonRoot) chownSync(dataDir, NONROOT, NONROOT);
      before = listFiles(app).sort();
      port = await freePort();
      // The image's ENV, then what a deployment sets: the monolith with the file store on DATA_DIR.
      env = {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        ...runtime.env,
        MODE: 'monolith',
        STOCK_STORE: 'file',
        DATA_DIR: dataDir,
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
      };
      expect(runtime.entrypoint?.slice(1)).toEqual(['dist/main.js']);
      child = run(['dist/main.js']);
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      const deadline = Date.now() + 20_000;
      for (;;) {
        if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}:\n${output}`);
        if ((await getStatus(`http://127.0.0.1:${port}/api/v1/health`).catch(() => 0)) === 200) break;
        if (Date.now() > deadline) throw new Error(`not healthy within 20 s:\n${output}`);
        await sleep(50);
      }
    });

    afterAll(() => {
      child?.kill('SIGKILL');
      if (root) rmSync(root, { recursive: true, force: true });
    });

    it('serves: a purchase from the file store, the docs, the OpenAPI document', async () => {
      const base = `http://127.0.0.1:${port}`;
      const reply = await requestJson<PurchaseBody>(`${base}/api/v1/purchase`, { json: { qty: 1 } });
      expect(reply.status, reply.text).toBe(200);
      expect(reply.body.success).toBe(true);
      expect((await requestJson(`${base}/openapi.json`)).status).toBe(200);
      expect(await getStatus(`${base}/docs`)).toBe(200);
      const written = readdirSync(dataDir);
      expect(written.length, 'the journal is in DATA_DIR').toBeGreaterThan(0);
      if (asNonRoot)
        for (const file of written)
          expect(statSync(join(dataDir, file)).uid, `${file} written by uid ${NONROOT}`).toBe(NONROOT);
    });

    it('answers the HEALTHCHECK command with exit 0', async () => {
      const [, ...args] = runtime.healthcheck ?? [];
      const check = run(args);
      let text = '';
      check.stdout?.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      check.stderr?.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      const code = await new Promise<number | null>((resolve) => check.once('close', resolve));
      expect(code, text).toBe(0);
    });

    it('stops on SIGTERM with exit 0, having written nothing outside DATA_DIR', async () => {
      const exited = new Promise<number | null>((resolve) => child?.once('close', resolve));
      child?.kill('SIGTERM');
      expect(await exited, output).toBe(0);
      expect(listFiles(app).sort()).toEqual(before);
    });
  });
});

/** dist/, package.json, and node_modules with exactly the packages package-lock.json marks as not dev-only. */
function assembleRuntimeLayout(app: string): void {
  mkdirSync(app, { recursive: true });
  cpSync(fromRoot('dist'), join(app, 'dist'), { recursive: true });
  cpSync(fromRoot('package.json'), join(app, 'package.json'));
  const lock = JSON.parse(readFileSync(fromRoot('package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; devOptional?: boolean; optional?: boolean; link?: boolean }>;
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry.dev || entry.devOptional) continue;
    const source = fromRoot(path);
    if (!existsSync(source)) {
      if (entry.optional) continue; // another platform's binary
      throw new Error(`${path} is a production package but is not installed here (npm ci first)`);
    }
    // Nested node_modules are entries of their own (and may be dev-only): leave them to their entry.
    cpSync(source, join(app, path), {
      recursive: true,
      filter: (from) => !(basename(from) === 'node_modules' && dirname(from) === source),
    });
  }
}

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? listFiles(path) : [path];
  });
}
