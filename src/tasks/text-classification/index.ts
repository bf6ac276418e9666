/** Text classification: texts → a label and its softmax score, from a sequence classifier's logits. */
import { defaultScoreFunction } from '../../model/artifact.js';
import { graphOutputs } from '../../onnx/graph.js';
import { checkLogits } from '../io-check.js';
import { readTextRequest } from '../kserve-tensors.js';
import { labelList, labelOutputs, labelTensors, predictionBody } from '../labels.js';
import { problemType } from '../scores.js';
import { defineTask } from '../task.js';
import { nliLabels } from '../zero-shot-classification/scores.js';
import { type Prediction, TextClassifier, topLabel } from './model.js';

export const textClassification = defineTask<TextClassifier>({
  name: 'text-classification',
  input: 'text',
  formatVersion: 1,
  detect: {
    // One logit is a relevance score (text-ranking claims it); an NLI head, zero-shot classification.
    architecture: (name, labels) =>
      name.endsWith('ForSequenceClassification') && labels.length !== 1 && nliLabels(labels) === null,
    // A text graph that ends in neither image input nor token states: checked against its labels.
    fallback: true,
  },
  compile: {
    labels: 'required',
    /** The score function: the flag, else sigmoid for a multi-label head (one logit is judged in checkHead). */
    async headOptions({ functionToApply }, modelHome) {
      if (functionToApply) return { functionToApply };
      return (await problemType(modelHome)) === 'multi_label_classification' ? { functionToApply: 'sigmoid' } : {};
    },
    checkHead(model, { path, labels, options }) {
      checkLogits(path, graphOutputs(model.graph ?? {}), [...labels]);
      const functionToApply = options?.functionToApply ?? defaultScoreFunction(labels.length);
      return { width: labels.length, manifest: { functionToApply } };
    },
    row: 'logits per text (one per label in config.json)',
  },
  open: (dir, manifest, options) => TextClassifier.open(dir, manifest, options),
  routes: [],
  predict: {
    answer: async (model, inputs, describe, { allScores, ...options }) =>
      (await model.infer(inputs, describe, options)).map((p) => predictionBody(p, model.labels, allScores)),
  },
  invocations: {
    answers: async (model, inputs, describe, { deadline }) =>
      (await model.infer(inputs, describe, { deadline })).map(
        (p) => (allScores: boolean) => predictionBody(p, model.labels, allScores),
      ),
  },
  kserve: {
    inputs: () => [{ name: 'text', datatype: 'BYTES', shape: [-1] }],
    outputs: (model) => labelOutputs(model.labels.length),
    async infer(model, inputs, { limits, deadline }) {
      const parsed = readTextRequest(inputs, limits);
      const predictions =
        parsed.kind === 'texts'
          ? await model.classify(parsed.texts, parsed.describe, { deadline })
          : (await model.classifyTokens(parsed.rows, { deadline })).map((logits) => ({
              ...topLabel(logits, model.labels, model.scoreFunction),
              logits,
            }));
      const shape = parsed.kind === 'texts' ? parsed.shape : [predictions.length];
      return labelTensors(predictions, model.labels.length, shape);
    },
  },
  answers: {
    json: (p: Prediction) => ({ label: p.label, score: p.score, logits: p.logits }),
    line: (p: Prediction) => `${p.label}  ${p.score.toFixed(4)}`,
    batch: (p: Prediction) => ({ label: p.label, score: p.score }),
  },
  batch: { verb: 'classifying', summary: (_model, labels) => `labels ${labels}` },
  bench: {
    unit: 'texts/s',
    request: (input) => ({ path: '/predict', body: typeof input === 'string' ? { text: input } : input }),
  },
  serve: {
    describe: (m) => `labels ${labelList(m.labels)}`,
    example(url, name, named) {
      const body = named ? `{"model":"${name}","text":"I loved it"}` : '{"text":"I loved it"}';
      return `curl -s ${url}/predict -H 'content-type: application/json' -d '${body}'`;
    },
  },
});
