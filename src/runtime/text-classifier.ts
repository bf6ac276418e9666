/**
 * A loaded text-classification artifact: the tokenizer on the calling thread, a scheduler in
 * front of replica workers (ONNX Runtime sessions), softmax and labels on the way back.
 */
import { softmaxTop } from '../core/stats.js';
import type { Manifest } from '../model/artifact.js';
import type { ModelOptions } from './task-model.js';
import { TextModel, type TextParts, type TextRow, type TextTokens } from './text-model.js';

export interface Prediction extends TextTokens {
  label: string;
  /** Softmax probability of `label`, in [0, 1]. */
  score: number;
  /** Raw logits, one per label in the manifest's order. */
  logits: number[];
}

export class TextClassifier extends TextModel<Prediction> {
  private constructor(dir: string, manifest: Manifest, parts: TextParts) {
    super(dir, manifest, parts);
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
    texts: readonly string[],
    describe: (index: number) => string = (i) => `text ${i} (counting from 0)`,
    options: { deadline?: number } = {},
  ): Promise<Prediction[]> {
    return this.runTexts(texts, describe, options);
  }

  protected answer({ row, tokens, truncated }: TextRow): Prediction {
    return { ...topLabel(row, this.labels), logits: row, tokens, truncated };
  }

  /** Logits of rows a client tokenized itself (see {@link TextModel.runTokens}). */
  classifyTokens(
    rows: ReadonlyArray<{ ids: readonly number[]; typeIds?: readonly number[] }>,
    options: { deadline?: number } = {},
  ): Promise<number[][]> {
    return this.runTokens(rows, options);
  }
}

/** The most likely label and its softmax probability. */
export function topLabel(logits: readonly number[], labels: readonly string[]): { label: string; score: number } {
  const { index, probability } = softmaxTop(logits);
  return { label: labels[index] ?? String(index), score: probability };
}
