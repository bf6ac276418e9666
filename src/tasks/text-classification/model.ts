/**
 * A loaded text-classification artifact: the tokenizer on the calling thread, a scheduler in
 * front of replica workers (ONNX Runtime sessions), softmax and labels on the way back.
 */
import { argmax } from '../../core/stats.js';
import { type Manifest, type ScoreFunction, scoreFunctionOf } from '../../model/artifact.js';
import type { ModelOptions } from '../../runtime/task-model.js';
import { type TextInput, TextModel, type TextParts, type TextRow, type TextTokens } from '../../runtime/text-model.js';
import { scoresOf } from '../scores.js';

export interface Prediction extends TextTokens {
  /** The label of the largest logit. */
  label: string;
  /** `label`'s score: its softmax probability, sigmoid or logit, as the artifact's score function says. */
  score: number;
  /** Every label's score, in the manifest's label order. */
  scores: number[];
  /** Raw logits, one per label in the manifest's order. */
  logits: number[];
}

export class TextClassifier extends TextModel<Prediction> {
  /** What turns logits into scores (the manifest's, else what the head implies). */
  readonly scoreFunction: ScoreFunction;

  private constructor(dir: string, manifest: Manifest, parts: TextParts) {
    super(dir, manifest, parts);
    this.scoreFunction = scoreFunctionOf(manifest);
  }

  get task(): 'text-classification' {
    return 'text-classification';
  }

  /** Starts replicas for an artifact already read (load-model.ts picks the class by task). */
  static async open(dir: string, manifest: Manifest, options: ModelOptions): Promise<TextClassifier> {
    return new TextClassifier(dir, manifest, await TextModel.start(dir, manifest, options));
  }

  /**
   * Classifies texts; each is queued on its own and batched with whatever else is waiting.
   * `describe(i)` names text i in errors (e.g. "line 5 of reviews.txt").
   */
  classify(
    texts: readonly TextInput[],
    describe: (index: number) => string = (i) => `text ${i} (counting from 0)`,
    options: { deadline?: number } = {},
  ): Promise<Prediction[]> {
    return this.runTexts(texts, describe, options);
  }

  protected answer({ row, tokens, truncated }: TextRow): Prediction {
    return { ...topLabel(row, this.labels, this.scoreFunction), logits: row, tokens, truncated };
  }

  /** Logits of rows a client tokenized itself (see {@link TextModel.runTokens}). */
  classifyTokens(
    rows: ReadonlyArray<{ ids: readonly number[]; typeIds?: readonly number[] }>,
    options: { deadline?: number } = {},
  ): Promise<number[][]> {
    return this.runTokens(rows, options);
  }
}

/** The label of the largest logit, its score and every label's score under `fn`. */
export function topLabel(
  logits: readonly number[],
  labels: readonly string[],
  fn: ScoreFunction = 'softmax',
): { label: string; score: number; scores: number[] } {
  const index = argmax(logits);
  const scores = scoresOf(logits, fn);
  return { label: labels[index] ?? String(index), score: scores[index]!, scores };
}
