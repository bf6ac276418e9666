/**
 * Attention parts: heads split and merged, the padding mask as an additive bias, scaled
 * dot-product attention with any extra score terms (relative-position bias, sliding window),
 * and rotary position embeddings. Each is written once, in the graph's [batch, heads, tokens,
 * head size] layout, for every architecture that uses it.
 */
import type { EncoderParts } from './encoder-parts.js';

/** The sequence length, an int64 scalar taken from `ids` [batch, tokens] (made once). */
export function sequenceLength(p: EncoderParts, ids: string): string {
  return p.once('sequence_length', () =>
    p.g.op('Gather', [p.g.op('Shape', [ids]), p.int('one', [1], [])], { axis: 0 }),
  );
}

/** Token positions 0 … tokens−1, int64 [tokens] (made once). */
export function positionIds(p: EncoderParts, ids: string): string {
  return p.once('position_ids', () =>
    p.g.op('Range', [p.int('zero', [0], []), sequenceLength(p, ids), p.int('one', [1], [])], undefined, {
      name: '/positions/Range',
    }),
  );
}

/** [batch, tokens, heads·size] → [batch, heads, tokens, size], or [batch, heads, size, tokens] for keys (`transposed`). */
export function splitHeads(p: EncoderParts, x: string, heads: number, size: number, transposed = false): string {
  const shape = p.int(`split_heads_${heads}_${size}`, [0, 0, heads, size]);
  return p.g.op('Transpose', [p.g.op('Reshape', [x, shape])], { perm: transposed ? [0, 2, 3, 1] : [0, 2, 1, 3] });
}

/** [batch, heads, tokens, size] → [batch, tokens, heads·size]. */
export function mergeHeads(p: EncoderParts, x: string, width: number): string {
  return p.g.op('Reshape', [
    p.g.op('Transpose', [x], { perm: [0, 2, 1, 3] }),
    p.int(`merge_heads_${width}`, [0, 0, width]),
  ]);
}

/**
 * Whether each token is padding (`attention_mask` == 0), bool, with `axes` inserted (made once
 * per `name`). The int64 mask is compared, not cast to float: ONNX Runtime's WebGPU kernels take
 * no int64 (Cast included), so the first node on the mask runs on the CPU either way, and a bool
 * output keeps the float work that follows on the GPU, as PyTorch exports' `mask == 0` does.
 */
export function paddedTokens(p: EncoderParts, attentionMask: string, name: string, axes: number[]): string {
  return p.once(`padded:${name}`, () =>
    p.g.op('Equal', [p.g.op('Unsqueeze', [attentionMask, p.int(name, axes)]), p.int('zero', [0], [])]),
  );
}

/**
 * The padding mask as a score bias [batch, 1, 1, tokens]: −10000 on padded keys, 0 elsewhere
 * (transformers' (1 − mask) · −10000 for a 0/1 mask); exp(−10000) is 0 in float32, so padded
 * keys get no weight.
 */
export function paddingBias(p: EncoderParts, attentionMask: string): string {
  return p.once('padding_bias', () =>
    p.g.op(
      'Where',
      [paddedTokens(p, attentionMask, 'mask_axes', [1, 2]), p.float('mask_fill', -10000), p.float('zero_f', 0)],
      undefined,
      { name: '/attention_mask/Where' },
    ),
  );
}

/**
 * A local window as a score bias [1, 1, tokens, tokens]: 0 where |query − key| ≤ `half`, −10000
 * elsewhere (transformers' sliding-window mask, built in the graph for any length).
 */
export function slidingWindowBias(p: EncoderParts, ids: string, half: number): string {
  return p.once(`window_bias_${half}`, () => {
    const g = p.g;
    const positions = positionIds(p, ids);
    const distance = g.op('Abs', [
      g.op('Sub', [
        g.op('Unsqueeze', [positions, p.int('axis_1', [1])]),
        g.op('Unsqueeze', [positions, p.int('axis_0', [0])]),
      ]),
    ]);
    const outside = g.op('Greater', [distance, p.int(`window_half_${half}`, [half], [])]);
    const bias = g.op('Where', [outside, p.float('mask_fill', -10000), p.float('zero_f', 0)], undefined, {
      name: `/window_${half}/Where`,
    });
    return g.op('Unsqueeze', [bias, p.int('mask_axes_01', [0, 1])]);
  });
}

/**
 * softmax(q·kᵀ · `scale` + Σ `biases`) · v over heads: `q` and `v` [batch, heads, tokens, size],
 * `keyT` [batch, heads, size, tokens]; each bias broadcasts to [batch, heads, tokens, tokens]
 * (the padding mask, relative-position scores already scaled, a window).
 */
export function attend(
  p: EncoderParts,
  parts: { q: string; keyT: string; v: string; scale: number; biases: string[]; name: string },
): string {
  const g = p.g;
  let scores = g.op('Mul', [g.op('MatMul', [parts.q, parts.keyT]), p.float(`scale_${parts.scale}`, parts.scale)]);
  for (const bias of parts.biases) scores = g.op('Add', [scores, bias]);
  const probs = g.op('Softmax', [scores], { axis: 3 }, { name: `${parts.name}/Softmax` });
  return g.op('MatMul', [probs, parts.v]);
}

/**
 * Rotary position embedding tables for one base (`theta`): cos and sin of position · inverse
 * frequency, [tokens, size], the frequencies repeated for both halves (transformers' layout,
 * rotate_half). Computed in the graph for any length, in float32 as transformers does.
 */
export function rotaryTables(p: EncoderParts, ids: string, theta: number, size: number): { cos: string; sin: string } {
  const key = `rotary_${theta}_${size}`;
  const g = p.g;
  const angles = p.once(`${key}_angles`, () => {
    // inv_freq[i] = 1 / theta^(2i / size), computed in the graph in float32 as torch computes it
    // (ONNX Runtime folds it to a constant when optimizing).
    const even = g.op(
      'Cast',
      [g.op('Range', [p.int('zero', [0], []), p.int(`size_${size}`, [size], []), p.int('two', [2], [])])],
      {
        to: 1,
      },
    );
    const exponents = g.op('Div', [even, p.float(`size_f_${size}`, size)]);
    const inverse = g.op('Reciprocal', [g.op('Pow', [p.float(`theta_${theta}`, theta), exponents])]);
    const frequencies = g.op('Unsqueeze', [g.op('Concat', [inverse, inverse], { axis: 0 }), p.int('axis_0', [0])]);
    const positions = g.op('Cast', [g.op('Unsqueeze', [positionIds(p, ids), p.int('axis_1', [1])])], { to: 1 });
    return g.op('Mul', [positions, frequencies], undefined, { name: `/${key}/angles` });
  });
  return {
    cos: p.once(`${key}_cos`, () => g.op('Cos', [angles])),
    sin: p.once(`${key}_sin`, () => g.op('Sin', [angles])),
  };
}

/** x · cos + rotate_half(x) · sin for x [batch, heads, tokens, size]; rotate_half(x) = [−x₂, x₁]. */
export function applyRotary(p: EncoderParts, x: string, tables: { cos: string; sin: string }, size: number): string {
  const g = p.g;
  const half = size / 2;
  const axis = p.int('axis_last', [-1]);
  const first = g.op('Slice', [x, p.int('zero_1', [0]), p.int(`half_${half}`, [half]), axis]);
  const second = g.op('Slice', [x, p.int(`half_${half}`, [half]), p.int(`end_${size}`, [size]), axis]);
  const rotated = g.op('Concat', [g.op('Neg', [second]), first], { axis: -1 });
  return g.op('Add', [g.op('Mul', [x, tables.cos]), g.op('Mul', [rotated, tables.sin])]);
}
