/**
 * The request fields the text routes share, named as Text Embeddings Inference names them: a
 * text pair `{"text", "text_pair"}`, and `truncate` / `truncation_direction` (TEI writes the
 * direction `Left` / `Right`; both cases are taken), and TEI's /predict `inputs` (a text, a pair
 * or a batch of both).
 */
import { KilnError } from '../core/errors.js';
import type { InferOptions } from '../runtime/task-model.js';
import type { TextInput } from '../runtime/text-model.js';

/** A text pair in a JSON body; anything else in its place fails the route's schema (400). */
export const TEXT_PAIR_SCHEMA = {
  type: 'object',
  required: ['text', 'text_pair'],
  properties: { text: { type: 'string' }, text_pair: { type: 'string' } },
  additionalProperties: false,
} as const;

export type TruncationBody = 'left' | 'right' | 'Left' | 'Right';

/** The truncation fields, for a route schema's `properties`. */
export const TRUNCATION_SCHEMA = {
  truncate: { type: 'boolean' },
  truncation_direction: { type: 'string', enum: ['left', 'right', 'Left', 'Right'] },
} as const;

/** The model options a body's truncation fields ask for. */
export function truncationOptions(body: {
  truncate?: boolean;
  truncation_direction?: TruncationBody;
}): Pick<InferOptions, 'truncate' | 'truncationDirection'> {
  return {
    truncate: body.truncate,
    truncationDirection: body.truncation_direction?.toLowerCase() as InferOptions['truncationDirection'],
  };
}

/** TEI's /predict `inputs` read into texts and pairs: one input (`single`) or a batch. */
export interface PredictInputs {
  inputs: TextInput[];
  /** One input (a string, `[text]` or `[text, text_pair]`): answered as `{"text"}` is. */
  single: boolean;
  /** How errors name input i: `"inputs"`, or `"inputs[i]"` in a batch. */
  describe: (index: number) => string;
}

/** The shapes of TEI's `inputs`, for the fix of an error's message. */
export const PREDICT_INPUTS_SHAPES =
  '"inputs": "…", a pair ["…", "…"], or a batch [["…"], ["…", "…"], …] (each item one text or a [text, text_pair] pair)';

function badInputs(problem: string): KilnError {
  return new KilnError('KILN_ERR_HTTP_INVALID_BODY', { problem, expected: `{${PREDICT_INPUTS_SHAPES}}` });
}

/** One TEI sequence, `[text]` or `[text, text_pair]`, at `path` (`inputs[2]`); a coded 400 for anything else. */
function sequenceOf(value: unknown, path: string): TextInput {
  if (!Array.isArray(value) || value.length < 1 || value.length > 2)
    throw badInputs(
      `"${path}" is ${Array.isArray(value) ? `a list of ${value.length}` : JSON.stringify(value)}; each item of a batch is ["text"] or ["text", "text_pair"]`,
    );
  const bad = value.findIndex((v) => typeof v !== 'string');
  if (bad >= 0) throw badInputs(`"${path}[${bad}]" is ${JSON.stringify(value[bad])}, not a string`);
  return value.length === 1 ? (value[0] as string) : { text: value[0] as string, text_pair: value[1] as string };
}

/**
 * Reads Text Embeddings Inference's /predict `inputs` as TEI does: a string is one text; a list
 * that starts with a string is one input, `[text]` or the pair `[text, text_pair]`; a list that
 * starts with a list is a batch whose every item is `[text]` or `[text, text_pair]`. Anything
 * else is a coded 400 (KILN_ERR_HTTP_INVALID_BODY) naming where it is.
 */
export function readPredictInputs(value: unknown): PredictInputs {
  if (typeof value === 'string') return { inputs: [value], single: true, describe: () => '"inputs"' };
  if (!Array.isArray(value))
    throw badInputs(`"inputs" is ${value === null ? 'null' : `a ${typeof value}`}, not a string or a list`);
  if (value.length === 0) throw badInputs('"inputs" is an empty list');
  if (typeof value[0] === 'string') {
    if (value.length > 2)
      throw badInputs(
        `"inputs" is a list of ${value.length} strings, but a list of strings is one input: ["text"] or a pair ["text", "text_pair"]; for several inputs, send a batch [["…"], ["…"], …]`,
      );
    return { inputs: [sequenceOf(value, 'inputs')], single: true, describe: () => '"inputs"' };
  }
  if (!Array.isArray(value[0]))
    throw badInputs(`"inputs[0]" is ${JSON.stringify(value[0])}, neither a string nor a list`);
  return {
    inputs: value.map((item, i) => sequenceOf(item, `inputs[${i}]`)),
    single: false,
    describe: (i) => `"inputs[${i}]"`,
  };
}
