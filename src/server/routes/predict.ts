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
import { TASK_MODULES, taskOf, tasksWhere } from '../../tasks/registry.js';
import { decodeBase64, defineRoute, type RouteContext } from '../../tasks/route.js';
import type { AnyTaskModel, InputKind, PredictHook, PredictInputsHook } from '../../tasks/task.js';
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
  /** Options of a task's own (PredictInputsHook.options: token classification's aggregation_strategy, …) or fields of a task's own body. */
  [field: string]: unknown;
}

/** Options some tasks read beside the shared inputs (token classification's "aggregation_strategy"), by task. */
const TASK_OPTIONS = new Map<string, string[]>();
for (const module of TASK_MODULES) {
  if (!module.predict || !('options' in module.predict) || !module.predict.options) continue;
  for (const field of Object.keys(module.predict.options))
    TASK_OPTIONS.set(field, [...(TASK_OPTIONS.get(field) ?? []), module.name]);
}

/** An option's JSON schema, from the first task that reads it. */
function optionSchema(field: string): object {
  const module = TASK_MODULES.find((m) => m.name === TASK_OPTIONS.get(field)![0]);
  return (module!.predict as PredictInputsHook<AnyTaskModel>).options![field]!;
}

const SHARED_FIELDS = {
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
} as const;

/** Fields only some tasks read (a zero-shot body's "candidate_labels", a question's "context"), by task. */
const OWN_FIELDS = new Map<string, string[]>();
for (const module of TASK_MODULES) {
  if (!module.predict || !('fields' in module.predict)) continue;
  for (const field of Object.keys(module.predict.fields)) {
    if (field in SHARED_FIELDS) continue;
    OWN_FIELDS.set(field, [...(OWN_FIELDS.get(field) ?? []), module.name]);
  }
}

/** The shared fields and every task's own; each task's hook checks the fields it reads. */
const bodySchema = {
  type: 'object',
  properties: {
    ...Object.fromEntries(
      TASK_MODULES.flatMap((m) => (m.predict && 'fields' in m.predict ? Object.entries(m.predict.fields) : [])),
    ),
    ...Object.fromEntries([...TASK_OPTIONS.keys()].map((field) => [field, optionSchema(field)])),
    ...SHARED_FIELDS,
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
      const own = Object.keys(request.body).filter((field) => OWN_FIELDS.has(field));
      if (own.length > 0) return ownBody(request.body, own, context);
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
        const bodies = await inputsHook(model).answer(model, bytes, describe, {
          deadline,
          allScores,
          fields: taskOptions(request.body, model.task),
        });
        return images ? { predictions: bodies } : bodies[0];
      }
      const { inputs, single, describe } = textInputs(request.body);
      const model = context.model(name);
      const hook = taskOf(model).predict!;
      if ('read' in hook)
        throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', {
          problem: `${model.manifest.name} is a ${model.task} model, which reads a body of its own`,
          expected: hook.expected,
        });
      if (taskOf(model).input !== 'text')
        throw new KilnError('KILN_ERR_INPUT_KIND', {
          where: text !== undefined ? '"text"' : texts !== undefined ? '"texts"' : '"inputs"',
          expected: 'images ({"image": "<base64>"}, {"images": […]} or an image/* body)',
          got: 'a text',
          task: model.task,
        });
      checkTexts(inputs, describe, context.limits);
      const bodies = await hook.answer(model, inputs, describe, {
        deadline,
        allScores,
        ...truncationOptions(request.body),
        fields: taskOptions(request.body, model.task),
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

/** The body's options of tasks' own (beside the shared inputs), refused when the model's task does not read them. */
function taskOptions(body: PredictBody, task: string): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(body)) {
    const tasks = TASK_OPTIONS.get(field);
    if (!tasks) continue;
    if (!tasks.includes(task))
      throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', {
        problem: `"${field}" is read by ${tasks.join(', ')} models only, and this model's task is ${task}`,
      });
    fields[field] = value;
  }
  return fields;
}

/** The hook of a task that reads the shared inputs (image tasks do). */
function inputsHook(model: AnyTaskModel): PredictInputsHook<AnyTaskModel> {
  return taskOf(model).predict as PredictInputsHook<AnyTaskModel>;
}

/** A body of a task's own shape (`own` are the fields that say so), read by its model's task. */
function ownBody(body: PredictBody, own: readonly string[], context: RouteContext): Promise<object> {
  const model = context.model(body.model);
  const hook: PredictHook<AnyTaskModel> = taskOf(model).predict!;
  const readers = (field: string): string => OWN_FIELDS.get(field)!.join(' and ');
  if (!('read' in hook))
    throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', {
      problem: `it has "${own[0]}", which ${readers(own[0]!)} models read, but ${model.manifest.name} is a ${model.task} model`,
    });
  const invalid = (problem: string): Error =>
    new KilnError('KILN_ERR_HTTP_INVALID_BODY', { problem, expected: hook.expected });
  const extra = Object.keys(body).find((field) => field !== 'model' && !Object.hasOwn(hook.fields, field));
  if (extra !== undefined) throw invalid(`it has "${extra}", which ${model.task} models do not read`);
  const { model: _name, ...fields } = body as Record<string, unknown>;
  return hook.read(model, fields, { limits: context.limits, deadline: context.deadline, invalid });
}

function base64(value: string, where: string): Uint8Array {
  const bytes = decodeBase64(value);
  if (!bytes) throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', { problem: `${where} is not a base64 string` });
  return bytes;
}
