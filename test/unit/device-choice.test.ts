/** What a device changes, without a GPU: the artifact/device rules, one replica per GPU, buckets, deploy sizing. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isGpuInstance } from '../../src/cli/commands/deploy-sagemaker.js';
import { deviceBuckets } from '../../src/compiler/plan.js';
import { isKilnError } from '../../src/core/errors.js';
import { deploymentFiles, podSizing } from '../../src/deploy/k8s.js';
import type { Manifest } from '../../src/model/artifact.js';
import { chooseDevice, deviceLayout } from '../../src/runtime/device.js';

const compiledFor = (backend: string, precision: Manifest['precision'] = 'fp32'): Manifest =>
  ({
    name: 'sst2',
    precision,
    tuned: { replicas: 4, threadsPerReplica: 1 },
    compile: { backend, optimization: backend === 'cpu' ? 'all' : 'basic' },
  }) as unknown as Manifest;

const code = (expected: string) => (err: unknown) => isKilnError(err) && err.code === expected;

test('chooseDevice: a CPU artifact runs on the CPU (auto too) and refuses a GPU with KILN_ERR_DEVICE_MISMATCH naming the compile fix', async () => {
  assert.equal((await chooseDevice('a.kiln', compiledFor('cpu'), undefined)).device, 'cpu');
  assert.equal((await chooseDevice('a.kiln', compiledFor('cpu'), 'auto')).device, 'cpu');
  assert.equal((await chooseDevice('a.kiln', compiledFor('cpu'), undefined)).optimization, 'disabled');
  await assert.rejects(
    chooseDevice('a.kiln', compiledFor('cpu'), 'webgpu'),
    (err) =>
      code('KILN_ERR_DEVICE_MISMATCH')(err) && /compile the source with --device webgpu/.test((err as Error).message),
  );
});

test('chooseDevice: a GPU artifact runs on the CPU optimized at load, except fp16', async () => {
  const decision = await chooseDevice('g.kiln', compiledFor('webgpu'), 'cpu');
  assert.deepEqual([decision.device, decision.optimization], ['cpu', 'all']);
  await assert.rejects(chooseDevice('g.kiln', compiledFor('webgpu', 'fp16'), 'cpu'), code('KILN_ERR_DEVICE_MISMATCH'));
});

test('deviceLayout: one replica and one thread on a GPU, more refused; the CPU keeps auto', () => {
  assert.deepEqual(deviceLayout('webgpu', undefined), { replicas: 1, threadsPerReplica: 1 });
  assert.deepEqual(deviceLayout('cuda', 1), { replicas: 1, threadsPerReplica: 1 });
  assert.throws(() => deviceLayout('webgpu', 2), code('KILN_ERR_DEVICE_REPLICAS'));
  assert.deepEqual(deviceLayout('cpu', undefined), { replicas: 'auto', threadsPerReplica: null });
  assert.deepEqual(deviceLayout('cpu', 3), { replicas: 3, threadsPerReplica: null });
});

test('deviceBuckets: powers of two from 16 on a GPU, every 4 tokens first on the CPU', () => {
  assert.deepEqual(deviceBuckets('webgpu', 128), [16, 32, 64, 128]);
  assert.deepEqual(deviceBuckets('cuda', 100), [16, 32, 64, 100]);
  assert.deepEqual(deviceBuckets('cpu', 128).slice(0, 3), [4, 8, 12]);
});

test('deploy: a GPU artifact gets nvidia.com/gpu 1, one replica and 2 CPUs in Kubernetes; SageMaker knows its GPU instances', () => {
  const s = podSizing(compiledFor('cuda'));
  assert.deepEqual([s.gpus, s.replicas, s.cpu], [1, 1, 2]);
  const yaml = deploymentFiles(compiledFor('cuda'), { image: 'kiln:cuda', replicas: 1, min: 1, max: 2 })
    .map((f) => f.text)
    .join('\n');
  assert.match(yaml, /nvidia\.com\/gpu: "1"/);
  const cpuYaml = deploymentFiles(compiledFor('cpu'), { image: 'kiln', replicas: 1, min: 1, max: 2 })
    .map((f) => f.text)
    .join('\n');
  assert.doesNotMatch(cpuYaml, /nvidia\.com\/gpu/);
  assert.equal(podSizing(compiledFor('cpu')).replicas, 4, 'the CPU keeps the tuned layout');
  for (const gpu of ['ml.g5.xlarge', 'ml.g6.2xlarge', 'ml.p4d.24xlarge', 'ml.g4dn.xlarge'])
    assert.ok(isGpuInstance(gpu), gpu);
  for (const cpu of ['ml.c7i.xlarge', 'ml.m5.large', 'ml.inf2.xlarge']) assert.ok(!isGpuInstance(cpu), cpu);
});
