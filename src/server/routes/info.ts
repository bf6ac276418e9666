/**
 * `GET /info`: Text Embeddings Inference's model and limits record, filled from the served
 * artifact's manifest and layout, so TEI clients (and people) can read what they talk to.
 * `?model=NAME` picks one of several served models.
 */
import type { Manifest } from '../../model/artifact.js';
import { taskOf } from '../../tasks/registry.js';
import { defineRoute } from '../../tasks/route.js';
import { KILN_VERSION } from '../../version.js';

/** TEI's `model_type` for a task without an `info` hook: a classifier of the manifest's labels. */
function classifierType(manifest: Manifest): Record<string, object> {
  return {
    classifier: {
      id2label: Object.fromEntries(manifest.labels.map((label, i) => [String(i), label])),
      label2id: Object.fromEntries(manifest.labels.map((label, i) => [label, i])),
    },
  };
}

export const infoRoutes = [
  defineRoute<{ Querystring: { model?: string } }>({
    method: 'GET',
    url: '/info',
    access: 'key',
    schema: {
      querystring: { type: 'object', properties: { model: { type: 'string' } }, additionalProperties: false },
    },
    handler: async (request, _reply, context) => {
      const model = context.model(request.query.model);
      const { manifest, layout } = model;
      const task = taskOf(model);
      const { maxLength } = manifest.limits;
      return {
        model_id: manifest.source.name,
        model_sha: manifest.source.sha256,
        model_dtype: manifest.precision === 'int8' ? 'int8' : manifest.precision === 'fp16' ? 'float16' : 'float32',
        served_model_name: manifest.name,
        model_type: task.info?.modelType(manifest) ?? classifierType(manifest),
        max_concurrent_requests: layout.maxQueue,
        max_input_length: maxLength,
        // The scheduler's budget: a batch padded to its longest bucket holds at most this many tokens.
        max_batch_tokens: layout.maxBatch * layout.buckets.at(-1)!,
        max_batch_requests: layout.maxBatch,
        max_client_batch_size: context.limits.maxClientBatch,
        auto_truncate: true,
        // Tokenization runs on the server's one event-loop thread.
        tokenization_workers: task.input === 'text' ? 1 : 0,
        version: KILN_VERSION,
      };
    },
  }),
];
