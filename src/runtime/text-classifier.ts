/**
 * A loaded text-classification artifact: the tokenizer on the calling thread, a scheduler in
 * front of replica workers (ONNX Runtime sessions), softmax and labels on the way back.
 */
import { softmaxTop } from '../core/stats.js';
import { type Manifest, readArtifact } from '../model/artifact.js';
import { asText, type ModelInput, type ModelOptions } from './task-model.js';
import { TextModel, type TextParts } from './text-model.js';

export interface Prediction {
  label: string;
  /** Softmax probability of `label`, in [0, 1]. */
  score: number;
  /** Raw logits, one per label in the manifest's order. */
  logits: number[];
  /** Tokens the model saw, special tokens included. */
  tokens: number;
  /** True when the text was cut at the artifact's max length. */
  truncated: boolean;
}

export class TextClassifier extends TextModel<Prediction> {
  private constructor(dir: string, manifest: Manifest, parts: TextParts) {
    super(dir, manifest, parts);
  }

  get task(): 'text-classification' {
    return 'text-classification';
  }

  static async load(artifactPath: string, options: ModelOptions = {}): Promise<TextClassifier> {
    const { dir, manifest } = await readArtifact(artifactPath, { verify: options.verify !== false });
    return TextClassifier.open(dir, manifest, options);
  }

  /** Starts replicas for an artifact already read (load-model.ts picks the class by task). */
  static async open(dir: string, manifest: Manifest, options: ModelOptions): Promise<TextClassifier> {
    return new TextClassifier(dir, manifest, await TextModel.start(dir, manifest, options));
  }

  /**
   * Classifies texts; each is queued on its own and batched with whatever else is waiting.
   * `describe(i)` names text i in errors (e.g. "line 5 of reviews.txt").
   */
  async classify(
    texts: readonly string[],
    describe: (index: number) => string = (i) => `text ${i} (counting from 0)`,
    options: { deadline?: number } = {},
  ): Promise<Prediction[]> {
    const rows = await this.runTexts(texts, describe, options);
    return rows.map(({ row, tokens, truncated }) => ({
      ...topLabel(row, this.labels),
      logits: row,
      tokens,
      truncated,
    }));
  }

  infer(
    inputs: readonly ModelInput[],
    describe: (index: number) => string = (i) => `input ${i} (counting from 0)`,
    options: { deadline?: number } = {},
  ): Promise<Prediction[]> {
    return this.classify(
      inputs.map((input, i) => asText(input, describe(i), this.task)),
      describe,
      options,
    );
  }

  /** Logits of rows a client tokenized itself (see {@link TextModel.runTokens}). */
  classifyTokens(rows: ReadonlyArray<{ ids: readonly number[]; typeIds?: readonly number[] }>): Promise<number[][]> {
    return this.runTokens(rows);
  }
}

/** The most likely label and its softmax probability. */
export function topLabel(logits: readonly number[], labels: readonly string[]): { label: string; score: number } {
  const { index, probability } = softmaxTop(logits);
  return { label: labels[index] ?? String(index), score: probability };
}
