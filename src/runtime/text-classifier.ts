/**
 * A loaded text-classification artifact: tokenizer → padded batch → ONNX Runtime → softmax →
 * labels. One session on the calling thread; the replica pool and the dynamic batcher build on it.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError } from '../core/errors.js';
import { readArtifact, type Manifest } from '../model/artifact.js';
import { buildFeeds } from '../model/feeds.js';
import { TextTokenizer } from '../model/tokenizer.js';
import { createSession, type Backend, type RuntimeSession } from './binding.js';

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

export interface ClassifierOptions {
  /** Intra-op threads for the session; 0 lets ONNX Runtime use every core. @defaultValue 0 */
  intraOpThreads?: number;
  /** @defaultValue 'cpu' */
  backend?: Backend;
  /** Check every file's SHA-256 against the manifest before loading. @defaultValue true */
  verify?: boolean;
}

export class TextClassifier {
  private constructor(
    readonly dir: string,
    readonly manifest: Manifest,
    private readonly tokenizer: TextTokenizer,
    private readonly session: RuntimeSession,
  ) {}

  static async load(artifactPath: string, options: ClassifierOptions = {}): Promise<TextClassifier> {
    const { dir, manifest } = await readArtifact(artifactPath, { verify: options.verify !== false });
    const tokenizerJson = JSON.parse(await readFile(join(dir, manifest.tokenizer.file), 'utf8')) as unknown;
    const tokenizerConfig = manifest.tokenizer.configFile ? (JSON.parse(await readFile(join(dir, manifest.tokenizer.configFile), 'utf8')) as unknown) : {};
    const tokenizer = new TextTokenizer(tokenizerJson, tokenizerConfig, join(dir, manifest.tokenizer.file));
    const session = await createSession(join(dir, manifest.model.file), {
      backend: options.backend ?? 'cpu',
      // The artifact holds the graph already optimized for this target; do not redo it.
      optimization: 'disabled',
      intraOpThreads: options.intraOpThreads ?? 0,
    });
    return new TextClassifier(dir, manifest, tokenizer, session);
  }

  get labels(): readonly string[] {
    return this.manifest.labels;
  }

  /**
   * Classifies texts in batches of at most the artifact's max batch, each padded to its longest
   * text. `describe(i)` names text i in errors (e.g. "line 5 of reviews.txt").
   */
  async classify(texts: readonly string[], describe: (index: number) => string = (i) => `text ${i} (counting from 0)`): Promise<Prediction[]> {
    texts.forEach((text, index) => {
      if (text.trim() === '') throw new KilnError('KILN_ERR_INPUT_EMPTY_TEXT', { where: describe(index) });
    });
    const { maxLength, maxBatch } = this.manifest.limits;
    const encoded = texts.map((text) => this.tokenizer.encode(text, maxLength));
    const predictions: Prediction[] = [];
    for (let start = 0; start < encoded.length; start += maxBatch) {
      const batch = encoded.slice(start, start + maxBatch);
      const results = await this.session.run(buildFeeds(batch, this.manifest.model.inputs, this.tokenizer.padId));
      const logits = results[this.session.outputNames[0] ?? ''];
      if (!logits) throw new KilnError('KILN_ERR_RUNTIME_RUN', { reason: 'the model returned no logits' });
      const classes = this.labels.length;
      batch.forEach((text, row) => {
        const values = Array.from(logits.data.subarray(row * classes, (row + 1) * classes));
        predictions.push({ ...topLabel(values, this.labels), logits: values, tokens: text.ids.length, truncated: text.truncated });
      });
    }
    return predictions;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
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
