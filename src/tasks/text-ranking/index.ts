/**
 * Text ranking (rerankers): a query and each of its candidate passages are read as one text
 * pair by a cross-encoder whose head is one logit, the pair's relevance; passages are answered
 * best first. Detected for a `…ForSequenceClassification` with one label.
 */
import { KilnError } from '../../core/errors.js';
import { scoreFunctionOf } from '../../model/artifact.js';
import { describeTensor, graphOutputs } from '../../onnx/graph.js';
import { checkLogits } from '../io-check.js';
import { invalid, readRequest, type TensorInput } from '../kserve-tensors.js';
import { checkTexts, type RequestLimits } from '../limits.js';
import { defineTask } from '../task.js';
import { rankInvocations } from './invocations.js';
import { type Relevance, TextRanker } from './model.js';
import { rerankRoutes } from './routes.js';

/** An infer request's texts: a BYTES input named `query` ([1]) and one of texts ([n]). */
function readPairs(
  inputs: readonly TensorInput[],
  limits: RequestLimits,
): { query: string; texts: string[]; describe: (i: number) => string } {
  const query = inputs.find((i) => i.name === 'query')!;
  const rest = inputs.filter((i) => i !== query);
  const [first, ...more] = query.data.flat();
  if (query.datatype !== 'BYTES' || typeof first !== 'string' || more.length > 0)
    throw invalid('input "query" is one text: BYTES, shape [1]');
  const parsed = readRequest(rest);
  if (parsed.kind !== 'texts') throw invalid('a query is ranked against texts (BYTES), not token ids');
  const describe = (i: number): string => `element ${i} of input "${rest[0]!.name}"`;
  if (parsed.texts.length > limits.maxClientBatch)
    throw new KilnError('KILN_ERR_HTTP_CLIENT_BATCH', { count: parsed.texts.length, limit: limits.maxClientBatch });
  checkTexts([first], () => 'input "query"', limits);
  checkTexts(parsed.texts, describe, limits, limits.maxClientBatch);
  return { query: first, texts: parsed.texts, describe };
}

export const textRanking = defineTask<TextRanker>({
  name: 'text-ranking',
  input: 'text',
  formatVersion: 2,
  detect: {
    architecture: (name, labels) => name.endsWith('ForSequenceClassification') && labels.length === 1,
  },
  compile: {
    labels: 'required',
    async headOptions({ functionToApply }) {
      return functionToApply ? { functionToApply } : {};
    },
    checkHead(model, { path, labels, options }) {
      const outputs = graphOutputs(model.graph ?? {});
      checkLogits(path, outputs, [...labels]);
      if (labels.length !== 1) {
        throw new KilnError('KILN_ERR_MODEL_OUTPUTS', {
          path,
          found: outputs.map(describeTensor).join(', ') || 'none',
          problem: `text-ranking reads one relevance logit per pair, and config.json's id2label names ${labels.length} labels; compile it as text-classification (--task text-classification)`,
        });
      }
      return { width: 1, manifest: { functionToApply: options?.functionToApply ?? 'sigmoid' } };
    },
    verifyRefusal: 'used with classifiers only (it compares labels); a ranking model answers one score',
    row: 'one relevance logit per text pair',
  },
  open: (dir, manifest, options) => TextRanker.open(dir, manifest, options),
  routes: rerankRoutes,
  predict: {
    answer: async (model, inputs, describe, { allScores: _all, ...options }) =>
      (await model.infer(inputs, describe, options)).map((r) => ({ score: r.score, logit: r.logit })),
  },
  invocations: rankInvocations,
  kserve: {
    inputs: () => [
      { name: 'query', datatype: 'BYTES', shape: [1] },
      { name: 'text', datatype: 'BYTES', shape: [-1] },
    ],
    outputs: () => [
      { name: 'score', datatype: 'FP32', shape: [-1] },
      { name: 'logit', datatype: 'FP32', shape: [-1] },
    ],
    async infer(model, inputs, { limits, deadline }) {
      let relevances: Relevance[];
      if (inputs.some((i) => i.name === 'query')) {
        const { query, texts, describe } = readPairs(inputs, limits);
        const ranked = await model.rank(query, texts, describe, { deadline });
        relevances = [...ranked].sort((a, b) => a.index - b.index).map((r) => r.relevance);
      } else {
        const parsed = readRequest(inputs);
        if (parsed.kind === 'texts')
          throw invalid('a text-ranking model takes "query" (BYTES [1]) and "text" (BYTES [n]), or token id rows');
        relevances = await model.rankTokens(parsed.rows, { deadline });
      }
      const shape = [relevances.length];
      return {
        score: { name: 'score', datatype: 'FP32', shape, data: relevances.map((r) => r.score) },
        logit: { name: 'logit', datatype: 'FP32', shape, data: relevances.map((r) => r.logit) },
      };
    },
  },
  answers: {
    json: (r: Relevance) => ({ score: r.score, logit: r.logit }),
    line: (r: Relevance) => `${r.score.toFixed(4)}  logit ${r.logit.toFixed(4)}`,
    batch: (r: Relevance) => ({ score: r.score }),
  },
  batch: { verb: 'scoring', summary: (model) => `relevance scores (${model.scoreFunction} of one logit)` },
  // TEI names a reranker's model type apart from a classifier's, with the same label maps.
  info: {
    modelType: (m) => ({
      reranker: {
        id2label: Object.fromEntries(m.labels.map((label, i) => [String(i), label])),
        label2id: Object.fromEntries(m.labels.map((label, i) => [label, i])),
      },
    }),
  },
  bench: {
    unit: 'pairs/s',
    request: (input) => ({ path: '/predict', body: typeof input === 'string' ? { text: input } : input }),
  },
  serve: {
    describe: (m) => `text-ranking, relevance of text pairs (${scoreFunctionOf(m)} of one logit)`,
    example: (url) =>
      `curl -s ${url}/rerank -H 'content-type: application/json' -d '{"query":"what is kiln?","texts":["kiln serves models","bread is baked"]}'`,
  },
});
