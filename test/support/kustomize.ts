/**
 * A small kustomize for tests: builds a kustomization directory into the
 * list of objects `kustomize build` would yield, for the features
 * infra/k8s uses — `resources` (files and directories), `components`,
 * `patches` (strategic merge, or JSON 6902 with a target), `namespace`,
 * `labels` and `images`. Anything else in a kustomization is refused with an
 * error rather than silently ignored, so a manifest that outgrows this
 * resolver fails its test instead of being checked wrongly.
 *
 * @example
 * const objects = buildKustomization('infra/k8s/overlays/redis');
 * objects.filter((o) => o.kind === 'Deployment').map((o) => o.metadata.name); // ['ticket', 'vacancy']
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];
const SUPPORTED_FIELDS = new Set([
  'apiVersion',
  'kind',
  'resources',
  'components',
  'patches',
  'namespace',
  'labels',
  'images',
]);

/** Kinds that live outside any namespace: the namespace transformer leaves them alone. */
const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
  'PersistentVolume',
  'StorageClass',
  'IngressClass',
  'PriorityClass',
  'RuntimeClass',
  'ValidatingWebhookConfiguration',
  'MutatingWebhookConfiguration',
  'APIService',
]);

/** Kinds whose pod template is at spec.template (CronJob: spec.jobTemplate.spec.template). */
const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job']);

export class KustomizeError extends Error {
  override name = 'KustomizeError';
}

export interface Kustomization {
  dir: string;
  file: string;
  kind: 'Kustomization' | 'Component';
  raw: JsonObject;
}

/** Reads the kustomization file of `dir`; throws on a field this resolver does not implement. */
export function readKustomization(dir: string): Kustomization {
  const name = KUSTOMIZATION_FILES.find((candidate) => existsSync(join(dir, candidate)));
  if (!name) throw new KustomizeError(`${dir}: no kustomization.yaml`);
  const file = join(dir, name);
  const docs = parseYamlFile(file);
  if (docs.length !== 1 || !isObject(docs[0])) throw new KustomizeError(`${file}: expected one YAML mapping`);
  const raw = docs[0];
  const unsupported = Object.keys(raw).filter((key) => !SUPPORTED_FIELDS.has(key));
  if (unsupported.length > 0) {
    throw new KustomizeError(
      `${file}: ${unsupported.join(', ')} not supported by test/support/kustomize.ts (extend it)`,
    );
  }
  const kind = (raw.kind ?? 'Kustomization') as string;
  if (kind !== 'Kustomization' && kind !== 'Component') throw new KustomizeError(`${file}: unknown kind ${kind}`);
  return { dir, file, kind, raw };
}

/** Every file a kustomization reads, directly or through its resources, components and patches. */
export function filesOf(dir: string, seen = new Set<string>()): Set<string> {
  const k = readKustomization(resolve(dir));
  seen.add(k.file);
  for (const entry of stringList(k.raw.resources, `${k.file}: resources`)) {
    const path = resolve(k.dir, entry);
    if (isDirectory(path)) filesOf(path, seen);
    else seen.add(path);
  }
  for (const entry of stringList(k.raw.components, `${k.file}: components`)) filesOf(resolve(k.dir, entry), seen);
  for (const patch of (k.raw.patches ?? []) as JsonObject[]) {
    if (typeof patch.path === 'string') seen.add(resolve(k.dir, patch.path));
  }
  return seen;
}

/** `kustomize build <dir>`: the objects, in order. A Component cannot be built on its own (as in kustomize). */
export function buildKustomization(dir: string): K8sObject[] {
  const k = readKustomization(resolve(dir));
  if (k.kind === 'Component') throw new KustomizeError(`${k.file}: a Component cannot be built directly`);
  return build(k, []);
}

function build(k: Kustomization, inherited: K8sObject[]): K8sObject[] {
  let objects = [...inherited];
  for (const entry of stringList(k.raw.resources, `${k.file}: resources`)) {
    const path = resolve(k.dir, entry);
    if (!existsSync(path)) throw new KustomizeError(`${k.file}: resource ${entry} does not exist`);
    if (isDirectory(path)) {
      const sub = readKustomization(path);
      if (sub.kind === 'Component')
        throw new KustomizeError(`${k.file}: ${entry} is a Component; list it under components`);
      addAll(objects, build(sub, []), k.file);
    } else {
      addAll(objects, loadObjects(path), k.file);
    }
  }
  for (const entry of stringList(k.raw.components, `${k.file}: components`)) {
    const component = readKustomization(resolve(k.dir, entry));
    if (component.kind !== 'Component') throw new KustomizeError(`${k.file}: ${entry} is not a Component`);
    // A component adds its resources to what has accumulated so far, then runs its transformers over all of it.
    objects = build(component, objects);
  }
  objects = applyPatches(k, objects);
  if (typeof k.raw.namespace === 'string') applyNamespace(objects, k.raw.namespace);
  applyLabels(k, objects);
  applyImages(k, objects);
  return objects;
}

function addAll(objects: K8sObject[], more: K8sObject[], file: string): void {
  for (const object of more) {
    const clash = objects.find((o) => idOf(o) === idOf(object));
    if (clash) throw new KustomizeError(`${file}: ${idOf(object)} is defined twice`);
    objects.push(object);
  }
}

export function idOf(object: K8sObject): string {
  return `${object.kind}/${object.metadata.namespace ?? '~'}/${object.metadata.name}`;
}

/** The Kubernetes objects of one YAML file (empty documents skipped); each must have apiVersion, kind, metadata.name. */
export function loadObjects(file: string): K8sObject[] {
  return parseYamlFile(file)
    .filter((doc) => doc !== null)
    .map((doc, index) => {
      if (
        !isObject(doc) ||
        typeof doc.apiVersion !== 'string' ||
        typeof doc.kind !== 'string' ||
        !isObject(doc.metadata)
      ) {
        throw new KustomizeError(
          `${file}: document ${index + 1} is not a Kubernetes object (apiVersion, kind, metadata)`,
        );
      }
      if (typeof doc.metadata.name !== 'string' || doc.metadata.name === '') {
        throw new KustomizeError(`${file}: ${doc.kind} without metadata.name`);
      }
      return doc as unknown as K8sObject;
    });
}

/** Every document of a YAML file; any parse error or warning (duplicate keys included) is thrown. */
export function parseYamlFile(file: string): Json[] {
  const documents = parseAllDocuments(readFileSync(file, 'utf8'), { merge: true, uniqueKeys: true });
  if (!Array.isArray(documents)) throw new KustomizeError(`${file}: not a YAML stream`);
  return documents.map((document) => {
    const problems = [...document.errors, ...document.warnings];
    if (problems.length > 0) throw new KustomizeError(`${file}: ${problems.map((p) => p.message).join('; ')}`);
    return document.toJS({ maxAliasCount: 100 }) as Json;
  });
}

// ---- patches ------------------------------------------------------------------------------------

interface Target {
  kind?: string;
  name?: string;
  namespace?: string;
  group?: string;
  version?: string;
  labelSelector?: string;
}

function applyPatches(k: Kustomization, objects: K8sObject[]): K8sObject[] {
  const patches = (k.raw.patches ?? []) as Json[];
  if (!Array.isArray(patches)) throw new KustomizeError(`${k.file}: patches must be a list`);
  let result = objects;
  for (const [index, entry] of patches.entries()) {
    const where = `${k.file}: patches[${index}]`;
    if (!isObject(entry)) throw new KustomizeError(`${where}: expected {path|patch, target?, options?}`);
    const extra = Object.keys(entry).filter((key) => !['path', 'patch', 'target'].includes(key));
    if (extra.length > 0) throw new KustomizeError(`${where}: ${extra.join(', ')} not supported`);
    const text =
      typeof entry.path === 'string'
        ? readFileSync(resolve(k.dir, entry.path), 'utf8')
        : typeof entry.patch === 'string'
          ? entry.patch
          : undefined;
    if (text === undefined) throw new KustomizeError(`${where}: needs path or patch`);
    const docs = parseAllDocuments(text, { merge: true, uniqueKeys: true });
    if (!Array.isArray(docs)) throw new KustomizeError(`${where}: not YAML`);
    const target = entry.target as Target | undefined;
    for (const doc of docs) {
      const problems = [...doc.errors, ...doc.warnings];
      if (problems.length > 0) throw new KustomizeError(`${where}: ${problems.map((p) => p.message).join('; ')}`);
      const patch = doc.toJS() as Json;
      if (patch === null) continue;
      if (Array.isArray(patch)) {
        if (!target) throw new KustomizeError(`${where}: a JSON 6902 patch needs a target`);
        const matched = result.filter((o) => matchesTarget(o, target));
        if (matched.length === 0)
          throw new KustomizeError(`${where}: target ${JSON.stringify(target)} matches nothing`);
        result = result.map((o) => (matches(o, matched) ? applyJson6902(o, patch, where) : o));
      } else if (isObject(patch)) {
        const selector: Target = target ?? {
          kind: patch.kind as string,
          name: (patch.metadata as JsonObject | undefined)?.name as string,
        };
        if (!selector.kind || !selector.name)
          throw new KustomizeError(`${where}: a strategic merge patch needs kind and metadata.name`);
        const matched = result.filter((o) => matchesTarget(o, selector));
        if (matched.length === 0) throw new KustomizeError(`${where}: no ${selector.kind} ${selector.name} to patch`);
        result = result.map((o) => {
          if (!matches(o, matched)) return o;
          const { apiVersion: _a, kind: _k, metadata, ...rest } = patch;
          const meta = isObject(metadata) ? { ...metadata } : {};
          if (target) delete meta.name; // a targeted patch may carry any name
          return strategicMerge(o as unknown as JsonObject, { ...rest, metadata: meta }, []) as unknown as K8sObject;
        });
      } else {
        throw new KustomizeError(`${where}: a patch is a mapping or a list`);
      }
    }
  }
  return result;
}

function matches(object: K8sObject, list: K8sObject[]): boolean {
  return list.includes(object);
}

function matchesTarget(object: K8sObject, target: Target): boolean {
  const [group, version] = object.apiVersion.includes('/') ? object.apiVersion.split('/') : ['', object.apiVersion];
  if (target.kind && target.kind !== object.kind) return false;
  if (target.name && !new RegExp(`^(?:${target.name})$`).test(object.metadata.name)) return false;
  if (target.namespace && target.namespace !== object.metadata.namespace) return false;
  if (target.group !== undefined && target.group !== group) return false;
  if (target.version && target.version !== version) return false;
  if (target.labelSelector) {
    for (const term of target.labelSelector.split(',')) {
      const [key, value] = term.split('=').map((s) => s.trim());
      if (!key || object.metadata.labels?.[key] !== value) return false;
    }
  }
  return true;
}

/** Merge keys of the lists kustomize merges item by item (from the Kubernetes OpenAPI schema). */
function mergeKeyFor(path: string[], items: Json[]): string | undefined {
  const field = path.at(-1);
  switch (field) {
    case 'containers':
    case 'initContainers':
    case 'ephemeralContainers':
    case 'volumes':
    case 'env':
    case 'imagePullSecrets':
    case 'volumeClaimTemplates':
      return 'name';
    case 'volumeMounts':
      return 'mountPath';
    case 'ports':
      return items.some((item) => isObject(item) && 'containerPort' in item) ? 'containerPort' : 'port';
    default:
      return undefined;
  }
}

function strategicMerge(base: Json, patch: Json, path: string[]): Json {
  if (isObject(patch) && isObject(base)) {
    if (patch.$patch === 'replace') {
      const { $patch: _p, ...rest } = patch;
      return rest;
    }
    if (patch.$patch === 'delete') return null;
    const out: JsonObject = { ...base };
    for (const [key, value] of Object.entries(patch)) {
      if (key === '$patch') continue;
      if (value === null) delete out[key];
      else out[key] = key in base ? strategicMerge(base[key] as Json, value, [...path, key]) : stripDirectives(value);
    }
    return out;
  }
  if (Array.isArray(patch) && Array.isArray(base)) {
    const key = mergeKeyFor(path, [...base, ...patch]);
    if (!key || !patch.every(isObject) || !base.every(isObject)) return stripDirectives(patch);
    const out: Json[] = [...base];
    for (const item of patch as JsonObject[]) {
      const at = out.findIndex((existing) => isObject(existing) && existing[key] === item[key]);
      if (item.$patch === 'delete') {
        if (at >= 0) out.splice(at, 1);
      } else if (at >= 0) {
        out[at] = strategicMerge(out[at] as Json, item, path);
      } else {
        out.push(stripDirectives(item));
      }
    }
    return out;
  }
  return stripDirectives(patch);
}

function stripDirectives(value: Json): Json {
  if (Array.isArray(value)) return value.map(stripDirectives);
  if (isObject(value)) {
    const out: JsonObject = {};
    for (const [key, inner] of Object.entries(value)) if (key !== '$patch') out[key] = stripDirectives(inner);
    return out;
  }
  return value;
}

function applyJson6902(object: K8sObject, operations: Json[], where: string): K8sObject {
  const doc = structuredClone(object) as unknown as JsonObject;
  for (const operation of operations) {
    if (!isObject(operation) || typeof operation.op !== 'string' || typeof operation.path !== 'string') {
      throw new KustomizeError(`${where}: each operation needs op and path`);
    }
    const tokens = operation.path
      .split('/')
      .slice(1)
      .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = tokens.pop();
    if (last === undefined) throw new KustomizeError(`${where}: empty path`);
    let parent: Json = doc;
    for (const token of tokens) {
      parent = Array.isArray(parent)
        ? (parent[Number(token)] as Json)
        : isObject(parent)
          ? (parent[token] as Json)
          : null;
      if (parent === null || parent === undefined)
        throw new KustomizeError(`${where}: ${operation.path} does not exist`);
    }
    const op = operation.op;
    if (Array.isArray(parent)) {
      const index = last === '-' ? parent.length : Number(last);
      if (op === 'add') parent.splice(index, 0, operation.value as Json);
      else if (op === 'replace') parent[index] = operation.value as Json;
      else if (op === 'remove') parent.splice(index, 1);
      else throw new KustomizeError(`${where}: op ${op} not supported`);
    } else if (isObject(parent)) {
      if (op === 'add' || op === 'replace') parent[last] = operation.value as Json;
      else if (op === 'remove') delete parent[last];
      else throw new KustomizeError(`${where}: op ${op} not supported`);
    }
  }
  return doc as unknown as K8sObject;
}

// ---- namespace, labels, images ------------------------------------------------------------------

function applyNamespace(objects: K8sObject[], namespace: string): void {
  for (const object of objects) {
    if (!CLUSTER_SCOPED.has(object.kind)) object.metadata = { ...object.metadata, namespace };
  }
}

function applyLabels(k: Kustomization, objects: K8sObject[]): void {
  const entries = (k.raw.labels ?? []) as Json[];
  if (!Array.isArray(entries)) throw new KustomizeError(`${k.file}: labels must be a list`);
  for (const entry of entries) {
    if (!isObject(entry) || !isObject(entry.pairs)) throw new KustomizeError(`${k.file}: labels entries need pairs`);
    const extra = Object.keys(entry).filter((key) => !['pairs', 'includeSelectors', 'includeTemplates'].includes(key));
    if (extra.length > 0) throw new KustomizeError(`${k.file}: labels.${extra.join(', ')} not supported`);
    const pairs = entry.pairs as Record<string, string>;
    const selectors = entry.includeSelectors === true;
    const templates = selectors || entry.includeTemplates === true;
    for (const object of objects) {
      object.metadata = { ...object.metadata, labels: { ...object.metadata.labels, ...pairs } };
      const template = podTemplateOf(object);
      if (templates && template)
        template.metadata = { ...template.metadata, labels: { ...template.metadata?.labels, ...pairs } };
      if (selectors) {
        const spec = object.spec as JsonObject | undefined;
        if (object.kind === 'Service' && spec)
          spec.selector = { ...(spec.selector as JsonObject | undefined), ...pairs };
        const selector = spec?.selector as JsonObject | undefined;
        if (object.kind !== 'Service' && selector)
          selector.matchLabels = { ...(selector.matchLabels as JsonObject | undefined), ...pairs };
      }
    }
  }
}

function applyImages(k: Kustomization, objects: K8sObject[]): void {
  const entries = (k.raw.images ?? []) as Json[];
  if (!Array.isArray(entries)) throw new KustomizeError(`${k.file}: images must be a list`);
  for (const entry of entries) {
    if (!isObject(entry) || typeof entry.name !== 'string')
      throw new KustomizeError(`${k.file}: images entries need name`);
    for (const object of objects) {
      for (const container of containersOf(object)) {
        const ref = parseImage(container.image);
        if (ref.name !== entry.name) continue;
        const name = typeof entry.newName === 'string' ? entry.newName : ref.name;
        if (typeof entry.digest === 'string') container.image = `${name}@${entry.digest}`;
        else if (typeof entry.newTag === 'string') container.image = `${name}:${entry.newTag}`;
        else container.image = `${name}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
      }
    }
  }
}

// ---- reading objects ----------------------------------------------------------------------------

export interface PodTemplate {
  metadata?: { labels?: Record<string, string> };
  spec: PodSpec;
}

export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Array<{ name: string; [source: string]: unknown }>;
  securityContext?: SecurityContext;
  terminationGracePeriodSeconds?: number;
  automountServiceAccountToken?: boolean;
  [field: string]: unknown;
}

export interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  privileged?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
  seccompProfile?: { type: string };
  [field: string]: unknown;
}

export interface Probe {
  httpGet?: { path?: string; port: number | string };
  tcpSocket?: { port: number | string };
  exec?: { command: string[] };
  [field: string]: unknown;
}

export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports?: Array<{ name?: string; containerPort: number; protocol?: string }>;
  env?: Array<{
    name: string;
    value?: string;
    valueFrom?: {
      configMapKeyRef?: { name: string; key: string; optional?: boolean };
      secretKeyRef?: { name: string; key: string; optional?: boolean };
      [source: string]: unknown;
    };
  }>;
  envFrom?: Array<{
    configMapRef?: { name: string; optional?: boolean };
    secretRef?: { name: string; optional?: boolean };
    prefix?: string;
  }>;
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  lifecycle?: { preStop?: { sleep?: { seconds: number }; exec?: unknown; httpGet?: unknown } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: SecurityContext;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}

/** The pod template of a workload (Deployment, StatefulSet, ...), or undefined for other kinds. */
export function podTemplateOf(object: K8sObject): PodTemplate | undefined {
  const spec = object.spec as JsonObject | undefined;
  if (WORKLOAD_KINDS.has(object.kind)) return spec?.template as unknown as PodTemplate | undefined;
  if (object.kind === 'CronJob') {
    return ((spec?.jobTemplate as JsonObject | undefined)?.spec as JsonObject | undefined)
      ?.template as unknown as PodTemplate;
  }
  return undefined;
}

export function containersOf(object: K8sObject): Container[] {
  const template = podTemplateOf(object);
  return template ? [...(template.spec.initContainers ?? []), ...template.spec.containers] : [];
}

export function isWorkload(object: K8sObject): boolean {
  return podTemplateOf(object) !== undefined;
}

/** `registry/repo:tag@digest` into its parts (the tag is after the last colon that follows the last slash). */
export function parseImage(image: string): { name: string; tag?: string; digest?: string } {
  const [withoutDigest = '', digest] = image.split('@');
  const slash = withoutDigest.lastIndexOf('/');
  const colon = withoutDigest.lastIndexOf(':');
  if (colon > slash) return { name: withoutDigest.slice(0, colon), tag: withoutDigest.slice(colon + 1), digest };
  return { name: withoutDigest, digest };
}

/** Whether every `matchLabels` pair (and simple `matchExpressions`) holds for `labels`. */
export function selectorMatches(
  selector:
    | {
        matchLabels?: Record<string, string>;
        matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
      }
    | Record<string, string>,
  labels: Record<string, string> | undefined,
): boolean {
  const have = labels ?? {};
  const isLabelSelector = 'matchLabels' in selector || 'matchExpressions' in selector;
  const matchLabels =
    (isLabelSelector ? (selector as { matchLabels?: Record<string, string> }).matchLabels : selector) ?? {};
  const expressions = isLabelSelector
    ? ((selector as { matchExpressions?: Array<{ key: string; operator: string; values?: string[] }> })
        .matchExpressions ?? [])
    : [];
  if (Object.keys(matchLabels).length === 0 && expressions.length === 0) return false; // an empty selector selects nothing useful here
  for (const [key, value] of Object.entries(matchLabels)) if (have[key] !== value) return false;
  for (const { key, operator, values = [] } of expressions) {
    const value = have[key];
    if (operator === 'In' && (value === undefined || !values.includes(value))) return false;
    if (operator === 'NotIn' && value !== undefined && values.includes(value)) return false;
    if (operator === 'Exists' && value === undefined) return false;
    if (operator === 'DoesNotExist' && value !== undefined) return false;
  }
  return true;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isDirectory(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

function stringList(value: unknown, where: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string'))
    throw new KustomizeError(`${where}: expected a list of paths`);
  return value;
}
