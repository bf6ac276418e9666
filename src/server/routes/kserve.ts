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
import { invalid, type TensorInput } from '../../tasks/kserve-tensors.js';
import { type LoadedModel, taskOf } from '../../tasks/registry.js';
import { defineRoute, type RequestHead, type ServedModels } from '../../tasks/route.js';
import { KILN_VERSION } from '../../version.js';

const MODEL_VERSION = '1';
/** Triton's platform name for ONNX Runtime models. */
const PLATFORM = 'onnxruntime_onnx';
interface ModelParams {
  name: string;
  version?: string;
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
  host: ServedModels,
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
  const task = taskOf(model);
  return {
    name: model.manifest.name,
    versions: [MODEL_VERSION],
    platform: PLATFORM,
    inputs: task.kserve.inputs(model),
    outputs: task.kserve.outputs(model),
  };
}

/** The outputs a request asks for (all, in the model's order, when it names none). */
function requestedOutputs(outputs: InferBody['outputs'], available: readonly string[]): string[] {
  if (outputs === undefined) return [...available];
  for (const o of outputs) {
    if (!available.includes(o.name))
      throw invalid(`the model has no output ${JSON.stringify(o.name)}; its outputs are ${available.join(', ')}`);
  }
  return outputs.map((o) => o.name);
}

function sendHealth(reply: FastifyReply, ok: boolean, body: object): FastifyReply {
  return reply.status(ok ? 200 : 503).send(body);
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
        const model = modelFor(context.host, request.params, (name) => context.model(name));
        const { id, inputs, outputs } = request.body;
        const task = taskOf(model);
        const wanted = requestedOutputs(
          outputs,
          task.kserve.outputs(model).map((o) => o.name),
        );
        const tensors = await task.kserve.infer(model, inputs, context);
        return {
          model_name: model.manifest.name,
          model_version: MODEL_VERSION,
          ...(id === undefined ? {} : { id }),
          outputs: wanted.map((name) => tensors[name]),
        };
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
