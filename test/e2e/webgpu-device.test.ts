/**
 * `--device webgpu` for real, on whatever Vulkan driver the machine has: on CI that is Mesa's
 * lavapipe (a software GPU, from Debian bookworm-backports; .ci/run installs it). Without an
 * adapter the tests that need one skip and say why; the refusals are checked either way.
 * Lavapipe runs the tiny model at about 1/50 of ONNX Runtime's CPU speed, so parity here uses
 * the first 8 SST-2 dev sentences; benchmarks/devices.mjs --parity checks all 872. An imported
 * checkpoint and an image model are tiny ones, cheap on lavapipe.
 */
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { loadModel } from '../../src/api/open.js';
import { compile } from '../../src/compiler/compile.js';
import { isKilnError } from '../../src/core/errors.js';
import type { Manifest } from '../../src/model/artifact.js';
import { probeDevice } from '../../src/runtime/binding.js';
import { cnnFolder, pixels, png } from '../fixtures/image-models.js';
import { EMBEDDED_MODEL, errorCode, kiln, serveProcess, tempDir } from '../fixtures/models.js';
import { lookup, randomWeights, tinyBertConfig, vocabIds, writeCheckpoint } from '../fixtures/random-checkpoint.js';
import { referenceLogits } from '../fixtures/reference-encoder.js';

/** Vulkan pointed at no driver: the Vulkan loader finds none, so Dawn has no adapter. */
const NO_VULKAN = { VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json' };
const PARITY_SENTENCES = 8;

let noAdapter: string | null = null;
let dir = '';
let cache = '';
before(async () => {
  noAdapter = (await probeDevice('webgpu'))?.message ?? null;
  dir = await tempDir();
  cache = join(dir, 'cache');
});

test('--device webgpu with Vulkan pointed at no driver fails at load with KILN_ERR_DEVICE_WEBGPU_UNAVAILABLE, no CPU fallback', async () => {
  const out = join(dir, 'none.kiln');
  const r = await kiln(['compile', EMBEDDED_MODEL, '--device', 'webgpu', '-o', out], {
    env: { KILN_CACHE_DIR: cache, ...NO_VULKAN },
  });
  assert.equal(r.code, 1, r.stderr);
  assert.equal(errorCode(r.stderr), 'KILN_ERR_DEVICE_WEBGPU_UNAVAILABLE', r.stderr);
  assert.match(r.stderr, /mesa-vulkan-drivers/);
  await assert.rejects(readFile(join(out, 'manifest.json')), 'nothing was written');
});

test('--device cuda without the provider libraries fails with KILN_ERR_DEVICE_CUDA_UNAVAILABLE naming the install command', async (t) => {
  if ((await probeDevice('cuda')) === null) {
    t.skip('this machine runs CUDA: the missing-library error cannot happen here');
    return;
  }
  const r = await kiln(['compile', EMBEDDED_MODEL, '--device', 'cuda', '-o', join(dir, 'cuda.kiln')], {
    env: { KILN_CACHE_DIR: cache },
  });
  assert.equal(errorCode(r.stderr), 'KILN_ERR_DEVICE_CUDA_UNAVAILABLE', r.stderr);
  assert.match(r.stderr, /ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules\/onnxruntime-node\/script\/install\.js/);
  assert.match(r.stderr, /CUDA 12\.x, cuDNN 9\.x/);
});

test('int8 on a GPU device and fp16 on the CPU are refused with KILN_ERR_DEVICE_PRECISION before any device is probed', async () => {
  const int8 = await kiln(['compile', EMBEDDED_MODEL, '--device', 'webgpu', '--precision', 'int8'], {
    env: { KILN_CACHE_DIR: cache, ...NO_VULKAN },
  });
  assert.equal(errorCode(int8.stderr), 'KILN_ERR_DEVICE_PRECISION', int8.stderr);
  assert.match(int8.stderr, /--precision fp16/);
  const fp16 = await kiln(['compile', EMBEDDED_MODEL, '--precision', 'fp16'], { env: { KILN_CACHE_DIR: cache } });
  assert.equal(errorCode(fp16.stderr), 'KILN_ERR_DEVICE_PRECISION', fp16.stderr);
});

test('on WebGPU: compile records the device and the placement, logits match the CPU artifact and the PyTorch reference, serve answers /predict and names the device', async (t) => {
  if (noAdapter) {
    t.skip(`no WebGPU adapter (${noAdapter}); .ci/run installs Mesa's lavapipe from bookworm-backports`);
    return;
  }
  const gpuDir = join(dir, 'sst2-webgpu.kiln');
  const cpuDir = join(dir, 'sst2-cpu.kiln');
  const compiled = await kiln(['compile', EMBEDDED_MODEL, '--device', 'webgpu', '--max-batch', '8', '-o', gpuDir], {
    env: { KILN_CACHE_DIR: cache },
  });
  assert.equal(compiled.code, 0, compiled.stderr);
  assert.match(compiled.stdout, /placement +\d+ nodes on webgpu, \d+ on the CPU \(\d+ shape arithmetic, 0 compute\)/);
  const manifest = JSON.parse(await readFile(join(gpuDir, 'manifest.json'), 'utf8')) as Manifest;
  assert.equal(manifest.compile.backend, 'webgpu');
  assert.equal(manifest.compile.optimization, 'basic', 'a GPU artifact stores the portable graph');
  assert.ok(manifest.compile.placement!.onDevice > manifest.compile.placement!.onCpu.count);
  assert.deepEqual(manifest.limits.buckets, [16, 32, 64, 128]);
  assert.equal((await kiln(['compile', EMBEDDED_MODEL, '-o', cpuDir], { env: { KILN_CACHE_DIR: cache } })).code, 0);

  const reference = JSON.parse(await readFile(join(EMBEDDED_MODEL, 'reference-logits.json'), 'utf8')) as {
    sentences: string[];
    logits: number[][];
  };
  const sentences = reference.sentences.slice(0, PARITY_SENTENCES);
  let expectedLabel = '';
  const gpu = await loadModel({ model: gpuDir });
  const cpu = await loadModel({ model: cpuDir });
  try {
    assert.equal(gpu.layout.device, 'webgpu', 'run and serve default to the device compiled for');
    assert.equal(gpu.layout.replicas, 1, 'one session per GPU');
    assert.equal(cpu.layout.device, 'cpu');
    const [onGpu, onCpu] = await Promise.all([gpu.infer(sentences), cpu.infer(sentences)]);
    expectedLabel = (onCpu[0] as { label: string }).label;
    for (const [i, row] of onGpu.entries()) {
      const logits = (row as { logits: number[] }).logits;
      const cpuLogits = (onCpu[i] as { logits: number[] }).logits;
      for (const [j, v] of logits.entries()) {
        assert.ok(Math.abs(v - cpuLogits[j]!) <= 1e-3, `sentence ${i} logit ${j}: webgpu ${v}, cpu ${cpuLogits[j]}`);
        assert.ok(Math.abs(v - reference.logits[i]![j]!) <= 1e-3, `sentence ${i} logit ${j} vs PyTorch`);
      }
    }
  } finally {
    await Promise.all([gpu.close(), cpu.close()]);
  }

  await assert.rejects(
    loadModel({ model: gpuDir, replicas: 2 }),
    (err) => isKilnError(err) && err.code === 'KILN_ERR_DEVICE_REPLICAS',
  );
  await assert.rejects(
    loadModel({ model: cpuDir, device: 'webgpu' }),
    (err) => isKilnError(err) && err.code === 'KILN_ERR_DEVICE_MISMATCH' && /--device webgpu/.test(err.message),
  );

  const { child, ready, stderr } = serveProcess([gpuDir], { PORT: '0', KILN_CACHE_DIR: cache });
  try {
    const url = await ready;
    assert.match(stderr(), /ready in .* on webgpu, 1 replica/);
    const res = await fetch(`${url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text: reference.sentences[0] }),
    });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { label: string }).label, expectedLabel);
    const stats = (await (await fetch(`${url}/stats`)).json()) as { layout: { device: string } };
    assert.equal(stats.layout.device, 'webgpu');
    assert.match(await (await fetch(`${url}/metrics`)).text(), /kiln_model_device_info\{[^}]*device="webgpu"[^}]*\} 1/);
  } finally {
    child.kill('SIGTERM');
  }
});

test('--device webgpu --precision fp16 --verify passes on SST-2 sentences and halves the MatMul weights', async (t) => {
  if (noAdapter) {
    t.skip(`no WebGPU adapter (${noAdapter}); .ci/run installs Mesa's lavapipe from bookworm-backports`);
    return;
  }
  // The first rows of the dev set: the whole set takes minutes on a software GPU.
  const data = join(dir, 'dev-head.tsv');
  const lines = (await readFile(join(EMBEDDED_MODEL, '../../data/sst2/dev.tsv'), 'utf8')).split('\n');
  await writeFile(data, `${lines.slice(0, PARITY_SENTENCES + 1).join('\n')}\n`);
  const out = join(dir, 'sst2-fp16.kiln');
  const r = await kiln(
    [
      'compile',
      EMBEDDED_MODEL,
      '--device',
      'webgpu',
      '--precision',
      'fp16',
      '--verify',
      data,
      '--max-accuracy-drop',
      '0.5',
      '--max-batch',
      '8',
      '-o',
      out,
    ],
    { env: { KILN_CACHE_DIR: cache } },
  );
  assert.equal(r.code, 0, r.stderr);
  const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as Manifest;
  assert.equal(manifest.precision, 'fp16');
  assert.ok(manifest.fp16!.matmuls >= 30, `every MatMul of the 4 layers converted, got ${manifest.fp16!.matmuls}`);
  assert.equal(manifest.verify!.rows, PARITY_SENTENCES);
  assert.ok(manifest.verify!.accuracy!.drop <= 0.5);
  assert.ok(manifest.verify!.maxAbsLogitDelta < 0.05, `fp16 logits stay close: ${manifest.verify!.maxAbsLogitDelta}`);
  const fp32Bytes = 4 * manifest.model.parameters;
  assert.ok((await stat(join(out, 'model.onnx'))).size < 0.6 * fp32Bytes, 'weights stored in fp16');
  assert.match(r.stdout, /precision +fp16: \d+ MatMul\/Gemm/);
});

test("an image model (a small CNN: Conv, Relu, GlobalAveragePool, Gemm) on WebGPU answers the CPU artifact's logits within 1e-3", async (t) => {
  if (noAdapter) {
    t.skip(`no WebGPU adapter (${noAdapter}); .ci/run installs Mesa's lavapipe from bookworm-backports`);
    return;
  }
  const source = await cnnFolder(dir);
  const gpuArt = await compile({ source, out: join(dir, 'cnn-webgpu.kiln'), device: 'webgpu', maxBatch: 4 });
  const cpuArt = await compile({ source, out: join(dir, 'cnn-cpu.kiln'), maxBatch: 4 });
  assert.equal(gpuArt.manifest.compile.placement!.computeOnCpu.length, 0, 'every Conv and Gemm on the GPU');
  const images = await Promise.all([1, 2, 3].map((seed) => png(pixels(16, 16, seed), 16, 16)));
  const gpu = await loadModel({ model: gpuArt.artifactDir });
  const cpu = await loadModel({ model: cpuArt.artifactDir });
  try {
    const [onGpu, onCpu] = await Promise.all([gpu.infer(images), cpu.infer(images)]);
    for (const [i, row] of onGpu.entries()) {
      const expected = (onCpu[i] as { logits: number[] }).logits;
      for (const [j, v] of (row as { logits: number[] }).logits.entries())
        assert.ok(Math.abs(v - expected[j]!) <= 1e-3, `image ${i} logit ${j}: webgpu ${v}, cpu ${expected[j]}`);
    }
  } finally {
    await Promise.all([gpu.close(), cpu.close()]);
  }
});

test("an imported checkpoint (a tiny random BERT, safetensors) on WebGPU answers the CPU artifact's logits and the float64 reference's within 1e-3", async (t) => {
  if (noAdapter) {
    t.skip(`no WebGPU adapter (${noAdapter}); .ci/run installs Mesa's lavapipe from bookworm-backports`);
    return;
  }
  const config = tinyBertConfig(['A', 'B', 'C']);
  const weights = randomWeights(config, 11);
  const source = await writeCheckpoint(join(dir, 'tiny-bert'), config, weights);
  const options = { source, maxLength: 16, maxBatch: 4, cache: false };
  const gpuArt = await compile({ ...options, out: join(dir, 'tiny-bert-webgpu.kiln'), device: 'webgpu' });
  const cpuArt = await compile({ ...options, out: join(dir, 'tiny-bert-cpu.kiln') });
  // No float node on the CPU: the int64 attention mask (WebGPU kernels take no int64, Cast
  // included) is compared to 0 there, a bool, and the padding bias is a Where on the GPU.
  const placement = gpuArt.manifest.compile.placement!;
  assert.deepEqual(placement.computeOnCpu, []);
  assert.ok(placement.onDevice > placement.onCpu.count, JSON.stringify(placement));
  // Whole vocabulary words of different lengths: one batch with padding, ids known without the tokenizer.
  const texts = ['a great movie', 'the plot is bad', 'good film'];
  const gpu = await loadModel({ model: gpuArt.artifactDir });
  const cpu = await loadModel({ model: cpuArt.artifactDir });
  try {
    const [onGpu, onCpu] = await Promise.all([gpu.infer(texts), cpu.infer(texts)]);
    const rows = onGpu.map((row) => (row as { logits: number[] }).logits);
    for (const [i, text] of texts.entries()) {
      const ids = [101, ...(await vocabIds(text)), 102];
      const [expected] = referenceLogits(config, lookup(weights), {
        inputIds: [ids],
        attentionMask: [ids.map(() => 1)],
      });
      const cpuLogits = (onCpu[i] as { logits: number[] }).logits;
      for (const [j, v] of rows[i]!.entries()) {
        assert.ok(Math.abs(v - cpuLogits[j]!) <= 1e-3, `"${text}" logit ${j}: webgpu ${v}, cpu ${cpuLogits[j]}`);
        assert.ok(Math.abs(v - expected![j]!) <= 1e-3, `"${text}" logit ${j}: webgpu ${v}, reference ${expected![j]}`);
      }
    }
    // The rows differ: a graph that ignored its input would pass a weaker check.
    assert.ok(rows[0]!.some((v, j) => Math.abs(v - rows[1]![j]!) > 1e-2));
  } finally {
    await Promise.all([gpu.close(), cpu.close()]);
  }
});
