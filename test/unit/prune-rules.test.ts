/**
 * pruneToFirstToken's rules, one operator at a time: x [batch, tokens, 4] → MatMul by a weight
 * → OP → the first token (Gather 0 on axis 1) → output. An operator that computes each token on
 * its own is run on token 0 only, with the same output; one that mixes tokens (normalizing,
 * summing or reordering along the token axis) must stop the pass.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { pruneToFirstToken } from '../../src/compiler/prune.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { decodeModel, encodeModel } from '../../src/onnx/proto.js';
import { createSession } from '../../src/runtime/binding.js';
import { randomFloats, tempDir } from '../fixtures/models.js';

type Op = (g: GraphBuilder, x: string) => string;

const ROW_WISE: Record<string, Op> = {
  Relu: (g, x) => g.op('Relu', [x]),
  'LayerNormalization over features': (g, x) =>
    g.op('LayerNormalization', [x, g.constant('s', [1, 2, 3, 4], [4]), g.constant('b', [0, 0, 1, 0], [4])], {
      axis: -1,
    }),
  'Softmax over features': (g, x) => g.op('Softmax', [x], { axis: -1 }),
  'ReduceMean over features (keepdims), broadcast back': (g, x) =>
    g.op('Sub', [x, g.op('ReduceMean', [x], { axes: [-1], keepdims: 1 })]),
  'Reshape [0, 0, 2, 2] then back': (g, x) =>
    g.op('Reshape', [g.op('Reshape', [x, g.ints('split', [0, 0, 2, 2])]), g.ints('merge', [0, 0, 4])]),
  'Transpose features only': (g, x) =>
    g.op('Reshape', [
      g.op('Transpose', [g.op('Reshape', [x, g.ints('split', [0, 0, 2, 2])])], { perm: [0, 1, 3, 2] }),
      g.ints('merge', [0, 0, 4]),
    ]),
  // ModernBERT's gated feed-forward: both halves of a Split over features, on token 0.
  'Split over features, the halves multiplied, back to 4 features': (g, x) => {
    const [a, b] = g.node('Split', [x, g.ints('halves', [2, 2])], { outputs: 2, attrs: { axis: -1 } });
    const gated = g.op('Add', [g.op('Mul', [a!, b!]), g.op('Cos', [b!])]);
    return g.op('MatMul', [gated, g.weight('up', randomFloats(8, 7), [2, 4])]);
  },
  // DeBERTa's c2p scores: per token, features picked by an index along the feature axis (the
  // index expanded to the input's shape, as DeBERTa's is to the ids').
  'GatherElements along features, indices per token': (g, x) => {
    const picks = g.ints('picks', [3, 0, 0, 2, 1, 1, 2, 3, 0, 3, 1, 2, 2, 2, 3, 0, 1, 0, 3, 1], [5, 4]);
    return g.op('GatherElements', [x, g.op('Expand', [picks, g.op('Shape', ['x'])])], { axis: -1 });
  },
  'MatMul by a weight and a bias': (g, x) =>
    g.op('Add', [
      g.op('MatMul', [x, g.weight('w2', randomFloats(16, 5), [4, 4])]),
      g.weight('b2', randomFloats(4, 6), [4]),
    ]),
};

const MIXING: Record<string, Op> = {
  'LayerNormalization over tokens and features': (g, x) =>
    g.op('LayerNormalization', [x, g.constant('s', [1], [1]), g.constant('b', [0], [1])], { axis: 1 }),
  'Softmax over tokens': (g, x) => g.op('Softmax', [x], { axis: 1 }),
  'CumSum over tokens': (g, x) => g.op('CumSum', [x, g.ints('axis', [1], [])]),
  'ReduceMean over tokens (keepdims)': (g, x) => g.op('ReduceMean', [x], { axes: [1], keepdims: 1 }),
  'Reshape that merges tokens into features': (g, x) =>
    g.op('Reshape', [g.op('Reshape', [x, g.ints('flat', [0, 1, -1])]), g.ints('back', [0, -1, 4])]),
  'the mean over tokens, taken through Transposes, added to each token': (g, x) => {
    const tokensLast = g.op('Transpose', [x], { perm: [0, 2, 1] });
    const mean = g.op('ReduceMean', [tokensLast], { axes: [-1], keepdims: 1 });
    return g.op('Add', [x, g.op('Transpose', [mean], { perm: [0, 2, 1] })]);
  },
  // The first row of the second part is token 2.
  'Split over tokens': (g, x) => g.node('Split', [x, g.ints('parts', [2, 3])], { outputs: 2, attrs: { axis: 1 } })[1]!,
  'GatherElements along tokens': (g, x) =>
    g.op('GatherElements', [x, g.op('Expand', [g.ints('rows', [4, 3, 2, 1, 0], [5, 1]), g.op('Shape', ['x'])])], {
      axis: 1,
    }),
  'a token-mixing MatMul (tokens × tokens)': (g, x) =>
    g.op('MatMul', [g.op('MatMul', [x, g.op('Transpose', [x], { perm: [0, 2, 1] })]), x]),
};

function graph(op: Op): Uint8Array {
  const g = new GraphBuilder('rule');
  const x = g.input('x', 'float', ['batch', 'tokens', 4]);
  const projected = g.op('MatMul', [x, g.weight('w', randomFloats(16, 3), [4, 4])], undefined, {
    name: '/proj/MatMul',
  });
  const first = g.op('Gather', [op(g, projected), g.ints('zero', [0], [])], { axis: 1 }, { output: 'first' });
  g.op('MatMul', [first, g.weight('head', randomFloats(8, 4), [4, 2])], undefined, { output: 'y' });
  g.output('y', 'float', ['batch', 2]);
  return g.toBytes();
}

let dir: string;
before(async () => {
  dir = await tempDir();
});

async function outputs(bytes: Uint8Array, name: string): Promise<Float32Array> {
  const path = join(dir, `${name.replace(/\W+/g, '_')}.onnx`);
  await writeFile(path, bytes);
  const session = await createSession(path, { backend: 'cpu', optimization: 'disabled' });
  try {
    const x = { type: 'float32' as const, data: randomFloats(3 * 5 * 4, 9, 2), dims: [3, 5, 4] };
    return (await session.run({ x })).y!.data;
  } finally {
    await session.release();
  }
}

for (const [name, op] of Object.entries(ROW_WISE)) {
  test(`pruneToFirstToken(${name}) runs the layer on token 0 and answers the same`, async () => {
    const bytes = graph(op);
    const result = pruneToFirstToken(decodeModel(bytes, name), { length: 5 });
    assert.ok(result.report.pruned, result.report.pruned ? '' : result.report.reason);
    assert.ok(result.report.weightProducts.includes('/proj/MatMul'));
    const [before, after] = [await outputs(bytes, `${name}-full`), await outputs(encodeModel(result.model), name)];
    for (let i = 0; i < before.length; i += 1) assert.ok(Math.abs(before[i]! - after[i]!) <= 1e-6, `${i}`);
  });
}

for (const [name, op] of Object.entries(MIXING)) {
  test(`pruneToFirstToken(${name}) leaves the projection over every token`, () => {
    const result = pruneToFirstToken(decodeModel(graph(op), name), { length: 5 });
    assert.equal(result.report.pruned, false);
  });
}
