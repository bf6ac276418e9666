/**
 * `POST /predict`, for the tasks whose module has a `predict` hook: `{"text"}` (with
 * `"text_pair"` for a pair) → one answer; `{"texts": […]}` (each a text or `{"text",
 * "text_pair"}`) → `{"predictions": […]}`; `"return_all_scores": true` asks for every label's
 * score; `truncate` and `truncation_direction` (Text Embeddings Inference's names) say what
 * happens to a text longer than the artifact's max length. Image tasks take `{"image": "<base64>"}`, `{"images": […]}` or the raw bytes with an
 * `image/*` content type. The route reads the inputs by the task's input kind; what the answer
 * holds is the task module's.
 */
import { KilnError } from '../../core/errors.js';
import { MAX_IMAGE_BYTES } from '../../model/image.js';
import type { TextInput } from '../../runtime/text-model.js';
import { checkTexts, MAX_TEXTS_PER_REQUEST } from '../../tasks/limits.js';
import { TASK_MODULES, taskOf, tasksWhere } from '../../tasks/registry.js';
import { decodeBase64, defineRoute, type RouteContext } from '../../tasks/route.js';
import type { AnyTaskModel, InputKind, PredictHook, PredictInputsHook } from '../../tasks/task.js';
import { TEXT_PAIR_SCHEMA, TRUNCATION_SCHEMA, type TruncationBody, truncationOptions } from '../../tasks/text-body.js';

/** Where the image/* parser puts the body: a symbol key, which the JSON schema does not see. */
const RAW_IMAGE = Symbol('raw image');

interface PredictBody {
  text?: string;
  text_pair?: string;
  texts?: TextInput[];
  image?: string;
  images?: string[];
  [RAW_IMAGE]?: Buffer;
  return_all_scores?: boolean;
  truncate?: boolean;
  truncation_direction?: TruncationBody;
  /** Which model, when the server serves several (a model repository). */
  model?: string;
}

const SHARED_FIELDS = {
  text: { type: 'string' },
  text_pair: { type: 'string' },
  texts: { type: 'array', items: { anyOf: [{ type: 'string' }, TEXT_PAIR_SCHEMA] } },
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
    expectedBody:
      '{"text": "…"} (with "text_pair": "…" for a pair) or {"texts": ["…" or {"text": "…", "text_pair": "…"}, …]} (image models: {"image": "<base64>"}, {"images": […]} or an image/* body)',
    inference: { tasks: PREDICT_TASKS },
    handler: async (request, _reply, context) => {
      const { text, text_pair: pair, texts, image, images, return_all_scores: allScores = false } = request.body;
      const name = request.body.model;
      const raw = request.body[RAW_IMAGE];
      const { deadline } = context;
      const own = Object.keys(request.body).filter((field) => OWN_FIELDS.has(field));
      if (own.length > 0) return ownBody(request.body, own, context);
      if (raw !== undefined || image !== undefined || images !== undefined) {
        if ([raw, image, images, text ?? pair, texts].filter((v) => v !== undefined).length > 1)
          throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', {
            problem: 'it has more than one of "image", "images", "text", "texts" and a raw image',
          });
        if (images && images.length === 0)
          throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', { problem: '"images" is an empty list' });
        if (images && images.length > MAX_TEXTS_PER_REQUEST)
          throw new KilnError('KILN_ERR_HTTP_TOO_MANY_TEXTS', { count: images.length, limit: MAX_TEXTS_PER_REQUEST });
        const model = context.model(name, { tasks: takes('image'), what: 'POST /predict with images' });
        const bytes = raw
          ? [new Uint8Array(raw)]
          : image !== undefined
            ? [base64(image, '"image"')]
            : images!.map((b, i) => base64(b, `"images[${i}]"`));
        const describe = (i: number): string =>
          raw ? 'the request body' : image !== undefined ? '"image"' : `"images[${i}]"`;
        const bodies = await inputsHook(model).answer(model, bytes, describe, { deadline, allScores });
        return images ? { predictions: bodies } : bodies[0];
      }
      if ((text === undefined) === (texts === undefined)) {
        throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', {
          problem: text === undefined ? 'it has neither "text" nor "texts"' : 'it has both "text" and "texts"',
        });
      }
      if (texts && texts.length === 0)
        throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', { problem: '"texts" is an empty list' });
      if (pair !== undefined && text === undefined)
        throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', {
          problem: '"text_pair" comes with "text" (in a list, each item is {"text", "text_pair"})',
        });
      const model = context.model(name);
      const hook = taskOf(model).predict!;
      if ('read' in hook)
        throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', {
          problem: `${model.manifest.name} is a ${model.task} model, which reads a body of its own`,
          expected: hook.expected,
        });
      if (taskOf(model).input !== 'text')
        throw new KilnError('KILN_ERR_INPUT_KIND', {
          where: text !== undefined ? '"text"' : '"texts"',
          expected: 'images ({"image": "<base64>"}, {"images": […]} or an image/* body)',
          got: 'a text',
          task: model.task,
        });
      const inputs: TextInput[] = text === undefined ? texts! : [pair === undefined ? text : { text, text_pair: pair }];
      const describe = (i: number): string => (text !== undefined ? '"text"' : `"texts[${i}]"`);
      checkTexts(inputs, describe, context.limits);
      const bodies = await hook.answer(model, inputs, describe, {
        deadline,
        allScores,
        ...truncationOptions(request.body),
      });
      return text !== undefined ? bodies[0] : { predictions: bodies };
    },
  }),
];

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
