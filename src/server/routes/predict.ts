/**
 * `POST /predict`, for the tasks whose module has a `predict` hook: `{"text"}` (with
 * `"text_pair"` for a pair) → one answer; `{"texts": […]}` (each a text or `{"text",
 * "text_pair"}`) → `{"predictions": […]}`; `"return_all_scores": true` asks for every label's
 * score; `truncate` and `truncation_direction` (Text Embeddings Inference's names) say what
 * happens to a text longer than the artifact's max length. Image tasks take `{"image": "<base64>"}`, `{"images": […]}` or the raw bytes with an
 * `image/*` content type. Text Embeddings Inference's `{"inputs": …}` is taken too: a text, a
 * pair `[text, text_pair]`, or a batch `[[text], [text, text_pair], …]`, answered as `{"text"}`
 * (one input) or `{"texts"}` (a batch) is. The route reads the inputs by the task's input kind;
 * what the answer holds is the task module's.
 */
import { KilnError } from '../../core/errors.js';
import { MAX_IMAGE_BYTES } from '../../model/image.js';
import type { TextInput } from '../../runtime/text-model.js';
import { checkTexts } from '../../tasks/limits.js';
import { findTaskModule, taskOf, tasksWhere } from '../../tasks/registry.js';
import { decodeBase64, defineRoute } from '../../tasks/route.js';
import type { InputKind } from '../../tasks/task.js';
import {
  PREDICT_INPUTS_SHAPES,
  type PredictInputs,
  readPredictInputs,
  TEXT_PAIR_SCHEMA,
  TRUNCATION_SCHEMA,
  type TruncationBody,
  truncationOptions,
} from '../../tasks/text-body.js';

/** Where the image/* parser puts the body: a symbol key, which the JSON schema does not see. */
const RAW_IMAGE = Symbol('raw image');

interface PredictBody {
  text?: string;
  text_pair?: string;
  texts?: TextInput[];
  /** TEI's shape: a text, a pair `[text, text_pair]`, or a batch of `[text]` and pairs; read by hand. */
  inputs?: unknown;
  image?: string;
  images?: string[];
  [RAW_IMAGE]?: Buffer;
  return_all_scores?: boolean;
  truncate?: boolean;
  truncation_direction?: TruncationBody;
  /** Which model, when the server serves several (a model repository). */
  model?: string;
  /** Fields of a task's own (PredictHook.fields): token classification's aggregation_strategy, … */
  [field: string]: unknown;
}

/** Every task's own body fields, and the tasks that read each. */
const TASK_FIELDS = new Map<string, string[]>();
for (const task of tasksWhere((m) => m.predict?.fields !== undefined)) {
  for (const field of Object.keys(findTaskModule(task)!.predict!.fields!))
    TASK_FIELDS.set(field, [...(TASK_FIELDS.get(field) ?? []), task]);
}

const bodySchema = {
  type: 'object',
  properties: {
    text: { type: 'string' },
    text_pair: { type: 'string' },
    texts: { type: 'array', items: { anyOf: [{ type: 'string' }, TEXT_PAIR_SCHEMA] } },
    // Any JSON: readPredictInputs names what is wrong, where a schema error could not.
    inputs: {},
    image: { type: 'string' },
    images: { type: 'array', items: { type: 'string' } },
    return_all_scores: { type: 'boolean' },
    ...TRUNCATION_SCHEMA,
    model: { type: 'string' },
    ...Object.fromEntries(
      [...TASK_FIELDS.keys()].map((field) => [
        field,
        findTaskModule(TASK_FIELDS.get(field)![0]!)!.predict!.fields![field],
      ]),
    ),
  },
  additionalProperties: false,
} as const;

/** The tasks /predict serves, and those of them that take each input kind. */
const PREDICT_TASKS = tasksWhere((m) => m.predict !== undefined);
const takes = (input: InputKind) => tasksWhere((m) => m.predict !== undefined && m.input === input);

export const predictRoutes = [
  defineRoute<{ Body: PredictBody }>({
    method: 'POST',
    url: '/predict',
    access: 'key',
    // Raw image bodies may be larger than JSON ones: up to the largest image accepted.
    parsers: [
      {
        types: [/^image\//],
        parseAs: 'buffer',
        bodyLimit: MAX_IMAGE_BYTES,
        parse: (body) => ({ [RAW_IMAGE]: body }),
      },
    ],
    schema: { body: bodySchema },
    expectedBody: `{"text": "…"} (with "text_pair": "…" for a pair), {"texts": ["…" or {"text": "…", "text_pair": "…"}, …]} or TEI's {${PREDICT_INPUTS_SHAPES}} (image models: {"image": "<base64>"}, {"images": […]} or an image/* body)`,
    inference: { tasks: PREDICT_TASKS },
    handler: async (request, _reply, context) => {
      const {
        text,
        text_pair: pair,
        texts,
        inputs: tei,
        image,
        images,
        return_all_scores: allScores = false,
      } = request.body;
      const name = request.body.model;
      const raw = request.body[RAW_IMAGE];
      const { deadline } = context;
      if (raw !== undefined || image !== undefined || images !== undefined) {
        if ([raw, image, images, text ?? pair, texts, tei].filter((v) => v !== undefined).length > 1)
          throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', {
            problem: 'it has more than one of "image", "images", "text", "texts", "inputs" and a raw image',
          });
        if (images && images.length === 0)
          throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', { problem: '"images" is an empty list' });
        const { maxClientBatch } = context.limits;
        if (images && images.length > maxClientBatch)
          throw new KilnError('KILN_ERR_HTTP_TOO_MANY_TEXTS', { count: images.length, limit: maxClientBatch });
        const model = context.model(name, { tasks: takes('image'), what: 'POST /predict with images' });
        const bytes = raw
          ? [new Uint8Array(raw)]
          : image !== undefined
            ? [base64(image, '"image"')]
            : images!.map((b, i) => base64(b, `"images[${i}]"`));
        const describe = (i: number): string =>
          raw ? 'the request body' : image !== undefined ? '"image"' : `"images[${i}]"`;
        const bodies = await taskOf(model).predict!.answer(model, bytes, describe, {
          deadline,
          allScores,
          fields: taskFields(request.body, model.task),
        });
        return images ? { predictions: bodies } : bodies[0];
      }
      const { inputs, single, describe } = textInputs(request.body);
      const model = context.model(name);
      if (taskOf(model).input !== 'text')
        throw new KilnError('KILN_ERR_INPUT_KIND', {
          where: text !== undefined ? '"text"' : texts !== undefined ? '"texts"' : '"inputs"',
          expected: 'images ({"image": "<base64>"}, {"images": […]} or an image/* body)',
          got: 'a text',
          task: model.task,
        });
      checkTexts(inputs, describe, context.limits);
      const bodies = await taskOf(model).predict!.answer(model, inputs, describe, {
        deadline,
        allScores,
        ...truncationOptions(request.body),
        fields: taskFields(request.body, model.task),
      });
      return single ? bodies[0] : { predictions: bodies };
    },
  }),
];

/** The texts of a body without images: `text` (and `text_pair`), `texts`, or TEI's `inputs`, exactly one of them. */
function textInputs({ text, text_pair: pair, texts, inputs }: PredictBody): PredictInputs {
  const given = Object.entries({ text, texts, inputs })
    .filter(([, value]) => value !== undefined)
    .map(([field]) => `"${field}"`);
  if (given.length !== 1)
    throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', {
      problem:
        given.length === 0
          ? `it has none of "text", "texts" and "inputs"${pair === undefined ? '' : ' ("text_pair" comes with "text")'}`
          : `it has ${given.join(' and ')}; send one of them`,
    });
  if (pair !== undefined && text === undefined)
    throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', {
      problem: '"text_pair" comes with "text" (in a list, each item is {"text", "text_pair"})',
    });
  if (inputs !== undefined) return readPredictInputs(inputs);
  if (texts !== undefined) {
    if (texts.length === 0) throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', { problem: '"texts" is an empty list' });
    return { inputs: texts, single: false, describe: (i) => `"texts[${i}]"` };
  }
  return {
    inputs: [pair === undefined ? text! : { text: text!, text_pair: pair }],
    single: true,
    describe: () => '"text"',
  };
}

/** The body's fields of tasks' own, refused when the model's task does not read them. */
function taskFields(body: PredictBody, task: string): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(body)) {
    const tasks = TASK_FIELDS.get(field);
    if (!tasks) continue;
    if (!tasks.includes(task))
      throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', {
        problem: `"${field}" is read by ${tasks.join(', ')} models only, and this model's task is ${task}`,
      });
    fields[field] = value;
  }
  return fields;
}

function base64(value: string, where: string): Uint8Array {
  const bytes = decodeBase64(value);
  if (!bytes) throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', { problem: `${where} is not a base64 string` });
  return bytes;
}
