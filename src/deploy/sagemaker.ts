/**
 * `kiln deploy sagemaker`: an artifact as an autoscaled SageMaker real-time endpoint. The planner
 * is pure (the manifest and options in, every AWS call with its exact input out), so --dry-run
 * prints what a deploy sends; the executor takes the three SDK clients, so tests hand it mocked
 * ones and nothing here builds a client or reads credentials.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { setTimeout as sleepFor } from 'node:timers/promises';
import {
  type ApplicationAutoScalingClient,
  DeregisterScalableTargetCommand,
  type DeregisterScalableTargetCommandInput,
  PutScalingPolicyCommand,
  type PutScalingPolicyCommandInput,
  type PutScalingPolicyCommandOutput,
  RegisterScalableTargetCommand,
  type RegisterScalableTargetCommandInput,
} from '@aws-sdk/client-application-auto-scaling';
import type { PutObjectCommandInput, S3Client } from '@aws-sdk/client-s3';
import {
  CreateEndpointCommand,
  type CreateEndpointCommandInput,
  CreateEndpointConfigCommand,
  type CreateEndpointConfigCommandInput,
  CreateModelCommand,
  type CreateModelCommandInput,
  DescribeEndpointCommand,
  type DescribeEndpointCommandInput,
  type DescribeEndpointCommandOutput,
  type ProductionVariantInstanceType,
  type SageMakerClient,
  UpdateEndpointCommand,
  type UpdateEndpointCommandInput,
} from '@aws-sdk/client-sagemaker';
import { Upload } from '@aws-sdk/lib-storage';
import { KilnError } from '../core/errors.js';
import { formatBytes } from '../core/log.js';
import type { Manifest } from '../model/artifact.js';

/** The one production variant: all traffic goes to the model of this deploy. */
export const VARIANT_NAME = 'AllTraffic';
export const SCALABLE_DIMENSION = 'sagemaker:variant:DesiredInstanceCount' as const;
/** Share of the tuned throughput an instance is scaled at, so a burst finds headroom before new instances start (minutes). */
export const TARGET_UTILIZATION = 0.5;
/** Seconds after a scale-out before the next: new instances take minutes, so react to a rise at once but let them land. */
export const SCALE_OUT_COOLDOWN_S = 60;
/** Seconds after a scale-in before the next: shrink slowly, a dip in traffic is often short. */
export const SCALE_IN_COOLDOWN_S = 300;
/** How often the wait asks DescribeEndpoint; creating an endpoint takes 5 to 10 minutes. */
export const POLL_INTERVAL_MS = 15_000;
export const WAIT_TIMEOUT_MS = 60 * 60_000;
const NAME_MAX = 63;
/** yyyymmddhhmmssSSS: two deploys in the same second still get different model names. */
const STAMP_LENGTH = 17;

/** What the deploy needs besides the manifest; the command validates each flag. */
export interface SageMakerDeployOptions {
  /** The artifact folder, as the user named it (for messages). */
  artifact: string;
  /** ECR image URI with kiln, whose `serve` serves /opt/ml/model. */
  image: string;
  /** IAM role ARN SageMaker assumes to pull the image and read the package. */
  role: string;
  /** S3 bucket the package goes to. */
  bucket: string;
  /** Key prefix in the bucket, without slashes at either end; '' for none. */
  prefix: string;
  /** Endpoint name: SageMaker's rule, 1 to 63 characters of [a-zA-Z0-9-], no hyphen at either end. */
  endpoint: string;
  /** e.g. ml.c7i.xlarge. */
  instanceType: string;
  /** Instances the endpoint starts with. */
  initialCount: number;
  /** Autoscaling bounds, in instances. */
  min: number;
  max: number;
  /** Invocations per instance per minute to scale at; null computes it from the tuned layout. */
  targetInvocations: number | null;
  /** Makes the model and endpoint config names unique per deploy. */
  now: Date;
}

export type AwsService = 'S3' | 'SageMaker' | 'ApplicationAutoScaling';

/** One AWS call of a deploy, as --dry-run prints it. */
export interface PlannedCall {
  service: AwsService;
  /** The API operation; Upload is lib-storage's: one PutObject, or a multipart upload above 5 MiB. */
  command: string;
  input: object;
  /** Set for a call only some deploys make, or made repeatedly: when. */
  when?: string;
  /** The IAM permission the identity running kiln needs for it. */
  permission: string;
}

export interface SageMakerDeployPlan {
  endpointName: string;
  modelName: string;
  endpointConfigName: string;
  /** s3://bucket/key of the package. */
  modelDataUrl: string;
  /** Invocations per instance per minute the scaling policy tracks, and the sentence saying where it came from. */
  target: { value: number; explanation: string };
  scaling: { min: number; max: number; resourceId: string; policyName: string };
  upload: Omit<PutObjectCommandInput, 'Body'> & { Bucket: string; Key: string };
  createModel: CreateModelCommandInput;
  createEndpointConfig: CreateEndpointConfigCommandInput;
  describeEndpoint: DescribeEndpointCommandInput;
  createEndpoint: CreateEndpointCommandInput;
  updateEndpoint: UpdateEndpointCommandInput;
  deregisterScalableTarget: DeregisterScalableTargetCommandInput;
  registerScalableTarget: RegisterScalableTargetCommandInput;
  putScalingPolicy: PutScalingPolicyCommandInput;
  /** Every call above in the order a deploy makes them. */
  calls: PlannedCall[];
}

/** A SageMaker name (models, endpoint configs, endpoints) from the artifact's name. */
export function sageMakerName(name: string): string {
  const cleaned = name
    .replace(/[^a-zA-Z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, NAME_MAX)
    .replace(/-+$/, '');
  return cleaned || 'kiln-model';
}

/** `yyyymmddhhmmssSSS` in UTC. */
function stamp(now: Date): string {
  return now
    .toISOString()
    .replace(/[-:T.]/g, '')
    .slice(0, STAMP_LENGTH);
}

/**
 * Invocations per instance per minute: the flag, or the tuned closed-loop throughput at
 * TARGET_UTILIZATION. A request to kiln serve is one invocation, so tuned requests/s map 1:1.
 */
export function targetInvocations(
  manifest: Pick<Manifest, 'tuned'>,
  options: { artifact: string; instanceType: string; given: number | null },
): { value: number; explanation: string } {
  if (options.given !== null)
    return {
      value: options.given,
      explanation: `scaling at ${options.given} invocations per instance per minute (--target-invocations)`,
    };
  const tuned = manifest.tuned;
  if (!tuned) throw new KilnError('KILN_ERR_DEPLOY_SAGEMAKER_UNTUNED', { path: options.artifact });
  const value = Math.max(1, Math.round(tuned.requestsPerSecond * TARGET_UTILIZATION * 60));
  return {
    value,
    explanation:
      `scaling at ${value} invocations per instance per minute = tuned ${tuned.requestsPerSecond.toFixed(1)} requests/s × ${TARGET_UTILIZATION} × 60 ` +
      `(kiln tune measured it on ${tuned.cpu}, ${tuned.cores} cores, p99 ${tuned.p99Ms.toFixed(1)} ms; ${options.instanceType} may differ: pass --target-invocations to set it)`,
  };
}

/** Every call of a deploy with its exact input; reads nothing and sends nothing. */
export function planSageMakerDeploy(
  manifest: Pick<Manifest, 'name' | 'tuned'>,
  options: SageMakerDeployOptions,
): SageMakerDeployPlan {
  const target = targetInvocations(manifest, {
    artifact: options.artifact,
    instanceType: options.instanceType,
    given: options.targetInvocations,
  });
  const endpointName = options.endpoint;
  const versioned = `${endpointName.slice(0, NAME_MAX - STAMP_LENGTH - 1).replace(/-+$/, '')}-${stamp(options.now)}`;
  const modelName = versioned;
  const endpointConfigName = versioned;
  const key = [options.prefix, endpointName, modelName, 'model.tar.gz'].filter(Boolean).join('/');
  const modelDataUrl = `s3://${options.bucket}/${key}`;
  const resourceId = `endpoint/${endpointName}/variant/${VARIANT_NAME}`;
  const policyName = `${endpointName}-invocations-per-instance`;
  const scalableTarget = {
    ServiceNamespace: 'sagemaker' as const,
    ResourceId: resourceId,
    ScalableDimension: SCALABLE_DIMENSION,
  };

  const upload = { Bucket: options.bucket, Key: key, ContentType: 'application/gzip' };
  const createModel: CreateModelCommandInput = {
    ModelName: modelName,
    PrimaryContainer: { Image: options.image, ModelDataUrl: modelDataUrl },
    ExecutionRoleArn: options.role,
  };
  const createEndpointConfig: CreateEndpointConfigCommandInput = {
    EndpointConfigName: endpointConfigName,
    ProductionVariants: [
      {
        VariantName: VARIANT_NAME,
        ModelName: modelName,
        InstanceType: options.instanceType as ProductionVariantInstanceType,
        InitialInstanceCount: options.initialCount,
      },
    ],
  };
  const describeEndpoint = { EndpointName: endpointName };
  const createEndpoint = { EndpointName: endpointName, EndpointConfigName: endpointConfigName };
  const updateEndpoint = { EndpointName: endpointName, EndpointConfigName: endpointConfigName };
  const deregisterScalableTarget = { ...scalableTarget };
  const registerScalableTarget = { ...scalableTarget, MinCapacity: options.min, MaxCapacity: options.max };
  const putScalingPolicy: PutScalingPolicyCommandInput = {
    PolicyName: policyName,
    ...scalableTarget,
    PolicyType: 'TargetTrackingScaling',
    TargetTrackingScalingPolicyConfiguration: {
      TargetValue: target.value,
      PredefinedMetricSpecification: { PredefinedMetricType: 'SageMakerVariantInvocationsPerInstance' },
      ScaleInCooldown: SCALE_IN_COOLDOWN_S,
      ScaleOutCooldown: SCALE_OUT_COOLDOWN_S,
    },
  };

  const calls: PlannedCall[] = [
    {
      service: 'S3',
      command: 'Upload',
      input: upload,
      permission: `s3:PutObject on arn:aws:s3:::${options.bucket}/${key}`,
    },
    {
      service: 'SageMaker',
      command: 'CreateModel',
      input: createModel,
      permission: `sagemaker:CreateModel, and iam:PassRole on ${options.role}`,
    },
    {
      service: 'SageMaker',
      command: 'CreateEndpointConfig',
      input: createEndpointConfig,
      permission: 'sagemaker:CreateEndpointConfig',
    },
    {
      service: 'SageMaker',
      command: 'DescribeEndpoint',
      input: describeEndpoint,
      permission: 'sagemaker:DescribeEndpoint',
    },
    {
      service: 'SageMaker',
      command: 'CreateEndpoint',
      input: createEndpoint,
      when: 'if the endpoint does not exist',
      permission: 'sagemaker:CreateEndpoint',
    },
    {
      service: 'ApplicationAutoScaling',
      command: 'DeregisterScalableTarget',
      input: deregisterScalableTarget,
      // docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-delete.html: UpdateEndpoint
      // fails on a registered variant whose instance type changes; registering again follows.
      when: 'if the endpoint exists (its scaling policy goes with it until PutScalingPolicy below; fine if it has none)',
      permission: 'application-autoscaling:DeregisterScalableTarget',
    },
    {
      service: 'SageMaker',
      command: 'UpdateEndpoint',
      input: updateEndpoint,
      when: 'if the endpoint exists',
      permission: 'sagemaker:UpdateEndpoint',
    },
    {
      service: 'SageMaker',
      command: 'DescribeEndpoint',
      input: describeEndpoint,
      when: `every ${POLL_INTERVAL_MS / 1000} s until InService on the new config`,
      permission: 'sagemaker:DescribeEndpoint',
    },
    {
      service: 'ApplicationAutoScaling',
      command: 'RegisterScalableTarget',
      input: registerScalableTarget,
      permission:
        'application-autoscaling:RegisterScalableTarget (and, the first time in the account, iam:CreateServiceLinkedRole for sagemaker.application-autoscaling.amazonaws.com)',
    },
    {
      service: 'ApplicationAutoScaling',
      command: 'PutScalingPolicy',
      input: putScalingPolicy,
      permission: 'application-autoscaling:PutScalingPolicy, cloudwatch:PutMetricAlarm and cloudwatch:DescribeAlarms',
    },
  ];
  return {
    endpointName,
    modelName,
    endpointConfigName,
    modelDataUrl,
    target,
    scaling: { min: options.min, max: options.max, resourceId, policyName },
    upload,
    createModel,
    createEndpointConfig,
    describeEndpoint,
    createEndpoint,
    updateEndpoint,
    deregisterScalableTarget,
    registerScalableTarget,
    putScalingPolicy,
    calls,
  };
}

/** What a deploy reports as it goes. */
export type DeployEvent =
  | { kind: 'upload'; loaded: number; total: number }
  | { kind: 'call'; service: AwsService; command: string; detail: string }
  | { kind: 'status'; status: string; elapsedMs: number }
  | { kind: 'warning'; message: string };

export interface SageMakerClients {
  s3: S3Client;
  sageMaker: SageMakerClient;
  autoScaling: ApplicationAutoScalingClient;
}

export interface SageMakerDeployRun {
  /** The model.tar.gz to upload (kiln package's output). */
  packagePath: string;
  clients: SageMakerClients;
  onEvent?: (event: DeployEvent) => void;
  /** Between DescribeEndpoint polls. @defaultValue POLL_INTERVAL_MS */
  pollIntervalMs?: number;
  /** Longest wait for InService. @defaultValue WAIT_TIMEOUT_MS */
  timeoutMs?: number;
  /** Waits between polls; tests pass one that returns at once. */
  sleep?: (ms: number) => Promise<void>;
}

export interface SageMakerDeployResult {
  endpointName: string;
  endpointArn: string;
  status: string;
  /** created: the endpoint was new; updated: it existed and now runs the new config. */
  action: 'created' | 'updated';
  modelName: string;
  endpointConfigName: string;
  modelDataUrl: string;
  /** From the endpoint's ARN. */
  region: string;
  scaling: { min: number; max: number; targetInvocations: number; policyArn: string | null };
}

/**
 * Resolves the clients' region and credentials as the first call would, so a deploy without them
 * fails before packing a large artifact, with the same coded error.
 */
export async function checkAwsSetup(clients: SageMakerClients): Promise<void> {
  const call = { service: 'S3' as const, command: 'Upload', permission: 's3:PutObject' };
  try {
    await clients.s3.config.region();
    await clients.s3.config.credentials();
  } catch (err) {
    throw awsError(err, call);
  }
}

/** Endpoint statuses that will not become InService without a new deploy. */
const FAILED_STATUSES = new Set(['Failed', 'UpdateRollbackFailed', 'OutOfService', 'Deleting']);

/** Runs the plan's calls in order against the given clients; every AWS failure becomes a KilnError naming the call. */
export async function deployToSageMaker(
  plan: SageMakerDeployPlan,
  run: SageMakerDeployRun,
): Promise<SageMakerDeployResult> {
  const { s3, sageMaker, autoScaling } = run.clients;
  const emit = run.onEvent ?? (() => {});
  const callOf = (command: string): PlannedCall => plan.calls.find((c) => c.command === command)!;
  const send = async <T>(
    command: string,
    detail: string | ((result: T) => string),
    request: () => Promise<T>,
  ): Promise<T> => {
    const call = callOf(command);
    let result: T;
    try {
      result = await request();
    } catch (err) {
      throw awsError(err, call);
    }
    emit({
      kind: 'call',
      service: call.service,
      command,
      detail: typeof detail === 'string' ? detail : detail(result),
    });
    return result;
  };

  const bytes = (await stat(run.packagePath)).size;
  await send('Upload', `${plan.modelDataUrl} (${formatBytes(bytes)})`, () => {
    const upload = new Upload({
      client: s3,
      params: { ...plan.upload, Body: createReadStream(run.packagePath), ContentLength: bytes },
    });
    upload.on('httpUploadProgress', (p) => emit({ kind: 'upload', loaded: p.loaded ?? 0, total: p.total ?? bytes }));
    return upload.done();
  });
  await send('CreateModel', plan.modelName, () => sageMaker.send(new CreateModelCommand(plan.createModel)));
  await send('CreateEndpointConfig', plan.endpointConfigName, () =>
    sageMaker.send(new CreateEndpointConfigCommand(plan.createEndpointConfig)),
  );

  const found = (e: DescribeEndpointCommandOutput | null): string =>
    e === null
      ? `${plan.endpointName}: not found, creating it`
      : `${plan.endpointName}: ${e.EndpointStatus} on ${e.EndpointConfigName}, updating it`;
  const existing = await send('DescribeEndpoint', found, async () => {
    try {
      return await sageMaker.send(new DescribeEndpointCommand(plan.describeEndpoint));
    } catch (err) {
      if (isEndpointNotFound(err)) return null;
      throw err;
    }
  });
  const action = existing === null ? 'created' : 'updated';
  if (existing === null) {
    await send('CreateEndpoint', plan.endpointName, () =>
      sageMaker.send(new CreateEndpointCommand(plan.createEndpoint)),
    );
  }
  // Whether an autoscaling target was removed for the update (and must come back if it fails).
  let deregistered = false;
  if (existing !== null) {
    await send('DeregisterScalableTarget', plan.scaling.resourceId, async () => {
      try {
        await autoScaling.send(new DeregisterScalableTargetCommand(plan.deregisterScalableTarget));
        deregistered = true;
      } catch (err) {
        if ((err as Error).name !== 'ObjectNotFoundException') throw err;
      }
    });
  }

  const registerScaling = async (): Promise<PutScalingPolicyCommandOutput | undefined> => {
    await send(
      'RegisterScalableTarget',
      `${plan.scaling.resourceId}, ${plan.scaling.min}–${plan.scaling.max} instances`,
      () => autoScaling.send(new RegisterScalableTargetCommand(plan.registerScalableTarget)),
    );
    return send(
      'PutScalingPolicy',
      `${plan.scaling.policyName}, ${plan.target.value} invocations per instance per minute`,
      () => autoScaling.send(new PutScalingPolicyCommand(plan.putScalingPolicy)),
    );
  };

  let endpoint: DescribeEndpointCommandOutput;
  try {
    if (existing !== null)
      await send('UpdateEndpoint', `${plan.endpointName} → ${plan.endpointConfigName}`, () =>
        sageMaker.send(new UpdateEndpointCommand(plan.updateEndpoint)),
      );
    endpoint = await waitInService(plan, run, action, (input) => {
      const call = callOf('DescribeEndpoint');
      return sageMaker.send(new DescribeEndpointCommand(input)).catch((err: unknown) => {
        throw awsError(err, call);
      });
    });
  } catch (err) {
    // A failed update leaves the old config serving, and it was autoscaled before: give it its
    // scaling back (with this deploy's bounds) rather than leave production at a fixed size.
    if (deregistered) {
      await registerScaling().catch((restoreErr: unknown) =>
        emit({
          kind: 'warning',
          message: `the endpoint's autoscaling could not be registered again after the failed update (${(restoreErr as Error).message}); it runs at a fixed size until you run this deploy again or register it yourself`,
        }),
      );
    }
    throw err;
  }

  const policy = await registerScaling();

  const endpointArn = endpoint.EndpointArn ?? '';
  return {
    endpointName: plan.endpointName,
    endpointArn,
    status: endpoint.EndpointStatus ?? 'InService',
    action,
    modelName: plan.modelName,
    endpointConfigName: plan.endpointConfigName,
    modelDataUrl: plan.modelDataUrl,
    region: endpointArn.split(':')[3] ?? '',
    scaling: {
      min: plan.scaling.min,
      max: plan.scaling.max,
      targetInvocations: plan.target.value,
      policyArn: policy?.PolicyARN ?? null,
    },
  };
}

/**
 * Polls DescribeEndpoint until the endpoint is InService with the new config. An update that
 * SageMaker rolls back ends InService on the old config (with a FailureReason): that is a failure.
 */
async function waitInService(
  plan: SageMakerDeployPlan,
  run: SageMakerDeployRun,
  action: 'created' | 'updated',
  describe: (input: DescribeEndpointCommandInput) => Promise<DescribeEndpointCommandOutput>,
): Promise<DescribeEndpointCommandOutput> {
  const interval = run.pollIntervalMs ?? POLL_INTERVAL_MS;
  const timeout = run.timeoutMs ?? WAIT_TIMEOUT_MS;
  const sleep = run.sleep ?? ((ms: number) => sleepFor(ms));
  const maxPolls = Math.max(1, Math.ceil(timeout / interval) + 1);
  const started = performance.now();
  const logGroup = `/aws/sagemaker/Endpoints/${plan.endpointName}`;
  let last: string | null = null;
  let moved = action === 'created';
  for (let poll = 1; ; poll += 1) {
    const endpoint = await describe(plan.describeEndpoint);
    const status = endpoint.EndpointStatus ?? 'unknown';
    if (status !== last) run.onEvent?.({ kind: 'status', status, elapsedMs: performance.now() - started });
    last = status;
    if (FAILED_STATUSES.has(status)) {
      throw new KilnError('KILN_ERR_SAGEMAKER_ENDPOINT_FAILED', {
        endpoint: plan.endpointName,
        status,
        reason: endpoint.FailureReason ?? 'SageMaker gave no FailureReason',
        logGroup,
      });
    }
    if (status === 'InService') {
      if (endpoint.EndpointConfigName === plan.endpointConfigName) return endpoint;
      // Still the old config: before the update shows (not yet moved), wait; after it, a rollback.
      if (moved) {
        const reason = `SageMaker rolled the update back to endpoint config ${endpoint.EndpointConfigName ?? '?'}${endpoint.FailureReason ? `: ${endpoint.FailureReason}` : ''}`;
        throw new KilnError('KILN_ERR_SAGEMAKER_ENDPOINT_FAILED', {
          endpoint: plan.endpointName,
          status,
          reason,
          logGroup,
        });
      }
    } else {
      moved = true;
    }
    if (poll >= maxPolls)
      throw new KilnError('KILN_ERR_SAGEMAKER_WAIT_TIMEOUT', {
        endpoint: plan.endpointName,
        status,
        minutes: Math.round(timeout / 60_000),
      });
    await sleep(interval);
  }
}

/** SageMaker answers DescribeEndpoint on a missing endpoint with ValidationException "Could not find endpoint …". */
function isEndpointNotFound(err: unknown): boolean {
  const e = err as { name?: string; message?: string };
  return (
    e?.name === 'ResourceNotFound' ||
    (e?.name === 'ValidationException' && /could not find endpoint/i.test(e.message ?? ''))
  );
}

/** Error names AWS gives credentials that are missing, unknown or expired (the SDK's own, then the services'). */
const CREDENTIAL_ERRORS = new Set([
  'InvalidAccessKeyId',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'ExpiredToken',
  'ExpiredTokenException',
  'SignatureDoesNotMatch',
  'TokenRefreshRequired',
]);

/** An SDK failure as a KilnError that names the call and keeps AWS's error name and message (and the error as cause). */
export function awsError(err: unknown, call: Pick<PlannedCall, 'service' | 'command' | 'permission'>): KilnError {
  if (err instanceof KilnError) return err;
  const e = (err ?? {}) as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const name = e.name ?? 'Error';
  const awsMessage = e.message || 'no message';
  const label = `${call.service} ${call.command}`;
  if (name.includes('Credentials') || CREDENTIAL_ERRORS.has(name)) {
    return new KilnError('KILN_ERR_AWS_CREDENTIALS', { call: label, reason: `${name}: ${awsMessage}` }, { cause: err });
  }
  // "Region is missing" when none is set; "Region not accepted: region=\"\"…" for AWS_REGION="".
  if (/region is missing|region not accepted/i.test(awsMessage))
    return new KilnError('KILN_ERR_AWS_REGION', { call: label, reason: awsMessage }, { cause: err });
  if (name === 'AccessDenied' || name === 'AccessDeniedException' || e.$metadata?.httpStatusCode === 403) {
    return new KilnError(
      'KILN_ERR_AWS_ACCESS_DENIED',
      { call: label, awsError: name, awsMessage, permission: call.permission },
      { cause: err },
    );
  }
  return new KilnError('KILN_ERR_AWS_REQUEST', { call: label, awsError: name, awsMessage }, { cause: err });
}
