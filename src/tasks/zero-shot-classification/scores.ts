/**
 * Zero-shot classification as Hugging Face's pipeline defines it: each candidate label becomes a
 * hypothesis (the template with the label in place of `{}`), an NLI classifier reads the text and
 * each hypothesis as a pair, and the entailment logits say how well each label fits. Pure
 * functions here; the runtime class (model.ts) runs the pairs.
 */
import { softmax } from '../../core/stats.js';

/** The template Hugging Face's pipeline uses when a request gives none. */
export const DEFAULT_HYPOTHESIS_TEMPLATE = 'This example is {}.';

/** Where an NLI head's entailment and contradiction logits are. */
export interface NliLabels {
  entailment: number;
  contradiction: number;
}

/**
 * The entailment and contradiction labels of an NLI head's id2label, matched as Hugging Face
 * does (case-insensitive, by prefix: "ENTAILMENT", "entailment", "Contradiction"); null when
 * either is missing.
 */
export function nliLabels(labels: readonly string[]): NliLabels | null {
  const find = (prefix: string) => labels.findIndex((l) => l.toLowerCase().startsWith(prefix));
  const entailment = find('entail');
  const contradiction = find('contradict');
  return entailment < 0 || contradiction < 0 ? null : { entailment, contradiction };
}

/** Each label's hypothesis: the template with every `{}` replaced by the label. */
export function hypotheses(labels: readonly string[], template: string): string[] {
  return labels.map((label) => template.replaceAll('{}', label));
}

/**
 * Each label's score from its pair's logits (`rows[i]` for label i). Single-label: the softmax of
 * the entailment logits across the labels (they sum to 1). Multi-label, and a single candidate
 * label: per label, the softmax of its entailment logit against its contradiction logit, so each
 * label is judged on its own.
 */
export function zeroShotScores(rows: readonly (readonly number[])[], nli: NliLabels, multiLabel: boolean): number[] {
  if (multiLabel || rows.length === 1) {
    return rows.map((row) => softmax([row[nli.contradiction]!, row[nli.entailment]!])[1]!);
  }
  return softmax(rows.map((row) => row[nli.entailment]!));
}

/** Labels and scores best first; ties keep the request's order. */
export function ranked(labels: readonly string[], scores: readonly number[]): { labels: string[]; scores: number[] } {
  const order = labels.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
  return { labels: order.map((i) => labels[i]!), scores: order.map((i) => scores[i]!) };
}
