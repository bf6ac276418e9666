/**
 * Text Embeddings Inference's tokenizer routes, for every model whose task takes text (the
 * registry's `input: 'text'` modules): they run the tokenizer on the calling thread and no model,
 * so they are not inference routes (no queue, no `--timeout-ms`).
 * - `POST /tokenize` `{"inputs": "…" | ["…"], "add_special_tokens"?: true, "prompt_name"?}` →
 *   per input a list of `{"id", "text", "special", "start", "stop"}` (UTF-8 byte offsets).
 * - `POST /decode` `{"ids": [id, …] | [[id, …], …], "skip_special_tokens"?: true}` → a text per row.
 */
import { KilnError } from '../../core/errors.js';
import { TextModel } from '../../runtime/text-model.js';
import { checkTexts, MAX_TEXTS_PER_REQUEST } from '../../tasks/limits.js';
import { tasksWhere } from '../../tasks/registry.js';
import { defineRoute, type RouteContext } from '../../tasks/route.js';

const TEXT_TASKS = tasksWhere((module) => module.input === 'text');

/** The text model a request names; KILN_ERR_HTTP_WRONG_TASK for a model that takes no text. */
function textModel(context: RouteContext, name: string | undefined, what: string): TextModel<unknown> {
  const model = context.model(name, { tasks: TEXT_TASKS, what });
  // Every module with input 'text' runs a TextModel; the check keeps the types honest.
  if (!(model instanceof TextModel)) throw new Error(`${model.task} has text input but no tokenizer`);
  return model;
}

interface TokenizeBody {
  inputs: string | string[];
  add_special_tokens?: boolean;
  prompt_name?: string | null;
  model?: string;
}

interface DecodeBody {
  ids: number[] | number[][];
  skip_special_tokens?: boolean;
  model?: string;
}

const ids = { type: 'array', items: { type: 'integer' } };

export const tokenizerRoutes = [
  defineRoute<{ Body: TokenizeBody }>({
    method: 'POST',
    url: '/tokenize',
    access: 'key',
    schema: {
      body: {
        type: 'object',
        required: ['inputs'],
        properties: {
          inputs: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1 }] },
          add_special_tokens: { type: 'boolean' },
          prompt_name: { type: ['string', 'null'] },
          model: { type: 'string' },
        },
        additionalProperties: false,
      },
    },
    expectedBody: '{"inputs": "…" or ["…", …], "add_special_tokens"?: true, "prompt_name"?: "…"}',
    handler: async (request, _reply, context) => {
      const { inputs, add_special_tokens: addSpecialTokens = true, prompt_name: promptName } = request.body;
      const model = textModel(context, request.body.model, 'POST /tokenize');
      const texts = typeof inputs === 'string' ? [inputs] : inputs;
      checkTexts(texts, (i) => (typeof inputs === 'string' ? '"inputs"' : `"inputs[${i}]"`), context.limits);
      return texts.map((text) => model.tokenize(text, { addSpecialTokens, promptName: promptName ?? undefined }));
    },
  }),
  defineRoute<{ Body: DecodeBody }>({
    method: 'POST',
    url: '/decode',
    access: 'key',
    schema: {
      body: {
        type: 'object',
        required: ['ids'],
        properties: {
          ids: { anyOf: [ids, { type: 'array', items: ids, minItems: 1 }] },
          skip_special_tokens: { type: 'boolean' },
          model: { type: 'string' },
        },
        additionalProperties: false,
      },
    },
    expectedBody: '{"ids": [id, …] or [[id, …], …], "skip_special_tokens"?: true}',
    handler: async (request, _reply, context) => {
      const { ids: given, skip_special_tokens: skipSpecialTokens = true } = request.body;
      const model = textModel(context, request.body.model, 'POST /decode');
      const rows = given.length > 0 && Array.isArray(given[0]) ? (given as number[][]) : [given as number[]];
      if (rows.length > MAX_TEXTS_PER_REQUEST)
        throw new KilnError('KILN_ERR_HTTP_TOO_MANY_TEXTS', { count: rows.length, limit: MAX_TEXTS_PER_REQUEST });
      return rows.map((row, index) => model.decode(row, { skipSpecialTokens, row: index }));
    },
  }),
];
