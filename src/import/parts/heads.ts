/**
 * What an encoder built by parts writes after its last layer: the token states for a base model,
 * or its head. The heads on every token's state are as transformers' `…ForTokenClassification`
 * and `…ForQuestionAnswering` write them after the encoder (and after a family's own transform,
 * such as ModernBERT's dense, activation and norm): one Linear per token, dropout being a no-op
 * at inference. The span head's two columns become the outputs Hugging Face's ONNX exports name
 * `start_logits` and `end_logits`, which the question-answering task reads. The sequence
 * classifier's pooling and transform are each family's own; its last Linear writes `logits`.
 */
import type { HeadKind } from '../architectures.js';
import type { EncoderParts } from './encoder-parts.js';

/** The token-classification head's Linear, as every family kiln builds names it. */
export const TOKEN_HEAD = 'classifier';
/** The question-answering head's Linear, as every family but ModernBERT names it. */
export const SPAN_HEAD = 'qa_outputs';

export interface HeadOptions {
  head: HeadKind;
  hidden: number;
  labels: number;
  /** The token-classification head's Linear. @defaultValue {@link TOKEN_HEAD} */
  tokenHead?: string;
  /** The question-answering head's Linear. @defaultValue {@link SPAN_HEAD} */
  spanHead?: string;
  /** The family's transform of every token's state before a token or span head (ModernBERT's); none by default. */
  perToken?: (x: string) => string;
  /**
   * The sequence classifier: `pool` gives the vector [batch, hidden] the family computes from the
   * token states (the first token's, or a mean, then its dense layers), `out` is the Linear to the labels.
   */
  sequence: { pool: (x: string) => string; out: string };
}

/**
 * The graph's outputs from the token states `x` [batch, tokens, hidden]: `last_hidden_state` for
 * a base model (compile adds pooling for embeddings), else the head's logits.
 */
export function headOutputs(p: EncoderParts, x: string, o: HeadOptions): void {
  const g = p.g;
  const perToken = o.perToken ?? ((y: string) => y);
  switch (o.head) {
    case 'none':
      g.op('Identity', [x], undefined, { name: '/last_hidden_state', output: 'last_hidden_state' });
      g.output('last_hidden_state', 'float', ['batch', 'sequence', o.hidden]);
      return;
    case 'token':
      tokenLogits(p, perToken(x), o.tokenHead ?? TOKEN_HEAD, o.hidden, o.labels);
      return;
    case 'span':
      spanLogits(p, perToken(x), o.spanHead ?? SPAN_HEAD, o.hidden);
      return;
    case 'classifier':
      p.linear(o.sequence.pool(x), o.sequence.out, o.hidden, o.labels, { output: 'logits' });
      g.output('logits', 'float', ['batch', o.labels]);
  }
}

/** `module` on every token of `x` [batch, tokens, hidden]: the graph output `logits` [batch, tokens, labels]. */
function tokenLogits(p: EncoderParts, x: string, module: string, hidden: number, labels: number): void {
  p.linear(x, module, hidden, labels, { output: 'logits' });
  p.g.output('logits', 'float', ['batch', 'sequence', labels]);
}

/** `module` (Linear to 2) on every token, split into the outputs `start_logits` and `end_logits` [batch, tokens]. */
function spanLogits(p: EncoderParts, x: string, module: string, hidden: number): void {
  const both = p.linear(x, module, hidden, 2);
  for (const [index, output] of [
    [0, 'start_logits'],
    [1, 'end_logits'],
  ] as const) {
    p.g.op('Gather', [both, p.int(`${output}_index`, [index], [])], { axis: 2 }, { name: `/head/${output}`, output });
    p.g.output(output, 'float', ['batch', 'sequence']);
  }
}
