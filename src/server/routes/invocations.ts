/**
 * SageMaker's container contract, `POST /invocations` (GET /ping is routes/ping.ts):
 * - `application/json`: `{"inputs": "…"}` → `{"label","score"}`; `{"inputs": ["…", …]}` →
 *   `{"predictions": […]}`, the answers of /predict. `"parameters": {"return_all_scores": true}`
 *   adds every label's score, as Hugging Face's SageMaker containers take it.
 * - `application/jsonlines`, as Batch Transform sends a split file: one input per line
 *   (`{"inputs": "…"}` or a JSON string) → one answer per line, in order, same content type.
 * All texts of one request are queued together, so a JSON Lines body batches well.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { KilnError } from '../../core/errors.js';
import type { Task } from '../../model/artifact.js';
import { MAX_IMAGE_BYTES } from '../../model/image.js';
import { predictionBody } from '../answers.js';
import { checkTexts } from '../limits.js';
import { defineRoute } from '../route.js';

const JSON_LINES_TYPES = ['application/jsonlines', 'application/jsonl', 'application/x-jsonlines'];

/** One input: a text or a list of texts, and whether to return every label's score. */
interface Invocation {
  texts: string[];
  single: boolean;
  allScores: boolean;
}

function invalid(problem: string, line: number | null): KilnError {
  return line === null
    ? new KilnError('KILN_ERR_HTTP_INVOCATIONS_BODY', { problem })
    : new KilnError('KILN_ERR_HTTP_BAD_JSON_LINE', { line, problem });
}

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
  if (typeof inputs === 'string') return { texts: [inputs], single: true, allScores };
  if (Array.isArray(inputs)) {
    if (inputs.length === 0) throw invalid('"inputs" is an empty list', line);
    const bad = inputs.findIndex((t) => typeof t !== 'string');
    if (bad >= 0) throw invalid(`"inputs[${bad}]" is not a string`, line);
    return { texts: inputs as string[], single: false, allScores };
  }
  throw invalid(
    inputs === undefined ? `${where} has no "inputs"` : '"inputs" is neither a string nor a list of strings',
    line,
  );
}

function readJsonLines(body: string): Array<Invocation & { line: number }> {
  const out: Array<Invocation & { line: number }> = [];
  body.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      throw invalid('does not parse as JSON', i + 1);
    }
    out.push({ ...readInvocation(value, i + 1), line: i + 1 });
  });
  if (out.length === 0) throw invalid('the body has no lines', null);
  return out;
}

/** The model a SageMaker multi-model endpoint names in its header (the archive's name), if any. */
function targetModel(headers: IncomingHttpHeaders): string | undefined {
  const target = headers['x-amzn-sagemaker-target-model'];
  return typeof target === 'string' && target !== '' ? target.replace(/\.tar\.gz$/, '') : undefined;
}

export const invocationsRoutes = [
  defineRoute<{ Body: unknown }, Task>({
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
      tasks: ['text-classification', 'feature-extraction', 'image-classification'],
      target: (head) => targetModel(head.headers),
    },
    handler: async (request, reply, context) => {
      const { deadline } = context;
      const named = targetModel(request.headers);
      if (Buffer.isBuffer(request.body)) {
        const model = context.model(named, {
          tasks: ['image-classification'],
          what: 'POST /invocations with an image body',
        });
        const [p] = await model.classify([new Uint8Array(request.body)], () => 'the request body', { deadline });
        return { label: p!.label, score: p!.score, labels: p!.labels };
      }
      const mediaType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      const lines = JSON_LINES_TYPES.includes(mediaType);
      const invocations = lines
        ? readJsonLines(request.body as string)
        : [{ ...readInvocation(request.body, null), line: 0 }];
      const model = context.model(named, {
        tasks: ['text-classification', 'feature-extraction'],
        what: 'POST /invocations',
      });
      // One call for the whole body: the texts of every line share batches.
      const texts = invocations.flatMap((inv) => inv.texts);
      const names = invocations.flatMap((inv) =>
        inv.texts.map((_, k) =>
          lines ? `line ${inv.line}${inv.single ? '' : ` "inputs[${k}]"`}` : inv.single ? '"inputs"' : `"inputs[${k}]"`,
        ),
      );
      const describe = (i: number): string => names[i]!;
      checkTexts(texts, describe, context.limits);
      // One answer body per text: {"embedding": […]} from an embedder, {"label", "score"} from a classifier.
      const bodies: Array<(allScores: boolean) => object> =
        model.task === 'feature-extraction'
          ? (await model.embed(texts, describe, { deadline })).map((e) => () => ({ embedding: e.embedding }))
          : (await model.classify(texts, describe, { deadline })).map(
              (p) => (allScores) => predictionBody(p, model.labels, allScores),
            );
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
