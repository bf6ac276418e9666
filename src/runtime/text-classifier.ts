/**
 * A loaded text-classification artifact: the tokenizer on the calling thread, a scheduler in
 * front of replica workers (ONNX Runtime sessions), softmax and labels on the way back.
 */
import { KilnError } from '../core/errors.js';
import { readArtifact, type Manifest } from '../model/artifact.js';
import type { TextTokenizer, EncodedText } from '../model/tokenizer.js';
import { textBatcher } from './batcher.js';
import type { Scheduler } from './scheduler.js';
import { asText, loadTokenizer, startScheduler, TaskModel, type Layout, type ModelInput, type ModelOptions } from './task-model.js';

export { resolveReplicas } from './task-model.js';

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

export class TextClassifier extends TaskModel<EncodedText, Prediction> {
  private constructor(dir: string, manifest: Manifest, private readonly tokenizer: TextTokenizer, scheduler: Scheduler<EncodedText>, layout: Layout) {
    super(dir, manifest, scheduler, layout);
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
    const tokenizer = await loadTokenizer(dir, manifest);
    const { scheduler, layout } = await startScheduler(dir, manifest, options, textBatcher(manifest.model.inputs, tokenizer.padId));
    return new TextClassifier(dir, manifest, tokenizer, scheduler, layout);
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
    texts.forEach((text, index) => {
      if (text.trim() === '') throw new KilnError('KILN_ERR_INPUT_EMPTY_TEXT', { where: describe(index) });
    });
    const { maxLength } = this.manifest.limits;
    const encoded = texts.map((text) => this.tokenizer.encode(text, maxLength));
    const logits = await Promise.all(encoded.map((e) => this.scheduler.submit(e, options)));
    return logits.map((values, i) => ({ ...topLabel(values, this.labels), logits: values, tokens: encoded[i]!.ids.length, truncated: encoded[i]!.truncated }));
  }

  infer(inputs: readonly ModelInput[], describe: (index: number) => string = (i) => `input ${i} (counting from 0)`, options: { deadline?: number } = {}): Promise<Prediction[]> {
    return this.classify(inputs.map((input, i) => asText(input, describe(i), this.task)), describe, options);
  }

  inputSize(input: ModelInput): number {
    return typeof input === 'string' ? this.tokenCount(input) : 1;
  }

  /**
   * Classifies sequences a client tokenized itself (KServe v2 INT64 tensors): each row's ids,
   * without padding. Ids must be in the tokenizer's vocabulary and rows no longer than max length.
   */
  async classifyTokens(rows: ReadonlyArray<{ ids: readonly number[]; typeIds?: readonly number[] }>): Promise<number[][]> {
    return runTokens(this.scheduler, this.tokenizer, this.manifest.limits.maxLength, rows);
  }

  /** Token count of a text after truncation (special tokens included). */
  tokenCount(text: string): number {
    return this.tokenizer.encode(text, this.manifest.limits.maxLength).ids.length;
  }
}

/** Checks client-made token rows against the vocabulary and max length, then runs them. */
export function runTokens(
  scheduler: Scheduler<EncodedText>,
  tokenizer: TextTokenizer,
  maxLength: number,
  rows: ReadonlyArray<{ ids: readonly number[]; typeIds?: readonly number[] }>,
): Promise<number[][]> {
  rows.forEach((row, i) => {
    if (row.ids.length === 0 || row.ids.length > maxLength) {
      throw new KilnError('KILN_ERR_INPUT_TOKENS', { row: i, problem: `it has ${row.ids.length} tokens; a row needs 1 to ${maxLength} (the artifact's max length)` });
    }
    const bad = row.ids.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= tokenizer.vocabSize);
    if (bad >= 0) throw new KilnError('KILN_ERR_INPUT_TOKENS', { row: i, problem: `token ${bad} is ${row.ids[bad]}, outside the vocabulary's ids 0..${tokenizer.vocabSize - 1}` });
  });
  return Promise.all(rows.map((row) => scheduler.submit({ ids: [...row.ids], typeIds: row.typeIds ? [...row.typeIds] : row.ids.map(() => 0), truncated: false })));
}

/** The most likely label and its softmax probability (computed stably, max subtracted). */
export function topLabel(logits: readonly number[], labels: readonly string[]): { label: string; score: number } {
  let best = 0;
  for (let i = 1; i < logits.length; i += 1) if (logits[i]! > logits[best]!) best = i;
  const max = logits[best]!;
  let sum = 0;
  for (const value of logits) sum += Math.exp(value - max);
  return { label: labels[best] ?? String(best), score: 1 / sum };
}
