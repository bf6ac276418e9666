/**
 * A loaded text-ranking artifact: a cross-encoder that reads a query and a passage as one text
 * pair and answers one logit, their relevance. Its score is the logit through the artifact's
 * score function (sigmoid unless compiled otherwise).
 */
import { KilnError } from '../../core/errors.js';
import { type Manifest, type ScoreFunction, scoreFunctionOf } from '../../model/artifact.js';
import type { InferOptions, ModelOptions } from '../../runtime/task-model.js';
import { TextModel, type TextParts, type TextRow, type TextTokens } from '../../runtime/text-model.js';
import { scoresOf } from '../scores.js';

/** How relevant one text is to the query: the score and the logit it came from. */
export interface Relevance extends TextTokens {
  /** The logit through the score function: in [0, 1] for sigmoid. */
  score: number;
  /** The model's raw output. */
  logit: number;
}

/** One text's place in a ranking: its index in the request, its relevance. */
export interface Ranked {
  index: number;
  relevance: Relevance;
}

/** A loaded cross-encoder (`task: 'text-ranking'`): `rank(query, texts, describe)` orders texts by relevance. */
export class TextRanker extends TextModel<Relevance> {
  /** What turns the logit into a score. */
  readonly scoreFunction: ScoreFunction;

  private constructor(dir: string, manifest: Manifest, parts: TextParts) {
    super(dir, manifest, parts);
    this.scoreFunction = scoreFunctionOf(manifest);
  }

  get task(): 'text-ranking' {
    return 'text-ranking';
  }

  static async open(dir: string, manifest: Manifest, options: ModelOptions): Promise<TextRanker> {
    return new TextRanker(dir, manifest, await TextModel.start(dir, manifest, options));
  }

  /**
   * Scores each text against `query` and answers them best first (ties keep the request's
   * order). Each pair is queued on its own, so a long list shares the replicas with other
   * clients' work instead of holding them for its whole length.
   */
  async rank(
    query: string,
    texts: readonly string[],
    describe: (index: number) => string,
    options: InferOptions = {},
  ): Promise<Ranked[]> {
    // Checked here so that errors name the query and the text, not parts of a pair.
    if (query.trim() === '') throw new KilnError('KILN_ERR_INPUT_EMPTY_TEXT', { where: 'the query' });
    texts.forEach((text, index) => {
      if (text.trim() === '') throw new KilnError('KILN_ERR_INPUT_EMPTY_TEXT', { where: describe(index) });
    });
    const relevances = await this.runTexts(
      texts.map((text) => ({ text: query, text_pair: text })),
      describe,
      options,
    );
    return relevances
      .map((relevance, index) => ({ index, relevance }))
      .sort((a, b) => b.relevance.logit - a.relevance.logit || a.index - b.index);
  }

  protected answer({ row, tokens, truncated }: TextRow): Relevance {
    const logit = row[0]!;
    return { score: scoresOf([logit], this.scoreFunction)[0]!, logit, tokens, truncated };
  }

  /** Relevances of rows a client tokenized itself (see {@link TextModel.runTokens}). */
  async rankTokens(
    rows: ReadonlyArray<{ ids: readonly number[]; typeIds?: readonly number[] }>,
    options: { deadline?: number } = {},
  ): Promise<Relevance[]> {
    return (await this.runTokens(rows, options)).map((row, i) =>
      this.answer({ row, tokens: rows[i]!.ids.length, truncated: false }),
    );
  }
}
