/**
 * A loaded feature-extraction artifact: texts → one vector each. Pooling and normalization are
 * part of the compiled graph (compiler/pooling.ts), so a replica's output row is the embedding.
 */
import { type EmbeddingHead, type Manifest, readArtifact } from '../model/artifact.js';
import { asText, type ModelInput, type ModelOptions } from './task-model.js';
import { TextModel, type TextParts } from './text-model.js';

export interface Embedding {
  /** The text's vector; unit length when the artifact normalizes. */
  embedding: number[];
  /** Tokens the model saw, special tokens included. */
  tokens: number;
  /** True when the text was cut at the artifact's max length. */
  truncated: boolean;
}

export class TextEmbedder extends TextModel<Embedding> {
  private constructor(dir: string, manifest: Manifest, parts: TextParts) {
    super(dir, manifest, parts);
  }

  get task(): 'feature-extraction' {
    return 'feature-extraction';
  }

  static async load(artifactPath: string, options: ModelOptions = {}): Promise<TextEmbedder> {
    const { dir, manifest } = await readArtifact(artifactPath, { verify: options.verify !== false });
    return TextEmbedder.open(dir, manifest, options);
  }

  static async open(dir: string, manifest: Manifest, options: ModelOptions): Promise<TextEmbedder> {
    return new TextEmbedder(dir, manifest, await TextModel.start(dir, manifest, options));
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
    const rows = await this.runTexts(texts, describe, options);
    return rows.map(({ row, tokens, truncated }) => ({ embedding: row, tokens, truncated }));
  }

  infer(
    inputs: readonly ModelInput[],
    describe: (index: number) => string = (i) => `input ${i} (counting from 0)`,
    options: { deadline?: number } = {},
  ): Promise<Embedding[]> {
    return this.embed(
      inputs.map((input, i) => asText(input, describe(i), this.task)),
      describe,
      options,
    );
  }

  /** Vectors of rows a client tokenized itself (KServe v2 INT64 tensors). */
  embedTokens(rows: ReadonlyArray<{ ids: readonly number[]; typeIds?: readonly number[] }>): Promise<number[][]> {
    return this.runTokens(rows);
  }
}
