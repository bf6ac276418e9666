/**
 * KServe v2 / Open Inference Protocol over HTTP (kserve/open-inference-protocol,
 * specification/protocol/inference_rest.md): server and model metadata, health, and inference
 * with the texts as one BYTES input. Errors are `{"error": "…"}` (http-errors.ts) with Triton's
 * statuses: 400 bad request, 404 unknown model, 503 not ready. Clients that tokenize themselves
 * send INT64 `input_ids` / `attention_mask` tensors instead and get the same outputs. Image
 * models take one input: BYTES [n] (each element a base64-encoded JPEG, PNG or WebP) or FP32
 * [n, 3, H, W] (preprocessed by the client, as the manifest's `image` says).
 */
import type { FastifyReply } from 'fastify';
import { KilnError } from '../../core/errors.js';
import { TASKS } from '../../model/artifact.js';
import type { ImagePreprocessing } from '../../model/image.js';
import type { LoadedModel } from '../../runtime/load-model.js';
import { topLabel } from '../../runtime/text-classifier.js';
import { KILN_VERSION } from '../../version.js';
import { decodeBase64 } from '../answers.js';
import { checkTexts, MAX_TEXTS_PER_REQUEST } from '../limits.js';
import type { ModelHost } from '../model-host.js';
import { defineRoute, type RequestHead } from '../route.js';

const fail = (err: KilnError): never => {
  throw err;
};

const MODEL_VERSION = '1';
/** Triton's platform name for ONNX Runtime models. */
const PLATFORM = 'onnxruntime_onnx';
/** Outputs by task: a classifier's label, score and logits; an embedder's vectors. */
const OUTPUTS = {
  'text-classification': ['label', 'score', 'logits'],
  'image-classification': ['label', 'score', 'logits'],
  'feature-extraction': ['embedding'],
} as const;
type OutputName = 'label' | 'score' | 'logits' | 'embedding';
/** Datatypes of token id tensors: a client that tokenized itself. */
const TOKEN_DATATYPES = new Set(['INT64', 'INT32', 'UINT64', 'UINT32', 'INT16', 'INT8']);
const TOKEN_INPUTS = new Set(['input_ids', 'attention_mask', 'token_type_ids']);

interface ModelParams {
  name: string;
  version?: string;
}

interface TensorInput {
  name: string;
  shape: number[];
  datatype: string;
  parameters?: Record<string, unknown>;
  data: unknown[];
}

interface InferBody {
  id?: string;
  parameters?: Record<string, unknown>;
  inputs: TensorInput[];
  outputs?: Array<{ name: string; parameters?: Record<string, unknown> }>;
}

const parametersSchema = { type: 'object' } as const;
const inferSchema = {
  type: 'object',
  required: ['inputs'],
  properties: {
    id: { type: 'string' },
    parameters: parametersSchema,
    inputs: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['name', 'shape', 'datatype', 'data'],
        properties: {
          name: { type: 'string' },
          shape: { type: 'array', items: { type: 'integer', minimum: 0 } },
          datatype: { type: 'string' },
          parameters: parametersSchema,
          data: { type: 'array' },
        },
        additionalProperties: false,
      },
    },
    outputs: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name'],
        properties: { name: { type: 'string' }, parameters: parametersSchema },
        additionalProperties: false,
      },
    },
  },
  additionalProperties: false,
} as const;

/**
 * The model serving `name` (and `version`), found by `ready` (the host's, or the route's with
 * its task check); KServe's 404 for a name or version not served.
 */
function modelFor(
  host: ModelHost,
  params: ModelParams,
  ready: (name: string) => LoadedModel = (name) => host.ready(name),
): LoadedModel {
  const unknown = (): KilnError =>
    new KilnError('KILN_ERR_HTTP_V2_UNKNOWN_MODEL', {
      model: params.version === undefined ? params.name : `${params.name}/versions/${params.version}`,
      served: host.names().join(', '),
    });
  if (params.version !== undefined && params.version !== MODEL_VERSION && host.unavailable() === null) throw unknown();
  try {
    return ready(params.name);
  } catch (err) {
    if (err instanceof KilnError && err.code === 'KILN_ERR_HTTP_UNKNOWN_MODEL') throw unknown();
    throw err;
  }
}

function metadata(model: LoadedModel): object {
  const outputs =
    model.task === 'feature-extraction'
      ? [{ name: 'embedding', datatype: 'FP32', shape: [-1, model.head.dimension] }]
      : [
          { name: 'label', datatype: 'BYTES', shape: [-1] },
          { name: 'score', datatype: 'FP32', shape: [-1] },
          { name: 'logits', datatype: 'FP32', shape: [-1, model.labels.length] },
        ];
  const inputs =
    model.task === 'image-classification'
      ? [
          { name: 'image', datatype: 'BYTES', shape: [-1] },
          {
            name: model.preprocessing.input,
            datatype: 'FP32',
            shape: [-1, 3, model.preprocessing.height, model.preprocessing.width],
          },
        ]
      : [{ name: 'text', datatype: 'BYTES', shape: [-1] }];
  return { name: model.manifest.name, versions: [MODEL_VERSION], platform: PLATFORM, inputs, outputs };
}

const invalid = (problem: string): KilnError => new KilnError('KILN_ERR_HTTP_V2_INVALID_REQUEST', { problem });

/** The request's texts, or its token rows when the client tokenized (INT64/INT32 tensors). */
type Request =
  | { kind: 'texts'; texts: string[]; shape: number[] }
  | { kind: 'tokens'; rows: Array<{ ids: number[]; typeIds?: number[] }> };

function readRequest(inputs: readonly TensorInput[]): Request {
  if (inputs.some((i) => TOKEN_INPUTS.has(i.name) || TOKEN_DATATYPES.has(i.datatype)))
    return { kind: 'tokens', rows: readTokens(inputs) };
  return { kind: 'texts', ...readTexts(inputs) };
}

/** The texts of the request's one BYTES input: shape [n] or [n, 1], data flat or nested. */
function readTexts(inputs: readonly TensorInput[]): { texts: string[]; shape: number[] } {
  if (inputs.length !== 1)
    throw invalid(
      `the model takes one input, "text", but the request has ${inputs.length}: ${inputs.map((i) => JSON.stringify(i.name)).join(', ')}`,
    );
  const input = inputs[0]!;
  if (input.datatype !== 'BYTES')
    throw invalid(`input "${input.name}" has datatype ${JSON.stringify(input.datatype)}; the text input is BYTES`);
  const { shape } = input;
  if (!(shape.length === 1 || (shape.length === 2 && shape[1] === 1)) || shape[0] === 0) {
    throw invalid(
      `input "${input.name}" has shape ${JSON.stringify(shape)}; texts take shape [n] or [n, 1] with n ≥ 1`,
    );
  }
  const n = shape[0]!;
  if (n > MAX_TEXTS_PER_REQUEST)
    throw new KilnError('KILN_ERR_HTTP_TOO_MANY_TEXTS', { count: n, limit: MAX_TEXTS_PER_REQUEST });
  // The protocol allows the data flattened (row-major) or nested as the shape.
  const data = input.data.flat();
  if (data.length !== n)
    throw invalid(
      `input "${input.name}" has shape ${JSON.stringify(shape)} (${n} elements) but ${data.length} data elements`,
    );
  const bad = data.findIndex((t) => typeof t !== 'string');
  if (bad >= 0) throw invalid(`element ${bad} of input "${input.name}" is ${JSON.stringify(data[bad])}, not a string`);
  return { texts: data as string[], shape };
}

/**
 * Token rows from `input_ids` and `attention_mask` [batch, sequence] (optionally
 * `token_type_ids`), integer datatypes: each row keeps the tokens its mask marks, which must
 * come first (padding at the end, as tokenizers pad).
 */
function readTokens(inputs: readonly TensorInput[]): Array<{ ids: number[]; typeIds?: number[] }> {
  const byName = new Map(inputs.map((i) => [i.name, i]));
  const unknown = inputs.find((i) => !TOKEN_INPUTS.has(i.name));
  if (unknown)
    throw invalid(
      `input ${JSON.stringify(unknown.name)} is not a token input; token inputs are ${[...TOKEN_INPUTS].join(', ')}`,
    );
  const ids = byName.get('input_ids');
  const mask = byName.get('attention_mask');
  if (!ids || !mask) throw invalid('token inputs need both "input_ids" and "attention_mask"');
  const tensors = [ids, mask, byName.get('token_type_ids')].filter((t): t is TensorInput => t !== undefined);
  const shape = ids.shape;
  for (const t of tensors) {
    if (!TOKEN_DATATYPES.has(t.datatype))
      throw invalid(`input "${t.name}" has datatype ${JSON.stringify(t.datatype)}; token inputs are INT64 or INT32`);
    if (t.shape.length !== 2 || t.shape[0] !== shape[0] || t.shape[1] !== shape[1] || shape.length !== 2) {
      throw invalid(
        `input "${t.name}" has shape ${JSON.stringify(t.shape)}; token inputs share one shape [batch, sequence]`,
      );
    }
  }
  const [batch, sequence] = shape as [number, number];
  if (batch === 0 || batch > MAX_TEXTS_PER_REQUEST)
    throw new KilnError('KILN_ERR_HTTP_TOO_MANY_TEXTS', { count: batch, limit: MAX_TEXTS_PER_REQUEST });
  const flat = (t: TensorInput): unknown[] => {
    const data = t.data.flat(2);
    if (data.length !== batch * sequence)
      throw invalid(
        `input "${t.name}" has shape ${JSON.stringify(t.shape)} (${batch * sequence} elements) but ${data.length} data elements`,
      );
    const bad = data.findIndex((v) => !Number.isInteger(v));
    if (bad >= 0) throw invalid(`element ${bad} of input "${t.name}" is ${JSON.stringify(data[bad])}, not an integer`);
    return data;
  };
  const idData = flat(ids) as number[];
  const maskData = flat(mask) as number[];
  const typeData = byName.has('token_type_ids') ? (flat(byName.get('token_type_ids')!) as number[]) : null;
  return Array.from({ length: batch }, (_, r) => {
    const rowMask = maskData.slice(r * sequence, (r + 1) * sequence);
    const length = rowMask.indexOf(0) === -1 ? sequence : rowMask.indexOf(0);
    if (rowMask.slice(length).some((m) => m !== 0) || rowMask.some((m) => m !== 0 && m !== 1)) {
      throw invalid(`row ${r} of "attention_mask" is not 1s followed by 0s; put the padding at the end of each row`);
    }
    const row = { ids: idData.slice(r * sequence, r * sequence + length) };
    return typeData ? { ...row, typeIds: typeData.slice(r * sequence, r * sequence + length) } : row;
  });
}

/**
 * An image model's request: one input, BYTES [n] of base64 images, or FP32 [n, 3, H, W]
 * tensors (data flat or nested).
 */
function readImages(
  inputs: readonly TensorInput[],
  spec: ImagePreprocessing,
): { kind: 'images'; images: Uint8Array[] } | { kind: 'tensors'; rows: Float32Array[] } {
  if (inputs.length !== 1)
    throw invalid(
      `the model takes one input, "image" (BYTES) or "${spec.input}" (FP32), but the request has ${inputs.length}`,
    );
  const input = inputs[0]!;
  const n = input.shape[0] ?? 0;
  if (!Number.isInteger(n) || n < 1)
    throw invalid(
      `input "${input.name}" has shape ${JSON.stringify(input.shape)}; send at least one image: BYTES [n] (base64) or FP32 [n, 3, ${spec.height}, ${spec.width}]`,
    );
  if (n > MAX_TEXTS_PER_REQUEST)
    throw new KilnError('KILN_ERR_HTTP_TOO_MANY_TEXTS', { count: n, limit: MAX_TEXTS_PER_REQUEST });
  if (input.datatype === 'BYTES') {
    if (!(input.shape.length === 1 || (input.shape.length === 2 && input.shape[1] === 1)))
      throw invalid(`input "${input.name}" has shape ${JSON.stringify(input.shape)}; images take shape [n]`);
    const data = input.data.flat();
    if (data.length !== n)
      throw invalid(
        `input "${input.name}" has shape ${JSON.stringify(input.shape)} (${n} elements) but ${data.length} data elements`,
      );
    return {
      kind: 'images',
      images: data.map(
        (d, i) => decodeBase64(d) ?? fail(invalid(`element ${i} of input "${input.name}" is not a base64 string`)),
      ),
    };
  }
  if (input.datatype === 'FP32') {
    const want = [n, 3, spec.height, spec.width];
    if (input.shape.length !== 4 || input.shape.some((d, i) => d !== want[i]))
      throw invalid(
        `input "${input.name}" has shape ${JSON.stringify(input.shape)}; this model takes FP32 [n, 3, ${spec.height}, ${spec.width}]`,
      );
    const data = input.data.flat(3);
    const size = 3 * spec.height * spec.width;
    if (data.length !== n * size)
      throw invalid(
        `input "${input.name}" has shape ${JSON.stringify(input.shape)} (${n * size} elements) but ${data.length} data elements`,
      );
    const bad = data.findIndex((v) => typeof v !== 'number');
    if (bad >= 0)
      throw invalid(`element ${bad} of input "${input.name}" is ${JSON.stringify(data[bad])}, not a number`);
    const flat = Float32Array.from(data as number[]);
    return { kind: 'tensors', rows: Array.from({ length: n }, (_, r) => flat.subarray(r * size, (r + 1) * size)) };
  }
  throw invalid(
    `input "${input.name}" has datatype ${JSON.stringify(input.datatype)}; an image model takes BYTES (base64 images) or FP32 tensors`,
  );
}

function requestedOutputs(outputs: InferBody['outputs'], available: readonly OutputName[]): OutputName[] {
  if (outputs === undefined) return [...available];
  for (const o of outputs) {
    if (!(available as readonly string[]).includes(o.name))
      throw invalid(`the model has no output ${JSON.stringify(o.name)}; its outputs are ${available.join(', ')}`);
  }
  return outputs.map((o) => o.name as OutputName);
}

function sendHealth(reply: FastifyReply, ok: boolean, body: object): FastifyReply {
  return reply.status(ok ? 200 : 503).send(body);
}

/** A classifier's outputs for its predictions: label and score in `shape`, logits [n, classes]. */
function classOutputs(
  predictions: ReadonlyArray<{ label: string; score: number; logits: readonly number[] }>,
  classes: number,
  shape: number[],
): Record<Exclude<OutputName, 'embedding'>, object> {
  return {
    label: { name: 'label', datatype: 'BYTES', shape, data: predictions.map((p) => p.label) },
    score: { name: 'score', datatype: 'FP32', shape, data: predictions.map((p) => p.score) },
    logits: {
      name: 'logits',
      datatype: 'FP32',
      shape: [predictions.length, classes],
      data: predictions.flatMap((p) => p.logits),
    },
  };
}

/** The model a request names in its path. */
const pathModel = (head: RequestHead): string | undefined => head.params.name;

/** Metadata, readiness and inference of one model, at `prefix` (with or without a version). */
function modelRoutes(prefix: string) {
  return [
    defineRoute<{ Params: ModelParams }>({
      method: 'GET',
      url: prefix,
      access: 'key',
      handler: async (request, _reply, { host }) => metadata(modelFor(host, request.params)),
    }),
    defineRoute<{ Params: ModelParams }>({
      method: 'GET',
      url: `${prefix}/ready`,
      access: 'key',
      handler: async (request, reply, { host }) => {
        // Unknown names are 404 once a model is loaded; before, nobody knows the name yet.
        if (host.unavailable() === null) modelFor(host, request.params);
        return sendHealth(reply, host.isReady(), { name: request.params.name, ready: host.isReady() });
      },
    }),
    defineRoute<{ Params: ModelParams; Body: InferBody }>({
      method: 'POST',
      url: `${prefix}/infer`,
      access: 'key',
      schema: { body: inferSchema },
      inference: { tasks: TASKS, target: pathModel },
      handler: async (request, _reply, context) => {
        const { deadline } = context;
        const model = modelFor(context.host, request.params, (name) => context.model(name));
        const { id, inputs, outputs } = request.body;
        const wanted = requestedOutputs(outputs, OUTPUTS[model.task]);
        const answer = (tensors: Record<string, object>): object => ({
          model_name: model.manifest.name,
          model_version: MODEL_VERSION,
          ...(id === undefined ? {} : { id }),
          outputs: wanted.map((name) => tensors[name]),
        });
        const describe = (i: number): string => `element ${i} of input "${inputs[0]!.name}"`;
        if (model.task === 'image-classification') {
          const images = readImages(inputs, model.preprocessing);
          const predictions =
            images.kind === 'images'
              ? await model.classify(images.images, describe, { deadline })
              : await model.classifyTensors(images.rows, { deadline });
          return answer(classOutputs(predictions, model.labels.length, [predictions.length]));
        }
        const parsed = readRequest(inputs);
        if (parsed.kind === 'texts') checkTexts(parsed.texts, describe, context.limits);
        if (model.task === 'feature-extraction') {
          const vectors =
            parsed.kind === 'texts'
              ? (await model.embed(parsed.texts, describe, { deadline })).map((e) => e.embedding)
              : await model.embedTokens(parsed.rows, { deadline });
          const embedding = {
            name: 'embedding',
            datatype: 'FP32',
            shape: [vectors.length, model.head.dimension],
            data: vectors.flat(),
          };
          return answer({ embedding });
        }
        const predictions =
          parsed.kind === 'texts'
            ? await model.classify(parsed.texts, describe, { deadline })
            : (await model.classifyTokens(parsed.rows, { deadline })).map((logits) => ({
                ...topLabel(logits, model.labels),
                logits,
              }));
        const shape = parsed.kind === 'texts' ? parsed.shape : [predictions.length];
        return answer(classOutputs(predictions, model.labels.length, shape));
      },
    }),
  ];
}

export const kserveRoutes = [
  defineRoute({
    method: 'GET',
    url: '/v2',
    access: 'key',
    handler: async () => ({ name: 'kiln', version: KILN_VERSION, extensions: [] }),
  }),
  defineRoute({ method: 'GET', url: '/v2/health/live', access: 'probe', handler: async () => ({ live: true }) }),
  defineRoute({
    method: 'GET',
    url: '/v2/health/ready',
    access: 'probe',
    handler: async (_request, reply, { host }) => sendHealth(reply, host.isReady(), { ready: host.isReady() }),
  }),
  ...modelRoutes('/v2/models/:name'),
  // The model serves one version, "1", so clients that address /versions/1 work too.
  ...modelRoutes('/v2/models/:name/versions/:version'),
];
