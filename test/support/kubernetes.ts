/**
 * The Kubernetes overlays of infra/k8s as the real tools see them: rendered
 * by `kubectl kustomize` (or a standalone `kustomize build`), and each
 * rendered object validated against the Kubernetes API's schemas by its
 * kubernetes-models class. Plus the few questions the tests ask of the
 * objects (pod template, containers, whether a selector selects).
 *
 * @example
 * const objects = renderKustomization('infra/k8s/overlays/redis');
 * for (const object of objects) validateObject(object); // throws on a schema error
 */
import { spawnSync } from 'node:child_process';
import * as models from 'kubernetes-models';
import type { IContainer, IPodTemplateSpec } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { IN_CI, warnSkipped } from './loud-skip.ts';

export type Container = IContainer;
export type PodTemplate = IPodTemplateSpec;

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** The command that renders a kustomization here, or why there is none. */
function findKustomize(): { command: string[] } | { missing: string } {
  const kubectl = spawnSync('kubectl', ['kustomize', '--help'], { encoding: 'utf8', timeout: 30_000 });
  if (kubectl.status === 0) return { command: ['kubectl', 'kustomize'] };
  const kustomize = spawnSync('kustomize', ['version'], { encoding: 'utf8', timeout: 30_000 });
  if (kustomize.status === 0) return { command: ['kustomize', 'build'] };
  return { missing: 'neither kubectl (with its built-in kustomize) nor kustomize is installed' };
}

const KUSTOMIZE = findKustomize();

/** Whether the overlays can be rendered here; a skip is loud, and under CI=true a failure. */
export function kustomizeGate(what: string): { skip: boolean; assertReady(): void } {
  const missing = 'missing' in KUSTOMIZE ? KUSTOMIZE.missing : undefined;
  if (missing !== undefined && !IN_CI) warnSkipped(what, missing);
  return {
    skip: missing !== undefined && !IN_CI,
    assertReady() {
      if (missing !== undefined)
        throw new Error(`${missing}. Under CI=true the manifests must be rendered, not skipped.`);
    },
  };
}

/** The objects `kubectl kustomize dir` renders; throws with kustomize's own message when it refuses. */
export function renderKustomization(dir: string): K8sObject[] {
  if ('missing' in KUSTOMIZE) throw new Error(KUSTOMIZE.missing);
  const [command = '', ...args] = KUSTOMIZE.command;
  const result = spawnSync(command, [...args, dir], { encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0) throw new Error(`${KUSTOMIZE.command.join(' ')} ${dir}: ${result.stderr.trim()}`);
  return parseAllDocuments(result.stdout).map((document) => {
    if (document.errors.length > 0) throw new Error(document.errors.map((e) => e.message).join('; '));
    return document.toJS() as K8sObject;
  });
}

/**
 * The kubernetes-models class for an apiVersion and kind, e.g. apps/v1 Deployment ->
 * models.apps.v1.Deployment, networking.k8s.io/v1 Ingress -> models.networkingK8sIo.v1.Ingress.
 */
function modelOf(apiVersion: string, kind: string): (new (data: object) => { validate(): void }) | undefined {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const groupKey = (group ?? '').replace(/\.(\w)/g, (_, letter: string) => letter.toUpperCase());
  const byGroup = models as unknown as Record<string, Record<string, Record<string, unknown>>>;
  const versions = group === '' ? { [version as string]: byGroup[version as string] } : byGroup[groupKey];
  const model = versions?.[version as string]?.[kind];
  return typeof model === 'function' ? (model as new (data: object) => { validate(): void }) : undefined;
}

/** Validates `object` against the schema of its apiVersion and kind; throws naming the object and the field. */
export function validateObject(object: K8sObject): void {
  const Model = modelOf(object.apiVersion, object.kind);
  if (!Model)
    throw new Error(`${object.apiVersion} ${object.kind} is not a Kubernetes API kind kubernetes-models knows`);
  try {
    new Model(object).validate();
  } catch (error) {
    throw new Error(
      `${object.kind}/${object.metadata.name}: ${error instanceof Error ? error.message : String(error)}`,
      {
        cause: error,
      },
    );
  }
}

/** The pod template of a workload (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob). */
export function podTemplateOf(object: K8sObject): PodTemplate | undefined {
  const spec = object.spec as
    { template?: PodTemplate; jobTemplate?: { spec?: { template?: PodTemplate } } } | undefined;
  if (object.kind === 'CronJob') return spec?.jobTemplate?.spec?.template;
  return ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job'].includes(object.kind)
    ? spec?.template
    : undefined;
}

export function isWorkload(object: K8sObject): boolean {
  return podTemplateOf(object) !== undefined;
}

/** A workload's init containers and containers. */
export function containersOf(object: K8sObject): Container[] {
  const spec = podTemplateOf(object)?.spec;
  return spec ? [...(spec.initContainers ?? []), ...spec.containers] : [];
}

type LabelSelector = {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
};

/**
 * Whether a selector selects `labels`: a label selector (matchLabels, matchExpressions) or a
 * Service's plain map. An empty selector counts as selecting nothing, which is never meant here.
 */
export function selectorMatches(selector: LabelSelector | Record<string, string>, labels?: Record<string, string>) {
  const have = labels ?? {};
  const isLabelSelector = 'matchLabels' in selector || 'matchExpressions' in selector;
  const matchLabels = ((isLabelSelector ? (selector as LabelSelector).matchLabels : selector) ?? {}) as Record<
    string,
    string
  >;
  const expressions = isLabelSelector ? ((selector as LabelSelector).matchExpressions ?? []) : [];
  if (Object.keys(matchLabels).length === 0 && expressions.length === 0) return false;
  for (const [key, value] of Object.entries(matchLabels)) if (have[key] !== value) return false;
  return expressions.every(({ key, operator, values = [] }) => {
    const value = have[key];
    if (operator === 'In') return value !== undefined && values.includes(value);
    if (operator === 'NotIn') return value === undefined || !values.includes(value);
    if (operator === 'Exists') return value !== undefined;
    return value === undefined; // DoesNotExist
  });
}
