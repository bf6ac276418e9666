/**
 * A loaded feature-extraction artifact: texts → one vector each. Pooling and normalization are
 * part of the compiled graph (compiler/pooling.ts), so a replica's output row is the embedding.
 */
import type { EmbeddingHead, Manifest } from '../../model/artifact.js';
import type { ModelOptions } from '../../runtime/task-model.js';
import {
  TextModel,
  type TextOptions,
  type TextParts,
  type TextRow,
  type TextTokens,
} from '../../runtime/text-model.js';

export interface Embedding extends TextTokens {
  /** The text's vector; unit length when the artifact normalizes. */
  embedding: number[];
}

export class TextEmbedder extends TextModel<Embedding> {
  private constructor(dir: string, manifest: Manifest, parts: TextParts) {
    super(dir, manifest, parts);
  }

  get task(): 'feature-extraction' {
    return 'feature-extraction';
  }

  static async open(dir: string, manifest: Manifest, options: ModelOptions): Promise<TextEmbedder> {
    return new TextEmbedder(dir, manifest, await TextModel.start(dir, manifest, options));
  }

  /** Size, pooling and normalization of the vectors. */
  get head(): EmbeddingHead {
    return this.manifest.embedding!;
  }

  /** The prompts the manifest recorded from config_sentence_transformers.json. */
  override get prompts(): Readonly<Record<string, string>> {
    return this.head.prompts ?? {};
  }

  /** Embeds texts; each is queued on its own and batched with whatever else is waiting. */
  embed(
    texts: readonly string[],
    describe: (index: number) => string = (i) => `text ${i} (counting from 0)`,
    options: TextOptions = {},
  ): Promise<Embedding[]> {
    return this.runTexts(texts, describe, options);
  }

  protected answer({ row, tokens, truncated }: TextRow): Embedding {
    return { embedding: row, tokens, truncated };
  }

  /** Vectors of rows a client tokenized itself (KServe v2 INT64 tensors). */
  embedTokens(
    rows: ReadonlyArray<{ ids: readonly number[]; typeIds?: readonly number[] }>,
    options: { deadline?: number } = {},
  ): Promise<number[][]> {
    return this.runTokens(rows, options);
  }
}
