/**
 * Text → token ids with the model's own `tokenizer.json` (@huggingface/tokenizers), truncated
 * to the artifact's max length the way Hugging Face's `truncation=True` does for one sequence:
 * the text is cut, the special tokens around it are kept.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { KilnError } from '../core/errors.js';

export interface EncodedText {
  ids: number[];
  typeIds: number[];
  /** True when the text had more tokens than max length and was cut. */
  truncated: boolean;
}

export class TextTokenizer {
  private readonly tokenizer: Tokenizer;
  /** Special tokens the template puts after the text ([SEP], </s>): kept when truncating. */
  private readonly trailingSpecials: number;
  readonly padId: number;
  /** Number of token ids the tokenizer can produce (its vocabulary and added tokens). */
  readonly vocabSize: number;

  constructor(tokenizerJson: unknown, tokenizerConfig: unknown, path: string) {
    try {
      this.tokenizer = new Tokenizer(tokenizerJson as object, (tokenizerConfig ?? {}) as object);
    } catch (err) {
      throw new KilnError(
        'KILN_ERR_CONFIG_INVALID',
        { path, problem: `the tokenizer cannot be built from it (${(err as Error).message})` },
        { cause: err },
      );
    }
    this.trailingSpecials = countTrailingSpecials(this.tokenizer);
    this.padId = padTokenId(this.tokenizer, tokenizerJson, tokenizerConfig);
    this.vocabSize = Math.max(...this.tokenizer.get_vocab(true).values()) + 1;
  }

  encode(text: string, maxLength: number): EncodedText {
    const encoding = this.tokenizer.encode(text, { return_token_type_ids: true });
    let ids = encoding.ids;
    let typeIds = encoding.token_type_ids ?? new Array<number>(ids.length).fill(0);
    const truncated = ids.length > maxLength;
    if (truncated) {
      const keep = maxLength - this.trailingSpecials;
      ids = [...ids.slice(0, keep), ...ids.slice(ids.length - this.trailingSpecials)];
      typeIds = [...typeIds.slice(0, keep), ...typeIds.slice(typeIds.length - this.trailingSpecials)];
    }
    return { ids, typeIds, truncated };
  }

  /** The tokenizer's settings worth recording in a manifest. */
  describe(): { padTokenId: number; specialTokensAfterText: number; specialTokensTotal: number } {
    return {
      padTokenId: this.padId,
      specialTokensAfterText: this.trailingSpecials,
      specialTokensTotal: this.tokenizer.encode('').ids.length,
    };
  }
}

function countTrailingSpecials(tokenizer: Tokenizer): number {
  const probe = 'kiln';
  const full = tokenizer.encode(probe).ids;
  const bare = tokenizer.encode(probe, { add_special_tokens: false }).ids;
  if (bare.length === 0) return 0;
  for (let start = 0; start + bare.length <= full.length; start += 1) {
    if (bare.every((id: number, i: number) => full[start + i] === id)) return full.length - start - bare.length;
  }
  return 0;
}

function padTokenId(tokenizer: Tokenizer, tokenizerJson: unknown, tokenizerConfig: unknown): number {
  const padding = (tokenizerJson as { padding?: { pad_id?: unknown } } | null)?.padding;
  if (typeof padding?.pad_id === 'number') return padding.pad_id;
  const padToken = (tokenizerConfig as { pad_token?: unknown } | null)?.pad_token;
  const name =
    typeof padToken === 'string'
      ? padToken
      : typeof (padToken as { content?: unknown })?.content === 'string'
        ? (padToken as { content: string }).content
        : null;
  const id = name ? tokenizer.token_to_id(name) : undefined;
  return id ?? 0;
}
