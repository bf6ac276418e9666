/**
 * From per-token scores to the entities users read, with the definitions of Hugging Face's
 * token-classification pipeline (`aggregation_strategy`):
 * - `none`: one entry per token, its top label (`entity`), score and index;
 * - `simple`: adjacent tokens whose labels name the same entity type are one group
 *   (`entity_group`), unless a token's label starts a new entity (`B-`); the group's score is the
 *   mean of its tokens' scores;
 * - `first`, `average`, `max`: sub-word tokens are first merged into whole words, whose label is
 *   the first token's, the top label of the averaged score vectors, or the label of the token
 *   with the highest score; then words are grouped as `simple` groups tokens.
 * Labels in `ignoreLabels` (default `O`) are dropped after grouping. Unlike the pipeline, `word`
 * is always the text the entry covers (`text.slice(start, end)`), not the tokenizer's strings.
 */
import { argmax } from '../../core/stats.js';

export const AGGREGATION_STRATEGIES = ['none', 'simple', 'first', 'average', 'max'] as const;
/** How tokens are grouped into entities, as the Hugging Face pipeline's `aggregation_strategy` names them. */
export type AggregationStrategy = (typeof AGGREGATION_STRATEGIES)[number];

/** One token of the text as the model scored it. */
export interface ScoredToken {
  /** Position in the encoded sequence, special tokens counted ([CLS] is 0). */
  index: number;
  /** Softmax of the token's logits, one per label. */
  scores: readonly number[];
  /** UTF-16 offsets into the text; null when the token's place cannot be told. */
  start: number | null;
  end: number | null;
  /** The token continues the word before it (see TextTokenizer.spannedTokens). */
  subword: boolean;
  /** The token's string, for the `word` of a token without a place in the text. */
  token: string;
}

/** An entry of `aggregation_strategy: none`. */
export interface TokenEntity {
  entity: string;
  score: number;
  index: number;
  word: string;
  start: number | null;
  end: number | null;
}

/** An entry of the grouping strategies. */
export interface GroupEntity {
  entity_group: string;
  score: number;
  word: string;
  start: number | null;
  end: number | null;
}

/** A found entity: a token ({@link TokenEntity}, strategy `none`) or a group of them ({@link GroupEntity}). */
export type Entity = TokenEntity | GroupEntity;

/** A labelled stretch before grouping: a token (none, simple) or a whole word. */
interface Labelled {
  entity: string;
  score: number;
  start: number | null;
  end: number | null;
  word: string;
  index: number;
}

const labelOf = (labels: readonly string[], index: number): string => labels[index] ?? String(index);

/** The text from `start` to `end`, or `fallback` where the place is unknown. */
function slice(text: string, start: number | null, end: number | null, fallback: string): string {
  return start === null || end === null ? fallback : text.slice(start, end);
}

/** Entities of one text from its scored tokens (in order, special tokens left out). */
export function aggregate(
  text: string,
  tokens: readonly ScoredToken[],
  labels: readonly string[],
  strategy: AggregationStrategy,
  ignoreLabels: readonly string[] = ['O'],
): Entity[] {
  const ignored = new Set(ignoreLabels);
  const labelled: Labelled[] =
    strategy === 'none' || strategy === 'simple'
      ? tokens.map((t) => {
          const best = argmax(t.scores);
          return {
            entity: labelOf(labels, best),
            score: t.scores[best]!,
            start: t.start,
            end: t.end,
            word: slice(text, t.start, t.end, t.token),
            index: t.index,
          };
        })
      : words(tokens).map((word) => wordEntity(text, word, labels, strategy));
  if (strategy === 'none') {
    return labelled
      .filter((e) => !ignored.has(e.entity))
      .map((e) => ({ entity: e.entity, score: e.score, index: e.index, word: e.word, start: e.start, end: e.end }));
  }
  return groupEntities(text, labelled).filter((g) => !ignored.has(g.entity_group));
}

/** Tokens cut into words: a word starts at every token that does not continue the one before. */
function words(tokens: readonly ScoredToken[]): ScoredToken[][] {
  const out: ScoredToken[][] = [];
  for (const token of tokens) {
    if (token.subword && out.length > 0) out.at(-1)!.push(token);
    else out.push([token]);
  }
  return out;
}

function wordEntity(
  text: string,
  word: readonly ScoredToken[],
  labels: readonly string[],
  strategy: 'first' | 'average' | 'max',
): Labelled {
  let scores: readonly number[];
  if (strategy === 'first') scores = word[0]!.scores;
  else if (strategy === 'max') {
    // The token whose top score is highest decides (the first such token on ties).
    scores = word.reduce((best, t) => (Math.max(...t.scores) > Math.max(...best.scores) ? t : best)).scores;
  } else {
    scores = word[0]!.scores.map((_, j) => word.reduce((sum, t) => sum + t.scores[j]!, 0) / word.length);
  }
  const best = argmax(scores);
  const first = word[0]!;
  const last = word.at(-1)!;
  return {
    entity: labelOf(labels, best),
    score: scores[best]!,
    start: first.start,
    end: last.end,
    word: slice(text, first.start, last.end, word.map((t) => t.token).join('')),
    index: first.index,
  };
}

/** `B-PER` → [B, PER]; `I-PER` → [I, PER]; a label without a prefix continues (I). */
export function tagOf(label: string): { bi: 'B' | 'I'; tag: string } {
  if (label.startsWith('B-')) return { bi: 'B', tag: label.slice(2) };
  if (label.startsWith('I-')) return { bi: 'I', tag: label.slice(2) };
  return { bi: 'I', tag: label };
}

/**
 * A label's entity type, as `entity_group` names it: the text after the first "-" (the
 * pipeline's `split("-", 1)`), so B-/I-/E-/S- prefixes go and B-E-MAIL is E-MAIL; a label
 * without "-" is its own type.
 */
export function entityType(label: string): string {
  return label.slice(label.indexOf('-') + 1);
}

/** Adjacent entries of one entity type become one group, unless an entry begins a new entity (B-). */
function groupEntities(text: string, entries: readonly Labelled[]): GroupEntity[] {
  const groups: GroupEntity[] = [];
  let current: Labelled[] = [];
  const close = (): void => {
    if (current.length === 0) return;
    const first = current[0]!;
    const last = current.at(-1)!;
    groups.push({
      entity_group: entityType(first.entity),
      score: current.reduce((sum, e) => sum + e.score, 0) / current.length,
      word: slice(text, first.start, last.end, current.map((e) => e.word).join(' ')),
      start: first.start,
      end: last.end,
    });
    current = [];
  };
  for (const entry of entries) {
    if (current.length > 0) {
      const { bi, tag } = tagOf(entry.entity);
      if (tag !== tagOf(current.at(-1)!.entity).tag || bi === 'B') close();
    }
    current.push(entry);
  }
  close();
  return groups;
}

/**
 * `text` with each entity replaced by `[TYPE]`: its {@link entityType}, so a token's `S-PER`
 * under `none` is marked `[PER]` as its group is under `simple`. Entities of one type that touch
 * (a word's pieces under `none`) become one mark; entities without a place in the text are left
 * out.
 */
export function redact(text: string, entities: readonly Entity[]): string {
  const marks: Array<{ start: number; end: number; tag: string }> = [];
  const placed = entities
    .filter((e) => e.start !== null && e.end !== null && e.end > e.start)
    .map((e) => ({
      start: e.start!,
      end: e.end!,
      tag: 'entity_group' in e ? e.entity_group : entityType(e.entity),
    }))
    .sort((a, b) => a.start - b.start || b.end - a.end);
  for (const e of placed) {
    const last = marks.at(-1);
    if (last && e.start <= last.end && (e.tag === last.tag || e.start < last.end)) {
      last.end = Math.max(last.end, e.end);
    } else marks.push({ ...e });
  }
  let out = '';
  let at = 0;
  for (const m of marks) {
    out += `${text.slice(at, m.start)}[${m.tag}]`;
    at = m.end;
  }
  return out + text.slice(at);
}
