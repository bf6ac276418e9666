import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { type QuantizeOptions, quantizeColumns, quantizeModel } from '../../src/compiler/quantize.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import {
  decodeModel,
  encodeModel,
  int64,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from '../../src/onnx/proto.js';
import { createSession } from '../../src/runtime/binding.js';
import { randomFloats, tempDir, tinyClassifier } from '../fixtures/models.js';

const VOCAB = 2000;
const HIDDEN = 64;

/** tinyClassifier with a hidden MatMul + Add layer of HIDDEN × HIDDEN (PyTorch's order: bias first). */
function classifierWithHiddenLayer(): Uint8Array {
  return tinyClassifier({
    hidden: HIDDEN,
    vocab: VOCAB,
    extra: (g, pooled) => {
      const w = g.weight('hidden.weight', randomFloats(HIDDEN * HIDDEN, 11), [HIDDEN, HIDDEN]);
      const b = g.weight('hidden.bias', randomFloats(HIDDEN, 12), [HIDDEN]);
      const mm = g.op('MatMul', [pooled, w], undefined, { name: '/hidden/MatMul' });
      return g.op('Add', [b, mm], undefined, { name: '/hidden/Add' });
    },
  });
}

/** Two encoder-like layers, for `keep` patterns. */
function classifierWithTwoLayers(): Uint8Array {
  return tinyClassifier({
    hidden: 16,
    vocab: VOCAB,
    extra: (g, pooled) => {
      let x = pooled;
      for (const layer of [0, 1]) {
        const w = g.weight(`layer.${layer}.weight`, randomFloats(16 * 16, 20 + layer), [16, 16]);
        x = g.op('MatMul', [x, w], undefined, { name: `/enc/layer.${layer}/MatMul` });
      }
      return x;
    },
  });
}

const load = (bytes: Uint8Array): ModelProto => decodeModel(bytes, 'test.onnx');
const nodes = (model: ModelProto): NodeProto[] => model.graph?.node ?? [];
const nodeNamed = (model: ModelProto, name: string): NodeProto | undefined => nodes(model).find((n) => n.name === name);
const initializer = (model: ModelProto, name: string): TensorProto | undefined =>
  (model.graph?.initializer ?? []).find((t) => t.name === name);

function tokenFeeds(batch: number, sequence: number, vocab: number, seed: number) {
  const ids = randomFloats(batch * sequence, seed, 0.5);
  return {
    input_ids: {
      type: 'int64' as const,
      data: BigInt64Array.from(ids, (x) => BigInt(Math.floor((x + 0.5) * vocab))),
      dims: [batch, sequence],
    },
    attention_mask: {
      type: 'int64' as const,
      data: new BigInt64Array(batch * sequence).fill(1n),
      dims: [batch, sequence],
    },
  };
}

/** Runs a model in ONNX Runtime; returns its first output. */
async function runModel(
  model: ModelProto | Uint8Array,
  feeds: Record<string, ReturnType<typeof tokenFeeds>['input_ids']>,
  optimization: 'all' | 'disabled' = 'all',
): Promise<Float32Array> {
  const path = join(await tempDir('kiln-quantize-'), 'model.onnx');
  await writeFile(path, model instanceof Uint8Array ? model : encodeModel(model));
  const session = await createSession(path, { backend: 'cpu', optimization, intraOpThreads: 1 });
  try {
    const out = await session.run(feeds);
    return out[session.outputNames[0]!]!.data;
  } finally {
    await session.release();
  }
}

/** max |a - b| over max |b|. */
function relativeError(actual: Float32Array, expected: Float32Array): number {
  assert.equal(actual.length, expected.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i += 1) {
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return diff / scale;
}

/**
 * Two layers of 8-bit activations (one scale for the whole tensor) and 7- or 8-bit weights (one
 * scale per column): each rounding is at most 1/254 of its range, and on ONNX Runtime 1.30 the
 * outputs measure 1.1% of max |y| (int8 reduceRange and uint8), so 2% passes them with margin
 * while a weight scale off by 2× (or a dropped bias) is off by tens of percent. Full-range int8
 * gets 15%: on AVX2 without VNNI, MLAS sums u8·s8 pairs in int16 (VPMADDUBSW), which saturate
 * (255·127·2 > 32767); with these uniform weights that measured 10.3%. Machines with VNNI or ARM
 * dot products do not saturate.
 */
const VARIANTS: Array<[string, QuantizeOptions, number]> = [
  ['int8, reduceRange', { weightType: 'int8', reduceRange: true }, 0.02],
  ['int8, full range', { weightType: 'int8', reduceRange: false }, 0.15],
  ['uint8', { weightType: 'uint8' }, 0.02],
];

describe('quantizeModel in ONNX Runtime', () => {
  const fp32 = classifierWithHiddenLayer();
  const feeds = tokenFeeds(4, 6, VOCAB, 5);

  for (const [label, options, tolerance] of VARIANTS) {
    for (const optimization of ['all', 'disabled'] as const) {
      test(`quantizeModel(hidden-layer classifier, ${label}) loads and stays within ${tolerance * 100}% of fp32 (optimization ${optimization})`, async () => {
        const { model, report } = quantizeModel(load(fp32), options);
        assert.deepEqual(report.quantized, ['/hidden/MatMul', '/classifier/MatMul']);
        assert.deepEqual(
          nodes(model)
            .filter((n) => n.opType === 'DynamicQuantizeMatMul')
            .map((n) => n.domain),
          ['com.microsoft', 'com.microsoft'],
        );
        assert.ok((model.opsetImport ?? []).some((o) => o.domain === 'com.microsoft' && int64(o.version) === 1));
        const expected = await runModel(fp32, feeds, optimization);
        const actual = await runModel(model, feeds, optimization);
        const error = relativeError(actual, expected);
        assert.ok(error <= tolerance, `max |Δ| is ${(error * 100).toFixed(2)}% of max |y|`);
        assert.ok(error > 0, 'the output did not change at all: nothing was quantized');
      });
    }
  }

  test('quantizeModel leaves the given model unchanged', () => {
    const model = load(fp32);
    const before = encodeModel(model);
    quantizeModel(model, { quantizeEmbeddings: true });
    assert.deepEqual(encodeModel(model), before);
  });
});

describe('quantizeColumns', () => {
  // Columns whose magnitudes differ by 10^6, and an all-zero column: one scale for the whole
  // matrix would round the small column to 0.
  const K = 5;
  const N = 4;
  const magnitudes = [1000, 1, 0.001, 0];
  const data = new Float32Array(K * N);
  const noise = randomFloats(K * N, 7, 1);
  for (let k = 0; k < K; k += 1) for (let n = 0; n < N; n += 1) data[k * N + n] = noise[k * N + n]! * magnitudes[n]!;

  const cases: Array<[string, QuantizeOptions, (col: number[]) => number, [number, number]]> = [
    [
      'int8, reduceRange',
      { weightType: 'int8', reduceRange: true },
      (c) => Math.max(...c.map(Math.abs)) / 63,
      [-63, 63],
    ],
    [
      'int8, full range',
      { weightType: 'int8', reduceRange: false },
      (c) => Math.max(...c.map(Math.abs)) / 127,
      [-127, 127],
    ],
    ['uint8', { weightType: 'uint8' }, (c) => (Math.max(0, ...c) - Math.min(0, ...c)) / 255, [0, 255]],
  ];
  for (const [label, options, expectedScale, [lo, hi]] of cases) {
    test(`quantizeColumns(${label}) gives each column its own scale and an error ≤ scale/2`, () => {
      const q = quantizeColumns(data, K, N, options);
      for (let n = 0; n < N; n += 1) {
        const column = Array.from({ length: K }, (_, k) => data[k * N + n]!);
        const scale = q.scales[n]!;
        if (magnitudes[n] === 0) {
          assert.equal(scale, 1, 'an all-zero column gets scale 1');
        } else {
          assert.ok(
            Math.abs(scale - expectedScale(column)) <= 1e-6 * scale,
            `column ${n}: scale ${scale}, expected ${expectedScale(column)}`,
          );
        }
        if (options.weightType !== 'uint8') assert.equal(q.zeroPoints[n], 0);
        for (let k = 0; k < K; k += 1) {
          const value = q.values[k * N + n]!;
          assert.ok(value >= lo && value <= hi, `q[${k}, ${n}] = ${value} outside [${lo}, ${hi}]`);
          const error = Math.abs((value - q.zeroPoints[n]!) * scale - data[k * N + n]!);
          assert.ok(error <= (scale / 2) * (1 + 1e-6), `column ${n} row ${k}: error ${error} > scale/2 = ${scale / 2}`);
        }
      }
    });
  }

  test('quantizeColumns(uint8) of a column [-1, 3]: scale 4/255, zero point round(63.75) = 64', () => {
    const q = quantizeColumns(Float32Array.from([-1, 3]), 2, 1, { weightType: 'uint8' });
    assert.equal(q.scales[0], Math.fround(4 / 255));
    assert.equal(q.zeroPoints[0], 64);
    assert.deepEqual(Array.from(q.values), [0, 255]);
  });

  test('quantizeColumns(int8, reduceRange) of a column [-2, 0.5]: -63 at the largest magnitude, 0.5 → 15.75 → 16', () => {
    const q = quantizeColumns(Float32Array.from([-2, 0.5]), 2, 1, { weightType: 'int8', reduceRange: true });
    assert.equal(q.scales[0], Math.fround(2 / 63));
    assert.deepEqual(Array.from(q.values), [-63, 16]);
  });

  test('quantizeColumns(int8, reduceRange) keeps u8·s8 pair sums within int16 (no VPMADDUBSW saturation)', () => {
    const q = quantizeColumns(randomFloats(64 * 64, 3), 64, 64, { weightType: 'int8', reduceRange: true });
    const largest = Math.max(...Array.from(q.values, Math.abs));
    assert.equal(largest, 63);
    assert.ok(255 * largest * 2 <= 32767);
  });
});

describe('quantizeModel graph rewriting', () => {
  test('quantizeModel folds a bias Add (either input order) into DynamicQuantizeMatMul', () => {
    const { model, report } = quantizeModel(load(classifierWithHiddenLayer()));
    assert.deepEqual(report.quantized, ['/hidden/MatMul', '/classifier/MatMul']);
    assert.equal(nodes(model).filter((n) => n.opType === 'Add').length, 0, 'bias Adds left in the graph');
    const hidden = nodeNamed(model, '/hidden/MatMul')!;
    assert.equal(hidden.opType, 'DynamicQuantizeMatMul');
    assert.deepEqual(hidden.input, [
      nodeNamed(model, '/pool/Div')!.output![0]!,
      'hidden.weight_quantized',
      'hidden.weight_scale',
      'hidden.weight_zero_point',
      'hidden.bias',
    ]);
    const classifier = nodeNamed(model, '/classifier/MatMul')!;
    assert.deepEqual(
      classifier.output,
      ['logits'],
      'the folded node writes the Add output, so graph outputs keep their names',
    );
    assert.equal(classifier.input![4], 'classifier.bias');
    assert.equal(initializer(model, 'hidden.weight'), undefined, 'the float weight is removed');
    assert.equal(initializer(model, 'hidden.weight_quantized')!.dataType, 3 /* INT8 */);
    assert.deepEqual(initializer(model, 'hidden.weight_scale')!.dims!.map(int64), [HIDDEN]);
  });

  test('quantizeModel keeps an Add whose MatMul output is also read elsewhere', () => {
    const g = new GraphBuilder('shared-output');
    const ids = g.input('input_ids', 'int64', ['batch']);
    const x = g.op('Gather', [g.weight('table', randomFloats(10 * 4, 1), [10, 4]), ids], { axis: 0 });
    const mm = g.op('MatMul', [x, g.weight('w', randomFloats(12, 2), [4, 3])], undefined, { name: '/mm' });
    g.op('Add', [mm, g.weight('b', randomFloats(3, 3), [3])], undefined, { name: '/add', output: 'y' });
    g.op('Relu', [mm], undefined, { output: 'z' });
    g.output('y', 'float', ['batch', 3]);
    g.output('z', 'float', ['batch', 3]);
    const { model } = quantizeModel(load(g.toBytes()));
    assert.equal(nodeNamed(model, '/add')?.opType, 'Add');
    assert.equal(nodeNamed(model, '/mm')!.input!.length, 4, 'no bias input');
  });

  const keepCases: Array<[string, QuantizeOptions, string[], string[]]> = [
    [
      'keep an exact name',
      { keep: ['/classifier/MatMul'] },
      ['/enc/layer.0/MatMul', '/enc/layer.1/MatMul'],
      ['/classifier/MatMul'],
    ],
    ['keep a prefix*', { keep: ['/enc/*'] }, ['/classifier/MatMul'], ['/enc/layer.0/MatMul', '/enc/layer.1/MatMul']],
    [
      'keep a name that matches nothing',
      { keep: ['/enc/layer.0'] },
      ['/enc/layer.0/MatMul', '/enc/layer.1/MatMul', '/classifier/MatMul'],
      [],
    ],
    [
      'minElements above the 16×2 head',
      { minElements: 33 },
      ['/enc/layer.0/MatMul', '/enc/layer.1/MatMul'],
      ['/classifier/MatMul'],
    ],
  ];
  for (const [label, options, quantized, kept] of keepCases) {
    test(`quantizeModel(${label}) leaves those MatMuls in fp32 and lists them in kept`, () => {
      const { model, report } = quantizeModel(load(classifierWithTwoLayers()), options);
      assert.deepEqual(report.quantized, quantized);
      assert.deepEqual(report.kept, kept);
      for (const name of kept) {
        assert.equal(nodeNamed(model, name)?.opType, 'MatMul', name);
        assert.ok(initializer(model, nodeNamed(model, name)!.input![1]!), `${name}'s float weight is still there`);
      }
      for (const name of quantized) assert.equal(nodeNamed(model, name)?.opType, 'DynamicQuantizeMatMul', name);
    });
  }

  test('quantizeModel leaves activation × activation MatMuls (attention scores) alone', async () => {
    const g = new GraphBuilder('attention-scores');
    const ids = g.input('input_ids', 'int64', ['batch', 'sequence']);
    g.input('attention_mask', 'int64', ['batch', 'sequence']);
    const x = g.op('Gather', [g.weight('table', randomFloats(50 * 8, 1), [50, 8]), ids], { axis: 0 });
    const q = g.op('MatMul', [x, g.weight('wq', randomFloats(64, 2), [8, 8])], undefined, { name: '/q/MatMul' });
    const k = g.op('MatMul', [x, g.weight('wk', randomFloats(64, 3), [8, 8])], undefined, { name: '/k/MatMul' });
    const kT = g.op('Transpose', [k], { perm: [0, 2, 1] });
    g.op('MatMul', [q, kT], undefined, { name: '/scores/MatMul', output: 'scores' });
    g.output('scores', 'float', ['batch', 'sequence', 'sequence']);
    const fp32 = load(g.toBytes());
    const { model, report } = quantizeModel(fp32);
    assert.deepEqual(report.quantized, ['/q/MatMul', '/k/MatMul']);
    assert.deepEqual(report.kept, []);
    assert.deepEqual(nodeNamed(model, '/scores/MatMul'), nodeNamed(fp32, '/scores/MatMul'));
    const feeds = tokenFeeds(2, 5, 50, 9);
    assert.ok(relativeError(await runModel(model, feeds), await runModel(fp32, feeds)) <= 0.03);
  });

  test('quantizeModel rewrites Gemm (transB 1, C bias) and keeps a weight tied to a Gather', async () => {
    // A tied LM head: the embedding table is also the Gemm's B (transposed), so the float table
    // must stay for the Gather, and it is not an embedding to quantize (something else reads it).
    const g = new GraphBuilder('tied-gemm');
    const ids = g.input('input_ids', 'int64', ['batch']);
    g.input('attention_mask', 'int64', ['batch']);
    const table = g.weight('table', randomFloats(1000 * 8, 1), [1000, 8]);
    const x = g.op('Gather', [table, ids], { axis: 0 }, { name: '/embed/Gather' });
    g.op(
      'Gemm',
      [x, table, g.weight('head.bias', randomFloats(1000, 2), [1000])],
      { transB: 1 },
      { name: '/head/Gemm', output: 'logits' },
    );
    g.output('logits', 'float', ['batch', 1000]);
    const fp32 = load(g.toBytes());
    const { model, report } = quantizeModel(fp32, { quantizeEmbeddings: true });
    assert.deepEqual(report.quantized, ['/head/Gemm']);
    assert.deepEqual(report.embeddings, []);
    assert.deepEqual(nodeNamed(model, '/head/Gemm')!.input, [
      x,
      'table_quantized',
      'table_scale',
      'table_zero_point',
      'head.bias',
    ]);
    assert.deepEqual(initializer(model, 'table_quantized')!.dims!.map(int64), [8, 1000], 'B is stored [K, N]');
    assert.ok(initializer(model, 'table'), 'the float table stays for the Gather');
    assert.equal(report.quantizedFraction, 0);
    const feeds = {
      input_ids: { type: 'int64' as const, data: BigInt64Array.from([3n, 500n, 999n]), dims: [3] },
      attention_mask: { type: 'int64' as const, data: BigInt64Array.from([1n, 1n, 1n]), dims: [3] },
    };
    assert.ok(relativeError(await runModel(model, feeds), await runModel(fp32, feeds)) <= 0.02);
  });
});

describe('quantizeModel report and embeddings', () => {
  /** Gather(table [1000, 4]) → MatMul(W [4, 3]) → Add(bias [3]): 16000 + 48 + 12 initializer bytes. */
  function handGraph(): Uint8Array {
    const g = new GraphBuilder('hand');
    const ids = g.input('input_ids', 'int64', ['batch', 'sequence']);
    g.input('attention_mask', 'int64', ['batch', 'sequence']);
    const x = g.op(
      'Gather',
      [g.weight('table', randomFloats(1000 * 4, 1), [1000, 4]), ids],
      { axis: 0 },
      { name: '/embed/Gather' },
    );
    const mm = g.op('MatMul', [x, g.weight('w', randomFloats(12, 2), [4, 3])], undefined, { name: '/mm' });
    g.op('Add', [mm, g.weight('b', randomFloats(3, 3), [3])], undefined, { name: '/add', output: 'y' });
    g.output('y', 'float', ['batch', 'sequence', 3]);
    return g.toBytes();
  }
  // Float weight elements: 4000 (table) + 12 (w) + 3 (bias) = 4015.
  const cases: Array<[string, QuantizeOptions, { after: number; fraction: number; embeddings: string[] }]> = [
    // w: 12 int8 + 3 float scales (12) + 3 zero points; table and bias unchanged.
    ['MatMul only', {}, { after: 16000 + 12 + 12 + 3 + 12, fraction: 12 / 4015, embeddings: [] }],
    ['uint8', { weightType: 'uint8' }, { after: 16000 + 12 + 12 + 3 + 12, fraction: 12 / 4015, embeddings: [] }],
    // table: 4000 int8 + 1000 float row scales (4000) + an int64 axes tensor (8).
    [
      'quantizeEmbeddings',
      { quantizeEmbeddings: true },
      { after: 4000 + 4000 + 8 + 12 + 12 + 3 + 12, fraction: 4012 / 4015, embeddings: ['table'] },
    ],
  ];
  for (const [label, options, expected] of cases) {
    test(`quantizeModel(hand graph, ${label}) reports exact weightBytes and quantizedFraction`, async () => {
      const fp32 = load(handGraph());
      const { model, report } = quantizeModel(fp32, options);
      assert.deepEqual(report.weightBytes, { before: 16060, after: expected.after });
      assert.equal(report.quantizedFraction, expected.fraction);
      assert.deepEqual(report.embeddings, expected.embeddings);
      const feeds = tokenFeeds(2, 7, 1000, 4);
      assert.ok(relativeError(await runModel(model, feeds), await runModel(fp32, feeds)) <= 0.02);
    });
  }

  test('quantizeModel(quantizeEmbeddings) stores a 2000 × 64 table in about a quarter of the bytes and keeps outputs within 2%', async () => {
    const fp32 = classifierWithHiddenLayer();
    const options: QuantizeOptions = { quantizeEmbeddings: true, keep: ['/hidden/MatMul', '/classifier/MatMul'] };
    const { model, report } = quantizeModel(load(fp32), options);
    assert.deepEqual(report.embeddings, ['embeddings']);
    assert.deepEqual(report.quantized, []);
    const tableBytes = VOCAB * HIDDEN * 4;
    const saved = report.weightBytes.before - report.weightBytes.after;
    // int8 values + one float scale per row + the axes tensor: 1/4 + 1/HIDDEN of the float bytes.
    assert.equal(saved, tableBytes - (VOCAB * HIDDEN + VOCAB * 4 + 8));
    assert.ok(tableBytes / (tableBytes - saved) > 3.7);
    const gather = nodeNamed(model, '/embeddings/Gather')!;
    assert.deepEqual(gather.input, ['embeddings_quantized', 'input_ids']);
    assert.equal(initializer(model, 'embeddings'), undefined);
    assert.ok(
      !(model.opsetImport ?? []).some((o) => o.domain === 'com.microsoft'),
      'only standard operators were added',
    );
    const feeds = tokenFeeds(3, 9, VOCAB, 8);
    for (const optimization of ['all', 'disabled'] as const) {
      const error = relativeError(
        await runModel(model, feeds, optimization),
        await runModel(fp32, feeds, optimization),
      );
      assert.ok(
        error > 0 && error <= 0.02,
        `max |Δ| is ${(error * 100).toFixed(2)}% of max |y| (optimization ${optimization})`,
      );
    }
  });
});
