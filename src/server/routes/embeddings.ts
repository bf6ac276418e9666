/**
 * Embedding routes for feature-extraction models:
 * - `POST /v1/embeddings`, OpenAI's shape, so the `openai` client and tools built on it work:
 *   `{"input": "…" | ["…"], "model", "encoding_format"?: "float" | "base64"}` →
 *   `{"object": "list", "data": [{"object": "embedding", "index", "embedding"}], "model", "usage"}`.
 *   The official Node client asks for base64 (little-endian float32) unless told otherwise.
 * - `POST /embed`, Text Embeddings Inference's shape: `{"inputs": "…" | ["…"]}` → `[[…], …]`.
 */
import type { FastifyInstance } from 'fastify';
import { KilnError } from '../../core/errors.js';
import { embedWithin } from '../limits.js';
import type { RouteContext } from './context.js';

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

const embedSchema = {
  type: 'object',
  required: ['inputs'],
  properties: { inputs: textOrTexts, model: { type: 'string' } },
  additionalProperties: false,
} as const;

const ROUTE_TASKS = ['feature-extraction'] as const;

/** A vector as base64 of its little-endian float32 bytes (OpenAI's encoding_format "base64"). */
export function vectorToBase64(vector: readonly number[]): string {
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((v, i) => {
    bytes.writeFloatLE(v, i * 4);
  });
  return bytes.toString('base64');
}

function listOf(input: string | string[], field: string): string[] {
  const texts = typeof input === 'string' ? [input] : input;
  if (texts.length === 0) throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', { problem: `"${field}" is an empty list` });
  return texts;
}

export function embeddingRoutes(app: FastifyInstance, { host, limits }: RouteContext): void {
  app.post<{ Body: OpenAiBody }>('/v1/embeddings', { schema: { body: openAiSchema } }, async (request, reply) => {
    const { input, model: name, encoding_format: format = 'float', dimensions } = request.body;
    const model = host.readyFor(name, 'POST /v1/embeddings', ROUTE_TASKS);
    if (dimensions !== undefined && dimensions !== model.head.dimension) {
      throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', {
        problem: `"dimensions" is ${dimensions}, but ${JSON.stringify(name)} makes ${model.head.dimension}-dimensional vectors and kiln does not shorten them; omit "dimensions" or send ${model.head.dimension}`,
      });
    }
    const texts = listOf(input, 'input');
    const single = typeof input === 'string';
    const embeddings = await embedWithin(
      model,
      texts,
      (i) => (single ? '"input"' : `"input[${i}]"`),
      limits,
      reply.elapsedTime,
    );
    const tokens = embeddings.reduce((n, e) => n + e.tokens, 0);
    return {
      object: 'list',
      data: embeddings.map((e, index) => ({
        object: 'embedding',
        index,
        embedding: format === 'base64' ? vectorToBase64(e.embedding) : e.embedding,
      })),
      model: model.manifest.name,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    };
  });

  app.post<{ Body: { inputs: string | string[]; model?: string } }>(
    '/embed',
    { schema: { body: embedSchema } },
    async (request, reply) => {
      const { inputs, model: name } = request.body;
      const model = host.readyFor(name, 'POST /embed', ROUTE_TASKS);
      const texts = listOf(inputs, 'inputs');
      const single = typeof inputs === 'string';
      const embeddings = await embedWithin(
        model,
        texts,
        (i) => (single ? '"inputs"' : `"inputs[${i}]"`),
        limits,
        reply.elapsedTime,
      );
      return embeddings.map((e) => e.embedding);
    },
  );
}
