/**
 * Kubernetes manifests for an artifact: a Deployment sized from the manifest's tuned layout and
 * memory figures, its Service, HorizontalPodAutoscaler and PodDisruptionBudget; or a KServe
 * InferenceService; or an Indexed Job that runs `kiln batch` shards. For a Hub model, each pod
 * pulls it in an init container into a volume at HF_HOME, and kiln reads it from there offline.
 * Pure: objects in, YAML out.
 */
import { createRequire } from 'node:module';
import type { Document, YAMLMap } from 'yaml';
import type { Manifest } from '../model/artifact.js';

// Required on first use (it is CommonJS under Node): every kiln command imports this module through
// the command table, and loading yaml costs each of them ~0.07 s of CPU.
const require = createRequire(import.meta.url);
let yamlModule: typeof import('yaml') | undefined;
const yaml = (): typeof import('yaml') => (yamlModule ??= require('yaml') as typeof import('yaml'));

/** Where the image holds the artifact: `/models/<name>` (baked in by the image's Dockerfile). */
export const MODELS_DIR = '/models';
/** The port `kiln serve` listens on in the container (its default, SageMaker's too). */
export const CONTAINER_PORT = 8080;
/**
 * Seconds preStop waits before Kubernetes sends SIGTERM: endpoint removal reaches kube-proxy and
 * ingress controllers asynchronously, so a pod that stopped at once would still get new requests.
 */
export const PRE_STOP_SECONDS = 5;
/** preStop plus the drain (answer accepted requests) after SIGTERM; then SIGKILL. */
export const TERMINATION_GRACE_SECONDS = 30;
/** Memory limit over the request: the figures are measured at max batch × max length, not a bound on every allocator's slack. */
export const MEMORY_LIMIT_HEADROOM = 1.5;
/** HF_HOME in the pod: the volume the init container pulls into and the serving container reads. */
export const HF_HOME_DIR = '/var/cache/huggingface';
const HF_HOME_VOLUME = 'hf-home';
const MI = 1024 * 1024;

/** A Hub model the pods pull themselves instead of an artifact baked into the image. */
export interface HubPodModel {
  /** `hf:ORG/NAME@REVISION`: what the init container pulls and the serving container serves. */
  model: string;
  /** PersistentVolumeClaim that holds HF_HOME, shared by the pods; null: an emptyDir per pod. */
  cacheClaim: string | null;
  /** Secret key HF_TOKEN comes from, in the init container only; null: no token (a public model). */
  tokenSecret: { name: string; key: string } | null;
  /** HF_ENDPOINT for the init container (a mirror); null: the public Hub. */
  endpoint: string | null;
}

export interface K8sOptions {
  /** Container image that holds kiln and the artifact at /models/<name>. */
  image: string;
  /** Pods the Deployment starts with. @defaultValue 2 */
  replicas: number;
  /** HPA bounds (pods). */
  min: number;
  max: number;
  /** Set when ARTIFACT is a Hub model: pods pull it in an init container. */
  hub?: HubPodModel;
}

export interface K8sJobOptions {
  image: string;
  /** Set when ARTIFACT is a Hub model: pods pull it in an init container. */
  hub?: HubPodModel;
  /** Job indexes, each one `kiln batch --shard I/N`. */
  shards: number;
  /** INPUT path as the container sees it (a mounted volume). */
  input: string;
  /** Each index writes `<outputPrefix>-<index>.jsonl`. */
  outputPrefix: string;
}

/** One YAML file to write: its name in the output folder and its text. */
export interface K8sFile {
  file: string;
  text: string;
}

/** The pod's size: kiln's replicas × threads as CPU, and the memory figures from compile. */
export interface PodSizing {
  replicas: number;
  threadsPerReplica: number;
  cpu: number;
  /** Request and limit in MiB; null when the artifact has no memory figures (compiled before kiln measured them). */
  memoryRequestMi: number | null;
  memoryLimitMi: number | null;
  /** GPUs (`nvidia.com/gpu`, NVIDIA's device plugin): 1 for an artifact compiled for a GPU device, else 0. */
  gpus: number;
}

/**
 * Cores a GPU pod asks for: one for the HTTP thread (tokenizing, scheduling) and one for the
 * session's thread and the few nodes ONNX Runtime keeps on the CPU.
 */
const GPU_POD_CPU = 2;

export function podSizing(manifest: Manifest): PodSizing {
  const gpus = manifest.compile.backend === 'cuda' || manifest.compile.backend === 'webgpu' ? 1 : 0;
  if (gpus > 0)
    // One session owns the GPU; device memory is the GPU's, which compile does not measure.
    return { replicas: 1, threadsPerReplica: 1, cpu: GPU_POD_CPU, memoryRequestMi: null, memoryLimitMi: null, gpus };
  const replicas = manifest.tuned?.replicas ?? 1;
  const threadsPerReplica = manifest.tuned?.threadsPerReplica ?? 1;
  const memory = manifest.memory;
  const requestMi = memory ? Math.ceil(((memory.processBytes ?? 0) + replicas * memory.perReplicaBytes) / MI) : null;
  return {
    replicas,
    threadsPerReplica,
    cpu: replicas * threadsPerReplica,
    memoryRequestMi: requestMi,
    memoryLimitMi: requestMi === null ? null : Math.ceil(requestMi * MEMORY_LIMIT_HEADROOM),
    gpus,
  };
}

/** A DNS-1123 label from the artifact's name (Kubernetes object names and label values). */
export function resourceName(name: string): string {
  const label = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return label || 'kiln-model';
}

function resources(s: PodSizing): Record<string, Record<string, string>> {
  const cpu = String(s.cpu);
  const requests: Record<string, string> = { cpu };
  const limits: Record<string, string> = { cpu };
  if (s.memoryRequestMi !== null && s.memoryLimitMi !== null) {
    requests.memory = `${s.memoryRequestMi}Mi`;
    limits.memory = `${s.memoryLimitMi}Mi`;
  }
  // An extended resource is requested through its limit (Kubernetes sets the request equal).
  if (s.gpus > 0) limits['nvidia.com/gpu'] = String(s.gpus);
  return { requests, limits };
}

/** What `serve` and `batch` in the pod are given: the Hub model, or the artifact baked into the image. */
function modelArg(manifest: Manifest, hub: HubPodModel | undefined): string {
  return hub ? hub.model : `${MODELS_DIR}/${manifest.name}`;
}

const hfHomeMount = { name: HF_HOME_VOLUME, mountPath: HF_HOME_DIR };

/** The pod spec fields a Hub model adds: the pulling init container and the HF_HOME volume. */
function hubPodParts(hub: HubPodModel, image: string): Record<string, unknown> {
  const env: Record<string, unknown>[] = [{ name: 'HF_HOME', value: HF_HOME_DIR }];
  if (hub.endpoint !== null) env.push({ name: 'HF_ENDPOINT', value: hub.endpoint });
  if (hub.tokenSecret !== null)
    env.push({
      name: 'HF_TOKEN',
      valueFrom: { secretKeyRef: { name: hub.tokenSecret.name, key: hub.tokenSecret.key } },
    });
  return {
    initContainers: [{ name: 'kiln-pull', image, args: ['pull', hub.model], env, volumeMounts: [hfHomeMount] }],
    volumes: [
      hub.cacheClaim === null
        ? { name: HF_HOME_VOLUME, emptyDir: {} }
        : { name: HF_HOME_VOLUME, persistentVolumeClaim: { claimName: hub.cacheClaim } },
    ],
  };
}

/**
 * The serving or batch container's env for a Hub model: HF_HOME on the volume, and offline, so
 * that a restarted container never fetches (a branch may point at a newer commit by then).
 */
function hubOfflineEnv(hub: HubPodModel | undefined): Record<string, unknown>[] {
  return hub
    ? [
        { name: 'HF_HOME', value: HF_HOME_DIR },
        { name: 'HF_HUB_OFFLINE', value: '1' },
      ]
    : [];
}

function serveContainer(
  manifest: Manifest,
  image: string,
  name: string,
  hub: HubPodModel | undefined,
): Record<string, unknown> {
  const s = podSizing(manifest);
  const probe = (path: string, failureThreshold: number): Record<string, unknown> => ({
    httpGet: { path, port: 'http' },
    periodSeconds: 5,
    timeoutSeconds: 2,
    failureThreshold,
  });
  return {
    name,
    image,
    args: [
      'serve',
      modelArg(manifest, hub),
      '--host',
      '0.0.0.0',
      '--port',
      String(CONTAINER_PORT),
      '--replicas',
      String(s.replicas),
      '--threads-per-replica',
      String(s.threadsPerReplica),
    ],
    ...(hub ? { env: hubOfflineEnv(hub), volumeMounts: [hfHomeMount] } : {}),
    ports: [{ name: 'http', containerPort: CONTAINER_PORT, protocol: 'TCP' }],
    resources: resources(s),
    // The model loads after the server listens: /v2/health/ready answers 503 until it is loaded, and while draining.
    readinessProbe: probe('/v2/health/ready', 1),
    livenessProbe: { ...probe('/v2/health/live', 3), initialDelaySeconds: 10 },
    lifecycle: { preStop: { exec: { command: ['node', '-e', `setTimeout(() => {}, ${PRE_STOP_SECONDS * 1000})`] } } },
  };
}

function toDocument(value: unknown, comment?: string): Document {
  // No anchors and aliases for repeated objects (labels): kubectl reads them, but people grep the YAML.
  const doc = new (yaml().Document)(value, { aliasDuplicateObjects: false });
  if (comment)
    doc.commentBefore = comment
      .split('\n')
      .map((l) => ` ${l.trimStart()}`)
      .join('\n');
  return doc;
}

/** Sets the comment shown before the map entry `key` (a path of keys and indexes). */
function commentOn(doc: Document, path: (string | number)[], comment: string): void {
  const node = doc.getIn(path.slice(0, -1), true) as YAMLMap | undefined;
  const key = path[path.length - 1];
  const { isMap, isPair, isScalar } = yaml();
  if (!node || !isMap(node)) return;
  const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === key);
  if (pair && isScalar(pair.key)) pair.key.commentBefore = comment;
}

function hubComment(hub: HubPodModel): string {
  const volume = hub.cacheClaim === null ? 'an emptyDir: one download per pod' : `the claim ${hub.cacheClaim}`;
  return ` Pulls ${hub.model} into HF_HOME (on ${volume}) before kiln starts; kiln reads it there with HF_HUB_OFFLINE=1`;
}

const QUEUE_DEPTH_ALTERNATIVE = [
  ' Alternative: scale on queued work instead of CPU, with the kiln_queue_depth gauge from GET /metrics',
  ' exposed as a pods metric (e.g. by prometheus-adapter). Replace the list below with:',
  ' - type: Pods',
  '   pods:',
  '     metric:',
  '       name: kiln_queue_depth',
  '     target:',
  '       type: AverageValue',
  '       averageValue: "8"',
].join('\n');

/** Deployment, Service, HorizontalPodAutoscaler and PodDisruptionBudget for `kiln serve`. */
export function deploymentFiles(manifest: Manifest, options: K8sOptions): K8sFile[] {
  const name = resourceName(manifest.name);
  const labels = { 'app.kubernetes.io/name': name, 'app.kubernetes.io/managed-by': 'kiln' };
  const selector = { matchLabels: { 'app.kubernetes.io/name': name } };
  const s = podSizing(manifest);
  const header = `kiln deploy k8s: ${options.hub?.model ?? manifest.name}; ${s.replicas} replica(s) × ${s.threadsPerReplica} thread(s) per pod${manifest.tuned ? ' (tuned layout)' : ' (untuned: run kiln tune for a measured layout)'}`;

  const deployment = toDocument(
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, labels },
      spec: {
        replicas: options.replicas,
        selector,
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
        template: {
          metadata: { labels },
          spec: {
            terminationGracePeriodSeconds: TERMINATION_GRACE_SECONDS,
            ...(options.hub ? hubPodParts(options.hub, options.image) : {}),
            containers: [serveContainer(manifest, options.image, 'kiln', options.hub)],
          },
        },
      },
    },
    header,
  );
  commentOn(
    deployment,
    ['spec', 'template', 'spec', 'terminationGracePeriodSeconds'],
    ` preStop waits ${PRE_STOP_SECONDS} s for endpoints to drop the pod, then SIGTERM: kiln serve answers what it accepted and exits 0`,
  );
  if (options.hub) commentOn(deployment, ['spec', 'template', 'spec', 'initContainers'], hubComment(options.hub));
  const container = ['spec', 'template', 'spec', 'containers', 0];
  commentOn(
    deployment,
    [...container, 'resources'],
    s.memoryRequestMi === null
      ? ' CPU = replicas × threads per replica; no memory figures in the artifact (recompile to measure them)'
      : ` CPU = replicas × threads per replica; memory = process + replicas × per-replica bytes (compile's measurement), limit ×${MEMORY_LIMIT_HEADROOM}`,
  );

  const service = toDocument({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, labels },
    spec: { selector: selector.matchLabels, ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }] },
  });

  const hpa = toDocument({
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name, labels },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
      minReplicas: options.min,
      maxReplicas: options.max,
      metrics: [
        { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } },
      ],
    },
  });
  commentOn(hpa, ['spec', 'metrics'], QUEUE_DEPTH_ALTERNATIVE);

  const pdb = toDocument({
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name, labels },
    spec: { minAvailable: 1, selector },
  });

  return [
    { file: 'deployment.yaml', text: deployment.toString() },
    { file: 'service.yaml', text: service.toString() },
    { file: 'hpa.yaml', text: hpa.toString() },
    { file: 'pdb.yaml', text: pdb.toString() },
  ];
}

/** A KServe InferenceService running kiln as a custom predictor container (KServe scales it). */
export function inferenceServiceFiles(manifest: Manifest, options: K8sOptions): K8sFile[] {
  const name = resourceName(manifest.name);
  const container = serveContainer(manifest, options.image, 'kserve-container', options.hub);
  const doc = toDocument(
    {
      apiVersion: 'serving.kserve.io/v1beta1',
      kind: 'InferenceService',
      metadata: { name, labels: { 'app.kubernetes.io/name': name, 'app.kubernetes.io/managed-by': 'kiln' } },
      spec: {
        predictor: {
          minReplicas: options.min,
          maxReplicas: options.max,
          ...(options.hub ? hubPodParts(options.hub, options.image) : {}),
          containers: [container],
        },
      },
    },
    `kiln deploy k8s --kserve: ${manifest.name}; kiln serves the KServe v2 protocol under /v2/models/${manifest.name}`,
  );
  return [{ file: 'inferenceservice.yaml', text: doc.toString() }];
}

/** An Indexed Job: index I runs `kiln batch --shard I/N`, so the N pods cover INPUT exactly once. */
export function batchJobFiles(manifest: Manifest, options: K8sJobOptions): K8sFile[] {
  const name = `${resourceName(manifest.name).slice(0, 57)}-batch`;
  const s = podSizing(manifest);
  const doc = toDocument(
    {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name, labels: { 'app.kubernetes.io/name': name, 'app.kubernetes.io/managed-by': 'kiln' } },
      spec: {
        completionMode: 'Indexed',
        completions: options.shards,
        parallelism: options.shards,
        backoffLimit: 6 * options.shards,
        template: {
          spec: {
            restartPolicy: 'OnFailure',
            ...(options.hub ? hubPodParts(options.hub, options.image) : {}),
            containers: [
              {
                name: 'kiln-batch',
                image: options.image,
                // Kubernetes expands $(JOB_COMPLETION_INDEX) from the env below: no shell needed.
                args: [
                  'batch',
                  modelArg(manifest, options.hub),
                  options.input,
                  '--shard',
                  `$(JOB_COMPLETION_INDEX)/${options.shards}`,
                  '-o',
                  `${options.outputPrefix}-$(JOB_COMPLETION_INDEX).jsonl`,
                ],
                env: [
                  {
                    name: 'JOB_COMPLETION_INDEX',
                    valueFrom: {
                      fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" },
                    },
                  },
                  ...hubOfflineEnv(options.hub),
                ],
                ...(options.hub ? { volumeMounts: [hfHomeMount] } : {}),
                resources: resources(s),
              },
            ],
          },
        },
      },
    },
    `kiln deploy k8s --job: ${manifest.name} over ${options.input} in ${options.shards} shards. INPUT and the outputs must be on a volume\n` +
      'every pod mounts (add it under template.spec); a restarted index resumes its output (kiln batch is resumable).',
  );
  return [{ file: 'job.yaml', text: doc.toString() }];
}
