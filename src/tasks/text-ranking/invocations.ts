/**
 * SageMaker's /invocations for rankers: TEI's /rerank body, `{"query", "texts", "raw_scores"?,
 * "return_text"?, "truncate"?, "truncation_direction"?}`, as `application/json` (or one per line
 * of a JSON Lines body), answered as /rerank answers it: `[{"index", "score", "text"?}]`, best
 * first. The route's body is not checked by a schema (it takes several shapes), so this reads it
 * field by field.
 */
import type { InvocationsBodyHook } from '../task.js';
import type { TruncationBody } from '../text-body.js';
import { truncationOptions } from '../text-body.js';
import type { TextRanker } from './model.js';
import { rank, teiAnswer } from './routes.js';

const FLAGS = ['raw_scores', 'return_text', 'truncate'] as const;
const DIRECTIONS = ['left', 'right', 'Left', 'Right'];

export const rankInvocations: InvocationsBodyHook<TextRanker> = {
  expected: '{"query": "…", "texts": ["…", …]} (optional: "raw_scores", "return_text", "truncate")',
  async read(model, body, { limits, deadline, invalid }) {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('it is not a JSON object');
    const { query, texts, truncation_direction: direction, ...rest } = body as Record<string, unknown>;
    for (const [field, value] of Object.entries(rest)) {
      if (!(FLAGS as readonly string[]).includes(field)) throw invalid(`it has an unknown field "${field}"`);
      if (typeof value !== 'boolean') throw invalid(`"${field}" is not true or false`);
    }
    if (typeof query !== 'string') throw invalid(query === undefined ? 'it has no "query"' : '"query" is not a string');
    if (!Array.isArray(texts)) throw invalid(texts === undefined ? 'it has no "texts"' : '"texts" is not a list');
    // Checked here, not by rank(), so that the error's fix shows this body.
    if (texts.length === 0) throw invalid('"texts" is an empty list');
    const bad = texts.findIndex((t) => typeof t !== 'string');
    if (bad >= 0) throw invalid(`"texts[${bad}]" is not a string`);
    if (direction !== undefined && !DIRECTIONS.includes(direction as string))
      throw invalid('"truncation_direction" is not "left" or "right"');
    const flags = rest as Partial<Record<(typeof FLAGS)[number], boolean>>;
    const ranked = await rank(
      model,
      query,
      texts as string[],
      'texts',
      { limits, deadline },
      truncationOptions({ truncate: flags.truncate, truncation_direction: direction as TruncationBody | undefined }),
    );
    return teiAnswer(ranked, texts as string[], {
      raw: flags.raw_scores ?? false,
      withText: flags.return_text ?? false,
    });
  },
};
