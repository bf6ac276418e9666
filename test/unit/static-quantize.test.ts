import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { type CalibrationResult, calibrate } from '../../src/compiler/calibrate.js';
import { quantizeWeight, uint8Params } from '../../src/compiler/quantize-common.js';
import { calibrationTensors, quantizeStatic, staticQuantize } from '../../src/compiler/static-quantize.js';
import type { FloatTensor } from '../../src/core/tensor.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { operatorCounts } from '../../src/onnx/graph.js';
import { decodeModel, encodeModel, type ModelProto, readModel } from '../../src/onnx/proto.js';
import { createSession } from '../../src/runtime/binding.js';
import { randomFloats, tempDir } from '../fixtures/models.js';

const SIZE = 32;
const CLASSES = 10;

/**
 * A small ResNet-like CNN, batch norm already folded: conv-relu, maxpool, a residual block
 * (conv-relu, conv, add, relu), a strided 1×1 conv-relu, global average pool, flatten, gemm.
 * He-uniform weights; biases small; `headBias` replaces the classifier's bias.
 */
function smallCnn(headBias?: Float32Array): ModelProto {
  const g = new GraphBuilder('small-cnn');
  let seed = 1;
  const conv = (
    x: string,
    name: string,
    cin: number,
    cout: number,
    k: number,
    stride: number,
    relu: boolean,
  ): string => {
    const fanIn = cin * k * k;
    const w = g.weight(`${name}.weight`, randomFloats(cout * fanIn, seed++, Math.sqrt(6 / fanIn)), [cout, cin, k, k]);
    const b = g.weight(`${name}.bias`, randomFloats(cout, seed++, 0.1), [cout]);
    const pad = (k - 1) / 2;
    const y = g.op(
      'Conv',
      [x, w, b],
      { kernel_shape: [k, k], pads: [pad, pad, pad, pad], strides: [stride, stride] },
      { name: `/${name}/Conv` },
    );
    return relu ? g.op('Relu', [y], undefined, { name: `/${name}/Relu` }) : y;
  };
  const x = g.input('pixel_values', 'float', ['batch', 3, SIZE, SIZE]);
  const stem = conv(x, 'stem', 3, 16, 3, 1, true);
  const pooled = g.op('MaxPool', [stem], { kernel_shape: [2, 2], strides: [2, 2] }, { name: '/pool/MaxPool' });
  const branch = conv(conv(pooled, 'block.a', 16, 16, 3, 1, true), 'block.b', 16, 16, 3, 1, false);
  const block = g.op('Relu', [g.op('Add', [branch, pooled], undefined, { name: '/block/Add' })], undefined, {
    name: '/block/Relu',
  });
  const down = conv(block, 'down', 16, 32, 1, 2, true);
  const features = g.op(
    'Flatten',
    [g.op('GlobalAveragePool', [down], undefined, { name: '/gap' })],
    { axis: 1 },
    { name: '/flatten' },
  );
  const fcWeight = g.weight('fc.weight', randomFloats(CLASSES * 32, seed++, Math.sqrt(3 / 32)), [CLASSES, 32]);
  g.op(
    'Gemm',
    [features, fcWeight, g.weight('fc.bias', headBias ?? randomFloats(CLASSES, seed++, 0.05), [CLASSES])],
    { transB: 1 },
    { name: '/fc/Gemm', output: 'logits' },
  );
  g.output('logits', 'float', ['batch', CLASSES]);
  return decodeModel(g.toBytes(), 'small-cnn.onnx');
}

/** Smooth random images (a few low-frequency waves per channel), each seed its own. */
function images(count: number, seed: number): FloatTensor {
  const data = new Float32Array(count * 3 * SIZE * SIZE);
  for (let n = 0; n < count; n += 1) {
    const r = randomFloats(6 * 7 + 3, seed * 1000 + n, 0.5).map((v) => v + 0.5);
    for (let c = 0; c < 3; c += 1) {
      for (let y = 0; y < SIZE; y += 1) {
        for (let x = 0; x < SIZE; x += 1) {
          let v = 0.3 * (r[42 + c]! - 0.5);
          for (let w = 0; w < 6; w += 1) {
            const [fx, fy, phase, amp, m0, m1, m2] = r.subarray(w * 7, w * 7 + 7);
            v +=
              0.4 *
              amp! *
              [m0!, m1!, m2!][c]! *
              Math.cos(2 * Math.PI * ((fx! * 4 * x) / SIZE + (fy! * 4 * y) / SIZE) + 6.3 * phase!);
          }
          data[((n * 3 + c) * SIZE + y) * SIZE + x] = (Math.min(1, Math.max(0, 0.5 + v)) - 0.45) / 0.25;
        }
      }
    }
  }
  return { data, dims: [count, 3, SIZE, SIZE] };
}

function* calibrationBatches(): Generator<FloatTensor> {
  for (let b = 0; b < 4; b += 1) yield images(8, 100 + b);
}

/** Logits of `model` on `input` through ONNX Runtime ('all': the QDQ groups become integer kernels). */
async function logits(model: ModelProto, input: FloatTensor, optimizedPath?: string): Promise<Float32Array> {
  const path = join(await tempDir('kiln-static-quantize-'), 'model.onnx');
  await writeFile(path, encodeModel(model));
  const session = await createSession(path, {
    backend: 'cpu',
    optimization: 'all',
    intraOpThreads: 1,
    optimizedModelPath: optimizedPath,
  });
  try {
    return (await session.run({ pixel_values: input })).logits!.data;
  } finally {
    await session.release();
  }
}

interface Agreement {
  maxAbsDelta: number;
  /** RMS of Δlogit over RMS of the fp32 logits. */
  relativeRms: number;
  top1: number;
  distinctTop1: number;
}

function agreement(actual: Float32Array, expected: Float32Array): Agreement {
  const argmax = (a: Float32Array, row: number): number => {
    let best = 0;
    for (let k = 1; k < CLASSES; k += 1) if (a[row * CLASSES + k]! > a[row * CLASSES + best]!) best = k;
    return best;
  };
  let maxAbsDelta = 0;
  let squaredError = 0;
  let squared = 0;
  for (let i = 0; i < expected.length; i += 1) {
    maxAbsDelta = Math.max(maxAbsDelta, Math.abs(actual[i]! - expected[i]!));
    squaredError += (actual[i]! - expected[i]!) ** 2;
    squared += expected[i]! ** 2;
  }
  const rows = expected.length / CLASSES;
  let same = 0;
  const classes = new Set<number>();
  for (let r = 0; r < rows; r += 1) {
    classes.add(argmax(expected, r));
    if (argmax(actual, r) === argmax(expected, r)) same += 1;
  }
  return { maxAbsDelta, relativeRms: Math.sqrt(squaredError / squared), top1: same / rows, distinctTop1: classes.size };
}

/** Calibration ranges scaled about their midpoint: the scales of a wrong quantizer. */
function scaledRanges(calibration: CalibrationResult, factor: number): CalibrationResult {
  const ranges = new Map(
    [...calibration.ranges].map(([name, r]) => [name, { min: r.min * factor, max: r.max * factor }]),
  );
  return { ...calibration, ranges };
}

// Measured on an AVX2 EPYC (128 images, fp32 predicts 9 classes): relative RMS 0.023, top-1
// agreement 99.2 % (without bias correction 0.045 and 96.1 %). Activation scales ×2: 0.036 and
// 94.5 %; ×4: 0.063 and 94.5 %; ×½ (clipping): 0.83 and 31 %; 8-bit weights on this CPU (u8 × s8
// saturation): 0.38 and 68.8 %.
const MAX_RELATIVE_RMS = 0.03;
const MIN_TOP1 = 0.96;

describe('staticQuantize on a small CNN', () => {
  const evaluation = images(128, 7);
  let fp32: ModelProto;
  let reference: Float32Array;
  let calibration: CalibrationResult;

  before(async () => {
    // A random net's logits share a large image-independent part; a classifier bias of minus the
    // mean logit over other images (what training would learn) makes predictions vary by image.
    const raw = await logits(smallCnn(new Float32Array(CLASSES)), images(64, 999));
    const bias = new Float32Array(CLASSES);
    for (let i = 0; i < raw.length; i += 1) bias[i % CLASSES] = bias[i % CLASSES]! - raw[i]! / 64;
    fp32 = smallCnn(bias);
    reference = await logits(fp32, evaluation);
    calibration = await calibrate(fp32, calibrationTensors(fp32), calibrationBatches(), { intraOpThreads: 1 });
  });

  test('staticQuantize quantizes every Conv, the Add, pools and the Gemm, folds the 4 Relus, and reports 4 calibration batches', async () => {
    const { report } = await staticQuantize(fp32, { calibration: calibrationBatches(), intraOpThreads: 1 });
    assert.deepEqual(report.quantized, { Conv: 4, MaxPool: 1, Add: 1, GlobalAveragePool: 1, Flatten: 1, Gemm: 1 });
    assert.deepEqual(report.keptFp32, {});
    assert.equal(report.foldedRelu, 4);
    assert.equal(report.biasCorrected, 5, 'the 4 Conv and the Gemm biases are corrected for weight rounding');
    assert.deepEqual(report.calibration, { batches: 4, samples: 32, method: 'minmax' });
    assert.deepEqual(report.weights, { bits: 7, perChannel: true });
    assert.ok(
      report.weightBytes.after < report.weightBytes.before / 2,
      `weights ${report.weightBytes.before} → ${report.weightBytes.after} bytes`,
    );
  });

  test('quantizeStatic output: ONNX Runtime runs it with integer kernels, and its logits stay close to fp32 on images disjoint from calibration', async () => {
    const { model } = quantizeStatic(fp32, calibration);
    const optimized = join(await tempDir('kiln-static-quantize-'), 'optimized.onnx');
    const result = agreement(await logits(model, evaluation, optimized), reference);
    const ops = operatorCounts((await readModel(optimized)).graph!);
    console.log(
      `small CNN int8 vs fp32 on 128 images: max |Δlogit| ${result.maxAbsDelta.toFixed(4)}, relative RMS ${result.relativeRms.toFixed(4)}, top-1 agreement ${(result.top1 * 100).toFixed(1)} % (fp32 predicts ${result.distinctTop1} classes); ops ${JSON.stringify(ops)}`,
    );
    assert.equal(ops['com.microsoft:QLinearConv'], 4, 'every Conv became QLinearConv');
    assert.equal(ops.Conv, undefined, 'no float Conv is left');
    assert.equal(ops['com.microsoft:QLinearAdd'], 1);
    assert.equal(ops['com.microsoft:QGemm'], 1);
    assert.ok(result.distinctTop1 >= 3, `fp32 predicts ${result.distinctTop1} classes: agreement would be trivial`);
    assert.ok(result.relativeRms <= MAX_RELATIVE_RMS, `relative RMS ${result.relativeRms}`);
    assert.ok(result.top1 >= MIN_TOP1, `top-1 agreement ${result.top1}`);
  });

  for (const factor of [1 / 2, 2, 4]) {
    test(`quantizeStatic with activation scales ×${factor} (${factor < 1 ? 'clipping' : 'coarse'}) fails the accuracy bounds`, async () => {
      const { model } = quantizeStatic(fp32, scaledRanges(calibration, factor));
      const result = agreement(await logits(model, evaluation), reference);
      console.log(
        `activation scales ×${factor}: relative RMS ${result.relativeRms.toFixed(4)}, top-1 agreement ${(result.top1 * 100).toFixed(1)} %`,
      );
      assert.ok(
        result.relativeRms > MAX_RELATIVE_RMS || result.top1 < MIN_TOP1,
        `relative RMS ${result.relativeRms}, top-1 ${result.top1}`,
      );
    });
  }

  test('quantizeStatic with one weight scale per tensor (perChannel: false) also stays within the bounds', async () => {
    const { model, report } = quantizeStatic(fp32, calibration, { perChannel: false });
    assert.deepEqual(report.weights, { bits: 7, perChannel: false });
    const result = agreement(await logits(model, evaluation), reference);
    assert.ok(
      result.relativeRms <= MAX_RELATIVE_RMS && result.top1 >= MIN_TOP1,
      `relative RMS ${result.relativeRms}, top-1 ${result.top1}`,
    );
  });

  test("quantizeStatic without bias correction is further from fp32 (weight rounding shifts each channel's mean)", async () => {
    const corrected = agreement(await logits(quantizeStatic(fp32, calibration).model, evaluation), reference);
    const uncorrected = agreement(
      await logits(quantizeStatic(fp32, calibration, { biasCorrection: false }).model, evaluation),
      reference,
    );
    assert.ok(
      corrected.relativeRms < uncorrected.relativeRms * 0.75,
      `relative RMS ${corrected.relativeRms} with, ${uncorrected.relativeRms} without`,
    );
  });

  test('quantizeStatic with keep leaves the named Conv in fp32 and quantizes the rest', () => {
    const { report } = quantizeStatic(fp32, calibration, { keep: ['/down/Conv'] });
    assert.deepEqual(report.keptFp32, { Conv: 1, Relu: 1 });
    assert.equal(report.quantized.Conv, 3);
  });

  test('calibrate with no batches throws KILN_ERR_CALIBRATION_INVALID', async () => {
    await assert.rejects(calibrate(fp32, calibrationTensors(fp32), []), {
      code: 'KILN_ERR_CALIBRATION_INVALID',
      message: /no calibration batches/,
    });
  });

  test('calibrate with an input name the model lacks throws KILN_ERR_CALIBRATION_INVALID naming the inputs', async () => {
    await assert.rejects(calibrate(fp32, calibrationTensors(fp32), calibrationBatches(), { inputName: 'image' }), {
      code: 'KILN_ERR_CALIBRATION_INVALID',
      message: /no input "image".*pixel_values/,
    });
  });
});

describe('quantizeWeight', () => {
  const K = 5;
  const N = 4;
  // Column n peaks at |w| = n + 1 (row 0): one scale per column when the axis is 1.
  const data = Float32Array.from({ length: K * N }, (_, i) => ((i % N) + 1) * (i < N ? -1 : 0.99 * Math.sin(i * 1.7)));
  const cases: Array<[string, number | null, boolean, number]> = [
    ['per column (axis 1), 7-bit', 1, true, 63],
    ['per column (axis 1), 8-bit', 1, false, 127],
    ['per tensor, 7-bit', null, true, 63],
    ['per row (axis 0), 8-bit', 0, false, 127],
  ];
  for (const [label, axis, reduceRange, qmax] of cases) {
    test(`quantizeWeight ${label}: |q| ≤ ${qmax}, the largest |w| maps to ±${qmax}, and every value dequantizes within scale / 2`, () => {
      const q = quantizeWeight(data, [K, N], axis, reduceRange);
      assert.equal(q.scales.length, axis === null ? 1 : axis === 0 ? K : N);
      const scaleOf = (i: number): number => q.scales[axis === null ? 0 : axis === 0 ? Math.floor(i / N) : i % N]!;
      let peak = 0;
      for (let i = 0; i < data.length; i += 1) {
        assert.ok(Math.abs(q.values[i]!) <= qmax);
        peak = Math.max(peak, Math.abs(q.values[i]!));
        assert.ok(Math.abs(q.values[i]! * scaleOf(i) - data[i]!) <= scaleOf(i) / 2 + 1e-7, `element ${i}`);
      }
      assert.equal(peak, qmax);
      if (axis === 1)
        for (let n = 0; n < N; n += 1)
          assert.ok(Math.abs(q.scales[n]! - (n + 1) / qmax) < 1e-6, `column ${n} scale ${q.scales[n]}`);
    });
  }
});

describe('uint8Params', () => {
  const cases: Array<[{ min: number; max: number }, number, number]> = [
    [{ min: -1, max: 3 }, 4 / 255, 64],
    [{ min: 0.5, max: 2 }, 2 / 255, 0],
    [{ min: -2, max: -1 }, 2 / 255, 255],
    [{ min: 0, max: 0 }, 1, 0],
  ];
  for (const [range, scale, zeroPoint] of cases) {
    test(`uint8Params(${JSON.stringify(range)}) → scale ${scale.toPrecision(4)}, zero point ${zeroPoint} (range widened to include 0)`, () => {
      const p = uint8Params(range);
      assert.ok(Math.abs(p.scale - scale) < 1e-7, `scale ${p.scale}`);
      assert.equal(p.zeroPoint, zeroPoint);
    });
  }
});

describe('staticQuantize bias range', () => {
  test('staticQuantize(a Conv channel with weights ~1e-6 and bias 1.0): the int32 bias does not overflow, the channel still outputs about 1.0', async () => {
    const g = new GraphBuilder('tiny-bias');
    const x = g.input('pixel_values', 'float', ['batch', 1, 4, 4]);
    const w = g.weight('conv.weight', Float32Array.from([1e-6, 0.5]), [2, 1, 1, 1]);
    const b = g.weight('conv.bias', Float32Array.from([1.0, 0.1]), [2]);
    g.op('Conv', [x, w, b], { kernel_shape: [1, 1] }, { name: '/conv/Conv', output: 'y' });
    g.output('y', 'float', ['batch', 2, 4, 4]);
    const model = decodeModel(g.toBytes(), 'tiny-bias');
    const batches = [0, 1, 2, 3].map(
      (s): FloatTensor => ({
        data: Float32Array.from(randomFloats(16, 900 + s, 0.5), (v) => v + 0.5),
        dims: [1, 1, 4, 4],
      }),
    );
    const { model: quantized } = await staticQuantize(model, { calibration: batches, biasCorrection: false });
    const dir = await tempDir();
    const path = join(dir, 'q.onnx');
    await writeFile(path, encodeModel(quantized));
    const session = await createSession(path, { backend: 'cpu', optimization: 'all' });
    try {
      const y = (await session.run({ pixel_values: batches[0]! })).y!.data;
      // Channel 0 is 1.0 + 1e-6·x ≈ 1.0 everywhere; with the bias clamped at 2^31 − 1 it came out near 0.13.
      for (let i = 0; i < 16; i += 1) assert.ok(Math.abs(y[i]! - 1) < 0.02, `channel 0, element ${i}: ${y[i]}`);
    } finally {
      await session.release();
    }
  });
});
