/**
 * Text → token ids with the model's own `tokenizer.json` (@huggingface/tokenizers), truncated
 * to the artifact's max length the way Hugging Face's `truncation=True` does: the text is cut,
 * the special tokens around it are kept. Pairs are laid out as the post-processor says
 * (pair-template.ts).
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { KilnError } from '../core/errors.js';
import {
  applyPairTemplate,
  cut,
  type PairStyle,
  type PairTemplate,
  type PairTruncation,
  pairLengths,
  readPairTemplate,
  type TruncationDirection,
} from './pair-template.js';

export type { PairStyle, PairTruncation, TruncationDirection } from './pair-template.js';

export interface EncodedText {
  ids: number[];
  typeIds: number[];
  /** True when the text (or either text of a pair) had more tokens than max length allows and was cut. */
  truncated: boolean;
}

export interface EncodeOptions {
  /**
   * Cut an input longer than max length; with false it is refused (KILN_ERR_INPUT_TOO_LONG, 413).
   * @defaultValue true
   */
  truncate?: boolean;
  /** Which end of a text is cut: `right` keeps its start, `left` its end. @defaultValue 'right' */
  truncationDirection?: TruncationDirection;
  /** How an error names the input, e.g. `texts[3]`. @defaultValue 'the text' (or 'the text pair') */
  where?: string;
}

export interface EncodePairOptions extends EncodeOptions {
  /** Which text of the pair is cut. @defaultValue 'longest_first' */
  truncationStrategy?: PairTruncation;
}

export class TextTokenizer {
  private readonly tokenizer: Tokenizer;
  private readonly path: string;
  /** Special tokens the template puts before the text ([CLS], <s>): kept when truncating. */
  private readonly leadingSpecials: number;
  /** Special tokens the template puts after the text ([SEP], </s>): kept when truncating. */
  private readonly trailingSpecials: number;
  private readonly pairLayout: PairTemplate | { problem: string };
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
    this.path = path;
    [this.leadingSpecials, this.trailingSpecials] = specialsAroundText(this.tokenizer);
    this.padId = padTokenId(this.tokenizer, tokenizerJson, tokenizerConfig);
    this.vocabSize = Math.max(...this.tokenizer.get_vocab(true).values()) + 1;
    // A layout that cannot hold a pair only matters to pairs: single texts still encode.
    try {
      const postProcessor = (tokenizerJson as { post_processor?: unknown }).post_processor;
      this.pairLayout = readPairTemplate(postProcessor, (token) => this.tokenizer.token_to_id(token));
    } catch (err) {
      this.pairLayout = { problem: (err as Error).message };
    }
  }

  /** How the post-processor lays out a pair; null when it cannot (encodePair then throws). */
  get pairStyle(): PairStyle | null {
    return 'style' in this.pairLayout ? this.pairLayout.style : null;
  }

  /** Special tokens a pair carries ([CLS] A [SEP] B [SEP]: 3; <s> A </s></s> B </s>: 4); null as pairStyle. */
  get pairSpecialTokens(): number | null {
    return 'style' in this.pairLayout ? this.pairLayout.specials : null;
  }

  encode(text: string, maxLength: number, options: EncodeOptions = {}): EncodedText {
    const encoding = this.tokenizer.encode(text, { return_token_type_ids: true });
    let ids = encoding.ids;
    let typeIds = encoding.token_type_ids ?? new Array<number>(ids.length).fill(0);
    const truncated = ids.length > maxLength;
    if (truncated && options.truncate === false) {
      throw new KilnError('KILN_ERR_INPUT_TOO_LONG', {
        where: options.where ?? 'the text',
        tokens: ids.length,
        limit: maxLength,
      });
    }
    if (truncated) {
      const keep = keepSpecials(maxLength, this.leadingSpecials, this.trailingSpecials, options.truncationDirection);
      ids = keep(ids);
      typeIds = keep(typeIds);
    }
    return { ids, typeIds, truncated };
  }

  /**
   * A text pair (query and passage, premise and hypothesis) as one input: both texts are
   * tokenized without special tokens, cut to fit `maxLength` with the pair's special tokens,
   * then laid out as the tokenizer's post-processor says.
   */
  encodePair(text: string, pair: string, maxLength: number, options: EncodePairOptions = {}): EncodedText {
    if (!('style' in this.pairLayout)) {
      throw new KilnError('KILN_ERR_CONFIG_INVALID', {
        path: this.path,
        problem: `it cannot encode text pairs: ${this.pairLayout.problem}`,
      });
    }
    const layout = this.pairLayout;
    const first = this.bareIds(text);
    const second = this.bareIds(pair);
    const total = first.length + second.length + layout.specials;
    if (total <= maxLength) return { ...applyPairTemplate(layout, first, second), truncated: false };

    const where = options.where ?? 'the text pair';
    if (options.truncate === false) {
      throw new KilnError('KILN_ERR_INPUT_TOO_LONG', { where, tokens: total, limit: maxLength });
    }
    const budget = maxLength - layout.specials;
    if (budget < 2) {
      throw new KilnError('KILN_ERR_INPUT_PAIR_MAX_LENGTH', { limit: maxLength, specials: layout.specials });
    }
    const lengths = pairLengths(first.length, second.length, budget, options.truncationStrategy ?? 'longest_first');
    if (!lengths) {
      throw new KilnError('KILN_ERR_INPUT_PAIR_NO_ROOM', {
        where,
        first: first.length,
        specials: layout.specials,
        limit: maxLength,
      });
    }
    const direction = options.truncationDirection ?? 'right';
    const ids = applyPairTemplate(layout, cut(first, lengths[0], direction), cut(second, lengths[1], direction));
    return { ...ids, truncated: true };
  }

  /** The tokenizer's settings worth recording in a manifest. */
  describe(): { padTokenId: number; specialTokensAfterText: number; specialTokensTotal: number } {
    return {
      padTokenId: this.padId,
      specialTokensAfterText: this.trailingSpecials,
      specialTokensTotal: this.tokenizer.encode('').ids.length,
    };
  }

  private bareIds(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }
}

/**
 * Cuts a too long single-text encoding to `maxLength`, keeping the special tokens: `right`
 * keeps the head and the trailing specials, `left` the leading specials and the tail.
 */
function keepSpecials(
  maxLength: number,
  leading: number,
  trailing: number,
  direction: TruncationDirection = 'right',
): <T>(ids: T[]) => T[] {
  if (direction === 'left') {
    return (ids) => [...ids.slice(0, leading), ...ids.slice(ids.length - (maxLength - leading))];
  }
  return (ids) => [...ids.slice(0, maxLength - trailing), ...ids.slice(ids.length - trailing)];
}

/** How many special tokens the single-text template puts before and after the text. */
function specialsAroundText(tokenizer: Tokenizer): [number, number] {
  const probe = 'kiln';
  const full = tokenizer.encode(probe).ids;
  const bare = tokenizer.encode(probe, { add_special_tokens: false }).ids;
  if (bare.length === 0) return [0, 0];
  for (let start = 0; start + bare.length <= full.length; start += 1) {
    if (bare.every((id: number, i: number) => full[start + i] === id)) {
      return [start, full.length - start - bare.length];
    }
  }
  return [0, 0];
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
