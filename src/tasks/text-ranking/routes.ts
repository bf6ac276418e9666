/**
 * The routes only text-ranking models serve:
 * - `POST /rerank`, Text Embeddings Inference's shape: `{"query", "texts", "raw_scores"?,
 *   "return_text"?, "truncate"?, "truncation_direction"?}` → `[{"index", "score", "text"?}]`,
 *   best first; `raw_scores` answers the logits.
 * - `POST /v1/rerank`, the shape Cohere and Jina serve and LangChain, LlamaIndex and others
 *   call: `{"model"?, "query", "documents": ["…" | {"text"}], "top_n"?, "return_documents"?}` →
 *   `{"model", "results": [{"index", "relevance_score", "document"?: {"text"}}], "usage"}`, best
 *   first, cut to `top_n`.
 * Every text of a request is scored against its query as one pair, queued on its own. A `model`, when
 * given, is the served name (the artifact's name: /info's `model_id` and `served_model_name`);
 * another is 404 KILN_ERR_HTTP_UNKNOWN_MODEL naming the served ones, as Cohere's API and
 * OpenAI-style servers answer a model they do not have.
 */
import { KilnError } from '../../core/errors.js';
import { checkTexts, type RequestLimits } from '../limits.js';
import { defineRoute, type InferenceFacts, type RouteContext } from '../route.js';
import { TRUNCATION_SCHEMA, type TruncationBody, truncationOptions } from '../text-body.js';
import type { Ranked, TextRanker } from './model.js';

interface TeiBody {
  query: string;
  texts: string[];
  raw_scores?: boolean;
  return_text?: boolean;
  truncate?: boolean;
  truncation_direction?: TruncationBody;
  model?: string;
}

interface CohereBody {
  model?: string;
  query: string;
  documents: Array<string | { text: string }>;
  top_n?: number;
  return_documents?: boolean;
}

const teiSchema = {
  type: 'object',
  required: ['query', 'texts'],
  properties: {
    query: { type: 'string' },
    texts: { type: 'array', items: { type: 'string' } },
    raw_scores: { type: 'boolean' },
    return_text: { type: 'boolean' },
    ...TRUNCATION_SCHEMA,
    model: { type: 'string' },
  },
  additionalProperties: false,
} as const;

const cohereSchema = {
  type: 'object',
  required: ['query', 'documents'],
  properties: {
    model: { type: 'string' },
    query: { type: 'string' },
    documents: {
      type: 'array',
      items: {
        anyOf: [
          { type: 'string' },
          { type: 'object', required: ['text'], properties: { text: { type: 'string' } }, additionalProperties: false },
        ],
      },
    },
    top_n: { type: 'integer', minimum: 1 },
    return_documents: { type: 'boolean' },
  },
  additionalProperties: false,
} as const;

/** Ranks `texts` against `query` within the request's limits; `field` names the texts in errors. */
export function rank(
  model: TextRanker,
  query: string,
  texts: readonly string[],
  field: string,
  context: Pick<RouteContext, 'deadline'> & { limits: RequestLimits },
  truncation: ReturnType<typeof truncationOptions> = {},
): Promise<Ranked[]> {
  if (texts.length === 0) throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', { problem: `"${field}" is an empty list` });
  const { limits } = context;
  if (texts.length > limits.maxClientBatch)
    throw new KilnError('KILN_ERR_HTTP_CLIENT_BATCH', { count: texts.length, limit: limits.maxClientBatch });
  const describe = (i: number): string => `"${field}[${i}]"`;
  checkTexts([query], () => '"query"', limits);
  checkTexts(texts, describe, limits, limits.maxClientBatch);
  return model.rank(query, texts, describe, { deadline: context.deadline, ...truncation });
}

/** TEI's /rerank answer: best first, the logit for `raw`, each text when asked. */
export function teiAnswer(
  ranked: readonly Ranked[],
  texts: readonly string[],
  { raw, withText }: { raw: boolean; withText: boolean },
): object[] {
  return ranked.map(({ index, relevance }) => ({
    index,
    score: raw ? relevance.logit : relevance.score,
    ...(withText ? { text: texts[index] } : {}),
  }));
}

const inference = { tasks: ['text-ranking'] } as const satisfies InferenceFacts;

export const rerankRoutes = [
  defineRoute<{ Body: TeiBody }, 'text-ranking'>({
    method: 'POST',
    url: '/rerank',
    access: 'key',
    schema: { body: teiSchema },
    expectedBody: '{"query": "…", "texts": ["…", …]} (optional: "raw_scores", "return_text", "truncate")',
    inference,
    handler: async (request, _reply, context) => {
      const { query, texts, raw_scores: raw = false, return_text: withText = false } = request.body;
      const model = context.model(request.body.model);
      const ranked = await rank(model, query, texts, 'texts', context, truncationOptions(request.body));
      return teiAnswer(ranked, texts, { raw, withText });
    },
  }),
  defineRoute<{ Body: CohereBody }, 'text-ranking'>({
    method: 'POST',
    url: '/v1/rerank',
    access: 'key',
    schema: { body: cohereSchema },
    expectedBody:
      '{"query": "…", "documents": ["…" or {"text": "…"}, …]} (optional: "model", "top_n" ≥ 1, "return_documents")',
    inference,
    handler: async (request, _reply, context) => {
      const { query, documents, top_n: topN, return_documents: withDocuments = false } = request.body;
      const model = context.model(request.body.model);
      const texts = documents.map((d) => (typeof d === 'string' ? d : d.text));
      const ranked = await rank(model, query, texts, 'documents', context);
      const tokens = ranked.reduce((n, r) => n + r.relevance.tokens, 0);
      return {
        model: model.manifest.name,
        results: ranked.slice(0, topN ?? ranked.length).map(({ index, relevance }) => ({
          index,
          relevance_score: relevance.score,
          ...(withDocuments ? { document: { text: texts[index] } } : {}),
        })),
        usage: { total_tokens: tokens },
      };
    },
  }),
];
