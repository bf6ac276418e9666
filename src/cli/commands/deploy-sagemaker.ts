import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveArtifact } from '../../api/open.js';
import { KilnError } from '../../core/errors.js';
import { Progress } from '../../core/log.js';
import { DEFAULT_PACKAGE_FILE, packageArtifact } from '../../deploy/package.js';
import type {
  DeployEvent,
  SageMakerClients,
  SageMakerDeployPlan,
  SageMakerDeployResult,
} from '../../deploy/sagemaker.js';
import { hubModelFor } from '../../hub/pull.js';
import { readArtifact } from '../../model/artifact.js';
import { compileNotice } from '../compile-notice.js';
import { formatBytes, table } from '../format.js';
import { deferredFlag, defineCommand, integer, nonEmpty } from '../table.js';

const invalid = (flag: string, rule: string, value: string): KilnError =>
  new KilnError('KILN_ERR_CLI_INVALID_FLAG', { flag, rule, value });

/** SageMaker's rule for endpoint, model and endpoint config names. */
export const SAGEMAKER_NAME = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;

export function roleArn(raw: string, flag: string): string {
  if (!/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/.test(raw))
    throw invalid(flag, 'an IAM role ARN such as arn:aws:iam::123456789012:role/SageMakerExecution', raw);
  return raw;
}

/** docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html (general purpose buckets). */
export function bucketName(raw: string, flag: string): string {
  const ok =
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(raw) &&
    !raw.includes('..') &&
    !/^\d+\.\d+\.\d+\.\d+$/.test(raw) &&
    !/^(xn--|sthree-|amzn-s3-demo-)/.test(raw) &&
    !/(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$/.test(raw);
  if (!ok)
    throw invalid(
      flag,
      'an S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit (s3:// and key not included)',
      raw,
    );
  return raw;
}

export function endpointName(raw: string, flag: string): string {
  if (!SAGEMAKER_NAME.test(raw))
    throw invalid(
      flag,
      'a SageMaker endpoint name: 1 to 63 letters, digits and hyphens, starting and ending with a letter or digit',
      raw,
    );
  return raw;
}

const DEFAULT_CPU_INSTANCE = 'ml.c7i.xlarge';
/** One NVIDIA A10G (24 GB): the smallest of SageMaker's current GPU inference instances. */
const DEFAULT_GPU_INSTANCE = 'ml.g5.xlarge';

/** SageMaker's NVIDIA GPU families (g4dn, g5, g6, g6e, p3, p4d, p5, …); inf and trn are Neuron chips, not GPUs. */
export function isGpuInstance(type: string): boolean {
  return /^ml\.(g\d|p\d)/.test(type);
}

export function instanceType(raw: string, flag: string): string {
  if (!/^ml\.[a-z0-9-]+\.[a-z0-9]+$/.test(raw))
    throw invalid(flag, 'a SageMaker instance type such as ml.c7i.xlarge (it starts with "ml.")', raw);
  return raw;
}

export function awsRegion(raw: string, flag: string): string {
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(raw)) throw invalid(flag, 'an AWS region such as us-east-1', raw);
  return raw;
}

/** Key prefix in the bucket, slashes at either end dropped. */
export function keyPrefix(raw: string, flag: string): string {
  const prefix = raw.replace(/^\/+|\/+$/g, '');
  if (!/^[a-zA-Z0-9!_.*'()/-]*$/.test(prefix) || prefix.includes('//'))
    throw invalid(flag, "an S3 key prefix of letters, digits and !_.*'()-, in parts separated by single slashes", raw);
  return prefix;
}

/** --dry-run's listing: every call in order, when it is made, the permission it needs and its exact input. */
export function formatPlan(plan: SageMakerDeployPlan, artifact: string): string {
  const lines = [
    `dry run: nothing is packed, uploaded or created. A deploy of ${artifact} makes these AWS calls, in order:`,
  ];
  plan.calls.forEach((call, i) => {
    const body = call.command === 'Upload' ? `, Body: ${artifact} packed as ${DEFAULT_PACKAGE_FILE}` : '';
    lines.push(
      '',
      `${i + 1}. ${call.service} ${call.command}${call.when ? `, ${call.when}` : ''}${body}`,
      `   needs ${call.permission}`,
    );
    lines.push(
      ...JSON.stringify(call.input, null, 2)
        .split('\n')
        .map((l) => `   ${l}`),
    );
  });
  return `${lines.join('\n')}\n`;
}

/** The summary of a finished deploy: where the endpoint is, how to call it, how it scales. */
export function formatResult(result: SageMakerDeployResult, plan: SageMakerDeployPlan): string {
  const variant = plan.createEndpointConfig.ProductionVariants?.[0];
  const region = result.region || '<region>';
  const body = JSON.stringify({ inputs: 'I loved this movie' });
  return `endpoint ${result.endpointName} ${result.action}: ${result.status}\n${table([
    ['arn', result.endpointArn],
    ['model', `${result.modelName} from ${result.modelDataUrl}`],
    ['instances', `${variant?.InitialInstanceCount} × ${variant?.InstanceType} to start`],
    [
      'scaling',
      `${result.scaling.min} to ${result.scaling.max} instances, target ${result.scaling.targetInvocations} invocations per instance per minute`,
    ],
    [
      'invoke',
      `POST https://runtime.sagemaker.${region}.amazonaws.com/endpoints/${result.endpointName}/invocations (SigV4-signed)`,
    ],
    [
      'try',
      `aws sagemaker-runtime invoke-endpoint --region ${region} --endpoint-name ${result.endpointName} --content-type application/json ` +
        `--cli-binary-format raw-in-base64-out --body '${body}' /dev/stdout`,
    ],
  ])}\n`;
}

export const deploySageMakerCommand = defineCommand({
  name: 'deploy sagemaker',
  summary:
    'Deploy an artifact to an autoscaled SageMaker real-time endpoint (upload, model, config, endpoint, scaling).',
  description:
    'Packs the artifact as model.tar.gz (kiln package) and uploads it to s3://BUCKET/PREFIX/<endpoint>/<model>/, then ' +
    'creates a SageMaker model (--image serving /opt/ml/model, --role to pull it and read the package) and an endpoint ' +
    'config whose one variant, AllTraffic, runs --initial-count instances of --instance-type. A new endpoint is created; ' +
    'an existing one is updated to the new config (its scalable target is deregistered first, as SageMaker requires ' +
    'when the instance type changes). Model and config names are <endpoint>-<UTC yyyymmddhhmmssSSS>, new on every deploy. ' +
    'Waits until the endpoint is InService, printing its status changes, then registers the variant with Application ' +
    'Auto Scaling (--min to --max instances) and puts a target-tracking policy on SageMakerVariantInvocationsPerInstance: ' +
    '--target-invocations, or the tuned throughput × 0.5 × 60 (requests per minute at half the measured capacity). ' +
    "Credentials and region come from the AWS SDK's default chain (AWS_PROFILE, AWS_ACCESS_KEY_ID…, AWS_REGION), " +
    'the region also from --region. --dry-run prints every call with its input and needs no credentials.',
  positionals: [
    {
      name: 'ARTIFACT',
      description:
        'A compiled artifact folder (run kiln tune on it first for the autoscaling target), or a Hub model (hf:ORG/NAME[@REVISION]), compiled here and packaged.',
      required: true,
    },
  ],
  flags: {
    image: {
      type: 'string',
      arg: 'URI',
      description: 'ECR image with kiln whose "serve" serves /opt/ml/model (the repository\'s Dockerfile builds one).',
      default: null as string | null,
      defaultText: 'required',
      parse: nonEmpty,
    },
    role: {
      type: 'string',
      arg: 'ARN',
      description: 'IAM role SageMaker assumes to pull the image and read the package from S3.',
      default: null as string | null,
      defaultText: 'required',
      parse: roleArn,
    },
    bucket: {
      type: 'string',
      arg: 'B',
      description: "S3 bucket the package is uploaded to (in the endpoint's region).",
      default: null as string | null,
      defaultText: 'required',
      parse: bucketName,
    },
    prefix: {
      type: 'string',
      arg: 'P',
      description: 'Key prefix in the bucket; the package goes to P/<endpoint>/<model>/model.tar.gz.',
      default: 'kiln',
      parse: keyPrefix,
    },
    endpoint: {
      type: 'string',
      arg: 'NAME',
      description: 'Endpoint name: created if absent, updated if it exists.',
      default: null as string | null,
      defaultText: "the artifact's name, hyphenated",
      parse: endpointName,
    },
    'instance-type': deferredFlag({
      arg: 'TYPE',
      description:
        'SageMaker instance type of the variant. An artifact compiled for a GPU (--device cuda or webgpu) needs a GPU instance (ml.g5.*, ml.g6.*, ml.p*: NVIDIA, one GPU on ml.g5.xlarge to ml.g5.16xlarge) and an image built with --build-arg DEVICE=cuda.',
      defaultText: 'ml.c7i.xlarge, or ml.g5.xlarge for a GPU artifact',
      parse: instanceType,
    }),
    'initial-count': {
      type: 'string',
      arg: 'N',
      description: 'Instances the endpoint starts with, between --min and --max.',
      default: 2,
      parse: integer(1, 1000),
    },
    min: {
      type: 'string',
      arg: 'N',
      description: 'Fewest instances autoscaling keeps.',
      default: 1,
      parse: integer(1, 1000),
    },
    max: {
      type: 'string',
      arg: 'N',
      description: 'Most instances autoscaling starts.',
      default: 8,
      parse: integer(1, 1000),
    },
    'target-invocations': {
      type: 'string',
      arg: 'N',
      description: 'Invocations per instance per minute the scaling policy holds the variant at.',
      default: null as number | null,
      defaultText: 'tuned requests/s × 0.5 × 60',
      parse: integer(1, 100_000_000),
    },
    region: {
      type: 'string',
      arg: 'R',
      description: 'AWS region of the bucket and the endpoint.',
      default: null as string | null,
      defaultText: "the SDK's: AWS_REGION or the profile's",
      parse: awsRegion,
    },
    'dry-run': {
      type: 'boolean',
      description: 'Print every AWS call with its input, in order, and make none.',
      default: false,
    },
  },
  examples: [
    {
      command:
        'kiln deploy sagemaker sentiment.kiln --image 123456789012.dkr.ecr.us-east-1.amazonaws.com/kiln:1 --role arn:aws:iam::123456789012:role/SageMakerExecution --bucket my-models --dry-run',
      note: 'print the calls a deploy makes, with their inputs',
    },
    {
      command:
        'kiln deploy sagemaker sentiment.kiln --image 123456789012.dkr.ecr.us-east-1.amazonaws.com/kiln:1 --role arn:aws:iam::123456789012:role/SageMakerExecution --bucket my-models --endpoint sentiment --min 2 --max 20',
      note: 'create the endpoint sentiment, or update it to this artifact',
    },
  ],
  async run({ positionals, flags }) {
    const fail = (problem: string, fix: string): KilnError =>
      new KilnError('KILN_ERR_DEPLOY_SAGEMAKER_FLAGS', { problem, fix });
    if (flags.image === null)
      throw fail(
        '--image is missing',
        'pass the ECR image that runs kiln, e.g. --image 123456789012.dkr.ecr.us-east-1.amazonaws.com/kiln:1',
      );
    if (flags.role === null)
      throw fail(
        '--role is missing',
        'pass the IAM role SageMaker assumes, e.g. --role arn:aws:iam::123456789012:role/SageMakerExecution',
      );
    if (flags.bucket === null)
      throw fail('--bucket is missing', 'pass the S3 bucket for the package, e.g. --bucket my-models');
    const initial = flags['initial-count'];
    if (flags.min > flags.max) throw fail(`--min ${flags.min} is above --max ${flags.max}`, 'make --min at most --max');
    if (initial < flags.min || initial > flags.max)
      throw fail(
        `--initial-count ${initial} is outside --min ${flags.min} to --max ${flags.max}`,
        'pick --initial-count between --min and --max',
      );

    const artifact = positionals.ARTIFACT![0]!;
    // A Hub model is pulled and compiled here; its artifact is what gets packaged.
    const local = (await hubModelFor(artifact))
      ? await resolveArtifact(artifact, { onCompile: compileNotice })
      : artifact;
    const { dir, manifest } = await readArtifact(local, { verify: false });
    // Loaded here, not at startup: the AWS SDK takes about 0.5 s to import, which every other command would pay.
    const { checkAwsSetup, deployToSageMaker, planSageMakerDeploy, sageMakerName } = await import(
      '../../deploy/sagemaker.js'
    );
    const endpoint = flags.endpoint ?? sageMakerName(manifest.name);
    const gpu = manifest.compile.backend === 'cuda' || manifest.compile.backend === 'webgpu';
    const instance = flags['instance-type'] ?? (gpu ? DEFAULT_GPU_INSTANCE : DEFAULT_CPU_INSTANCE);
    if (gpu && !isGpuInstance(instance))
      throw fail(
        `${local} is compiled for --device ${manifest.compile.backend} and ${instance} has no GPU`,
        `pass a GPU instance type such as --instance-type ${DEFAULT_GPU_INSTANCE}, or compile the model with --device cpu`,
      );
    const plan = planSageMakerDeploy(manifest, {
      artifact,
      image: flags.image,
      role: flags.role,
      bucket: flags.bucket,
      prefix: flags.prefix,
      endpoint,
      instanceType: instance,
      initialCount: initial,
      min: flags.min,
      max: flags.max,
      targetInvocations: flags['target-invocations'],
      now: new Date(),
    });
    process.stderr.write(`kiln deploy sagemaker: ${plan.target.explanation}\n`);
    if (flags['dry-run']) {
      process.stdout.write(formatPlan(plan, artifact));
      return;
    }

    const clients = await awsClients(flags.region);
    await checkAwsSetup(clients);
    const work = await mkdtemp(join(tmpdir(), 'kiln-sagemaker-'));
    try {
      const packed = await packageArtifact({ artifactDir: dir, out: join(work, DEFAULT_PACKAGE_FILE) });
      process.stderr.write(
        `kiln deploy sagemaker: packed ${artifact} as ${DEFAULT_PACKAGE_FILE} (${formatBytes(packed.bytes)}, sha256 ${packed.sha256})\n`,
      );
      const result = await deployToSageMaker(plan, { packagePath: packed.path, clients, onEvent: reporter(plan) });
      process.stdout.write(formatResult(result, plan));
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  },
});

function minutes(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** Clients with the SDK's default credential chain; the region from --region, else the SDK's chain. */
async function awsClients(region: string | null): Promise<SageMakerClients> {
  const [{ S3Client }, { SageMakerClient }, { ApplicationAutoScalingClient }] = await Promise.all([
    import('@aws-sdk/client-s3'),
    import('@aws-sdk/client-sagemaker'),
    import('@aws-sdk/client-application-auto-scaling'),
  ]);
  // The SDK warns on Node 20 about its releases after January 2027; kiln pins its version, so a
  // kiln user cannot act on it. Setting the variable to anything else keeps the warning.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const config = region === null ? {} : { region };
  return {
    s3: new S3Client(config),
    sageMaker: new SageMakerClient(config),
    autoScaling: new ApplicationAutoScalingClient(config),
  };
}

/** Calls and status changes as lines on stderr (a deploy takes minutes; CI logs want them), the upload as a bar on a TTY. */
function reporter(plan: SageMakerDeployPlan): (event: DeployEvent) => void {
  const progress = new Progress();
  let uploading = false;
  return (event) => {
    if (event.kind === 'upload') {
      if (!uploading) progress.step('uploading');
      uploading = true;
      progress.tick(Math.ceil(event.loaded / 1024), Math.ceil(event.total / 1024), 'KiB');
    } else if (event.kind === 'call') {
      process.stderr.write(`kiln deploy sagemaker: ${event.service} ${event.command} ${event.detail}\n`);
    } else if (event.kind === 'warning') {
      process.stderr.write(`kiln deploy sagemaker: warning: ${event.message}\n`);
    } else {
      process.stderr.write(
        `kiln deploy sagemaker: endpoint ${plan.endpointName} ${event.status} after ${minutes(event.elapsedMs)}\n`,
      );
    }
  };
}
