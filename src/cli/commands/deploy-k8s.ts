import { mkdir, writeFile } from 'node:fs/promises';
import { basename, extname, join, posix } from 'node:path';
import { resolveArtifact } from '../../api/open.js';
import { KilnError } from '../../core/errors.js';
import {
  batchJobFiles,
  deploymentFiles,
  HF_HOME_DIR,
  type HubPodModel,
  inferenceServiceFiles,
  type K8sFile,
  MODELS_DIR,
  podSizing,
} from '../../deploy/k8s.js';
import { isCommitSha } from '../../hub/model-id.js';
import { hubModelFor } from '../../hub/pull.js';
import { DEFAULT_ENDPOINT } from '../../hub/settings.js';
import { readArtifact } from '../../model/artifact.js';
import { compileNotice } from '../compile-notice.js';
import { defineCommand, integer, nonEmpty, nullFlag } from '../table.js';

const invalid = (flag: string, rule: string, value: string): KilnError =>
  new KilnError('KILN_ERR_CLI_INVALID_FLAG', { flag, rule, value });

/** Kubernetes' DNS-1123 subdomain: the rule for Secret and PersistentVolumeClaim names. */
const OBJECT_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
/** A Secret's data key. */
const SECRET_KEY = /^[-._a-zA-Z0-9]{1,253}$/;
const DEFAULT_TOKEN_KEY = 'HF_TOKEN';

function objectName(raw: string, flag: string): string {
  if (!OBJECT_NAME.test(raw))
    throw invalid(flag, 'a Kubernetes object name: lowercase letters, digits, "-" and ".", at most 253', raw);
  return raw;
}

/** `NAME[:KEY]`: the Secret and its key holding the token. */
function secretRef(raw: string, flag: string): { name: string; key: string } {
  const colon = raw.indexOf(':');
  const name = colon < 0 ? raw : raw.slice(0, colon);
  const key = colon < 0 ? DEFAULT_TOKEN_KEY : raw.slice(colon + 1);
  if (!OBJECT_NAME.test(name) || !SECRET_KEY.test(key))
    throw invalid(
      flag,
      `NAME[:KEY]: a Secret name (lowercase letters, digits, "-" and ".") and a key of letters, digits, "-", "_" and "." (default ${DEFAULT_TOKEN_KEY})`,
      raw,
    );
  return { name, key };
}

export const deployK8sCommand = defineCommand({
  name: 'deploy k8s',
  summary: 'Write Kubernetes YAML for an artifact: Deployment, Service, HPA, PDB; or KServe; or an Indexed batch Job.',
  description:
    `Writes YAML files to DIR for an image that holds kiln and the artifact at ${MODELS_DIR}/<name> (<name> from the ` +
    'manifest). The Deployment runs kiln serve on port 8080 with readiness on /v2/health/ready, liveness on ' +
    "/v2/health/live, a preStop wait and a termination grace period that covers the drain; CPU is the tuned layout's " +
    "replicas × threads (1 when untuned), memory the manifest's process + replicas × per-replica bytes, limit with " +
    'headroom. With it: a Service (port 80), a HorizontalPodAutoscaler on CPU (a commented alternative on ' +
    'kiln_queue_depth) and a PodDisruptionBudget. --kserve writes a KServe InferenceService instead; --job an Indexed ' +
    'Job whose N pods each run kiln batch --shard I/N on INPUT. For a Hub model (hf:ORG/NAME[@REVISION]) the ' +
    `image needs only kiln: each pod's init container runs kiln pull into a volume at HF_HOME (${HF_HOME_DIR}; an ` +
    'emptyDir, or --hf-cache-pvc), and kiln serve reads it there with HF_HUB_OFFLINE=1; the model is compiled here ' +
    'through the cache for its memory figures.',
  positionals: [
    {
      name: 'ARTIFACT',
      description:
        'A compiled artifact folder (the one baked into the image), or a Hub model (hf:ORG/NAME[@REVISION]) the pods pull.',
      required: true,
    },
  ],
  flags: {
    image: {
      type: 'string',
      arg: 'IMG',
      description: `Container image with kiln and the artifact at ${MODELS_DIR}/<name>.`,
      default: null as string | null,
      defaultText: 'required',
      parse: nonEmpty,
    },
    replicas: {
      type: 'string',
      arg: 'N',
      description: 'Pods the Deployment starts with.',
      default: 2,
      parse: integer(1, 1000),
    },
    min: {
      type: 'string',
      arg: 'N',
      description: 'Fewest pods the autoscaler keeps.',
      default: 1,
      parse: integer(1, 1000),
    },
    max: {
      type: 'string',
      arg: 'N',
      description: 'Most pods the autoscaler starts.',
      default: 10,
      parse: integer(1, 1000),
    },
    out: {
      type: 'string',
      short: 'o',
      arg: 'DIR',
      description: 'Folder the YAML files are written to (created if needed).',
      default: 'k8s',
      parse: nonEmpty,
    },
    kserve: {
      type: 'boolean',
      description:
        'Write a KServe InferenceService (serving.kserve.io/v1beta1) instead of Deployment, Service, HPA and PDB.',
      default: false,
    },
    job: {
      type: 'boolean',
      description: 'Write an Indexed Job running kiln batch in --shards pods over --input instead.',
      default: false,
    },
    shards: {
      type: 'string',
      arg: 'N',
      description: 'With --job: pods (completions = parallelism), each one shard.',
      default: null as number | null,
      defaultText: 'required with --job',
      parse: integer(1, 10_000),
    },
    input: {
      type: 'string',
      arg: 'PATH',
      description: 'With --job: INPUT of kiln batch as the pods see it (on a mounted volume).',
      default: null as string | null,
      defaultText: 'required with --job',
      parse: nonEmpty,
    },
    'hf-token-secret': nullFlag({
      arg: 'NAME[:KEY]',
      description: `Hub models: the Secret (and key, default ${DEFAULT_TOKEN_KEY}) the init container reads HF_TOKEN from; the token is never in the YAML.`,
      defaultText: 'no token (a public model)',
      parse: secretRef,
    }),
    'hf-cache-pvc': nullFlag({
      arg: 'NAME',
      description:
        'Hub models: a PersistentVolumeClaim to hold HF_HOME, shared by the pods (ReadWriteMany), instead of an emptyDir per pod.',
      defaultText: 'an emptyDir',
      parse: objectName,
    }),
  },
  examples: [
    {
      command: 'kiln deploy k8s sentiment.kiln --image registry.example.com/sentiment:1 && kubectl apply -f k8s/',
      note: 'an autoscaled Deployment behind a Service',
    },
    {
      command:
        'kiln deploy k8s sentiment.kiln --image registry.example.com/sentiment:1 --job --shards 8 --input /data/reviews.jsonl',
      note: 'score a big file on 8 pods',
    },
    {
      command:
        'kiln deploy k8s hf:distilbert/distilbert-base-uncased-finetuned-sst-2-english@714eb0f --image registry.example.com/kiln:1 --hf-token-secret hf-token',
      note: 'pods pull a pinned Hub model in an init container',
    },
  ],
  async run({ positionals, flags }) {
    const fail = (problem: string, fix: string): KilnError =>
      new KilnError('KILN_ERR_DEPLOY_KUBERNETES_FLAGS', { problem, fix });
    if (flags.image === null)
      throw fail(
        '--image is missing',
        'pass the container image that holds kiln and the artifact, e.g. --image registry.example.com/sentiment:1',
      );
    if (flags.min > flags.max) throw fail(`--min ${flags.min} is above --max ${flags.max}`, 'make --min at most --max');
    if (flags.job && flags.kserve)
      throw fail('--job and --kserve both given', 'write the batch Job and the InferenceService with two runs');
    if (flags.job && (flags.shards === null || flags.input === null))
      throw fail('--job needs --shards N and --input PATH', 'e.g. --job --shards 8 --input /data/reviews.jsonl');
    if (!flags.job && (flags.shards !== null || flags.input !== null))
      throw fail('--shards and --input only apply to --job', 'add --job, or drop them');

    const artifact = positionals.ARTIFACT![0]!;
    const ref = await hubModelFor(artifact);
    if (ref === null && (flags['hf-token-secret'] !== null || flags['hf-cache-pvc'] !== null))
      throw fail(
        `--hf-token-secret and --hf-cache-pvc only apply to a Hub model, and ${JSON.stringify(artifact)} is a local path`,
        'drop them, or name the model as hf:ORG/NAME[@REVISION]',
      );
    // A Hub model is compiled here (through the caches) only for its manifest: the name and the memory figures.
    const { manifest } = await readArtifact(
      ref ? await resolveArtifact(artifact, { onCompile: compileNotice }) : artifact,
      { verify: false },
    );
    const endpoint = process.env.HF_ENDPOINT?.replace(/\/+$/, '');
    const hub: HubPodModel | undefined = ref
      ? {
          model: `hf:${ref.repo}@${ref.revision}`,
          cacheClaim: flags['hf-cache-pvc'],
          tokenSecret: flags['hf-token-secret'],
          endpoint: endpoint && endpoint !== DEFAULT_ENDPOINT ? endpoint : null,
        }
      : undefined;
    let files: K8sFile[];
    if (flags.job) {
      const input = flags.input!;
      const outputPrefix = posix.join(posix.dirname(input), `${basename(input, extname(input))}.predictions`);
      files = batchJobFiles(manifest, { image: flags.image, shards: flags.shards!, input, outputPrefix, hub });
    } else {
      const options = { image: flags.image, replicas: flags.replicas, min: flags.min, max: flags.max, hub };
      files = flags.kserve ? inferenceServiceFiles(manifest, options) : deploymentFiles(manifest, options);
    }
    await mkdir(flags.out, { recursive: true });
    for (const f of files) await writeFile(join(flags.out, f.file), f.text);
    const s = podSizing(manifest);
    const memory =
      s.gpus > 0
        ? `${s.gpus} nvidia.com/gpu (device ${manifest.compile.backend}; GPU memory is the device's)`
        : s.memoryRequestMi === null
          ? 'no memory figures in the artifact'
          : `memory ${s.memoryRequestMi}Mi (limit ${s.memoryLimitMi}Mi)`;
    process.stderr.write(
      `kiln deploy k8s: wrote ${files.map((f) => join(flags.out, f.file)).join(', ')}; per pod ${s.cpu} CPU (${s.replicas} replica(s) × ${s.threadsPerReplica} thread(s)${manifest.tuned ? '' : ', untuned'}), ${memory}\n`,
    );
    if (ref && hub) {
      const volume = hub.cacheClaim === null ? 'an emptyDir' : `the claim ${hub.cacheClaim}`;
      const token =
        hub.tokenSecret === null
          ? 'no token'
          : `HF_TOKEN from Secret ${hub.tokenSecret.name}, key ${hub.tokenSecret.key}`;
      process.stderr.write(
        `kiln deploy k8s: each pod pulls ${hub.model} in an init container into ${volume} at ${HF_HOME_DIR} (${token}${hub.endpoint === null ? '' : `, HF_ENDPOINT ${hub.endpoint}`}); kiln reads it offline\n`,
      );
      if (!isCommitSha(ref.revision)) {
        // The snapshot folder compile read is named after its commit.
        const commit = basename(manifest.source.path);
        const pinned = isCommitSha(commit) ? ` (compiled here at ${commit}: hf:${ref.repo}@${commit})` : '';
        process.stderr.write(
          `kiln deploy k8s: note: ${JSON.stringify(ref.revision)} is a branch or tag; pods pulled at different times can get different commits. Pin a commit sha${pinned}\n`,
        );
      }
    }
  },
});
