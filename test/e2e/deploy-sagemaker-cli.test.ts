/**
 * `kiln deploy sagemaker` as a user runs it. AWS is a fake on 127.0.0.1 (AWS_ENDPOINT_URL points
 * the SDK's three clients at it) that records every request and answers as S3 (path-style PUT),
 * SageMaker and Application Auto Scaling (JSON 1.1 with X-Amz-Target) do; nothing reaches AWS.
 * The exact inputs and the failure paths are checked against mocked clients in
 * test/unit/deploy-sagemaker.test.ts; here: the command's flags, clients, output and errors.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cp, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tar from 'tar';
import { readArtifact, writeManifest } from '../../src/model/artifact.js';
import { errorCode, kiln, PLANNED_CALLS, sourceFolder, TUNED_LAYOUT, tempDir } from '../fixtures/models.js';

const ROLE = 'arn:aws:iam::123456789012:role/SageMakerExecution';
const IMAGE = '123456789012.dkr.ecr.eu-west-1.amazonaws.com/kiln:1';
const DENIED =
  'User: arn:aws:sts::123456789012:assumed-role/ci/kiln is not authorized to perform: sagemaker:CreateModel';

interface Recorded {
  /** `S3 PUT /bucket/key` or `SageMaker.CreateModel`. */
  op: string;
  input: Record<string, unknown>;
  body: Buffer;
}

/** A fake of the three AWS APIs a deploy calls; endpoints come InService at once, so no waiting. */
function fakeAws(): { server: Server; requests: Recorded[] } {
  const requests: Recorded[] = [];
  const endpoints = new Map<string, string>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const target = req.headers['x-amz-target'];
      if (typeof target !== 'string') {
        requests.push({ op: `S3 ${req.method} ${req.url}`, input: {}, body });
        res.writeHead(200, { etag: '"etag"' }).end();
        return;
      }
      const input = JSON.parse(body.toString() || '{}') as Record<string, string>;
      requests.push({ op: target, input, body });
      const answer = (status: number, value: object): void => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify(value));
      };
      const op = target.split('.')[1];
      if (op === 'CreateModel' && input.ModelName!.startsWith('denied'))
        return answer(400, { __type: 'AccessDeniedException', message: DENIED });
      if (op === 'DescribeEndpoint') {
        const config = endpoints.get(input.EndpointName!);
        if (!config)
          return answer(400, {
            __type: 'ValidationException',
            message: `Could not find endpoint "${input.EndpointName}".`,
          });
        const arn = `arn:aws:sagemaker:eu-west-1:123456789012:endpoint/${input.EndpointName}`;
        return answer(200, {
          EndpointName: input.EndpointName,
          EndpointArn: arn,
          EndpointConfigName: config,
          EndpointStatus: 'InService',
          CreationTime: 0,
          LastModifiedTime: 0,
        });
      }
      if (op === 'CreateEndpoint' || op === 'UpdateEndpoint')
        endpoints.set(input.EndpointName!, input.EndpointConfigName!);
      if (op === 'PutScalingPolicy')
        return answer(200, { PolicyARN: 'arn:aws:autoscaling:eu-west-1:123456789012:scalingPolicy:p', Alarms: [] });
      return answer(200, {});
    });
  });
  return { server, requests };
}

describe('kiln deploy sagemaker', () => {
  let dir: string;
  let tuned: string;
  let untuned: string;
  let aws: ReturnType<typeof fakeAws>;
  let env: NodeJS.ProcessEnv;
  const required = (artifact: string): string[] => [
    'deploy',
    'sagemaker',
    artifact,
    '--image',
    IMAGE,
    '--role',
    ROLE,
    '--bucket',
    'my-models',
  ];

  before(async () => {
    dir = await tempDir();
    const source = await sourceFolder(dir, 'tiny-source');
    untuned = join(dir, 'tiny.kiln');
    const compiled = await kiln(['compile', source, '-o', untuned], { env: { KILN_CACHE_DIR: join(dir, 'cache') } });
    assert.equal(compiled.code, 0, compiled.stderr);
    tuned = join(dir, 'tuned.kiln');
    await cp(untuned, tuned, { recursive: true });
    const { manifest } = await readArtifact(tuned);
    manifest.tuned = { ...TUNED_LAYOUT };
    await writeManifest(tuned, manifest);

    aws = fakeAws();
    await new Promise<void>((resolve) => aws.server.listen(0, '127.0.0.1', resolve));
    const missing = join(dir, 'no-such-file');
    // Only the fake and these credentials: nothing from the machine's AWS setup.
    env = {
      AWS_ENDPOINT_URL: `http://127.0.0.1:${(aws.server.address() as AddressInfo).port}`,
      AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: '',
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'not-a-secret',
      AWS_SESSION_TOKEN: '',
      AWS_PROFILE: '',
      AWS_REGION: 'eu-west-1',
      AWS_CONFIG_FILE: missing,
      AWS_SHARED_CREDENTIALS_FILE: missing,
      AWS_EC2_METADATA_DISABLED: 'true',
      HOME: dir,
    };
  });
  after(() => aws.server.close());

  test('kiln deploy sagemaker ARTIFACT creates the endpoint: one PUT of the package, then SageMaker and scaling calls in order; prints ARN, invoke URL and scaling', async () => {
    aws.requests.length = 0;
    const result = await kiln([...required(tuned), '--endpoint', 'sst2', '--prefix', '/models/'], { env });
    assert.equal(result.code, 0, result.stderr);
    const ops = aws.requests.map((r) => r.op);
    assert.equal(ops.length, 8, ops.join('\n'));
    const put = ops[0]!;
    assert.match(put, /^S3 PUT \/my-models\/models\/sst2\/sst2-\d{17}\/model\.tar\.gz\?x-id=PutObject$/);
    assert.deepEqual(ops.slice(1), [
      'SageMaker.CreateModel',
      'SageMaker.CreateEndpointConfig',
      'SageMaker.DescribeEndpoint',
      'SageMaker.CreateEndpoint',
      'SageMaker.DescribeEndpoint',
      'AnyScaleFrontendService.RegisterScalableTarget',
      'AnyScaleFrontendService.PutScalingPolicy',
    ]);
    const modelName = /\/(sst2-\d{17})\//.exec(put)![1]!;
    const byOp = (op: string): Record<string, unknown> => aws.requests.find((r) => r.op === op)!.input;
    assert.deepEqual(byOp('SageMaker.CreateModel'), {
      ModelName: modelName,
      PrimaryContainer: { Image: IMAGE, ModelDataUrl: `s3://my-models/models/sst2/${modelName}/model.tar.gz` },
      ExecutionRoleArn: ROLE,
    });
    assert.equal(
      (
        byOp('AnyScaleFrontendService.PutScalingPolicy').TargetTrackingScalingPolicyConfiguration as {
          TargetValue: number;
        }
      ).TargetValue,
      28440,
    );

    // The package that went up is the artifact, as kiln package makes it, and the digest printed.
    const body = aws.requests[0]!.body;
    const digest = createHash('sha256').update(body).digest('hex');
    assert.ok(result.stderr.includes(`sha256 ${digest}`), result.stderr);
    const tarball = join(dir, 'uploaded.tar.gz');
    await writeFile(tarball, body);
    const entries: string[] = [];
    await tar.list({ file: tarball, onReadEntry: (e) => entries.push(e.path) });
    assert.ok(entries.includes('manifest.json') && entries.includes('model.onnx'), entries.join(', '));

    assert.match(
      result.stderr,
      /scaling at 28440 invocations per instance per minute = tuned 948\.0 requests\/s × 0\.5 × 60/,
    );
    assert.match(result.stderr, /DescribeEndpoint sst2: not found, creating it/);
    assert.match(result.stderr, /endpoint sst2 InService after/);
    assert.match(result.stdout, /^endpoint sst2 created: InService$/m);
    assert.match(result.stdout, /arn:aws:sagemaker:eu-west-1:123456789012:endpoint\/sst2/);
    assert.match(
      result.stdout,
      /POST https:\/\/runtime\.sagemaker\.eu-west-1\.amazonaws\.com\/endpoints\/sst2\/invocations/,
    );
    assert.match(result.stdout, /aws sagemaker-runtime invoke-endpoint --region eu-west-1 --endpoint-name sst2 /);
    assert.match(result.stdout, /1 to 8 instances, target 28440 invocations per instance per minute/);
  });

  test('kiln deploy sagemaker on an existing endpoint updates it: DeregisterScalableTarget, UpdateEndpoint to the new config, scaling again', async () => {
    aws.requests.length = 0;
    const first = await kiln([...required(tuned), '--endpoint', 'update-me', '--target-invocations', '500'], { env });
    assert.equal(first.code, 0, first.stderr);
    aws.requests.length = 0;
    const result = await kiln(
      [
        ...required(tuned),
        '--endpoint',
        'update-me',
        '--target-invocations',
        '500',
        '--instance-type',
        'ml.c7i.2xlarge',
      ],
      { env },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(aws.requests.map((r) => r.op).slice(1), [
      'SageMaker.CreateModel',
      'SageMaker.CreateEndpointConfig',
      'SageMaker.DescribeEndpoint',
      'AnyScaleFrontendService.DeregisterScalableTarget',
      'SageMaker.UpdateEndpoint',
      'SageMaker.DescribeEndpoint',
      'AnyScaleFrontendService.RegisterScalableTarget',
      'AnyScaleFrontendService.PutScalingPolicy',
    ]);
    const config = aws.requests.find((r) => r.op === 'SageMaker.CreateEndpointConfig')!.input;
    assert.deepEqual(aws.requests.find((r) => r.op === 'SageMaker.UpdateEndpoint')!.input, {
      EndpointName: 'update-me',
      EndpointConfigName: config.EndpointConfigName,
    });
    assert.match(result.stdout, /^endpoint update-me updated: InService$/m);
  });

  test('kiln deploy sagemaker --dry-run prints every call with its input and sends no request', async () => {
    aws.requests.length = 0;
    const result = await kiln([...required(tuned), '--dry-run'], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(aws.requests.length, 0);
    const calls = [...result.stdout.matchAll(/^(\d+)\. (\w+) (\w+)/gm)].map((m) => `${m[2]} ${m[3]}`);
    assert.deepEqual(calls, PLANNED_CALLS);
    // The default endpoint name is the manifest's name ("tiny-source"); every input is JSON.
    assert.match(result.stdout, /"EndpointName": "tiny-source"/);
    assert.match(result.stdout, /"ExecutionRoleArn": "arn:aws:iam::123456789012:role\/SageMakerExecution"/);
    assert.match(result.stdout, /"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"/);
    assert.match(result.stdout, /"TargetValue": 28440/);
    assert.match(
      result.stdout,
      /needs sagemaker:CreateModel, and iam:PassRole on arn:aws:iam::123456789012:role\/SageMakerExecution/,
    );
  });

  test("kiln deploy sagemaker with CreateModel denied exits 1 with KILN_ERR_AWS_ACCESS_DENIED and AWS's message; no endpoint call follows", async () => {
    aws.requests.length = 0;
    const result = await kiln([...required(tuned), '--endpoint', 'denied'], { env });
    assert.equal(result.code, 1);
    assert.equal(errorCode(result.stderr), 'KILN_ERR_AWS_ACCESS_DENIED', result.stderr);
    assert.ok(result.stderr.includes(`AccessDeniedException: ${DENIED}`), result.stderr);
    assert.deepEqual(
      aws.requests.map((r) => r.op.split(' ')[0]),
      ['S3', 'SageMaker.CreateModel'],
    );
  });

  test('kiln deploy sagemaker without credentials exits 1 with KILN_ERR_AWS_CREDENTIALS before packing or sending anything', async () => {
    aws.requests.length = 0;
    const result = await kiln(required(tuned), { env: { ...env, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' } });
    assert.equal(result.code, 1);
    assert.equal(errorCode(result.stderr), 'KILN_ERR_AWS_CREDENTIALS', result.stderr);
    assert.match(result.stderr, /Could not load credentials from any providers/);
    assert.doesNotMatch(result.stderr, /packed/);
    assert.equal(aws.requests.length, 0);
  });

  test('kiln deploy sagemaker without a region exits 1 with KILN_ERR_AWS_REGION naming --region; with --region it deploys there', async () => {
    aws.requests.length = 0;
    // Unset (undefined leaves it out of the child's environment) and set but empty.
    for (const region of [undefined, '']) {
      const missing = await kiln(required(tuned), { env: { ...env, AWS_REGION: region } });
      assert.equal(missing.code, 1);
      assert.equal(errorCode(missing.stderr), 'KILN_ERR_AWS_REGION', missing.stderr);
      assert.match(missing.stderr, /pass --region/);
    }
    assert.equal(aws.requests.length, 0);
    const given = await kiln([...required(tuned), '--region', 'eu-west-1', '--endpoint', 'regional'], {
      env: { ...env, AWS_REGION: undefined },
    });
    assert.equal(given.code, 0, given.stderr);
    assert.match(given.stdout, /arn:aws:sagemaker:eu-west-1:/);
  });

  test('kiln deploy sagemaker on an untuned artifact needs --target-invocations (KILN_ERR_DEPLOY_SAGEMAKER_UNTUNED), and takes it', async () => {
    const refused = await kiln([...required(untuned), '--dry-run'], { env });
    assert.equal(refused.code, 1);
    assert.equal(errorCode(refused.stderr), 'KILN_ERR_DEPLOY_SAGEMAKER_UNTUNED', refused.stderr);
    assert.match(refused.stderr, /run "kiln tune .*tiny\.kiln" first, or pass --target-invocations N/);
    const given = await kiln([...required(untuned), '--dry-run', '--target-invocations', '600'], { env });
    assert.equal(given.code, 0, given.stderr);
    assert.match(given.stdout, /"TargetValue": 600/);
    assert.match(given.stderr, /scaling at 600 invocations per instance per minute \(--target-invocations\)/);
  });

  const invalid: Array<[string, (artifact: string) => string[], string, RegExp]> = [
    [
      'no --image',
      (a) => ['deploy', 'sagemaker', a, '--role', ROLE, '--bucket', 'my-models'],
      'KILN_ERR_DEPLOY_SAGEMAKER_FLAGS',
      /--image is missing/,
    ],
    [
      'no --role',
      (a) => ['deploy', 'sagemaker', a, '--image', IMAGE, '--bucket', 'my-models'],
      'KILN_ERR_DEPLOY_SAGEMAKER_FLAGS',
      /--role is missing/,
    ],
    [
      'no --bucket',
      (a) => ['deploy', 'sagemaker', a, '--image', IMAGE, '--role', ROLE],
      'KILN_ERR_DEPLOY_SAGEMAKER_FLAGS',
      /--bucket is missing/,
    ],
    [
      'a user ARN as --role',
      (a) => [...required(a), '--role', 'arn:aws:iam::123456789012:user/me'],
      'KILN_ERR_CLI_INVALID_FLAG',
      /--role must be an IAM role ARN .*got "arn:aws:iam::123456789012:user\/me"/,
    ],
    [
      'an 11-digit account in --role',
      (a) => [...required(a), '--role', 'arn:aws:iam::12345678901:role/x'],
      'KILN_ERR_CLI_INVALID_FLAG',
      /--role must be an IAM role ARN/,
    ],
    [
      'an s3:// URL as --bucket',
      (a) => [...required(a), '--bucket', 's3://my-models'],
      'KILN_ERR_CLI_INVALID_FLAG',
      /--bucket must be an S3 bucket name.*got "s3:\/\/my-models"/,
    ],
    [
      'uppercase in --bucket',
      (a) => [...required(a), '--bucket', 'My_Models'],
      'KILN_ERR_CLI_INVALID_FLAG',
      /--bucket must be an S3 bucket name/,
    ],
    [
      'an IP address as --bucket',
      (a) => [...required(a), '--bucket', '192.168.5.4'],
      'KILN_ERR_CLI_INVALID_FLAG',
      /--bucket must be an S3 bucket name/,
    ],
    [
      'an underscore in --endpoint',
      (a) => [...required(a), '--endpoint', 'my_endpoint'],
      'KILN_ERR_CLI_INVALID_FLAG',
      /--endpoint must be a SageMaker endpoint name.*got "my_endpoint"/,
    ],
    [
      'a 64-character --endpoint',
      (a) => [...required(a), '--endpoint', 'e'.repeat(64)],
      'KILN_ERR_CLI_INVALID_FLAG',
      /--endpoint must be a SageMaker endpoint name/,
    ],
    [
      'a trailing hyphen in --endpoint',
      (a) => [...required(a), '--endpoint', 'sst2-'],
      'KILN_ERR_CLI_INVALID_FLAG',
      /--endpoint must be a SageMaker endpoint name/,
    ],
    [
      'an EC2 instance type',
      (a) => [...required(a), '--instance-type', 'c7i.xlarge'],
      'KILN_ERR_CLI_INVALID_FLAG',
      /--instance-type must be a SageMaker instance type .*starts with "ml\."\), got "c7i\.xlarge"/,
    ],
    [
      '--min above --max',
      (a) => [...required(a), '--min', '5', '--max', '3', '--initial-count', '4'],
      'KILN_ERR_DEPLOY_SAGEMAKER_FLAGS',
      /--min 5 is above --max 3/,
    ],
    [
      '--initial-count above --max',
      (a) => [...required(a), '--initial-count', '9'],
      'KILN_ERR_DEPLOY_SAGEMAKER_FLAGS',
      /--initial-count 9 is outside --min 1 to --max 8/,
    ],
    [
      '--initial-count below --min',
      (a) => [...required(a), '--min', '3'],
      'KILN_ERR_DEPLOY_SAGEMAKER_FLAGS',
      /--initial-count 2 is outside --min 3 to --max 8/,
    ],
    [
      '--target-invocations 0',
      (a) => [...required(a), '--target-invocations', '0'],
      'KILN_ERR_CLI_INVALID_FLAG',
      /--target-invocations must be an integer in \[1, 100000000\], got "0"/,
    ],
    [
      'a bad --region',
      (a) => [...required(a), '--region', 'Europe'],
      'KILN_ERR_CLI_INVALID_FLAG',
      /--region must be an AWS region such as us-east-1, got "Europe"/,
    ],
  ];
  for (const [what, args, code, message] of invalid) {
    test(`kiln deploy sagemaker with ${what} exits 1 with ${code} and sends nothing`, async () => {
      aws.requests.length = 0;
      const result = await kiln(args(tuned), { env });
      assert.equal(result.code, 1, result.stderr);
      assert.equal(errorCode(result.stderr), code, result.stderr);
      assert.match(result.stderr, message);
      assert.equal(aws.requests.length, 0);
    });
  }

  test('kiln deploy sagemaker --help lists the flags and says where the scaling target comes from', async () => {
    const result = await kiln(['deploy', 'sagemaker', '--help']);
    assert.equal(result.code, 0);
    for (const flag of [
      '--image',
      '--role',
      '--bucket',
      '--endpoint',
      '--instance-type',
      '--initial-count',
      '--min',
      '--max',
      '--target-invocations',
      '--region',
      '--dry-run',
    ]) {
      assert.ok(result.stdout.includes(flag), flag);
    }
    assert.match(result.stdout, /tuned requests\/s × 0\.5 × 60/);
  });
});
