/**
 * How a `tokenizer.json` post-processor lays out a text pair, and how a pair is cut to a max
 * length. Read from the JSON and applied here rather than through @huggingface/tokenizers'
 * `text_pair`: that library gives RoBERTa's second text type id 1 where Hugging Face's
 * tokenizers give 0 (RoBERTa has one token type), drops an empty second text instead of
 * keeping its separators, and does not truncate.
 */

/** The post-processor family; `template` is a `TemplateProcessing` read piece by piece. */
export type PairStyle = 'bert' | 'roberta' | 'template' | 'none';

/** Which end of a text is cut: `right` keeps its start, `left` keeps its end (TEI's `truncation_direction`). */
export type TruncationDirection = 'right' | 'left';

/** How a pair is cut: `longest_first` shortens the longer text first, `only_second` cuts only the second. */
export type PairTruncation = 'longest_first' | 'only_second';

type Piece = { kind: 'special'; ids: number[]; typeId: number } | { kind: 'text'; text: 'A' | 'B'; typeId: number };

export interface PairTemplate {
  readonly style: PairStyle;
  readonly pieces: readonly Piece[];
  /** Number of special token ids the template puts around a pair. */
  readonly specials: number;
}

type TokenToId = (token: string) => number | undefined;

/**
 * The pair layout of a post-processor config (`tokenizer.json`'s `post_processor`). Throws an
 * Error saying what is wrong when the config cannot lay out a pair; the caller words it.
 */
export function readPairTemplate(postProcessor: unknown, tokenToId: TokenToId): PairTemplate {
  const config = layoutProcessor(postProcessor);
  if (!config) {
    // Without a post-processor Hugging Face concatenates the two texts, the second with type id 1.
    return template('none', [text('A', 0), text('B', 1)]);
  }
  switch (config.type) {
    case 'BertProcessing': {
      const [cls, sep] = [specialPair(config.cls, 'cls'), specialPair(config.sep, 'sep')];
      return template('bert', [special(cls, 0), text('A', 0), special(sep, 0), text('B', 1), special(sep, 1)]);
    }
    case 'RobertaProcessing': {
      const [cls, sep] = [specialPair(config.cls, 'cls'), specialPair(config.sep, 'sep')];
      return template('roberta', [
        special(cls, 0),
        text('A', 0),
        special(sep, 0),
        special(sep, 0),
        text('B', 0),
        special(sep, 0),
      ]);
    }
    default:
      return template('template', templatePieces(config, tokenToId));
  }
}

/**
 * The processor that places the special tokens: a `Sequence` (e.g. ByteLevel then
 * TemplateProcessing) is searched for it, since ByteLevel only moves offsets.
 */
function layoutProcessor(config: unknown): Record<string, unknown> | null {
  if (!isRecord(config)) return null;
  if (config.type === 'Sequence') {
    const processors = Array.isArray(config.processors) ? config.processors : [];
    const found = processors.map(layoutProcessor).filter((p) => p !== null);
    return found[found.length - 1] ?? null;
  }
  return ['BertProcessing', 'RobertaProcessing', 'TemplateProcessing'].includes(config.type as string) ? config : null;
}

function templatePieces(config: Record<string, unknown>, tokenToId: TokenToId): Piece[] {
  if (!Array.isArray(config.pair)) throw new Error('its TemplateProcessing post-processor has no "pair" template');
  const specials = isRecord(config.special_tokens) ? config.special_tokens : {};
  const pieces = config.pair.map((item: unknown): Piece => {
    if (isRecord(item) && isRecord(item.SpecialToken)) {
      const { id, type_id: typeId } = item.SpecialToken;
      const entry = typeof id === 'string' ? specials[id] : undefined;
      const vocabId = typeof id === 'string' ? tokenToId(id) : undefined;
      const ids = isRecord(entry) && Array.isArray(entry.ids) ? entry.ids : vocabId === undefined ? null : [vocabId];
      if (!ids?.every(Number.isInteger)) {
        throw new Error(`its pair template names the special token ${JSON.stringify(id)}, which has no id`);
      }
      return special(ids as number[], typeIdOf(typeId));
    }
    if (isRecord(item) && isRecord(item.Sequence) && (item.Sequence.id === 'A' || item.Sequence.id === 'B')) {
      return text(item.Sequence.id, typeIdOf(item.Sequence.type_id));
    }
    throw new Error(
      `its pair template has an item that is neither a SpecialToken nor Sequence A or B: ${JSON.stringify(item)}`,
    );
  });
  for (const name of ['A', 'B'] as const) {
    if (pieces.filter((p) => p.kind === 'text' && p.text === name).length !== 1) {
      throw new Error(`its pair template must place Sequence ${name} exactly once`);
    }
  }
  return pieces;
}

/** The ids and type ids of a pair whose texts are already tokenized without special tokens. */
export function applyPairTemplate(
  pair: PairTemplate,
  first: readonly number[],
  second: readonly number[],
): { ids: number[]; typeIds: number[] } {
  const ids: number[] = [];
  const typeIds: number[] = [];
  for (const piece of pair.pieces) {
    const part = piece.kind === 'special' ? piece.ids : piece.text === 'A' ? first : second;
    for (const id of part) {
      ids.push(id);
      typeIds.push(piece.typeId);
    }
  }
  return { ids, typeIds };
}

/**
 * How many tokens each text keeps so that together they fit in `budget` (the max length less
 * the pair's special tokens), as Hugging Face's tokenizers decide: `longest_first` cuts the
 * longer text down to the shorter one's length, then both to half the budget, the longer one
 * keeping the odd token (on equal lengths, the second); `only_second` cuts only the second text
 * and gives null when that would leave it no token.
 */
export function pairLengths(
  first: number,
  second: number,
  budget: number,
  strategy: PairTruncation,
): [number, number] | null {
  if (first + second <= budget) return [first, second];
  if (strategy === 'only_second') {
    const keep = budget - first;
    return keep >= 1 ? [first, keep] : null;
  }
  const shorter = Math.min(first, second);
  if (2 * shorter <= budget) return first <= second ? [shorter, budget - shorter] : [budget - shorter, shorter];
  const half = Math.floor(budget / 2);
  const longerHalf = budget - half;
  return first > second ? [longerHalf, half] : [half, longerHalf];
}

/** The first `keep` ids (direction right) or the last `keep` (left). */
export function cut<T>(ids: readonly T[], keep: number, direction: TruncationDirection): T[] {
  if (keep >= ids.length) return [...ids];
  return direction === 'right' ? ids.slice(0, keep) : ids.slice(ids.length - keep);
}

function template(style: PairStyle, pieces: Piece[]): PairTemplate {
  const specials = pieces.reduce((n, p) => n + (p.kind === 'special' ? p.ids.length : 0), 0);
  return { style, pieces, specials };
}

function special(ids: number[], typeId: number): Piece {
  return { kind: 'special', ids, typeId };
}

function text(name: 'A' | 'B', typeId: number): Piece {
  return { kind: 'text', text: name, typeId };
}

/** A `[token, id]` pair of BertProcessing / RobertaProcessing. */
function specialPair(value: unknown, field: string): number[] {
  if (Array.isArray(value) && Number.isInteger(value[1])) return [value[1] as number];
  throw new Error(`its post-processor's "${field}" is not a [token, id] pair`);
}

function typeIdOf(value: unknown): number {
  return Number.isInteger(value) ? (value as number) : 0;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
