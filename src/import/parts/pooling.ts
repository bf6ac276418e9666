/**
 * Head parts that reduce token states to one vector per sequence, before a classifier: the
 * first token ([CLS]) or the mean over real tokens (mask-weighted, as transformers' heads do).
 */
import { paddedTokens } from './attention.js';
import type { EncoderParts } from './encoder-parts.js';

/** hidden[:, 0], [batch, hidden]. */
export function firstToken(p: EncoderParts, hidden: string): string {
  return p.g.op('Gather', [hidden, p.int('zero', [0], [])], { axis: 1 }, { name: '/head/first_token' });
}

/** Σ hidden · mask / Σ mask over tokens, [batch, hidden]. */
export function maskedMean(p: EncoderParts, hidden: string, attentionMask: string): string {
  const g = p.g;
  const padded = paddedTokens(p, attentionMask, 'axis_last', [-1]);
  const mask = g.op('Where', [padded, p.float('zero_f', 0), p.float('one_f', 1)]);
  const axis = p.int('axis_1', [1]);
  const sum = g.op('ReduceSum', [g.op('Mul', [hidden, mask]), axis], { keepdims: 0 });
  return g.op('Div', [sum, g.op('ReduceSum', [mask, axis], { keepdims: 0 })], undefined, { name: '/head/mean' });
}
