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
import { alignPieces, fold, foldWithOrigins, SAME_PIECE, type TokenSpan } from './token-spans.js';

/** What a decoder writes for bytes that are not a whole UTF-8 character. */
const REPLACEMENT = '\uFFFD';
/** Byte pieces looked at together to make one character whole (UTF-8 has at most 4 bytes a character). */
const MAX_BYTE_PIECES = 8;

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

/**
 * One token of a text as Text Embeddings Inference's /tokenize reports it: `start` and `stop`
 * are UTF-8 byte offsets into the text (what the Rust tokenizers library gives TEI); null for
 * special tokens, and for a token whose text cannot be found in the input (an unknown-token
 * marker, a byte piece of a character).
 */
export interface TextToken {
  id: number;
  /** The input's text the token covers; a special token's (or an unplaced token's) own string. */
  text: string;
  special: boolean;
  start: number | null;
  stop: number | null;
}

/** A text's tokens without special tokens, each with its place in the text (token-spans.ts). */
export interface SpannedText {
  ids: number[];
  /** The tokens' strings, as the vocabulary writes them (`##ing`, `Ġworld`, `▁Hello`). */
  tokens: string[];
  /** UTF-16 offsets into the text; null where a token's place cannot be told. */
  spans: Array<TokenSpan | null>;
  /**
   * True for a token that continues the word before it: it carries the vocabulary's
   * continuing-subword prefix (WordPiece's `##`), or, for tokenizers without one, neither it
   * nor the character before it is whitespace. The unknown token never continues a word.
   */
  subword: boolean[];
}

/**
 * A text's tokens (no special tokens) with where each lies in the text, as JavaScript string
 * indices (UTF-16 code units), and the word (pre-tokenizer piece) each belongs to.
 */
export interface TokenSpans {
  ids: number[];
  /** Where token i starts in the text; a token that cannot be placed gets its neighbours' boundary. */
  starts: number[];
  /** Where token i ends (exclusive). */
  ends: number[];
  /** The index of token i's word: word pieces of one word share it. */
  words: number[];
}

/** A pair laid out from ids already tokenized, with where its parts are. */
export interface LaidOutPair {
  ids: number[];
  typeIds: number[];
  /** Index of the second text's first token. */
  secondStart: number;
  /** Index of the leading special token ([CLS], <s>), or null when the layout starts with text. */
  clsIndex: number | null;
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
  /** Ids of the added tokens marked special ([CLS], <s>, [PAD], …). */
  private readonly specialIds: ReadonlySet<number>;
  readonly padId: number;
  /** The unknown token's id; -1 when the vocabulary has none. */
  private readonly unkId: number;
  /** The marker of a token that continues a word (WordPiece's `##`); null when the model has none. */
  private readonly subwordPrefix: string | null;
  /** The special token ids around a single text, read once when first needed. */
  private around: { leading: number[]; trailing: number[] } | null = null;
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
    const model = (
      tokenizerJson as { model?: { unk_token?: unknown; unk_id?: unknown; continuing_subword_prefix?: unknown } }
    ).model;
    // WordPiece and BPE name the unknown token; Unigram (XLM-RoBERTa) gives its id.
    this.unkId =
      (typeof model?.unk_token === 'string' ? this.tokenizer.token_to_id(model.unk_token) : undefined) ??
      (typeof model?.unk_id === 'number' ? model.unk_id : -1);
    this.subwordPrefix =
      typeof model?.continuing_subword_prefix === 'string' && model.continuing_subword_prefix !== ''
        ? model.continuing_subword_prefix
        : null;
    this.vocabSize = Math.max(...this.tokenizer.get_vocab(true).values()) + 1;
    this.specialIds = new Set(
      [...this.tokenizer.get_added_tokens_decoder()].filter(([, token]) => token.special).map(([id]) => id),
    );
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

  /**
   * The tokens of `text` with where each lies in it. @huggingface/tokenizers gives no offsets,
   * so each token's decoded text is looked up in the text from where the previous one ended,
   * compared as the common normalizers see text (lower case, accents stripped).
   */
  tokens(text: string, options: { addSpecialTokens: boolean }): TextToken[] {
    const encoding = this.tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens });
    const folded = foldWithOrigins(text);
    let cursor = 0;
    return encoding.ids.map((id: number, i: number): TextToken => {
      const token = encoding.tokens[i] ?? '';
      if (this.specialIds.has(id)) return { id, text: token, special: true, start: null, stop: null };
      const piece = fold(this.pieceOf(id, token));
      const at = piece === '' ? -1 : folded.text.indexOf(piece, cursor);
      if (at < 0) return { id, text: token, special: false, start: null, stop: null };
      cursor = at + piece.length;
      const from = folded.origins[at]!;
      const to = folded.ends[cursor - 1]!;
      return {
        id,
        text: text.slice(from, to),
        special: false,
        start: Buffer.byteLength(text.slice(0, from)),
        stop: Buffer.byteLength(text.slice(0, to)),
      };
    });
  }

  /**
   * The tokens of `text` without special tokens, with their UTF-16 spans in it and their words.
   * @huggingface/tokenizers gives neither offsets nor word ids: spans come from finding each
   * token's text in the input (as {@link tokens} does), words from running the tokenizer's own
   * normalizer, pre-tokenizer and model word by word. When that does not reproduce the ids (an
   * added token inside the text), a word is a token and the word pieces (`##`) after it.
   */
  spans(text: string): TokenSpans {
    const placed = this.tokens(text, { addSpecialTokens: false });
    const ids = placed.map((t) => t.id);
    const starts: Array<number | null> = [];
    const ends: Array<number | null> = [];
    let byteCursor = 0;
    let charCursor = 0;
    // tokens() gives UTF-8 byte offsets; walk the text once to turn them back into UTF-16 indices.
    const toChar = (byte: number): number => {
      while (byteCursor < byte && charCursor < text.length) {
        const code = text.codePointAt(charCursor)!;
        byteCursor += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
        charCursor += code > 0xffff ? 2 : 1;
      }
      return charCursor;
    };
    for (const token of placed) {
      starts.push(token.start === null ? null : toChar(token.start));
      ends.push(token.stop === null ? null : toChar(token.stop));
    }
    // An unplaced token spans the gap between its placed neighbours.
    let lastEnd = 0;
    const filledStarts = starts.map((start, i) => {
      const value = start ?? lastEnd;
      lastEnd = ends[i] ?? lastEnd;
      return value;
    });
    const filledEnds = ends.map((end, i) => end ?? starts.slice(i + 1).find((s) => s !== null) ?? text.length);
    // Without the whitespace around it: an [UNK] for an emoji spans the emoji.
    starts.forEach((start, i) => {
      if (start !== null && ends[i] !== null) return;
      while (filledStarts[i]! < filledEnds[i]! && /\s/.test(text[filledStarts[i]!]!)) filledStarts[i]! += 1;
      while (filledEnds[i]! > filledStarts[i]! && /\s/.test(text[filledEnds[i]! - 1]!)) filledEnds[i]! -= 1;
    });
    return { ids, starts: filledStarts, ends: filledEnds, words: this.wordsOf(text, placed) };
  }

  /** Word index per token of `text` (see {@link spans}). */
  private wordsOf(text: string, placed: readonly TextToken[]): number[] {
    const parts = this.tokenizer as unknown as {
      normalizer: ((text: string) => string) | null;
      pre_tokenizer: ((text: string, options?: object) => string[]) | null;
      model: (words: string[]) => string[];
    };
    try {
      const normalized = parts.normalizer ? parts.normalizer(text) : text;
      const words = parts.pre_tokenizer ? parts.pre_tokenizer(normalized, { section_index: 0 }) : [normalized];
      const wordOf: number[] = [];
      words.forEach((word, w) => {
        for (const _ of parts.model([word])) wordOf.push(w);
      });
      if (wordOf.length === placed.length) return wordOf;
    } catch {
      // A tokenizer whose parts cannot be called one by one: the fallback below.
    }
    let word = -1;
    return placed.map((t) => {
      if (!this.tokenizer.id_to_token(t.id)?.startsWith('##')) word += 1;
      return Math.max(word, 0);
    });
  }

  /** A pair from ids already tokenized without special tokens, laid out as {@link encodePair} lays it out. */
  layoutPair(first: readonly number[], second: readonly number[]): LaidOutPair {
    if (!('style' in this.pairLayout)) {
      throw new KilnError('KILN_ERR_CONFIG_INVALID', {
        path: this.path,
        problem: `it cannot encode text pairs: ${this.pairLayout.problem}`,
      });
    }
    const { pieces } = this.pairLayout;
    let secondStart = 0;
    for (const piece of pieces) {
      if (piece.kind === 'text' && piece.text === 'B') break;
      secondStart += piece.kind === 'special' ? piece.ids.length : piece.text === 'A' ? first.length : 0;
    }
    return {
      ...applyPairTemplate(this.pairLayout, first, second),
      secondStart,
      clsIndex: pieces[0]?.kind === 'special' ? 0 : null,
    };
  }

  /** The ids of `text` without special tokens. */
  bareIds(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  /** Token ids back to text, as the tokenizer's decoder joins them. */
  decode(ids: readonly number[], options: { skipSpecialTokens: boolean }): string {
    return this.tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecialTokens });
  }

  /** The text a token stands for, without the word-piece or word-start markers around it. */
  private pieceOf(id: number, token: string): string {
    const decoded = this.tokenizer.decode([id], { skip_special_tokens: false, clean_up_tokenization_spaces: false });
    return (token.startsWith('##') && decoded.startsWith('##') ? decoded.slice(2) : decoded).trim();
  }

  /** The tokens of `text` (no special tokens) with where each lies in it, for answers that point into the text. */
  spannedTokens(text: string): SpannedText {
    const encoding = this.tokenizer.encode(text, { add_special_tokens: false });
    const ids = encoding.ids;
    const tokens = ids.map((_id: number, i: number) => encoding.tokens[i] ?? '');
    const pieces: Array<string | null | typeof SAME_PIECE> = [];
    for (let i = 0; i < ids.length; ) {
      const id = ids[i]!;
      if (id === this.unkId || this.specialIds.has(id)) {
        pieces.push(null);
        i += 1;
        continue;
      }
      const piece = this.pieceOf(id, tokens[i]!);
      if (!piece.includes(REPLACEMENT)) {
        pieces.push(piece);
        i += 1;
        continue;
      }
      // Byte pieces of a character (byte-level BPE): decode growing runs until the character is whole.
      let whole: { text: string; end: number } | null = null;
      for (let j = i + 2; j <= Math.min(ids.length, i + MAX_BYTE_PIECES); j += 1) {
        const decoded = this.tokenizer
          .decode(ids.slice(i, j), { skip_special_tokens: false, clean_up_tokenization_spaces: false })
          .trim();
        if (!decoded.includes(REPLACEMENT)) {
          whole = { text: decoded, end: j };
          break;
        }
      }
      if (!whole) {
        pieces.push(null);
        i += 1;
        continue;
      }
      pieces.push(whole.text);
      for (let k = i + 1; k < whole.end; k += 1) pieces.push(SAME_PIECE);
      i = whole.end;
    }
    const spans = alignPieces(text, pieces);
    const prefix = this.subwordPrefix;
    const subword = ids.map((id: number, i: number) => {
      const span = spans[i];
      if (id === this.unkId || !span) return false;
      if (prefix) return tokens[i]!.startsWith(prefix);
      return span.start > 0 && !/\s/u.test(text[span.start - 1]!) && !/\s/u.test(text[span.start]!);
    });
    return { ids, tokens, spans, subword };
  }

  /** Token ids (no special tokens) laid out as one text the way the post-processor lays it out ([CLS] … [SEP]). */
  withSpecials(ids: readonly number[]): { ids: number[]; typeIds: number[] } {
    this.around ??= this.specialIdsAround();
    const all = [...this.around.leading, ...ids, ...this.around.trailing];
    return { ids: all, typeIds: all.map(() => 0) };
  }

  /** How many special tokens a single text gets before it and after it. */
  get specialsAround(): { leading: number; trailing: number } {
    return { leading: this.leadingSpecials, trailing: this.trailingSpecials };
  }

  private specialIdsAround(): { leading: number[]; trailing: number[] } {
    const full = this.tokenizer.encode('kiln').ids;
    return {
      leading: full.slice(0, this.leadingSpecials),
      trailing: full.slice(full.length - this.trailingSpecials),
    };
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
