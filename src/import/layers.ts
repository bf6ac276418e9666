/**
 * Transformer pieces that the checkpoint importer and the ViT synth both write, in the shapes
 * ONNX Runtime's optimizer fuses and with nodes named after the module, as PyTorch's exporter
 * names them: a Linear layer (MatMul by the transposed weight, then Add), LayerNormalization,
 * the exact GELU and multi-head self-attention.
 */
import type { GraphBuilder } from '../onnx/builder.js';
import { transpose } from '../onnx/weights.js';

/** A Linear layer's weight, stored [in, out] for MatMul as `<name>.T` (PyTorch keeps [out, in]). */
export function transposedWeight(
  g: GraphBuilder,
  name: string,
  inFeatures: number,
  outFeatures: number,
  load: () => Promise<Float32Array>,
): string {
  return g.lazyWeight(`${name}.T`, [inFeatures, outFeatures], async () =>
    transpose(await load(), outFeatures, inFeatures),
  );
}

/** x · weight + bias, the nodes named `/<module>/MatMul` and `/<module>/Add`. */
export function linearNodes(
  g: GraphBuilder,
  x: string,
  weight: string,
  bias: string,
  module: string,
  output?: string,
): string {
  const product = g.op('MatMul', [x, weight], undefined, { name: `/${module}/MatMul` });
  return g.op('Add', [product, bias], undefined, { name: `/${module}/Add`, output });
}

export function layerNorm(
  g: GraphBuilder,
  x: string,
  scale: string,
  bias: string,
  epsilon: number,
  module: string,
): string {
  return g.op(
    'LayerNormalization',
    [x, scale, bias],
    { axis: -1, epsilon: { float: epsilon } },
    { name: `/${module}/LayerNorm` },
  );
}

/**
 * 0.5 · x · (1 + erf(x / √2)): the exact GELU, in the node order ONNX Runtime fuses. `names`
 * names the Erf (optional) and the final Mul.
 */
export function exactGelu(
  g: GraphBuilder,
  x: string,
  constants: { sqrt2: string; one: string; half: string },
  names: { erf?: string; mul: string },
): string {
  const erf = g.op('Erf', [g.op('Div', [x, constants.sqrt2])], undefined, { name: names.erf });
  return g.op('Mul', [g.op('Mul', [x, g.op('Add', [erf, constants.one])]), constants.half], undefined, {
    name: names.mul,
  });
}

/** The constants every attention layer shares: head split and merge shapes, and √(head size). */
export interface AttentionShapes {
  splitHeads: string;
  mergeHeads: string;
  scale: string;
}

export function attentionShapes(g: GraphBuilder, hidden: number, heads: number): AttentionShapes {
  const headSize = hidden / heads;
  return {
    splitHeads: g.ints('split_heads', [0, 0, heads, headSize]),
    mergeHeads: g.ints('merge_heads', [0, 0, hidden]),
    scale: g.constant('attention_scale', [Math.sqrt(headSize)]),
  };
}

/**
 * softmax(q·kᵀ / √d + mask) · v over heads, merged back to [batch, tokens, hidden]. `project`
 * writes the query, key and value projections, called in that order; `maskBias` (null: none) is
 * added to the scores.
 */
export function selfAttention(
  g: GraphBuilder,
  project: (which: 'query' | 'key' | 'value') => string,
  shapes: AttentionShapes,
  options: { maskBias: string | null; softmaxName: string },
): string {
  const heads = (x: string, perm: number[]): string =>
    g.op('Transpose', [g.op('Reshape', [x, shapes.splitHeads])], { perm });
  const q = heads(project('query'), [0, 2, 1, 3]);
  const k = heads(project('key'), [0, 2, 3, 1]);
  const v = heads(project('value'), [0, 2, 1, 3]);
  const scaled = g.op('Div', [g.op('MatMul', [q, k]), shapes.scale]);
  const scores = options.maskBias ? g.op('Add', [scaled, options.maskBias]) : scaled;
  const probs = g.op('Softmax', [scores], { axis: 3 }, { name: options.softmaxName });
  return g.op('Reshape', [g.op('Transpose', [g.op('MatMul', [probs, v])], { perm: [0, 2, 1, 3] }), shapes.mergeHeads]);
}
