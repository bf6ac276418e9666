/**
 * Heads on every token's state, as transformers' `…ForTokenClassification` and
 * `…ForQuestionAnswering` write them after the encoder (and after a family's own transform, such
 * as ModernBERT's dense, activation and norm): one Linear per token, dropout being a no-op at
 * inference. The span head's two columns become the outputs Hugging Face's ONNX exports name
 * `start_logits` and `end_logits`, which the question-answering task reads.
 */
import type { EncoderParts } from './encoder-parts.js';

/** `module` on every token of `x` [batch, tokens, hidden]: the graph output `logits` [batch, tokens, labels]. */
export function tokenLogits(p: EncoderParts, x: string, module: string, hidden: number, labels: number): void {
  p.linear(x, module, hidden, labels, { output: 'logits' });
  p.g.output('logits', 'float', ['batch', 'sequence', labels]);
}

/** `module` (Linear to 2) on every token, split into the outputs `start_logits` and `end_logits` [batch, tokens]. */
export function spanLogits(p: EncoderParts, x: string, module: string, hidden: number): void {
  const both = p.linear(x, module, hidden, 2);
  for (const [index, output] of [
    [0, 'start_logits'],
    [1, 'end_logits'],
  ] as const) {
    p.g.op('Gather', [both, p.int(`${output}_index`, [index], [])], { axis: 2 }, { name: `/head/${output}`, output });
    p.g.output(output, 'float', ['batch', 'sequence']);
  }
}
