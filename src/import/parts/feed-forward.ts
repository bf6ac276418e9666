/**
 * Feed-forward parts: the BERT-style dense block (Linear → activation → Linear) and the gated
 * one (one Linear to twice the width, split into input and gate, activation(input) · gate, then
 * the output Linear), as GLU encoders such as ModernBERT write it.
 */
import type { EncoderParts, PartActivation } from './encoder-parts.js';

export interface FeedForward {
  /** Module names of the two Linear layers. */
  up: string;
  down: string;
  hidden: number;
  intermediate: number;
  activation: PartActivation;
  bias: boolean;
  /** Names the activation's nodes. */
  name: string;
}

export function denseFeedForward(p: EncoderParts, x: string, f: FeedForward): string {
  const expanded = p.activation(p.linear(x, f.up, f.hidden, f.intermediate, { bias: f.bias }), f.activation, f.name);
  return p.linear(expanded, f.down, f.intermediate, f.hidden, { bias: f.bias });
}

/** `up` maps to 2 · intermediate: its first half is the input, its second the gate (torch's chunk(2)). */
export function gatedFeedForward(p: EncoderParts, x: string, f: FeedForward): string {
  const both = p.linear(x, f.up, f.hidden, 2 * f.intermediate, { bias: f.bias });
  const [input, gate] = p.g.node('Split', [both, p.int(`split_${f.intermediate}`, [f.intermediate, f.intermediate])], {
    attrs: { axis: -1 },
    outputs: 2,
    name: `/${f.up}/Split`,
  }) as [string, string];
  const gated = p.g.op('Mul', [p.activation(input, f.activation, f.name), gate]);
  return p.linear(gated, f.down, f.intermediate, f.hidden, { bias: f.bias });
}
