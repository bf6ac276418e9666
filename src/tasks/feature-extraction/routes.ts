/**
 * The routes only feature-extraction models serve:
 * - `POST /v1/embeddings`, OpenAI's shape, so the `openai` client and tools built on it work:
 *   `{"input": "…" | ["…"], "model", "encoding_format"?: "float" | "base64"}` →
 *   `{"object": "list", "data": [{"object": "embedding", "index", "embedding"}], "model", "usage"}`.
 *   The official Node client asks for base64 (little-endian float32) unless told otherwise.
 * - `POST /embed`, Text Embeddings Inference's shape: `{"inputs": "…" | ["…"]}` → `[[…], …]`,
 *   with TEI's options `normalize`, `truncate`, `truncation_direction` and `prompt_name`.
 * - `POST /similarity`, TEI's `{"inputs": {"source_sentence", "sentences"}, "parameters"?}` →
 *   the cosine of each sentence's vector with the source sentence's.
 * /v1/embeddings and /embed take `dimensions` (Matryoshka): the first N dimensions of each vector,
 * scaled back to unit length, as OpenAI's and TEI's `dimensions` do. Vectors are unit length on
 * both, as OpenAI's are and as TEI's `normalize` defaults to, whether the artifact's graph
 * normalizes or not; /embed's `normalize: false` answers an un-normalized artifact's raw vectors.
 */
import { KilnError } from '../../core/errors.js';
import type { TruncationDirection } from '../../model/tokenizer.js';
import type { TextOptions } from '../../runtime/text-model.js';
import { checkTexts } from '../limits.js';
import { defineRoute, type InferenceFacts, type RouteContext } from '../route.js';
import type { Embedding, TextEmbedder } from './model.js';

interface OpenAiBody {
  input: string | string[];
  model: string;
  encoding_format?: 'float' | 'base64';
  dimensions?: number;
  user?: string;
}

const textOrTexts = { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] };

const openAiSchema = {
  type: 'object',
  required: ['input', 'model'],
  properties: {
    input: textOrTexts,
    model: { type: 'string' },
    encoding_format: { type: 'string', enum: ['float', 'base64'] },
    dimensions: { type: 'integer', minimum: 1 },
    // Accepted and ignored, as clients send it for abuse tracking.
    user: { type: 'string' },
  },
  additionalProperties: false,
} as const;

/** TEI's truncation options, as TEI spells them ("Right"/"Left", lower case accepted as TEI does). */
const truncationProperties = {
  truncate: { type: ['boolean', 'null'] },
  truncation_direction: { type: 'string', enum: ['Right', 'Left', 'right', 'left'] },
  prompt_name: { type: ['string', 'null'] },
} as const;

interface TruncationFields {
  truncate?: boolean | null;
  truncation_direction?: 'Right' | 'Left' | 'right' | 'left';
  prompt_name?: string | null;
}

interface EmbedBody extends TruncationFields {
  inputs: string | string[];
  model?: string;
  dimensions?: number;
  normalize?: boolean;
}

const embedSchema = {
  type: 'object',
  required: ['inputs'],
  properties: {
    inputs: textOrTexts,
    model: { type: 'string' },
    dimensions: { type: 'integer', minimum: 1 },
    normalize: { type: 'boolean' },
    ...truncationProperties,
  },
  additionalProperties: false,
} as const;

interface SimilarityBody {
  inputs: { source_sentence: string; sentences: string[] };
  parameters?: TruncationFields | null;
  model?: string;
}

const similaritySchema = {
  type: 'object',
  required: ['inputs'],
  properties: {
    inputs: {
      type: 'object',
      required: ['source_sentence', 'sentences'],
      properties: {
        source_sentence: { type: 'string' },
        sentences: { type: 'array', items: { type: 'string' }, minItems: 1 },
      },
      additionalProperties: false,
    },
    parameters: {
      type: ['object', 'null'],
      properties: truncationProperties,
      additionalProperties: false,
    },
    model: { type: 'string' },
  },
  additionalProperties: false,
} as const;

/** A request's TEI options as the tokenizer and model take them; truncation is on unless `truncate: false`. */
function textOptions(fields: TruncationFields | null | undefined): Omit<TextOptions, 'deadline'> {
  const direction = fields?.truncation_direction?.toLowerCase() as TruncationDirection | undefined;
  return {
    truncate: fields?.truncate !== false,
    ...(direction ? { truncationDirection: direction } : {}),
    ...(typeof fields?.prompt_name === 'string' ? { promptName: fields.prompt_name } : {}),
  };
}

/**
 * Whether /embed answers unit-length vectors: TEI's `normalize`, true unless the request sends
 * false. An artifact compiled with --no-normalize has its vectors scaled here; one whose graph
 * normalizes cannot give them back raw, so `normalize: false` on it is a 400 naming --no-normalize.
 */
function wantsUnitLength(normalize: boolean | undefined, model: TextEmbedder): boolean {
  if (normalize === false && model.head.normalize)
    throw new KilnError('KILN_ERR_INPUT_ALREADY_NORMALIZED', { model: model.manifest.name });
  return normalize !== false;
}

function unitLength(vector: readonly number[]): number[] {
  const norm = Math.sqrt(vector.reduce((sum, v) => sum + v * v, 0));
  return norm > 0 ? vector.map((v) => v / norm) : [...vector];
}

/** Cosine similarity; 0 when either vector is all zeros. */
function cosine(a: readonly number[], b: readonly number[]): number {
  let dot = 0;
  let aa = 0;
  let bb = 0;
  a.forEach((v, i) => {
    dot += v * b[i]!;
    aa += v * v;
    bb += b[i]! * b[i]!;
  });
  return aa > 0 && bb > 0 ? dot / Math.sqrt(aa * bb) : 0;
}

/** A vector as base64 of its little-endian float32 bytes (OpenAI's encoding_format "base64"). */
function vectorToBase64(vector: readonly number[]): string {
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((v, i) => {
    bytes.writeFloatLE(v, i * 4);
  });
  return bytes.toString('base64');
}

/** Refuses (400) more `dimensions` than the model makes, before any work. */
function checkDimensions(dimensions: number | undefined, model: TextEmbedder): void {
  const { dimension } = model.head;
  if (dimensions !== undefined && dimensions > dimension) {
    throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', {
      problem: `"dimensions" is ${dimensions}, but ${JSON.stringify(model.manifest.name)} makes ${dimension}-dimensional vectors; send 1 to ${dimension}, or omit it for all ${dimension}`,
    });
  }
}

/**
 * The first `dimensions` of a vector (all of it without), scaled to unit length when `unit`;
 * `normalized` says the model's graph already scaled the whole vector, which is then left as is.
 */
function shorten(
  vector: readonly number[],
  dimensions: number | undefined,
  unit: boolean,
  normalized: boolean,
): number[] {
  const whole = dimensions === undefined || dimensions >= vector.length;
  const kept = whole ? [...vector] : vector.slice(0, dimensions);
  return unit && !(whole && normalized) ? unitLength(kept) : kept;
}

/** The texts of `input` (one or a list) and how errors name each; an empty list is refused. */
function textsOf(input: string | string[], field: string): { texts: string[]; describe: (i: number) => string } {
  if (typeof input === 'string') return { texts: [input], describe: () => `"${field}"` };
  if (input.length === 0) throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', { problem: `"${field}" is an empty list` });
  return { texts: input, describe: (i) => `"${field}[${i}]"` };
}

/** The vectors of the texts of `input` (the body's field `field`), within the request's limits. */
function embed(
  model: TextEmbedder,
  input: string | string[],
  field: string,
  context: Pick<RouteContext, 'limits' | 'deadline'>,
  options: Omit<TextOptions, 'deadline'> = {},
): Promise<Embedding[]> {
  const { texts, describe } = textsOf(input, field);
  checkTexts(texts, describe, context.limits);
  return model.embed(texts, describe, { ...options, deadline: context.deadline });
}

const inference = { tasks: ['feature-extraction'] } as const satisfies InferenceFacts;

export const embeddingRoutes = [
  defineRoute<{ Body: OpenAiBody }, 'feature-extraction'>({
    method: 'POST',
    url: '/v1/embeddings',
    access: 'key',
    schema: { body: openAiSchema },
    expectedBody: '{"model": "<name>", "input": "…" or ["…", …]} (token-id arrays are not accepted: send texts)',
    inference,
    handler: async (request, _reply, context) => {
      const { input, model: name, encoding_format: format = 'float', dimensions } = request.body;
      const model = context.model(name);
      checkDimensions(dimensions, model);
      const embeddings = await embed(model, input, 'input', context);
      // OpenAI's vectors are unit length: so are these, whatever the artifact's graph does.
      const vectorOf = (e: Embedding) => shorten(e.embedding, dimensions, true, model.head.normalize);
      const tokens = embeddings.reduce((n, e) => n + e.tokens, 0);
      return {
        object: 'list',
        data: embeddings.map((e, index) => ({
          object: 'embedding',
          index,
          embedding: format === 'base64' ? vectorToBase64(vectorOf(e)) : vectorOf(e),
        })),
        model: model.manifest.name,
        usage: { prompt_tokens: tokens, total_tokens: tokens },
      };
    },
  }),
  defineRoute<{ Body: EmbedBody }, 'feature-extraction'>({
    method: 'POST',
    url: '/embed',
    access: 'key',
    schema: { body: embedSchema },
    expectedBody:
      '{"inputs": "…" or ["…", …], "normalize"?, "truncate"?, "truncation_direction"?: "Right" | "Left", "prompt_name"?, "dimensions"?}',
    inference,
    handler: async (request, _reply, context) => {
      const { dimensions } = request.body;
      const model = context.model(request.body.model);
      checkDimensions(dimensions, model);
      const unit = wantsUnitLength(request.body.normalize, model);
      const embeddings = await embed(model, request.body.inputs, 'inputs', context, textOptions(request.body));
      return embeddings.map((e) => shorten(e.embedding, dimensions, unit, model.head.normalize));
    },
  }),
  defineRoute<{ Body: SimilarityBody }, 'feature-extraction'>({
    method: 'POST',
    url: '/similarity',
    access: 'key',
    schema: { body: similaritySchema },
    expectedBody:
      '{"inputs": {"source_sentence": "…", "sentences": ["…", …]}, "parameters"?: {"truncate", "truncation_direction", "prompt_name"}}',
    inference,
    handler: async (request, _reply, context) => {
      const { source_sentence: source, sentences } = request.body.inputs;
      const model = context.model(request.body.model);
      const texts = [source, ...sentences];
      const describe = (i: number) => (i === 0 ? '"inputs.source_sentence"' : `"inputs.sentences[${i - 1}]"`);
      checkTexts(texts, describe, context.limits);
      const [first, ...rest] = await model.embed(texts, describe, {
        ...textOptions(request.body.parameters),
        deadline: context.deadline,
      });
      return rest.map((e) => cosine(first!.embedding, e.embedding));
    },
  }),
];
