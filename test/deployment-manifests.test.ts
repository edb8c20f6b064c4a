/**
 * The deployment files checked against the program and by the real tools,
 * without a container engine or a cluster: compose.yaml, and every overlay of
 * infra/k8s as `kubectl kustomize` renders it, each object validated against
 * the Kubernetes API schemas (kubernetes-models). Ports, probe paths and
 * variable names are not compared with constants written here but with what
 * src/config.ts computes for each workload's environment and with the routes
 * the app of that MODE really serves. The image itself is built and run by
 * deployment-image.test.ts, the compose topology by deployment-compose.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { IProbe } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ConfigError, parseConfig, type Config } from '../src/config.ts';
import {
  CONFIG_KEYS,
  DUMMY_TOKEN,
  PACKAGE,
  DOCUMENTED_EXTRA_VARIABLES,
  durationSeconds,
  environmentOf,
  fromRoot,
  isKnownVariable,
  loadCompose,
  networkAliases,
  parseDotenv,
  portsOf,
  ROOT,
  routeExists,
  type ComposeService,
} from './support/deployment.ts';
import {
  containersOf,
  isWorkload,
  kustomizeGate,
  podTemplateOf,
  renderKustomization,
  selectorMatches,
  validateObject,
  type Container,
  type K8sObject,
} from './support/kubernetes.ts';

const K8S = fromRoot('infra/k8s');
const OVERLAYS = readdirSync(join(K8S, 'overlays')).filter((name) =>
  statSync(join(K8S, 'overlays', name)).isDirectory(),
);
const kustomize = kustomizeGate('the Kubernetes overlays (kubectl kustomize)');
/** The objects an overlay (or base/) renders to; nothing where no kustomize can run (a loud skip). */
const render = (dir: string): K8sObject[] => (kustomize.skip ? [] : renderKustomization(join(K8S, dir)));
/** What Compose reads for `environment:` interpolation when nothing is set: every `${VAR:-}` empty. */
const compose = loadCompose({});
const composeServices = Object.entries(compose.services);
const appServices = composeServices.filter(([, s]) => s.build?.dockerfile === 'Containerfile');
const APP_IMAGE = appServices[0]?.[1].image ?? '(compose.yaml builds no service from Containerfile)';
const REDIS_IMAGE = compose.services.redis?.image ?? '(compose.yaml has no redis service)';
/** .env.example as a developer's .env: what env_file hands the containers if someone copied it. */
const DEV_DOTENV = parseDotenv(readFileSync(fromRoot('.env.example'), 'utf8'));
const PRE_STOP_SECONDS_MIN = 1;

function unknownVariables(names: Iterable<string>): string[] {
  return [...names].filter((name) => !isKnownVariable(name));
}

function mustParse(env: Record<string, string>, where: string): Config {
  try {
    return parseConfig(env);
  } catch (error) {
    throw new Error(
      `${where}: the program would refuse this environment: ${error instanceof Error ? error.message : String(error)}`,
      {
        cause: error,
      },
    );
  }
}

// ================================================================================================
describe.skipIf(kustomize.skip)('one image everywhere', () => {
  it('compose, Kubernetes and the justfile name the same image, tagged with the package version', () => {
    kustomize.assertReady();
    const names = new Set<string>(appServices.map(([, s]) => s.image ?? '(no image)'));
    for (const overlay of OVERLAYS) {
      for (const object of render(`overlays/${overlay}`)) {
        for (const container of containersOf(object))
          if (!container.image?.startsWith('redis:')) names.add(container.image ?? '(no image)');
      }
    }
    const justImage = /^image_name\s*:=\s*"([^"]+)"/m.exec(readFileSync(fromRoot('justfile'), 'utf8'))?.[1];
    names.add(justImage ?? '(justfile has no image_name)');
    expect([...names]).toEqual([APP_IMAGE]);
    const [, name, tag] = /^(?:.*\/)?([^/:]+):([^/:@]+)$/.exec(APP_IMAGE) ?? [];
    expect(name).toBe(PACKAGE.name);
    expect(tag).toBe(PACKAGE.version);
  });
});

// ================================================================================================
describe('justfile and docs/deployment.md', () => {
  const just = (...args: string[]) =>
    spawnSync(fromRoot('node_modules/.bin/just'), args, { cwd: ROOT, encoding: 'utf8' });

  it('has the deployment recipes, and k8s-apply/k8s-delete apply the overlay directory named', () => {
    expect(just('--summary').stdout.trim().split(/\s+/)).toEqual(
      expect.arrayContaining([
        'image',
        'image-size',
        'test-containers',
        'stand-in-bases',
        'up',
        'down',
        'logs',
        'k8s-apply',
        'k8s-delete',
      ]),
    );
    for (const overlay of OVERLAYS) {
      for (const [recipe, verb] of [
        ['k8s-apply', 'apply'],
        ['k8s-delete', 'delete'],
      ] as const) {
        const dry = just('--dry-run', '--yes', recipe, overlay);
        expect(dry.status, dry.stderr).toBe(0);
        expect(dry.stderr.trim()).toBe(`kubectl ${verb} -k infra/k8s/overlays/${overlay}`);
      }
    }
    const image = just('--dry-run', 'image').stderr;
    expect(image).toMatch(/podman build --format docker -f Containerfile/);
    expect(image).toMatch(/docker build -f Containerfile/);
    expect(just('--dry-run', 'test-containers').stderr).toMatch(
      /vitest run test\/deployment-image\.test\.ts test\/deployment-compose\.test\.ts/,
    );
  });

  it('documents the deployment in docs/deployment.md: the image, the secrets, the compose profiles, every overlay', () => {
    const guide = readFileSync(fromRoot('docs/deployment.md'), 'utf8');
    for (const needed of [
      APP_IMAGE,
      'INTERNAL_TOKEN',
      'ADMIN_TOKEN',
      '--profile monolith',
      '/api/v1/ready',
      ...OVERLAYS.map((o) => `overlays/${o}`),
    ]) {
      expect(guide, needed).toContain(needed);
    }
  });
});

// ================================================================================================
describe('compose.yaml', () => {
  it('parses, and every app service is built from Containerfile, keeps its ENTRYPOINT and health-checks alike', () => {
    expect(appServices.map(([name]) => name).sort()).toEqual(['monolith', 'ticket', 'vacancy', 'vacancy-replica']);
    for (const [name, service] of appServices) {
      expect(service.command, `${name}: command would replace the image's arguments`).toBeUndefined();
      expect(service.entrypoint, `${name}: entrypoint would bypass node dist/main.js`).toBeUndefined();
      expect(service.build?.target ?? 'runtime', name).toBe('runtime');
      // The same check as the image's HEALTHCHECK (compared with the built image in deployment-image).
      expect(service.healthcheck?.test, name).toEqual(appServices[0]?.[1].healthcheck?.test);
      expect(service.env_file, `${name}: .env is optional`).toEqual([{ path: '.env', required: false }]);
    }
  });

  it('runs Redis with AOF (fsync every second), noeviction, a volume and a redis-cli ping health check', () => {
    const redis = compose.services.redis as ComposeService;
    const command = (redis.command as string[]).join(' ');
    expect(redis.image).toMatch(/^(redis:7|valkey\/valkey:)/);
    expect(command).toMatch(/--appendonly yes/);
    expect(command).toMatch(/--appendfsync (everysec|always)/);
    expect(command).toMatch(/--maxmemory-policy noeviction/);
    expect(redis.volumes?.some((v) => typeof v === 'string' && /^[\w-]+:\/data$/.test(v))).toBe(true);
    expect(redis.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
  });

  for (const withDevDotenv of [false, true]) {
    const what = withDevDotenv ? 'even with .env.example copied to .env' : 'with no .env';
    it(`gives each app service the MODE, port, store and bind address its name promises, ${what}`, () => {
      const expectations: Record<string, Partial<Config>> = {
        vacancy: { MODE: 'vacancy', STOCK_STORE: 'redis', HOST: '0.0.0.0' },
        'vacancy-replica': { MODE: 'vacancy', STOCK_STORE: 'redis', HOST: '0.0.0.0' },
        ticket: { MODE: 'ticket', HOST: '0.0.0.0' },
        monolith: { MODE: 'monolith', HOST: '0.0.0.0' },
      };
      for (const [name, service] of appServices) {
        const env = { ...(withDevDotenv ? DEV_DOTENV : {}), ...environmentOf(service) };
        const config = mustParse(env, `compose ${name}`);
        expect(config, name).toMatchObject(expectations[name] ?? {});
        expect(config.ENVIRONMENT, `${name}: .env must not make it a development container`).toBe('production');
        // Every published port is the port this MODE listens on.
        for (const port of portsOf(service)) expect(port.target, `${name} ports`).toBe(config.port);
        // ticket owns no stock: its STOCK_STORE and DATA_DIR are never read.
        if (keepsStockInDataDir(config)) {
          const mount = service.volumes?.find(
            (v) => (typeof v === 'string' ? v.split(':')[1] : v.target) === config.DATA_DIR,
          );
          expect(mount, `${name}: DATA_DIR ${config.DATA_DIR} on a named volume`).toBeDefined();
          const volume = typeof mount === 'string' ? mount.split(':')[0] : mount?.source;
          expect(Object.keys(compose.volumes ?? {}), name).toContain(volume);
        }
        expect(
          durationSeconds(service.stop_grace_period ?? '10s'),
          `${name}: stop_grace_period > SHUTDOWN_TIMEOUT`,
        ).toBeGreaterThan(config.SHUTDOWN_TIMEOUT);
      }
    });
  }

  it('names only variables src/config.ts knows (or documented extras)', () => {
    for (const [name, service] of appServices) {
      expect(unknownVariables(Object.keys(environmentOf(service))), name).toEqual([]);
    }
    expect(unknownVariables(Object.keys(DEV_DOTENV)), '.env.example').toEqual([]);
    expect(Object.keys(DOCUMENTED_EXTRA_VARIABLES).filter((name) => CONFIG_KEYS.has(name))).toEqual([]);
  });

  it('wires ticket -> vacancy -> redis by service name and port, started in that order once healthy', () => {
    const vacancyLike = appServices.filter(([, s]) => environmentOf(s).MODE === 'vacancy');
    const ticket = compose.services.ticket as ComposeService;
    const ticketConfig = mustParse({ ...environmentOf(ticket) }, 'compose ticket');
    for (const url of ticketConfig.VACANCY_URL.split(',').map((u) => new URL(u))) {
      const named = vacancyLike.filter(
        ([name, s]) => name === url.hostname || networkAliases(s).includes(url.hostname),
      );
      expect(named.length, `VACANCY_URL host ${url.hostname} is a vacancy service or alias`).toBeGreaterThan(0);
      for (const [name, s] of named) {
        expect(mustParse({ ...environmentOf(s) }, name).port, `${name} listens where VACANCY_URL points`).toBe(
          Number(url.port),
        );
      }
    }
    expect(ticket.depends_on).toMatchObject({ vacancy: { condition: 'service_healthy' } });
    for (const [name, service] of vacancyLike) {
      const config = mustParse({ ...environmentOf(service) }, name);
      const redisUrl = new URL(config.REDIS_URL);
      expect(compose.services[redisUrl.hostname], `${name}: REDIS_URL host is a compose service`).toBeDefined();
      expect(redisUrl.port || '6379').toBe('6379');
      expect(service.depends_on, name).toMatchObject({ [redisUrl.hostname]: { condition: 'service_healthy' } });
    }
  });

  it('lets vacancy scale without a port clash or a second stock, and never scales a store in DATA_DIR', () => {
    const published = appServices.flatMap(([, s]) =>
      portsOf(s)
        .map((p) => p.published)
        .filter(Boolean),
    );
    expect(new Set(published).size, 'host ports are unique').toBe(published.length);
    for (const [name, service] of appServices) {
      const config = mustParse({ ...environmentOf(service) }, name);
      const replicas = Number(service.deploy?.replicas ?? 1);
      const scalable = replicas > 1 || portsOf(service).every((p) => p.published === undefined);
      if (scalable && config.MODE !== 'ticket') {
        expect(config.STOCK_STORE, `${name} runs as several containers: they must share one stock`).toBe('redis');
      }
      if (replicas > 1)
        expect(
          portsOf(service).filter((p) => p.published),
          `${name}: fixed host port with replicas`,
        ).toEqual([]);
      if (keepsStockInDataDir(config)) expect(replicas, `${name}: one writer of ${config.DATA_DIR}`).toBe(1);
    }
    const replica = compose.services['vacancy-replica'] as ComposeService;
    expect(environmentOf(replica)).toEqual(environmentOf(compose.services.vacancy as ComposeService));
    expect(networkAliases(replica)).toContain('vacancy');
    expect(replica.profiles).toEqual(['scale']);
    expect((compose.services.monolith as ComposeService).profiles).toEqual(['monolith']);
  });

  it('hands ticket and every vacancy the same INTERNAL_TOKEN', () => {
    const withToken = loadCompose({ INTERNAL_TOKEN: DUMMY_TOKEN });
    for (const name of ['ticket', 'vacancy', 'vacancy-replica']) {
      expect(environmentOf(withToken.services[name] as ComposeService).INTERNAL_TOKEN, name).toBe(DUMMY_TOKEN);
    }
  });
});

// ================================================================================================
describe.skipIf(kustomize.skip)('infra/k8s', () => {
  it('renders base and every overlay with kustomize, every object valid against the Kubernetes API schemas', () => {
    kustomize.assertReady();
    expect(OVERLAYS.sort()).toEqual(['redis', 'single-node']);
    for (const dir of ['base', ...OVERLAYS.map((o) => `overlays/${o}`)]) {
      const objects = render(dir);
      expect(objects.length, dir).toBeGreaterThan(0);
      for (const object of objects) expect(() => validateObject(object), dir).not.toThrow();
    }
  });

  it('validation has teeth: a wrongly typed field or a missing required one is refused', () => {
    const deployment = render('overlays/redis').find((o) => o.kind === 'Deployment') as K8sObject;
    const broken = structuredClone(deployment) as K8sObject & {
      spec: { template: { spec: { containers: Array<{ ports: Array<{ containerPort: unknown }> }> } } };
    };
    (broken.spec.template.spec.containers[0]?.ports[0] ?? { containerPort: 0 }).containerPort = 'eight thousand';
    expect(() => validateObject(broken)).toThrow(/containerPort/);
    const withoutSelector = structuredClone(deployment) as K8sObject & { spec: Record<string, unknown> };
    delete withoutSelector.spec.selector;
    expect(() => validateObject(withoutSelector)).toThrow(/selector/);
  });

  it('renders every object of every YAML file under infra/k8s in some overlay', () => {
    const rendered = new Set(
      OVERLAYS.flatMap((overlay) => render(`overlays/${overlay}`)).map((o) => `${o.kind}/${o.metadata.name}`),
    );
    const files = listFiles(K8S).filter((f) => /\.ya?ml$/.test(f) && !/kustomization\.ya?ml$/.test(f));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      const documents = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as K8sObject);
      for (const object of documents.filter(Boolean)) {
        expect(rendered, `${relative(ROOT, file)}: ${object.kind}/${object.metadata.name}`).toContain(
          `${object.kind}/${object.metadata.name}`,
        );
      }
    }
  });

  it('base holds only what every overlay shares; its ConfigMap is valid configuration; the Secret placeholders are refused', () => {
    const base = render('base');
    expect(base.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'Namespace', 'Secret']);
    const configMap = base.find((o) => o.kind === 'ConfigMap') as K8sObject & { data: Record<string, string> };
    expect(unknownVariables(Object.keys(configMap.data))).toEqual([]);
    mustParse(configMap.data, 'ConfigMap ticket-system-config');
    const secret = base.find((o) => o.kind === 'Secret') as K8sObject;
    const values = secretValues(secret);
    expect(Object.keys(values).sort()).toEqual(['ADMIN_TOKEN', 'INTERNAL_TOKEN']);
    // A forgotten placeholder stops the pod instead of running with a token published in git.
    for (const [key, value] of Object.entries(values)) {
      let error: unknown;
      try {
        parseConfig({ [key]: value });
      } catch (caught) {
        error = caught;
      }
      expect(error, `${key}=${value} must be refused`).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems.map((p) => p.variable)).toEqual([key]);
    }
    expect(readFileSync(join(K8S, 'base/secret.yaml'), 'utf8')).toMatch(/REPLACE/);
  });

  describe.each(OVERLAYS)('overlay %s', (overlay) => {
    const objects = render(`overlays/${overlay}`);
    const byKind = (kind: string) => objects.filter((o) => o.kind === kind);
    const find = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name);
    const workloads = objects.filter(isWorkload);
    const apps = workloads.flatMap((workload) =>
      containersOf(workload)
        .filter((c) => c.image === APP_IMAGE)
        .map((container) => {
          const env = resolveEnv(container, objects);
          return { workload, container, env, config: mustParse(env, `${workload.kind}/${workload.metadata.name}`) };
        }),
    );
    const label = (w: K8sObject, c: Container) => `${w.kind}/${w.metadata.name} ${c.name}`;

    it('puts everything in the ticket-system namespace, which exists', () => {
      expect(find('Namespace', 'ticket-system')).toBeDefined();
      for (const object of objects)
        if (object.kind !== 'Namespace') expect(object.metadata.namespace, object.metadata.name).toBe('ticket-system');
    });

    it('has the shape of the overlay', () => {
      const modes = apps.map((a) => `${a.workload.kind}:${a.config.MODE}:${a.config.STOCK_STORE}`).sort();
      if (overlay === 'redis') {
        // ticket's STOCK_STORE is irrelevant (it owns no stock): only its kind and mode matter.
        expect(modes.map((m) => m.replace(/^(Deployment:ticket):.*/, '$1'))).toEqual([
          'Deployment:ticket',
          'Deployment:vacancy:redis',
        ]);
        const redis = byKind('StatefulSet').find((s) => containersOf(s).some((c) => c.image === REDIS_IMAGE));
        expect(redis, 'a Redis StatefulSet').toBeDefined();
        expect(
          byKind('HorizontalPodAutoscaler')
            .map((h) => (h.spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name)
            .sort(),
        ).toEqual(['ticket', 'vacancy']);
      } else {
        expect(modes).toHaveLength(1);
        expect(modes[0]).toMatch(/^StatefulSet:monolith:/);
        expect(keepsStockInDataDir(apps[0]?.config as Config), 'the monolith keeps its stock on its volume').toBe(true);
        expect(byKind('Deployment')).toEqual([]);
        expect(byKind('HorizontalPodAutoscaler')).toEqual([]);
      }
    });

    it('runs only our image and the compose Redis image, with the image`s ENTRYPOINT', () => {
      for (const workload of workloads) {
        for (const container of containersOf(workload)) {
          expect([APP_IMAGE, REDIS_IMAGE], label(workload, container)).toContain(container.image);
          if (container.image !== APP_IMAGE) continue;
          expect(container.command, `${label(workload, container)}: command bypasses the ENTRYPOINT`).toBeUndefined();
          if (container.args !== undefined) expect(container.args, label(workload, container)).toEqual(['healthcheck']);
          // The image's HEALTHCHECK is for compose; Kubernetes asks over HTTP (paths checked below).
          for (const probe of probesOf(container)) expect(probe.exec, label(workload, container)).toBeUndefined();
        }
      }
    });

    it('matches selectors to labels: workloads, Services, PodDisruptionBudgets, HPAs, spread constraints', () => {
      for (const workload of workloads) {
        const template = podTemplateOf(workload);
        const selector = (workload.spec as { selector?: { matchLabels?: Record<string, string> } }).selector;
        expect(
          selector && selectorMatches(selector, template?.metadata?.labels),
          `${workload.metadata.name}: selector ⊆ template labels`,
        ).toBe(true);
        for (const constraint of (template?.spec?.topologySpreadConstraints ?? []) as Array<{
          labelSelector: { matchLabels: Record<string, string> };
        }>) {
          expect(
            selectorMatches(constraint.labelSelector, template?.metadata?.labels),
            `${workload.metadata.name} topologySpread`,
          ).toBe(true);
        }
        if (workload.kind === 'StatefulSet') {
          expect(
            find('Service', (workload.spec as { serviceName: string }).serviceName),
            `${workload.metadata.name} serviceName`,
          ).toBeDefined();
        }
      }
      for (const service of byKind('Service')) {
        expect(
          selectedWorkloads(service).length,
          `Service ${service.metadata.name} selects a workload`,
        ).toBeGreaterThan(0);
      }
      for (const pdb of byKind('PodDisruptionBudget')) {
        const selector = (pdb.spec as { selector: { matchLabels: Record<string, string> } }).selector;
        const selected = workloads.filter((w) => selectorMatches(selector, podTemplateOf(w)?.metadata?.labels));
        expect(selected.length, `PDB ${pdb.metadata.name} selects a workload`).toBeGreaterThan(0);
      }
      for (const hpa of byKind('HorizontalPodAutoscaler')) {
        const ref = (hpa.spec as { scaleTargetRef: { kind: string; name: string } }).scaleTargetRef;
        const target = find(ref.kind, ref.name);
        expect(target, `HPA ${hpa.metadata.name} -> ${ref.kind}/${ref.name}`).toBeDefined();
        expect(
          (target?.spec as { replicas?: number }).replicas,
          `${ref.name}: spec.replicas would fight the HPA on every apply`,
        ).toBeUndefined();
      }
    });

    it('uses the port src/config.ts gives each MODE: containerPort, probes, Service targetPort, Ingress', () => {
      expect(apps.length).toBeGreaterThan(0);
      for (const { workload, container, config } of apps) {
        expect(
          container.ports?.map((p) => p.containerPort),
          label(workload, container),
        ).toEqual([config.port]);
        for (const probe of probesOf(container)) {
          const port = probe.httpGet?.port ?? probe.tcpSocket?.port;
          if (port !== undefined)
            expect(resolvePort(container, port), `${label(workload, container)} probe port`).toBe(config.port);
        }
      }
      for (const service of byKind('Service')) {
        for (const port of (service.spec as { ports: Array<{ port: number; targetPort?: number | string }> }).ports) {
          for (const workload of selectedWorkloads(service)) {
            const resolved = containersOf(workload).map((c) => resolvePort(c, port.targetPort ?? port.port));
            expect(
              resolved.some((p) => p !== undefined),
              `Service ${service.metadata.name} targetPort ${port.targetPort} on ${workload.metadata.name}`,
            ).toBe(true);
          }
        }
      }
      for (const { service, port } of ingressBackends()) {
        const servicePorts =
          (find('Service', service)?.spec as { ports: Array<{ name?: string; port: number }> } | undefined)?.ports ??
          [];
        expect(
          servicePorts.some((p) => p.name === port.name || p.port === port.number),
          `Ingress -> ${service}:${port.name ?? port.number}`,
        ).toBe(true);
      }
    });

    it('probes paths the app of each MODE serves: startup and liveness /api/v1/health, readiness /api/v1/ready', async () => {
      for (const { workload, container, env } of apps) {
        for (const probe of probesOf(container)) {
          if (!probe.httpGet?.path) continue;
          const route = await routeExists(env, probe.httpGet.path);
          expect(
            route.exists,
            `${label(workload, container)}: ${probe.httpGet.path} is not a route of MODE=${env.MODE} (${route.statuses})`,
          ).toBe(true);
        }
        // And each probe asks the question it is for (liveness never depends on vacancy or the store).
        expect(container.startupProbe?.httpGet?.path, label(workload, container)).toBe('/api/v1/health');
        expect(container.livenessProbe?.httpGet?.path, label(workload, container)).toBe('/api/v1/health');
        expect(container.readinessProbe?.httpGet?.path, label(workload, container)).toBe('/api/v1/ready');
      }
    });

    it('annotates every app pod for Prometheus: scrape, the port of its MODE, a /metrics that answers 200 without a token', async () => {
      expect(apps.length).toBeGreaterThan(0);
      for (const { workload, container, env, config } of apps) {
        const where = label(workload, container);
        const annotations =
          (podTemplateOf(workload)?.metadata as { annotations?: Record<string, unknown> } | undefined)?.annotations ??
          {};
        // Annotation values are strings: the API server refuses an unquoted `true` or port number.
        expect(annotations['prometheus.io/scrape'], `${where} prometheus.io/scrape`).toBe('true');
        expect(
          annotations['prometheus.io/port'],
          `${where} prometheus.io/port is the port of MODE=${config.MODE}`,
        ).toBe(String(config.port));
        const path = annotations['prometheus.io/path'];
        expect(path, `${where} prometheus.io/path`).toBe('/metrics');
        // Annotation-based scraping sends no Authorization header: METRICS on (404 otherwise), METRICS_TOKEN unset (401 otherwise).
        const route = await routeExists(env, String(path));
        expect(
          route.statuses,
          `${where}: GET ${String(path)} on MODE=${config.MODE} as Prometheus scrapes it, without a token`,
        ).toBe('GET 200');
      }
    });

    it('names only variables src/config.ts knows, from ConfigMaps and Secrets that exist', () => {
      for (const workload of workloads) {
        for (const container of containersOf(workload).filter((c) => c.image === APP_IMAGE)) {
          const names = (container.env ?? []).map((e) => e.name);
          for (const from of container.envFrom ?? []) {
            const ref = from.configMapRef ?? from.secretRef;
            const source = find(from.configMapRef ? 'ConfigMap' : 'Secret', ref?.name ?? '');
            expect(source ?? ref?.optional, `${label(workload, container)} envFrom ${ref?.name}`).toBeTruthy();
            if (source)
              names.push(
                ...Object.keys(source.kind === 'Secret' ? secretValues(source) : ((source.data ?? {}) as object)).map(
                  (k) => `${from.prefix ?? ''}${k}`,
                ),
              );
          }
          for (const entry of container.env ?? []) {
            const ref = entry.valueFrom?.configMapKeyRef ?? entry.valueFrom?.secretKeyRef;
            if (!ref) continue;
            const source = find(entry.valueFrom?.configMapKeyRef ? 'ConfigMap' : 'Secret', ref.name ?? '');
            const keys = source
              ? Object.keys(source.kind === 'Secret' ? secretValues(source) : ((source.data ?? {}) as object))
              : [];
            expect(
              keys.includes(ref.key) || ref.optional === true,
              `${label(workload, container)} ${entry.name} from ${ref.name}/${ref.key}`,
            ).toBe(true);
          }
          expect(unknownVariables(names), label(workload, container)).toEqual([]);
        }
      }
    });

    it('wires ticket to the vacancy Service and vacancy to the Redis Service, with one INTERNAL_TOKEN', () => {
      for (const { workload, container, config } of apps) {
        if (config.MODE === 'ticket') {
          for (const url of config.VACANCY_URL.split(',').map((u) => new URL(u))) {
            const service = serviceForHost(url.hostname);
            expect(service, `VACANCY_URL host ${url.hostname} is a Service`).toBeDefined();
            const port = (service?.spec as { ports: Array<{ port: number }> }).ports.find(
              (p) => p.port === Number(url.port),
            );
            expect(port, `${url.hostname}:${url.port} is a port of the Service`).toBeDefined();
            const targets = apps.filter((a) => service && selectedWorkloads(service).includes(a.workload));
            expect(
              targets.map((a) => a.config.MODE),
              `${url.hostname} selects vacancy pods`,
            ).toEqual(['vacancy']);
          }
          const vacancy = apps.find((a) => a.config.MODE === 'vacancy');
          expect(tokenSource(container), 'ticket sends the INTERNAL_TOKEN vacancy requires').toEqual(
            vacancy && tokenSource(vacancy.container),
          );
          expect(tokenSource(container), 'INTERNAL_TOKEN from the Secret').toMatch(/^secret /);
        }
        if (config.MODE !== 'ticket' && config.STOCK_STORE === 'redis') {
          const url = new URL(config.REDIS_URL);
          const service = serviceForHost(url.hostname);
          expect(service, `${label(workload, container)}: REDIS_URL host ${url.hostname} is a Service`).toBeDefined();
          const selected = service ? selectedWorkloads(service) : [];
          expect(selected.flatMap(containersOf).map((c) => c.image)).toEqual([REDIS_IMAGE]);
          const redisPorts = (service?.spec as { ports: Array<{ port: number }> }).ports.map((p) => p.port);
          expect(redisPorts).toContain(Number(url.port || 6379));
        }
      }
    });

    it('runs Redis with AOF, noeviction and its data on a persistent volume', () => {
      for (const workload of workloads) {
        for (const container of containersOf(workload).filter((c) => c.image === REDIS_IMAGE)) {
          const args = [...(container.command ?? []), ...(container.args ?? [])].join(' ');
          expect(args).toMatch(/--appendonly yes/);
          expect(args).toMatch(/--appendfsync (everysec|always)/);
          expect(args).toMatch(/--maxmemory-policy noeviction/);
          expect(workload.kind).toBe('StatefulSet');
          const dir = /--dir (\S+)/.exec(args)?.[1] ?? '/data';
          expect(claimMountedAt(workload, container, dir), `${dir} on a volumeClaimTemplate`).toBe(true);
        }
      }
    });

    it('never lets two processes own one stock: a store in DATA_DIR only in a one-replica StatefulSet on its own volume', () => {
      for (const { workload, container, config } of apps) {
        if (config.MODE === 'ticket') continue;
        expect(config.STOCK_STORE, `${label(workload, container)}: memory loses every sale on restart`).not.toBe(
          'memory',
        );
        if (!keepsStockInDataDir(config)) continue;
        expect(workload.kind, label(workload, container)).toBe('StatefulSet');
        expect((workload.spec as { replicas?: number }).replicas, label(workload, container)).toBe(1);
        const hpa = byKind('HorizontalPodAutoscaler').find(
          (h) => (h.spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name === workload.metadata.name,
        );
        expect(hpa, `${workload.metadata.name} must not autoscale`).toBeUndefined();
        expect(
          claimMountedAt(workload, container, config.DATA_DIR),
          `DATA_DIR ${config.DATA_DIR} on a volumeClaimTemplate`,
        ).toBe(true);
      }
    });

    it('meets the restricted Pod Security Standard, non-root 65532 for our image, read-only root filesystem', () => {
      for (const workload of workloads) {
        const spec = podTemplateOf(workload)?.spec;
        const pod = spec?.securityContext ?? {};
        for (const container of containersOf(workload)) {
          const where = label(workload, container);
          const own = container.securityContext ?? {};
          const effective = { ...pod, ...own };
          expect(effective.runAsNonRoot, where).toBe(true);
          expect(effective.runAsUser, where).not.toBe(0);
          if (container.image === APP_IMAGE) expect(effective.runAsUser, where).toBe(65532);
          expect(own.readOnlyRootFilesystem, where).toBe(true);
          expect(own.allowPrivilegeEscalation, where).toBe(false);
          expect(own.privileged ?? false, where).toBe(false);
          expect(own.capabilities?.drop, where).toContain('ALL');
          expect(own.capabilities?.add ?? [], where).toEqual([]);
          expect(effective.seccompProfile?.type, where).toBe('RuntimeDefault');
          for (const kind of ['requests', 'limits'] as const) {
            expect(Object.keys(container.resources?.[kind] ?? {}).sort(), `${where} resources.${kind}`).toEqual([
              'cpu',
              'memory',
            ]);
          }
        }
        for (const volume of spec?.volumes ?? []) {
          const source = Object.keys(volume).filter((k) => k !== 'name');
          expect(
            ['emptyDir', 'persistentVolumeClaim', 'configMap', 'secret', 'projected', 'downwardAPI', 'ephemeral'],
            `${workload.metadata.name} volume ${volume.name}`,
          ).toEqual(expect.arrayContaining(source));
        }
        expect(spec?.automountServiceAccountToken, `${workload.metadata.name}: no API access needed`).toBe(false);
      }
    });

    it('drains before it stops: preStop sleep, and terminationGracePeriodSeconds > preStop + SHUTDOWN_TIMEOUT', () => {
      for (const { workload, container, config } of apps) {
        const preStop = container.lifecycle?.preStop?.sleep?.seconds;
        expect(
          preStop,
          `${label(workload, container)} preStop.sleep (the image has no shell for exec)`,
        ).toBeGreaterThanOrEqual(PRE_STOP_SECONDS_MIN);
        const grace = podTemplateOf(workload)?.spec?.terminationGracePeriodSeconds ?? 30;
        expect(grace, label(workload, container)).toBeGreaterThan((preStop ?? 0) + config.SHUTDOWN_TIMEOUT);
      }
    });

    it('scales ticket (and vacancy on Redis) on CPU 70 % and memory 85 %', () => {
      for (const hpa of byKind('HorizontalPodAutoscaler')) {
        const spec = hpa.spec as {
          minReplicas: number;
          maxReplicas: number;
          metrics: Array<{ resource: { name: string; target: { averageUtilization: number } } }>;
        };
        const targets = Object.fromEntries(
          spec.metrics.map((m) => [m.resource.name, m.resource.target.averageUtilization]),
        );
        expect(targets, hpa.metadata.name).toEqual({ cpu: 70, memory: 85 });
        expect(spec.minReplicas).toBeGreaterThanOrEqual(2);
        expect(spec.maxReplicas).toBeGreaterThan(spec.minReplicas);
      }
      if (overlay === 'redis')
        expect(byKind('HorizontalPodAutoscaler').map((h) => h.metadata.name)).toContain('ticket');
    });

    it('exposes through the nginx Ingress only the public service, and not reserve, admin or metrics', async () => {
      const ingresses = byKind('Ingress');
      expect(ingresses).toHaveLength(1);
      expect((ingresses[0]?.spec as { ingressClassName?: string }).ingressClassName).toBe('nginx');
      const publicMode = apps.some((a) => a.config.MODE === 'ticket') ? 'ticket' : 'monolith';
      const backends = ingressBackends();
      expect(backends.length).toBeGreaterThan(0);
      for (const { service, path } of backends) {
        const target = find('Service', service);
        expect(target, `Ingress backend ${service}`).toBeDefined();
        const modes = apps
          .filter((a) => target && selectedWorkloads(target).includes(a.workload))
          .map((a) => a.config.MODE);
        expect(modes, `Ingress ${path} -> ${service}`).toEqual([publicMode]);
        // What an Ingress path names must be a route of the app behind it.
        const app = apps.find((a) => a.config.MODE === publicMode);
        if (app && path !== '/') {
          const route = await routeExists(app.env, path);
          expect(route.exists, `Ingress path ${path} (${route.statuses})`).toBe(true);
        }
      }
      // Internal endpoints: if a rule would forward them, the app behind it must not serve them.
      for (const internal of ['/api/v1/reserve', '/api/v1/admin/stock', '/metrics']) {
        for (const { service } of backends.filter((b) => ingressPathMatches(b, internal))) {
          const target = find('Service', service);
          for (const app of apps.filter((a) => target && selectedWorkloads(target).includes(a.workload))) {
            const route = await routeExists(app.env, internal);
            expect(route.exists, `${internal} reachable from outside through ${service} (${route.statuses})`).toBe(
              false,
            );
          }
        }
      }
    });

    // -- helpers over this overlay's objects --

    function selectedWorkloads(service: K8sObject): K8sObject[] {
      const selector = (service.spec as { selector?: Record<string, string> }).selector ?? {};
      return workloads.filter((w) => selectorMatches(selector, podTemplateOf(w)?.metadata?.labels));
    }

    function serviceForHost(host: string): K8sObject | undefined {
      const [name, namespace] = host.split('.');
      if (namespace !== undefined && namespace !== 'ticket-system') return undefined;
      return find('Service', name ?? '');
    }

    function ingressBackends(): Array<{
      service: string;
      port: { name?: string; number?: number };
      path: string;
      pathType: string;
    }> {
      return byKind('Ingress').flatMap((ingress) => {
        const spec = ingress.spec as {
          defaultBackend?: unknown;
          rules?: Array<{
            http: {
              paths: Array<{
                path: string;
                pathType: string;
                backend: { service: { name: string; port: { name?: string; number?: number } } };
              }>;
            };
          }>;
        };
        expect(spec.defaultBackend, 'a default backend would expose everything else').toBeUndefined();
        return (spec.rules ?? []).flatMap((rule) =>
          rule.http.paths.map((p) => ({
            service: p.backend.service.name,
            port: p.backend.service.port,
            path: p.path,
            pathType: p.pathType,
          })),
        );
      });
    }
  });
});

// ---- helpers ----------------------------------------------------------------------------------------

/** Whether the service keeps its stock in DATA_DIR (every store but Redis and memory): one writer, ever. */
function keepsStockInDataDir(config: Config): boolean {
  return config.MODE !== 'ticket' && config.STOCK_STORE !== 'redis' && config.STOCK_STORE !== 'memory';
}

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? listFiles(path) : [path];
  });
}

function secretValues(secret: K8sObject): Record<string, string> {
  const decoded = Object.fromEntries(
    Object.entries((secret.data ?? {}) as Record<string, string>).map(([k, v]) => [
      k,
      Buffer.from(v, 'base64').toString('utf8'),
    ]),
  );
  return { ...decoded, ...((secret.stringData ?? {}) as Record<string, string>) };
}

/** The container's environment as the kubelet builds it: image ENV, then envFrom, then env (secrets as stored). */
function resolveEnv(container: Container, objects: K8sObject[]): Record<string, string> {
  const lookup = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name);
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    const source = from.configMapRef
      ? lookup('ConfigMap', from.configMapRef.name ?? '')
      : lookup('Secret', from.secretRef?.name ?? '');
    const data = source
      ? source.kind === 'Secret'
        ? secretValues(source)
        : ((source.data ?? {}) as Record<string, string>)
      : {};
    for (const [key, value] of Object.entries(data)) env[`${from.prefix ?? ''}${key}`] = value;
  }
  for (const entry of container.env ?? []) {
    if (entry.value !== undefined) env[entry.name] = entry.value;
    const configRef = entry.valueFrom?.configMapKeyRef;
    const secretRef = entry.valueFrom?.secretKeyRef;
    if (configRef) {
      const value = (lookup('ConfigMap', configRef.name ?? '')?.data as Record<string, string> | undefined)?.[
        configRef.key
      ];
      if (value !== undefined) env[entry.name] = value;
    }
    if (secretRef) {
      const secret = lookup('Secret', secretRef.name ?? '');
      const value = secret ? secretValues(secret)[secretRef.key] : undefined;
      // The Secret holds placeholders the program refuses on purpose; a real one holds a valid token.
      if (value !== undefined) env[entry.name] = DUMMY_TOKEN;
    }
  }
  return env;
}

function tokenSource(container: Container): string | undefined {
  const entry = container.env?.find((e) => e.name === 'INTERNAL_TOKEN');
  const ref = entry?.valueFrom?.secretKeyRef;
  if (ref) return `secret ${ref.name}/${ref.key}`;
  return entry?.value === undefined ? undefined : `value ${entry.value}`;
}

function probesOf(container: Container): IProbe[] {
  return [container.startupProbe, container.readinessProbe, container.livenessProbe].filter(
    (p): p is IProbe => p !== undefined,
  );
}

/** A probe or targetPort (number or port name) as a number, if the container has it. */
function resolvePort(container: Container, port: number | string): number | undefined {
  if (typeof port === 'number') return container.ports?.some((p) => p.containerPort === port) ? port : undefined;
  if (/^\d+$/.test(port)) return resolvePort(container, Number(port));
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

/** Whether `dir` in `container` is mounted from one of the StatefulSet's volumeClaimTemplates. */
function claimMountedAt(workload: K8sObject, container: Container, dir: string): boolean {
  const claims = (
    (workload.spec as { volumeClaimTemplates?: Array<{ metadata: { name: string } }> }).volumeClaimTemplates ?? []
  ).map((c) => c.metadata.name);
  const mount = container.volumeMounts?.find((m) => m.mountPath === dir);
  return mount !== undefined && claims.includes(mount.name) && mount.readOnly !== true;
}

function ingressPathMatches(rule: { path: string; pathType: string }, path: string): boolean {
  if (rule.pathType === 'Exact') return rule.path === path;
  const prefix = rule.path.replace(/\/+$/, '');
  return prefix === '' || path === prefix || path.startsWith(`${prefix}/`);
}
