/**
 * Zero-shot classification: a text classified into labels the request chooses, by an NLI
 * classifier reading the text and one hypothesis per label ("This example is {}.") as text
 * pairs, Hugging Face's pipeline's semantics. Detected for a `…ForSequenceClassification` whose
 * id2label has entailment and contradiction.
 */
import { KilnError } from '../../core/errors.js';
import { describeTensor, graphOutputs } from '../../onnx/graph.js';
import { checkLogits } from '../io-check.js';
import { invalid, type TensorInput } from '../kserve-tensors.js';
import { checkTexts, MAX_TEXTS_PER_REQUEST, type RequestLimits } from '../limits.js';
import { defineTask } from '../task.js';
import { readZeroShotBody, ZERO_SHOT_EXPECTED, ZERO_SHOT_FIELDS } from './body.js';
import { type ZeroShotAnswer, ZeroShotClassifier, type ZeroShotRequest } from './model.js';
import { nliLabels } from './scores.js';
import { zeroShotVerify } from './verify.js';

const answerBody = (a: ZeroShotAnswer) => ({ sequence: a.sequence, labels: a.labels, scores: a.scores });

/** A BYTES input's strings, flat. */
function strings(input: TensorInput): string[] {
  if (input.datatype !== 'BYTES')
    throw invalid(`input "${input.name}" has datatype ${JSON.stringify(input.datatype)}, not BYTES`);
  const data = input.data.flat();
  const bad = data.findIndex((d) => typeof d !== 'string');
  if (bad >= 0) throw invalid(`element ${bad} of input "${input.name}" is ${JSON.stringify(data[bad])}, not a string`);
  return data as string[];
}

/** An infer request's texts [n], candidate labels [k] (shared by the texts), template and multi_label. */
function readInfer(
  inputs: readonly TensorInput[],
  limits: RequestLimits,
): { requests: ZeroShotRequest[]; describe: (i: number) => string } {
  const known = ['text', 'candidate_labels', 'hypothesis_template', 'multi_label'];
  const unknown = inputs.find((i) => !known.includes(i.name));
  if (unknown)
    throw invalid(
      `input ${JSON.stringify(unknown.name)} is not one a zero-shot model takes (${known.map((k) => `"${k}"`).join(', ')})`,
    );
  const byName = new Map(inputs.map((i) => [i.name, i]));
  const text = byName.get('text');
  const labels = byName.get('candidate_labels');
  if (!text || !labels)
    throw invalid('a zero-shot model takes "text" (BYTES [n]) and "candidate_labels" (BYTES [k]), both required');
  const texts = strings(text);
  if (texts.length === 0) throw invalid('input "text" has no element');
  if (texts.length > MAX_TEXTS_PER_REQUEST)
    throw new KilnError('KILN_ERR_HTTP_TOO_MANY_TEXTS', { count: texts.length, limit: MAX_TEXTS_PER_REQUEST });
  const describe = (i: number): string => `element ${i} of input "text"`;
  checkTexts(texts, describe, limits);
  const list = strings(labels);
  checkTexts(list, (i) => `element ${i} of input "candidate_labels"`, limits, Number.POSITIVE_INFINITY);
  const templateInput = byName.get('hypothesis_template');
  const template = templateInput ? strings(templateInput) : [];
  if (template.length > 1) throw invalid('input "hypothesis_template" has more than one element');
  const multiInput = byName.get('multi_label');
  let multiLabel = false;
  if (multiInput) {
    const [value, ...more] = multiInput.data.flat();
    if (multiInput.datatype !== 'BOOL' || typeof value !== 'boolean' || more.length > 0)
      throw invalid('input "multi_label" must be BOOL [1]');
    multiLabel = value;
  }
  return {
    requests: texts.map((t) => ({
      text: t,
      labels: list,
      multiLabel,
      ...(template[0] !== undefined ? { template: template[0] } : {}),
    })),
    describe,
  };
}

export const zeroShotClassification = defineTask<ZeroShotClassifier>({
  name: 'zero-shot-classification',
  input: 'text',
  formatVersion: 2,
  detect: {
    architecture: (name, labels) => name.endsWith('ForSequenceClassification') && nliLabels(labels) !== null,
  },
  compile: {
    labels: 'required',
    checkHead(model, { path, labels }) {
      const outputs = graphOutputs(model.graph ?? {});
      checkLogits(path, outputs, [...labels]);
      if (!nliLabels(labels))
        throw new KilnError('KILN_ERR_MODEL_OUTPUTS', {
          path,
          found: outputs.map(describeTensor).join(', ') || 'none',
          problem: `zero-shot classification reads an NLI head's entailment and contradiction logits, and config.json's id2label (${labels.join(', ')}) names no label starting with "entail" and one starting with "contradict"; compile it as text-classification`,
        });
      return { width: labels.length, manifest: {} };
    },
    row: 'NLI logits per text pair (one per label in config.json)',
  },
  verify: zeroShotVerify,
  open: (dir, manifest, options) => ZeroShotClassifier.open(dir, manifest, options),
  routes: [],
  predict: {
    fields: ZERO_SHOT_FIELDS,
    expected: ZERO_SHOT_EXPECTED,
    async read(model, body, { limits, deadline, invalid }) {
      const request = readZeroShotBody(body, { limits, invalid });
      const [answer] = await model.classify([request], () => 'the text', { deadline, maxLabels: limits.maxLabels });
      return answerBody(answer!);
    },
  },
  invocations: {
    expected: ZERO_SHOT_EXPECTED,
    async read(model, body, { limits, deadline, invalid }) {
      const request = readZeroShotBody(body, { limits, invalid });
      const [answer] = await model.classify([request], () => 'the text', { deadline, maxLabels: limits.maxLabels });
      return answerBody(answer!);
    },
  },
  kserve: {
    inputs: () => [
      { name: 'text', datatype: 'BYTES', shape: [-1] },
      { name: 'candidate_labels', datatype: 'BYTES', shape: [-1] },
      { name: 'hypothesis_template', datatype: 'BYTES', shape: [1] },
      { name: 'multi_label', datatype: 'BOOL', shape: [1] },
    ],
    outputs: () => [
      { name: 'labels', datatype: 'BYTES', shape: [-1, -1] },
      { name: 'scores', datatype: 'FP32', shape: [-1, -1] },
    ],
    async infer(model, inputs, { limits, deadline }) {
      const { requests, describe } = readInfer(inputs, limits);
      const answers = await model.classify(requests, describe, { deadline, maxLabels: limits.maxLabels });
      const shape = [answers.length, requests[0]!.labels.length];
      return {
        labels: { name: 'labels', datatype: 'BYTES', shape, data: answers.flatMap((a) => a.labels) },
        scores: { name: 'scores', datatype: 'FP32', shape, data: answers.flatMap((a) => a.scores) },
      };
    },
  },
  answers: {
    json: answerBody,
    line: (a: ZeroShotAnswer) => a.labels.map((l, i) => `${l} ${a.scores[i]!.toFixed(4)}`).join('  '),
    batch: (a: ZeroShotAnswer) => ({
      label: a.labels[0]!,
      score: a.scores[0]!,
      labels: a.labels.map((label, i) => ({ label, score: a.scores[i]! })),
    }),
  },
  batch: { verb: 'classifying', summary: (_model, labels) => `best labels ${labels}` },
  bench: {
    unit: 'texts/s',
    request: (input) => ({
      path: '/predict',
      body:
        typeof input === 'object' && !(input instanceof Uint8Array)
          ? { text: input.text, candidate_labels: input.text_pair }
          : { text: input },
    }),
  },
  serve: {
    describe: (m) => `zero-shot classification into the labels each request names (NLI head: ${m.labels.join(', ')})`,
    example(url, name, named) {
      const body = `{${named ? `"model":"${name}",` : ''}"text":"the match went to extra time","candidate_labels":["sports","politics","cooking"]}`;
      return `curl -s ${url}/predict -H 'content-type: application/json' -d '${body}'`;
    },
  },
});
