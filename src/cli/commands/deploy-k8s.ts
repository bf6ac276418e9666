import { mkdir, writeFile } from 'node:fs/promises';
import { basename, extname, join, posix } from 'node:path';
import { KilnError } from '../../core/errors.js';
import {
  batchJobFiles,
  deploymentFiles,
  inferenceServiceFiles,
  type K8sFile,
  MODELS_DIR,
  podSizing,
} from '../../deploy/k8s.js';
import { readArtifact } from '../../model/artifact.js';
import { defineCommand, integer, nonEmpty } from '../table.js';

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
    'Job whose N pods each run kiln batch --shard I/N on INPUT.',
  positionals: [
    { name: 'ARTIFACT', description: 'A compiled artifact folder (the one baked into the image).', required: true },
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

    const { manifest } = await readArtifact(positionals.ARTIFACT![0]!, { verify: false });
    let files: K8sFile[];
    if (flags.job) {
      const input = flags.input!;
      const outputPrefix = posix.join(posix.dirname(input), `${basename(input, extname(input))}.predictions`);
      files = batchJobFiles(manifest, { image: flags.image, shards: flags.shards!, input, outputPrefix });
    } else {
      const options = { image: flags.image, replicas: flags.replicas, min: flags.min, max: flags.max };
      files = flags.kserve ? inferenceServiceFiles(manifest, options) : deploymentFiles(manifest, options);
    }
    await mkdir(flags.out, { recursive: true });
    for (const f of files) await writeFile(join(flags.out, f.file), f.text);
    const s = podSizing(manifest);
    const memory =
      s.memoryRequestMi === null
        ? 'no memory figures in the artifact'
        : `memory ${s.memoryRequestMi}Mi (limit ${s.memoryLimitMi}Mi)`;
    process.stderr.write(
      `kiln deploy k8s: wrote ${files.map((f) => join(flags.out, f.file)).join(', ')}; per pod ${s.cpu} CPU (${s.replicas} replica(s) × ${s.threadsPerReplica} thread(s)${manifest.tuned ? '' : ', untuned'}), ${memory}\n`,
    );
  },
});
