/**
 * Feature extraction (embeddings): texts → one vector each. Compile appends pooling and
 * normalization to the encoder's token states (pooling.ts), so a replica's row is the vector.
 */
import { KilnError } from '../../core/errors.js';
import { BASE_ENCODERS } from '../../import/architectures.js';
import { imageInput } from '../../model/source.js';
import { describeTensor, graphInputs, graphOutputs } from '../../onnx/graph.js';
import { readTextRequest } from '../kserve-tensors.js';
import { labelList } from '../labels.js';
import { defineTask, type HeadOptions } from '../task.js';
import { type Embedding, TextEmbedder } from './model.js';
import { appendPooling, embeddingHead, findHiddenOutput } from './pooling.js';
import { embeddingRoutes } from './routes.js';
import { sentenceTransformersPipeline } from './sentence-transformers.js';

export const featureExtraction = defineTask<TextEmbedder>({
  name: 'feature-extraction',
  input: 'text',
  formatVersion: 2,
  detect: {
    // Other *Model names (GPT2Model, ViTModel, CLIPModel) are left to the graph to decide.
    architecture: (name) => BASE_ENCODERS.has(name),
    graph: (model) => imageInput(graphInputs(model.graph ?? {})) === null && findHiddenOutput(model) !== null,
  },
  compile: {
    labels: 'none',
    headless: true,
    verifyRefusal: 'used with classifiers only (it compares labels); an embedding model has none',
    /**
     * Pooling and normalization: the flags, then a sentence-transformers folder's own pipeline,
     * then mean pooling and unit vectors.
     */
    async headOptions(flags, modelHome) {
      const pipeline = await sentenceTransformersPipeline(modelHome, { pooling: flags.pooling === undefined });
      return {
        pooling: flags.pooling ?? pipeline.pooling ?? 'mean',
        normalize: flags.normalize ?? pipeline.normalize ?? true,
        // The artifact keeps no sentence-transformers files, so the prompts travel in the manifest.
        ...(pipeline.prompts ? { prompts: pipeline.prompts } : {}),
      };
    },
    checkHead(model, { path, hiddenSize, options }) {
      const hidden = findHiddenOutput(model);
      const size = hidden?.hidden ?? hiddenSize;
      if (!hidden || size === null) {
        throw new KilnError('KILN_ERR_MODEL_OUTPUTS', {
          path,
          found:
            graphOutputs(model.graph ?? {})
              .map(describeTensor)
              .join(', ') || 'none',
          problem:
            'feature-extraction needs the token states: a float output last_hidden_state [batch, sequence, hidden] (with hidden known from the graph or config.json); export the base model, or compile a checkpoint folder (kiln imports it without its head)',
        });
      }
      const { pooling, normalize, prompts } = options as Required<Pick<HeadOptions, 'pooling' | 'normalize'>> &
        Pick<HeadOptions, 'prompts'>;
      const head = embeddingHead({
        pooling,
        normalize,
        hiddenOutput: hidden.name,
        hidden: size,
        ...(prompts ? { prompts } : {}),
      });
      return { width: head.dimension, manifest: { embedding: head } };
    },
    // Pooling joins the graph before optimizing, so ONNX Runtime plans it with the rest.
    tail(model, { manifest }, path) {
      const head = manifest.embedding!;
      return appendPooling(
        model,
        { pooling: head.pooling, normalize: head.normalize, hiddenOutput: head.hiddenOutput, hidden: head.dimension },
        path,
      );
    },
    row: 'values per text (the embedding size)',
  },
  open: (dir, manifest, options) => TextEmbedder.open(dir, manifest, options),
  routes: embeddingRoutes,
  invocations: {
    answers: async (model, inputs, describe, { deadline }) =>
      (await model.infer(inputs, describe, { deadline })).map((e) => () => ({ embedding: e.embedding })),
  },
  kserve: {
    inputs: () => [{ name: 'text', datatype: 'BYTES', shape: [-1] }],
    outputs: (model) => [{ name: 'embedding', datatype: 'FP32', shape: [-1, model.head.dimension] }],
    async infer(model, inputs, { limits, deadline }) {
      const parsed = readTextRequest(inputs, limits);
      const vectors =
        parsed.kind === 'texts'
          ? (await model.embed(parsed.texts, parsed.describe, { deadline })).map((e) => e.embedding)
          : await model.embedTokens(parsed.rows, { deadline });
      return {
        embedding: {
          name: 'embedding',
          datatype: 'FP32',
          shape: [vectors.length, model.head.dimension],
          data: vectors.flat(),
        },
      };
    },
  },
  answers: {
    json: (e: Embedding) => ({ embedding: e.embedding, tokens: e.tokens }),
    line(e: Embedding) {
      const head = e.embedding
        .slice(0, 3)
        .map((v) => v.toFixed(4))
        .join(', ');
      return `[${e.embedding.length}] ${head}, …`;
    },
    batch: (e: Embedding) => ({ embedding: e.embedding }),
  },
  batch: {
    verb: 'embedding',
    summary: (model) => `${model.head.dimension}-dimensional vectors`,
    npyWidth: (model) => model.head.dimension,
  },
  info: { modelType: (m) => ({ embedding: { pooling: m.embedding!.pooling } }) },
  bench: { unit: 'embeddings/s', request: (input) => ({ path: '/embed', body: { inputs: input } }) },
  serve: {
    describe: (m) =>
      m.embedding
        ? `${m.task}, ${m.embedding.dimension}-dimensional ${m.embedding.pooling}-pooled vectors`
        : `labels ${labelList(m.labels)}`,
    example: (url, name) =>
      `curl -s ${url}/v1/embeddings -H 'content-type: application/json' -d '{"model":"${name}","input":"I loved it"}'`,
  },
});
