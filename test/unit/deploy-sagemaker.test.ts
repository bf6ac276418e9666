/**
 * planSageMakerDeploy and deployToSageMaker against mocked AWS clients (aws-sdk-client-mock):
 * the exact requests in order for a new endpoint and for an update, and every failure path.
 * Nothing here reaches AWS: each client's send is stubbed on the instance.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import {
  ApplicationAutoScalingClient,
  DeregisterScalableTargetCommand,
  ObjectNotFoundException,
  PutScalingPolicyCommand,
  RegisterScalableTargetCommand,
} from '@aws-sdk/client-application-auto-scaling';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  CreateEndpointCommand,
  CreateEndpointConfigCommand,
  CreateModelCommand,
  DescribeEndpointCommand,
  type DescribeEndpointCommandOutput,
  ResourceLimitExceeded,
  SageMakerClient,
  UpdateEndpointCommand,
} from '@aws-sdk/client-sagemaker';
import { mockClient } from 'aws-sdk-client-mock';
import { formatResult } from '../../src/cli/commands/deploy-sagemaker.js';
import { KilnError } from '../../src/core/errors.js';
import {
  awsError,
  type DeployEvent,
  deployToSageMaker,
  planSageMakerDeploy,
  type SageMakerDeployOptions,
  type SageMakerDeployPlan,
  sageMakerName,
} from '../../src/deploy/sagemaker.js';
import { PLANNED_CALLS, TUNED_LAYOUT, tempDir } from '../fixtures/models.js';

// The SDK warns on Node 20 about its releases after January 2027 (as kiln deploy sagemaker does, quietly).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const TUNED = TUNED_LAYOUT;
const ROLE = 'arn:aws:iam::123456789012:role/SageMakerExecution';
const IMAGE = '123456789012.dkr.ecr.us-east-1.amazonaws.com/kiln:1';
const OPTIONS: SageMakerDeployOptions = {
  artifact: 'sst2.kiln',
  image: IMAGE,
  role: ROLE,
  bucket: 'my-models',
  prefix: 'kiln',
  endpoint: 'sst2',
  instanceType: 'ml.c7i.xlarge',
  initialCount: 2,
  min: 1,
  max: 8,
  targetInvocations: null,
  now: new Date('2026-01-02T03:04:05.678Z'),
};
const MANIFEST = { name: 'sst2-distilbert-tiny', tuned: TUNED };
const NAME = 'sst2-20260102030405678';
const KEY = `kiln/sst2/${NAME}/model.tar.gz`;
const ARN = 'arn:aws:sagemaker:eu-west-1:123456789012:endpoint/sst2';
const RESOURCE = {
  ServiceNamespace: 'sagemaker',
  ResourceId: 'endpoint/sst2/variant/AllTraffic',
  ScalableDimension: 'sagemaker:variant:DesiredInstanceCount',
};
/** The target-tracking policy every test deploy puts: 948 req/s tuned × 0.5 × 60 = 28,440 per minute. */
const POLICY = {
  PolicyName: 'sst2-invocations-per-instance',
  ...RESOURCE,
  PolicyType: 'TargetTrackingScaling',
  TargetTrackingScalingPolicyConfiguration: {
    TargetValue: 28440,
    PredefinedMetricSpecification: { PredefinedMetricType: 'SageMakerVariantInvocationsPerInstance' },
    ScaleInCooldown: 300,
    ScaleOutCooldown: 60,
  },
};
const PACKAGE_BYTES = Buffer.from('a small model.tar.gz stand-in: one PutObject, not a multipart upload');

/** Errors as the SDK throws them: a name, AWS's message, the response metadata. */
function awsFailure(name: string, message: string, httpStatusCode = 400): Error {
  return Object.assign(new Error(message), { name, $fault: 'client', $metadata: { httpStatusCode } });
}
const NOT_FOUND = awsFailure('ValidationException', `Could not find endpoint "${ARN}".`);
const describeResult = (
  status: string,
  config: string,
  extra: Partial<DescribeEndpointCommandOutput> = {},
): DescribeEndpointCommandOutput =>
  ({
    EndpointName: 'sst2',
    EndpointArn: ARN,
    EndpointStatus: status,
    EndpointConfigName: config,
    $metadata: {},
    ...extra,
  }) as DescribeEndpointCommandOutput;

/** Three clients with their sends stubbed, and every request in the order it was sent, across the three. */
function mockedClients() {
  const config = { region: 'eu-west-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'not-a-secret' } };
  const clients = {
    s3: new S3Client(config),
    sageMaker: new SageMakerClient(config),
    autoScaling: new ApplicationAutoScalingClient(config),
  };
  const s3 = mockClient(clients.s3);
  const sageMaker = mockClient(clients.sageMaker);
  const autoScaling = mockClient(clients.autoScaling);
  s3.on(PutObjectCommand).resolves({ ETag: '"etag"' });
  const sent = (): Array<[string, Record<string, unknown>]> =>
    [...s3.calls(), ...sageMaker.calls(), ...autoScaling.calls()]
      .sort((a, b) => (a.calledBefore(b as never) ? -1 : 1))
      .map((call) => {
        const command = call.args[0] as unknown as { constructor: { name: string }; input: Record<string, unknown> };
        const name = command.constructor.name.replace(/Command$/, '');
        if (name !== 'PutObject') return [name, command.input];
        // The body as a digest: the test checks the package's bytes went up, not a stream object.
        const body = createHash('sha256')
          .update(command.input.Body as Uint8Array)
          .digest('hex');
        return [name, { ...command.input, Body: `sha256:${body}` }];
      });
  return { clients, s3, sageMaker, autoScaling, sent };
}

describe('planSageMakerDeploy', () => {
  test('planSageMakerDeploy(manifest, options): versioned model and config names, the S3 key under prefix/endpoint/model, scaling inputs', () => {
    const plan = planSageMakerDeploy(MANIFEST, OPTIONS);
    assert.equal(plan.modelName, NAME);
    assert.equal(plan.endpointConfigName, NAME);
    assert.equal(plan.modelDataUrl, `s3://my-models/${KEY}`);
    assert.deepEqual(plan.createModel, {
      ModelName: NAME,
      PrimaryContainer: { Image: IMAGE, ModelDataUrl: `s3://my-models/${KEY}` },
      ExecutionRoleArn: ROLE,
    });
    assert.deepEqual(plan.createEndpointConfig, {
      EndpointConfigName: NAME,
      ProductionVariants: [
        { VariantName: 'AllTraffic', ModelName: NAME, InstanceType: 'ml.c7i.xlarge', InitialInstanceCount: 2 },
      ],
    });
    assert.deepEqual(plan.registerScalableTarget, { ...RESOURCE, MinCapacity: 1, MaxCapacity: 8 });
    assert.deepEqual(plan.putScalingPolicy, POLICY);
    assert.deepEqual(
      plan.calls.map((c) => `${c.service} ${c.command}`),
      PLANNED_CALLS,
    );
  });

  test('planSageMakerDeploy with another timestamp gives new model and config names (a redeploy never reuses them)', () => {
    const later = planSageMakerDeploy(MANIFEST, { ...OPTIONS, now: new Date('2026-01-02T03:04:05.679Z') });
    assert.equal(later.modelName, 'sst2-20260102030405679', 'a deploy one millisecond later gets another name');
    assert.notEqual(later.modelName, planSageMakerDeploy(MANIFEST, OPTIONS).modelName);
  });

  test("planSageMakerDeploy with a 63-character endpoint keeps model names within SageMaker's 63 and its pattern", () => {
    const endpoint = `${'a'.repeat(47)}-${'b'.repeat(15)}`;
    const plan = planSageMakerDeploy(MANIFEST, { ...OPTIONS, endpoint });
    assert.equal(plan.modelName, `${'a'.repeat(45)}-20260102030405678`);
    assert.match(plan.modelName, /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/);
  });

  const names: Array<[string, string]> = [
    ['sst2-distilbert-tiny', 'sst2-distilbert-tiny'],
    ['distilbert_base.uncased/sst2', 'distilbert-base-uncased-sst2'],
    ['--Ünïcode model--', 'n-code-model'],
    ['___', 'kiln-model'],
    ['x'.repeat(70), 'x'.repeat(63)],
  ];
  for (const [input, expected] of names) {
    test(`sageMakerName(${JSON.stringify(input.length > 20 ? `${input.slice(0, 8)}…` : input)}) is ${JSON.stringify(expected.length > 20 ? `${expected.slice(0, 8)}… (${expected.length})` : expected)}`, () => {
      assert.equal(sageMakerName(input), expected);
      assert.match(sageMakerName(input), /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/);
    });
  }

  test('planSageMakerDeploy computes the target from the tuned layout as requests/s × 0.5 × 60 and says where it came from', () => {
    const plan = planSageMakerDeploy({ name: 'm', tuned: { ...TUNED, requestsPerSecond: 599.4 } }, OPTIONS);
    assert.equal(plan.target.value, 17982);
    assert.equal(plan.putScalingPolicy.TargetTrackingScalingPolicyConfiguration?.TargetValue, 17982);
    assert.match(
      plan.target.explanation,
      /17982 invocations per instance per minute = tuned 599\.4 requests\/s × 0\.5 × 60/,
    );
    assert.match(plan.target.explanation, /AMD EPYC, 2 cores.*ml\.c7i\.xlarge may differ/);
  });

  test('planSageMakerDeploy with --target-invocations uses the flag over the tuned layout, and without a tuned layout', () => {
    for (const manifest of [MANIFEST, { name: 'm' }]) {
      const plan = planSageMakerDeploy(manifest, { ...OPTIONS, targetInvocations: 1200 });
      assert.equal(plan.putScalingPolicy.TargetTrackingScalingPolicyConfiguration?.TargetValue, 1200);
      assert.match(plan.target.explanation, /1200 invocations per instance per minute \(--target-invocations\)/);
    }
  });

  test('planSageMakerDeploy without a tuned layout or --target-invocations throws KILN_ERR_DEPLOY_SAGEMAKER_UNTUNED naming kiln tune', () => {
    assert.throws(
      () => planSageMakerDeploy({ name: 'm' }, OPTIONS),
      (err: unknown) =>
        err instanceof KilnError &&
        err.code === 'KILN_ERR_DEPLOY_SAGEMAKER_UNTUNED' &&
        /kiln tune sst2\.kiln/.test(err.message) &&
        /--target-invocations/.test(err.message),
    );
  });
});

describe('deployToSageMaker', () => {
  let packagePath: string;
  let plan: SageMakerDeployPlan;
  let packageDigest: string;
  before(async () => {
    packagePath = join(await tempDir(), 'model.tar.gz');
    await writeFile(packagePath, PACKAGE_BYTES);
    packageDigest = `sha256:${createHash('sha256').update(PACKAGE_BYTES).digest('hex')}`;
    plan = planSageMakerDeploy(MANIFEST, OPTIONS);
  });

  /** Runs a deploy with no waiting: the sleeps are recorded, not slept. */
  async function run(mocks: ReturnType<typeof mockedClients>, extra: { timeoutMs?: number } = {}) {
    const events: DeployEvent[] = [];
    const sleeps: number[] = [];
    const result = deployToSageMaker(plan, {
      packagePath,
      clients: mocks.clients,
      onEvent: (e) => events.push(e),
      pollIntervalMs: 1000,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      ...extra,
    });
    return { result, events, sleeps };
  }

  const upload = (): [string, Record<string, unknown>] => [
    'PutObject',
    {
      Bucket: 'my-models',
      Key: KEY,
      ContentType: 'application/gzip',
      ContentLength: PACKAGE_BYTES.length,
      Body: packageDigest,
    },
  ];
  const createModel = (): [string, Record<string, unknown>] => [
    'CreateModel',
    {
      ModelName: NAME,
      PrimaryContainer: { Image: IMAGE, ModelDataUrl: `s3://my-models/${KEY}` },
      ExecutionRoleArn: ROLE,
    },
  ];
  const createConfig = (): [string, Record<string, unknown>] => [
    'CreateEndpointConfig',
    {
      EndpointConfigName: NAME,
      ProductionVariants: [
        { VariantName: 'AllTraffic', ModelName: NAME, InstanceType: 'ml.c7i.xlarge', InitialInstanceCount: 2 },
      ],
    },
  ];
  const describe_ = (): [string, Record<string, unknown>] => ['DescribeEndpoint', { EndpointName: 'sst2' }];
  const scaling = (): Array<[string, Record<string, unknown>]> => [
    ['RegisterScalableTarget', { ...RESOURCE, MinCapacity: 1, MaxCapacity: 8 }],
    ['PutScalingPolicy', POLICY],
  ];

  test('deployToSageMaker, new endpoint: upload, CreateModel, CreateEndpointConfig, DescribeEndpoint (not found), CreateEndpoint, polls to InService, then scaling', async () => {
    const mocks = mockedClients();
    mocks.sageMaker
      .on(DescribeEndpointCommand)
      .rejectsOnce(NOT_FOUND)
      .resolvesOnce(describeResult('Creating', NAME))
      .resolvesOnce(describeResult('Creating', NAME))
      .resolvesOnce(describeResult('InService', NAME));
    mocks.autoScaling
      .on(PutScalingPolicyCommand)
      .resolves({ PolicyARN: 'arn:aws:autoscaling:eu-west-1:123456789012:scalingPolicy:p' });
    const { result, events, sleeps } = await run(mocks);
    const deployed = await result;

    assert.deepEqual(mocks.sent(), [
      upload(),
      createModel(),
      createConfig(),
      describe_(),
      ['CreateEndpoint', { EndpointName: 'sst2', EndpointConfigName: NAME }],
      describe_(),
      describe_(),
      describe_(),
      ...scaling(),
    ]);
    assert.deepEqual(sleeps, [1000, 1000], 'sleeps between polls only');
    assert.deepEqual(
      events.filter((e) => e.kind === 'status').map((e) => e.status),
      ['Creating', 'InService'],
      'each status change once',
    );
    const uploaded = events.filter((e) => e.kind === 'upload');
    assert.deepEqual(uploaded.at(-1), { kind: 'upload', loaded: PACKAGE_BYTES.length, total: PACKAGE_BYTES.length });
    assert.deepEqual(deployed, {
      endpointName: 'sst2',
      endpointArn: ARN,
      status: 'InService',
      action: 'created',
      modelName: NAME,
      endpointConfigName: NAME,
      modelDataUrl: `s3://my-models/${KEY}`,
      region: 'eu-west-1',
      scaling: {
        min: 1,
        max: 8,
        targetInvocations: 28440,
        policyArn: 'arn:aws:autoscaling:eu-west-1:123456789012:scalingPolicy:p',
      },
    });
  });

  test('deployToSageMaker, existing endpoint: DeregisterScalableTarget, UpdateEndpoint to the new config, polls until InService on it, then scaling again', async () => {
    const mocks = mockedClients();
    mocks.sageMaker
      .on(DescribeEndpointCommand)
      .resolvesOnce(describeResult('InService', 'sst2-20251231000000'))
      // Just after UpdateEndpoint the old config may still show: not yet a rollback.
      .resolvesOnce(describeResult('InService', 'sst2-20251231000000'))
      .resolvesOnce(describeResult('Updating', 'sst2-20251231000000'))
      .resolvesOnce(describeResult('InService', NAME));
    const { result, events } = await run(mocks);
    const deployed = await result;

    assert.deepEqual(mocks.sent(), [
      upload(),
      createModel(),
      createConfig(),
      describe_(),
      ['DeregisterScalableTarget', RESOURCE],
      ['UpdateEndpoint', { EndpointName: 'sst2', EndpointConfigName: NAME }],
      describe_(),
      describe_(),
      describe_(),
      ...scaling(),
    ]);
    assert.equal(mocks.sageMaker.commandCalls(CreateEndpointCommand).length, 0);
    assert.equal(deployed.action, 'updated');
    assert.equal(deployed.scaling.policyArn, null);
    assert.deepEqual(
      events.filter((e) => e.kind === 'status').map((e) => e.status),
      ['InService', 'Updating', 'InService'],
    );
  });

  test("deployToSageMaker, existing endpoint never registered for scaling: DeregisterScalableTarget's ObjectNotFoundException is fine", async () => {
    const mocks = mockedClients();
    mocks.sageMaker
      .on(DescribeEndpointCommand)
      .resolvesOnce(describeResult('InService', 'old'))
      .resolvesOnce(describeResult('Updating', 'old'))
      .resolvesOnce(describeResult('InService', NAME));
    mocks.autoScaling
      .on(DeregisterScalableTargetCommand)
      .rejects(new ObjectNotFoundException({ message: 'No scalable target registered', $metadata: {} }));
    const { result } = await run(mocks);
    assert.equal((await result).action, 'updated');
    assert.equal(mocks.sageMaker.commandCalls(UpdateEndpointCommand).length, 1);
    assert.equal(mocks.autoScaling.commandCalls(RegisterScalableTargetCommand).length, 1);
  });

  test('deployToSageMaker, update rolled back (InService on the old config after Updating): KILN_ERR_SAGEMAKER_ENDPOINT_FAILED with FailureReason, and the autoscaling it removed is put back', async () => {
    const mocks = mockedClients();
    const reason = 'The primary container for production variant AllTraffic did not pass the ping health check.';
    mocks.sageMaker
      .on(DescribeEndpointCommand)
      .resolvesOnce(describeResult('InService', 'old'))
      .resolvesOnce(describeResult('Updating', 'old'))
      .resolvesOnce(describeResult('InService', 'old', { FailureReason: reason }));
    const { result } = await run(mocks);
    await assert.rejects(result, (err: unknown) => {
      assert.ok(err instanceof KilnError);
      assert.equal(err.code, 'KILN_ERR_SAGEMAKER_ENDPOINT_FAILED');
      assert.ok(err.message.includes(reason), err.message);
      assert.match(err.message, /rolled the update back to endpoint config old/);
      return true;
    });
    // Deregistered before the update, registered again after it failed: production stays autoscaled.
    assert.equal(mocks.autoScaling.commandCalls(DeregisterScalableTargetCommand).length, 1);
    assert.equal(mocks.autoScaling.commandCalls(RegisterScalableTargetCommand).length, 1);
    assert.equal(mocks.autoScaling.commandCalls(PutScalingPolicyCommand).length, 1);
  });

  test("deployToSageMaker, rolled-back update: an endpoint that had no autoscaling gets none, and a failed restore is a warning while the update's error is thrown", async () => {
    const rollback = (mocks: ReturnType<typeof mockedClients>) =>
      mocks.sageMaker
        .on(DescribeEndpointCommand)
        .resolvesOnce(describeResult('InService', 'old'))
        .resolvesOnce(describeResult('Updating', 'old'))
        .resolvesOnce(describeResult('InService', 'old', { FailureReason: 'health check' }));
    const none = mockedClients();
    rollback(none);
    none.autoScaling
      .on(DeregisterScalableTargetCommand)
      .rejects(new ObjectNotFoundException({ message: 'No scalable target registered', $metadata: {} }));
    await assert.rejects((await run(none)).result, { code: 'KILN_ERR_SAGEMAKER_ENDPOINT_FAILED' });
    assert.equal(none.autoScaling.commandCalls(RegisterScalableTargetCommand).length, 0, 'nothing to restore');

    const broken = mockedClients();
    rollback(broken);
    broken.autoScaling.on(RegisterScalableTargetCommand).rejects(new Error('endpoint is Updating'));
    const { result, events } = await run(broken);
    await assert.rejects(result, { code: 'KILN_ERR_SAGEMAKER_ENDPOINT_FAILED' });
    const warnings = events.filter((e) => e.kind === 'warning');
    assert.equal(warnings.length, 1);
    assert.match((warnings[0] as { message: string }).message, /could not be registered again .*endpoint is Updating/);
  });

  test('deployToSageMaker, endpoint goes Failed: KILN_ERR_SAGEMAKER_ENDPOINT_FAILED keeps FailureReason and names the log group; no scaling calls', async () => {
    const mocks = mockedClients();
    const reason = 'Image size 12 GB is greater than supported size 10 GB for instance type ml.c7i.xlarge.';
    mocks.sageMaker
      .on(DescribeEndpointCommand)
      .rejectsOnce(NOT_FOUND)
      .resolvesOnce(describeResult('Creating', NAME))
      .resolvesOnce(describeResult('Failed', NAME, { FailureReason: reason }));
    const { result, events } = await run(mocks);
    await assert.rejects(result, (err: unknown) => {
      assert.ok(err instanceof KilnError);
      assert.equal(err.code, 'KILN_ERR_SAGEMAKER_ENDPOINT_FAILED');
      assert.ok(err.message.includes(reason), err.message);
      assert.match(err.message, /status Failed/);
      assert.match(err.message, /\/aws\/sagemaker\/Endpoints\/sst2/);
      return true;
    });
    assert.deepEqual(
      events.filter((e) => e.kind === 'status').map((e) => e.status),
      ['Creating', 'Failed'],
    );
    assert.deepEqual(mocks.autoScaling.calls().length, 0);
  });

  test('deployToSageMaker, endpoint still Creating at the timeout: KILN_ERR_SAGEMAKER_WAIT_TIMEOUT after timeout / interval polls, no scaling calls', async () => {
    const mocks = mockedClients();
    mocks.sageMaker.on(DescribeEndpointCommand).rejectsOnce(NOT_FOUND).resolves(describeResult('Creating', NAME));
    const { result, sleeps } = await run(mocks, { timeoutMs: 3000 });
    await assert.rejects(
      result,
      (err: unknown) =>
        err instanceof KilnError &&
        err.code === 'KILN_ERR_SAGEMAKER_WAIT_TIMEOUT' &&
        /still Creating/.test(err.message),
    );
    assert.equal(
      mocks.sageMaker.commandCalls(DescribeEndpointCommand).length,
      1 + 4,
      'the existence check, then polls at 0, 1, 2 and 3 s',
    );
    assert.deepEqual(sleeps, [1000, 1000, 1000]);
    assert.equal(mocks.autoScaling.calls().length, 0);
  });

  test('deployToSageMaker with no credentials: KILN_ERR_AWS_CREDENTIALS on the upload, the SDK message kept, nothing else sent', async () => {
    const mocks = mockedClients();
    const sdk = awsFailure('CredentialsProviderError', 'Could not load credentials from any providers');
    mocks.s3.on(PutObjectCommand).rejects(sdk);
    const { result } = await run(mocks);
    await assert.rejects(result, (err: unknown) => {
      assert.ok(err instanceof KilnError);
      assert.equal(err.code, 'KILN_ERR_AWS_CREDENTIALS');
      assert.equal(err.cause, sdk);
      assert.match(
        err.message,
        /^S3 Upload was not sent: .*CredentialsProviderError: Could not load credentials from any providers.*AWS_PROFILE.*AWS_ACCESS_KEY_ID/,
      );
      return true;
    });
    assert.deepEqual(
      mocks.sent().map(([name]) => name),
      ['PutObject'],
    );
  });

  test("deployToSageMaker with CreateModel denied: KILN_ERR_AWS_ACCESS_DENIED with AWS's message and the permission (iam:PassRole on the role); no later calls", async () => {
    const mocks = mockedClients();
    const message = `User: arn:aws:sts::123456789012:assumed-role/ci/kiln is not authorized to perform: iam:PassRole on resource: ${ROLE}`;
    mocks.sageMaker.on(CreateModelCommand).rejects(awsFailure('AccessDeniedException', message));
    const { result } = await run(mocks);
    await assert.rejects(result, (err: unknown) => {
      assert.ok(err instanceof KilnError);
      assert.equal(err.code, 'KILN_ERR_AWS_ACCESS_DENIED');
      assert.ok(err.message.includes(`AccessDeniedException: ${message}`), err.message);
      assert.ok(err.message.includes(`allow sagemaker:CreateModel, and iam:PassRole on ${ROLE}`), err.message);
      assert.match(err.message, /^AWS denied SageMaker CreateModel/);
      return true;
    });
    assert.deepEqual(mocks.sent(), [upload(), createModel()]);
  });

  test('deployToSageMaker with another AWS failure (ResourceLimitExceeded on CreateEndpointConfig): KILN_ERR_AWS_REQUEST with the name, message and cause', async () => {
    const mocks = mockedClients();
    const sdk = new ResourceLimitExceeded({
      message: 'The account-level service limit ml.c7i.xlarge for endpoint usage is 0 Instances',
      $metadata: { httpStatusCode: 400 },
    });
    mocks.sageMaker.on(CreateEndpointConfigCommand).rejects(sdk);
    const { result } = await run(mocks);
    await assert.rejects(result, (err: unknown) => {
      assert.ok(err instanceof KilnError);
      assert.equal(err.code, 'KILN_ERR_AWS_REQUEST');
      assert.equal(err.cause, sdk);
      assert.match(
        err.message,
        /^SageMaker CreateEndpointConfig failed: ResourceLimitExceeded: The account-level service limit ml\.c7i\.xlarge for endpoint usage is 0 Instances;/,
      );
      return true;
    });
    assert.deepEqual(
      mocks.sent().map(([name]) => name),
      ['PutObject', 'CreateModel', 'CreateEndpointConfig'],
    );
  });

  test('deployToSageMaker when DescribeEndpoint fails for another reason than a missing endpoint: the error, not a CreateEndpoint', async () => {
    const mocks = mockedClients();
    mocks.sageMaker.on(DescribeEndpointCommand).rejects(awsFailure('ThrottlingException', 'Rate exceeded'));
    const { result } = await run(mocks);
    await assert.rejects(
      result,
      (err: unknown) =>
        err instanceof KilnError &&
        err.code === 'KILN_ERR_AWS_REQUEST' &&
        /DescribeEndpoint failed: ThrottlingException: Rate exceeded/.test(err.message),
    );
    assert.equal(mocks.sageMaker.commandCalls(CreateEndpointCommand).length, 0);
    assert.equal(mocks.sageMaker.commandCalls(UpdateEndpointCommand).length, 0);
  });
});

describe('awsError', () => {
  const call = { service: 'SageMaker' as const, command: 'CreateEndpoint', permission: 'sagemaker:CreateEndpoint' };
  const cases: Array<[string, unknown, string]> = [
    [
      'CredentialsProviderError',
      awsFailure('CredentialsProviderError', 'Could not load credentials from any providers'),
      'KILN_ERR_AWS_CREDENTIALS',
    ],
    [
      'ExpiredTokenException',
      awsFailure('ExpiredTokenException', 'The security token included in the request is expired'),
      'KILN_ERR_AWS_CREDENTIALS',
    ],
    [
      'UnrecognizedClientException',
      awsFailure('UnrecognizedClientException', 'The security token included in the request is invalid.'),
      'KILN_ERR_AWS_CREDENTIALS',
    ],
    ['S3 AccessDenied (403)', awsFailure('AccessDenied', 'Access Denied', 403), 'KILN_ERR_AWS_ACCESS_DENIED'],
    ['any 403', awsFailure('Forbidden', 'Forbidden', 403), 'KILN_ERR_AWS_ACCESS_DENIED'],
    ['a missing region', new Error('Region is missing'), 'KILN_ERR_AWS_REGION'],
    [
      'an empty region',
      new Error('Region not accepted: region="" is not a valid hostname component.'),
      'KILN_ERR_AWS_REGION',
    ],
    [
      'ValidationException',
      awsFailure('ValidationException', 'Cannot create already existing endpoint'),
      'KILN_ERR_AWS_REQUEST',
    ],
    [
      'a network failure',
      Object.assign(new Error('getaddrinfo ENOTFOUND api.sagemaker.eu-west-1.amazonaws.com'), { code: 'ENOTFOUND' }),
      'KILN_ERR_AWS_REQUEST',
    ],
  ];
  for (const [what, err, code] of cases) {
    test(`awsError(${what}) is ${code}, keeping the cause and AWS's message`, () => {
      const mapped = awsError(err, call);
      assert.equal(mapped.code, code);
      assert.equal(mapped.cause, err);
      assert.ok(mapped.message.includes((err as Error).message), mapped.message);
      assert.ok(mapped.message.includes('SageMaker CreateEndpoint'), mapped.message);
    });
  }

  test('awsError(a KilnError) passes it through', () => {
    const err = new KilnError('KILN_ERR_SAGEMAKER_WAIT_TIMEOUT', { endpoint: 'e', status: 'Creating', minutes: 60 });
    assert.equal(awsError(err, call), err);
  });
});

test('formatResult names the endpoint, its ARN, the invoke URL in its region, an invoke-endpoint command and the scaling', () => {
  const plan = planSageMakerDeploy(MANIFEST, OPTIONS);
  const text = formatResult(
    {
      endpointName: 'sst2',
      endpointArn: ARN,
      status: 'InService',
      action: 'created',
      modelName: NAME,
      endpointConfigName: NAME,
      modelDataUrl: plan.modelDataUrl,
      region: 'eu-west-1',
      scaling: { min: 1, max: 8, targetInvocations: 28440, policyArn: null },
    },
    plan,
  );
  assert.match(text, /^endpoint sst2 created: InService\n/);
  assert.ok(text.includes(ARN));
  assert.ok(text.includes('POST https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/sst2/invocations'));
  assert.ok(
    text.includes(
      'aws sagemaker-runtime invoke-endpoint --region eu-west-1 --endpoint-name sst2 --content-type application/json',
    ),
  );
  assert.ok(text.includes('2 × ml.c7i.xlarge to start'));
  assert.ok(text.includes('1 to 8 instances, target 28440 invocations per instance per minute'));
});
