/**
 * SageMaker's container contract, `POST /invocations` (GET /ping is routes/ping.ts), for the
 * tasks whose module has an `invocations` hook (which says what each input's answer holds):
 * - `application/json`: `{"inputs": "…"}` (or a text pair `{"text", "text_pair"}`) → one
 *   answer; `{"inputs": [… , …]}` → `{"predictions": […]}`. `"parameters":
 *   {"return_all_scores": true}` asks for every label's score, as Hugging Face's SageMaker
 *   containers take it.
 * - `application/jsonlines`, as Batch Transform sends a split file: one input per line
 *   (`{"inputs": …}` or a JSON string) → one answer per line, in order, same content type.
 * - A task whose hook reads a body of its own (a ranker's `{"query", "texts"}`) gets the JSON
 *   body, or each line, and answers it.
 * All texts of one request are queued together, so a JSON Lines body batches well.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { KilnError } from '../../core/errors.js';
import { MAX_IMAGE_BYTES } from '../../model/image.js';
import type { TextInput } from '../../runtime/text-model.js';
import { checkTexts } from '../../tasks/limits.js';
import { taskOf, tasksWhere } from '../../tasks/registry.js';
import { defineRoute } from '../../tasks/route.js';
import type { InputKind, InvocationsHook, InvocationsInputsHook } from '../../tasks/task.js';

/** The tasks /invocations serves, and those of them that take each input kind. */
const INVOCATION_TASKS = tasksWhere((m) => m.invocations !== undefined);
const takes = (input: InputKind) => tasksWhere((m) => m.invocations !== undefined && m.input === input);

const JSON_LINES_TYPES = ['application/jsonlines', 'application/jsonl', 'application/x-jsonlines'];

/** One input: a text (or pair) or a list of them, and whether to return every label's score. */
interface Invocation {
  texts: TextInput[];
  single: boolean;
  allScores: boolean;
}

function invalid(problem: string, line: number | null, expected?: string): KilnError {
  return line === null
    ? new KilnError('KILN_ERR_HTTP_INVOCATIONS_BODY', { problem, expected })
    : new KilnError('KILN_ERR_HTTP_BAD_JSON_LINE', { line, problem, expected });
}

/** A text pair `{"text", "text_pair"}` (both strings, nothing else), or null. */
function asPair(value: unknown): TextInput | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const { text, text_pair: pair, ...rest } = value as Record<string, unknown>;
  if (typeof text !== 'string' || typeof pair !== 'string' || Object.keys(rest).length > 0) return null;
  return { text, text_pair: pair };
}

const asInput = (value: unknown): TextInput | null => (typeof value === 'string' ? value : asPair(value));

/** Reads `{"inputs", "parameters"?}` (or, on a JSON Lines line, a bare string). */
function readInvocation(value: unknown, line: number | null): Invocation {
  const where = line === null ? 'the body' : 'it';
  if (typeof value === 'string' && line !== null) return { texts: [value], single: true, allScores: false };
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalid(`${where} is not a JSON object${line === null ? '' : ' or string'}`, line);
  const { inputs, parameters, ...rest } = value as Record<string, unknown>;
  const extra = Object.keys(rest)[0];
  if (extra !== undefined) throw invalid(`${where} has an unknown field "${extra}"`, line);
  let allScores = false;
  if (parameters !== undefined) {
    if (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters))
      throw invalid('"parameters" is not an object', line);
    const { return_all_scores: all, ...others } = parameters as Record<string, unknown>;
    const unknown = Object.keys(others)[0];
    if (unknown !== undefined)
      throw invalid(`"parameters" has an unknown field "${unknown}" (only "return_all_scores" is read)`, line);
    if (all !== undefined && typeof all !== 'boolean')
      throw invalid('"parameters.return_all_scores" is not true or false', line);
    allScores = all === true;
  }
  const one = asInput(inputs);
  if (one !== null) return { texts: [one], single: true, allScores };
  if (Array.isArray(inputs)) {
    if (inputs.length === 0) throw invalid('"inputs" is an empty list', line);
    const texts = inputs.map(asInput);
    const bad = texts.indexOf(null);
    if (bad >= 0)
      throw invalid(`"inputs[${bad}]" is not a string (nor a text pair {"text", "text_pair"} of two strings)`, line);
    return { texts: texts as TextInput[], single: false, allScores };
  }
  throw invalid(
    inputs === undefined
      ? `${where} has no "inputs"`
      : '"inputs" is neither a string nor a list of strings (nor a text pair {"text", "text_pair"}, or a list of them)',
    line,
  );
}

/** A JSON Lines body's values with their line numbers; `expected` is the fix errors name. */
function parseJsonLines(body: string, expected?: string): Array<{ value: unknown; line: number }> {
  const out: Array<{ value: unknown; line: number }> = [];
  body.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    try {
      out.push({ value: JSON.parse(raw), line: i + 1 });
    } catch {
      throw invalid('does not parse as JSON', i + 1, expected);
    }
  });
  if (out.length === 0) throw invalid('the body has no lines', null, expected);
  return out;
}

/** The model a SageMaker multi-model endpoint names in its header (the archive's name), if any. */
function targetModel(headers: IncomingHttpHeaders): string | undefined {
  const target = headers['x-amzn-sagemaker-target-model'];
  return typeof target === 'string' && target !== '' ? target.replace(/\.tar\.gz$/, '') : undefined;
}

export const invocationsRoutes = [
  defineRoute<{ Body: unknown }>({
    method: 'POST',
    url: '/invocations',
    access: 'key',
    parsers: [
      // JSON Lines is parsed by the route (line numbers in errors).
      { types: JSON_LINES_TYPES, parseAs: 'string' },
      // Image models: the raw image, as SageMaker's image containers take it.
      { types: ['application/x-image', /^image\//], parseAs: 'buffer', bodyLimit: MAX_IMAGE_BYTES },
    ],
    inference: {
      tasks: INVOCATION_TASKS,
      target: (head) => targetModel(head.headers),
    },
    handler: async (request, reply, context) => {
      const { deadline } = context;
      const named = targetModel(request.headers);
      if (Buffer.isBuffer(request.body)) {
        const model = context.model(named, { tasks: takes('image'), what: 'POST /invocations with an image body' });
        const [answer] = await (taskOf(model).invocations as InvocationsInputsHook<typeof model>).answers(
          model,
          [new Uint8Array(request.body)],
          () => 'the request body',
          { deadline },
        );
        return answer!(false);
      }
      const mediaType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      const lines = JSON_LINES_TYPES.includes(mediaType);
      const model = context.model(named, { tasks: takes('text'), what: 'POST /invocations' });
      const hook: InvocationsHook<typeof model> = taskOf(model).invocations!;
      if ('read' in hook) {
        const { expected } = hook;
        const read = (value: unknown, line: number | null) =>
          hook.read(model, value, {
            limits: context.limits,
            deadline,
            invalid: (problem) => invalid(problem, line, expected),
          });
        if (!lines) return read(request.body, null);
        // Every line's texts are queued at once, so they share batches.
        const answers = await Promise.all(
          parseJsonLines(request.body as string, expected).map(({ value, line }) => read(value, line)),
        );
        reply.type('application/jsonlines');
        return answers.map((a) => `${JSON.stringify(a)}\n`).join('');
      }
      const invocations = lines
        ? parseJsonLines(request.body as string).map(({ value, line }) => ({ ...readInvocation(value, line), line }))
        : [{ ...readInvocation(request.body, null), line: 0 }];
      // One call for the whole body: the texts of every line share batches.
      const texts = invocations.flatMap((inv) => inv.texts);
      const names = invocations.flatMap((inv) =>
        inv.texts.map((_, k) =>
          lines ? `line ${inv.line}${inv.single ? '' : ` "inputs[${k}]"`}` : inv.single ? '"inputs"' : `"inputs[${k}]"`,
        ),
      );
      const describe = (i: number): string => names[i]!;
      checkTexts(texts, describe, context.limits);
      const bodies = await hook.answers(model, texts, describe, { deadline });
      let next = 0;
      const answers = invocations.map((inv) => {
        const mine = bodies.slice(next, next + inv.texts.length).map((body) => body(inv.allScores));
        next += inv.texts.length;
        return inv.single ? mine[0]! : { predictions: mine };
      });
      if (!lines) return answers[0];
      reply.type('application/jsonlines');
      return answers.map((a) => `${JSON.stringify(a)}\n`).join('');
    },
  }),
];
