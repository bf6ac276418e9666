/**
 * The CUDA memory check without a GPU: a fake `nvidia-smi` on PATH reports the memory, and the
 * check is called directly (no CUDA provider is loaded).
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { isKilnError } from '../../src/core/errors.js';
import {
  CUDA_RUNTIME_BYTES,
  checkDeviceFits,
  type DeviceMemoryFacts,
  estimateDeviceMemory,
} from '../../src/runtime/device-memory.js';
import { tempDir } from '../fixtures/models.js';

const MIB = 2 ** 20;

/** DistilBERT-base's sizes: 768 hidden, 3072 intermediate, 12 heads; 128 tokens. */
const text = (weightsBytes: number, precision: DeviceMemoryFacts['precision'] = 'fp32'): DeviceMemoryFacts => ({
  name: 'distilbert',
  model: { file: 'model.onnx', encoder: { hidden: 768, intermediate: 3072, heads: 12 } },
  files: { 'model.onnx': { sha256: '', bytes: weightsBytes } },
  limits: { maxLength: 128 },
  precision,
});

let dir = '';
/** A PATH whose nvidia-smi prints `answer` and exits with `status`, recording its arguments. */
async function fakeNvidiaSmi(name: string, answer: string, status = 0): Promise<{ PATH: string; args: string }> {
  const bin = join(dir, name);
  const args = join(dir, `${name}.args`);
  await mkdir(bin);
  const script = join(bin, 'nvidia-smi');
  await writeFile(script, `#!/bin/sh\necho "$@" > '${args}'\necho '${answer}'\nexit ${status}\n`);
  await chmod(script, 0o755);
  return { PATH: `${bin}:/usr/bin:/bin`, args };
}

before(async () => {
  dir = await tempDir();
});

test('estimateDeviceMemory: weights as stored, per row L×(4h+i) + 2·a·L² fp32 activations, plus the CUDA runtime', {
  timeout: 10_000,
}, () => {
  const estimate = estimateDeviceMemory(text(256 * MIB), 32);
  // By hand: 128 × (4·768 + 3072) + 2·12·128² = 786432 + 393216 floats per row, 4 bytes each.
  assert.equal(estimate.activationBytesPerRow, 4 * 1_179_648);
  assert.equal(estimate.activationBytes, 32 * 4 * 1_179_648);
  assert.equal(estimate.totalBytes, 256 * MIB + 32 * 4 * 1_179_648 + CUDA_RUNTIME_BYTES);
  assert.equal(estimate.length, 128);
  const image = estimateDeviceMemory(
    { ...text(100 * MIB), model: { file: 'model.onnx' }, image: { height: 224, width: 224 }, limits: { maxLength: 1 } },
    8,
  );
  // 16 × its [3, 224, 224] input per image.
  assert.equal(image.activationBytes, 8 * 4 * 16 * 3 * 224 * 224);
  assert.equal(image.length, 1);
  const noSizes = estimateDeviceMemory({ ...text(10 * MIB), model: { file: 'model.onnx' } }, 32);
  assert.equal(noSizes.totalBytes, 10 * MIB + CUDA_RUNTIME_BYTES, 'no encoder sizes: weights and runtime only');
});

test('checkDeviceFits on cuda with nvidia-smi reporting 512 MiB free of 1024 MiB fails with KILN_ERR_DEVICE_MEMORY naming both figures and the fixes', {
  timeout: 30_000,
}, async () => {
  const smi = await fakeNvidiaSmi('small-gpu', '1024, 512');
  // 256 MiB of weights + 512 MiB of runtime alone exceed 90 % of 512 MiB: no batch fits.
  await assert.rejects(
    checkDeviceFits(text(256 * MIB), 'cuda', 32, { PATH: smi.PATH, CUDA_VISIBLE_DEVICES: '3,1' }),
    (err) => {
      assert.ok(isKilnError(err) && err.code === 'KILN_ERR_DEVICE_MEMORY', String(err));
      const message = (err as Error).message;
      const needed = Math.round((256 * MIB + 32 * 4 * 1_179_648 + CUDA_RUNTIME_BYTES) / MIB);
      assert.match(message, new RegExp(`needs about ${needed} MiB`));
      assert.match(message, /512 MiB free of 1024 MiB \(nvidia-smi\)/);
      assert.match(message, /GPU 3/);
      assert.match(message, /--precision fp16/);
      assert.match(message, /CUDA_VISIBLE_DEVICES/);
      assert.doesNotMatch(
        message,
        /--max-batch|--max-length/,
        'weights and runtime alone do not fit: no batch or length helps',
      );
      return true;
    },
  );
  assert.match(await readFile(smi.args, 'utf8'), /--query-gpu=memory\.total,memory\.used .*--id=3/);
});

test('checkDeviceFits names the largest --max-batch that fits when the weights do', { timeout: 30_000 }, async () => {
  // 4 GiB total, 1 GiB used: 3072 MiB free, 2764.8 MiB usable; fixed 256 + 512 MiB; 4.5 MiB a row.
  const smi = await fakeNvidiaSmi('mid-gpu', '4096, 1024');
  const perRow = 4 * 1_179_648;
  const fits = Math.floor((3072 * 0.9 * MIB - 768 * MIB) / perRow);
  assert.ok(fits > 1 && fits < 1024);
  await assert.rejects(checkDeviceFits(text(256 * MIB, 'fp16'), 'cuda', 1024, { PATH: smi.PATH }), (err) => {
    const message = (err as Error).message;
    assert.match(message, new RegExp(`run or serve with --max-batch ${fits} \\(the largest that fits\\)`));
    assert.match(message, /--max-length \(now 128\)/);
    assert.doesNotMatch(message, /--precision fp16/, 'already fp16');
    return true;
  });
  await checkDeviceFits(text(256 * MIB, 'fp16'), 'cuda', fits, { PATH: smi.PATH });
});

test('checkDeviceFits checks nothing without nvidia-smi, when it fails, or on another device', {
  timeout: 30_000,
}, async () => {
  const huge = text(1024 ** 4);
  await checkDeviceFits(huge, 'cuda', 32, { PATH: join(dir, 'empty-path') });
  const failing = await fakeNvidiaSmi('no-driver', 'NVIDIA-SMI has failed because it could not communicate', 9);
  await checkDeviceFits(huge, 'cuda', 32, { PATH: failing.PATH });
  const tiny = await fakeNvidiaSmi('tiny-gpu', '16, 8');
  await checkDeviceFits(huge, 'webgpu', 32, { PATH: tiny.PATH });
  await checkDeviceFits(huge, 'cpu', 32, { PATH: tiny.PATH });
  await assert.rejects(checkDeviceFits(huge, 'cuda', 32, { PATH: tiny.PATH }), /KILN_ERR_DEVICE_MEMORY|needs about/);
});
