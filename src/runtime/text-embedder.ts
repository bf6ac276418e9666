/**
 * A loaded feature-extraction artifact: texts → one vector each. Pooling and normalization are
 * part of the compiled graph (compiler/pooling.ts), so a replica's output row is the embedding.
 */
import { KilnError } from '../core/errors.js';
import { readArtifact, type EmbeddingHead, type Manifest } from '../model/artifact.js';
import type { EncodedText, TextTokenizer } from '../model/tokenizer.js';
import { textBatcher } from './batcher.js';
import type { Scheduler } from './scheduler.js';
import { runTokens } from './text-classifier.js';
import { asText, loadTokenizer, startScheduler, TaskModel, type Layout, type ModelInput, type ModelOptions } from './task-model.js';

export interface Embedding {
  /** The text's vector; unit length when the artifact normalizes. */
  embedding: number[];
  /** Tokens the model saw, special tokens included. */
  tokens: number;
  /** True when the text was cut at the artifact's max length. */
  truncated: boolean;
}

export class TextEmbedder extends TaskModel<EncodedText, Embedding> {
  private constructor(dir: string, manifest: Manifest, private readonly tokenizer: TextTokenizer, scheduler: Scheduler<EncodedText>, layout: Layout) {
    super(dir, manifest, scheduler, layout);
  }

  get task(): 'feature-extraction' {
    return 'feature-extraction';
  }

  static async load(artifactPath: string, options: ModelOptions = {}): Promise<TextEmbedder> {
    const { dir, manifest } = await readArtifact(artifactPath, { verify: options.verify !== false });
    return TextEmbedder.open(dir, manifest, options);
  }

  static async open(dir: string, manifest: Manifest, options: ModelOptions): Promise<TextEmbedder> {
    const tokenizer = await loadTokenizer(dir, manifest);
    const { scheduler, layout } = await startScheduler(dir, manifest, options, textBatcher(manifest.model.inputs, tokenizer.padId));
    return new TextEmbedder(dir, manifest, tokenizer, scheduler, layout);
  }

  /** Size, pooling and normalization of the vectors. */
  get head(): EmbeddingHead {
    return this.manifest.embedding!;
  }

  /** Embeds texts; each is queued on its own and batched with whatever else is waiting. */
  async embed(
    texts: readonly string[],
    describe: (index: number) => string = (i) => `text ${i} (counting from 0)`,
    options: { deadline?: number } = {},
  ): Promise<Embedding[]> {
    texts.forEach((text, index) => {
      if (text.trim() === '') throw new KilnError('KILN_ERR_INPUT_EMPTY_TEXT', { where: describe(index) });
    });
    const { maxLength } = this.manifest.limits;
    const encoded = texts.map((text) => this.tokenizer.encode(text, maxLength));
    const vectors = await Promise.all(encoded.map((e) => this.scheduler.submit(e, options)));
    return vectors.map((embedding, i) => ({ embedding, tokens: encoded[i]!.ids.length, truncated: encoded[i]!.truncated }));
  }

  infer(inputs: readonly ModelInput[], describe: (index: number) => string = (i) => `input ${i} (counting from 0)`, options: { deadline?: number } = {}): Promise<Embedding[]> {
    return this.embed(inputs.map((input, i) => asText(input, describe(i), this.task)), describe, options);
  }

  inputSize(input: ModelInput): number {
    return typeof input === 'string' ? this.tokenCount(input) : 1;
  }

  /** Embeds rows a client tokenized itself (KServe v2 INT64 tensors). */
  embedTokens(rows: ReadonlyArray<{ ids: readonly number[]; typeIds?: readonly number[] }>): Promise<number[][]> {
    return runTokens(this.scheduler, this.tokenizer, this.manifest.limits.maxLength, rows);
  }

  tokenCount(text: string): number {
    return this.tokenizer.encode(text, this.manifest.limits.maxLength).ids.length;
  }
}
