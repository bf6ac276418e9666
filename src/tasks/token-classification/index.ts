/**
 * Token classification (NER, PII detection): texts → entities with offsets into the text, from
 * a head that gives logits per token ([batch, sequence, labels]). Detected for a
 * `…ForTokenClassification`, or a bare text graph whose first output is rank-3 logits.
 */
import { KilnError } from '../../core/errors.js';
import { imageInput } from '../../model/source.js';
import { describeTensor, graphInputs, graphOutputs } from '../../onnx/graph.js';
import { findHiddenOutput } from '../feature-extraction/pooling.js';
import { invalid, readTextRequest, type TensorInput } from '../kserve-tensors.js';
import { labelList } from '../labels.js';
import { defineTask } from '../task.js';
import { entitiesBody, TOKEN_FIELDS, tokenOptions } from './body.js';
import { highlight } from './highlight.js';
import { tokenInvocations } from './invocations.js';
import { type TokenAnswer, TokenClassifier, type TokenOptions } from './model.js';
import { tokenVerify } from './verify.js';

/** KServe's optional `aggregation_strategy` input (BYTES [1]) beside the texts. */
function readKServe(inputs: readonly TensorInput[]): { texts: readonly TensorInput[]; options: TokenOptions } {
  const strategy = inputs.find((i) => i.name === 'aggregation_strategy');
  const texts = inputs.filter((i) => i !== strategy);
  if (!strategy) return { texts, options: {} };
  const [value, ...more] = strategy.data.flat();
  if (strategy.datatype !== 'BYTES' || typeof value !== 'string' || more.length > 0)
    throw invalid('input "aggregation_strategy" is one string: BYTES, shape [1]');
  return { texts, options: { aggregationStrategy: value as TokenOptions['aggregationStrategy'] } };
}

export const tokenClassification = defineTask<TokenClassifier>({
  name: 'token-classification',
  input: 'text',
  formatVersion: 2,
  detect: {
    architecture: (name) => name.endsWith('ForTokenClassification'),
    // Rank-3 float logits that are not token states (last_hidden_state is feature-extraction's).
    graph: (model) => {
      const graph = model.graph ?? {};
      const first = graphOutputs(graph)[0];
      return (
        imageInput(graphInputs(graph)) === null &&
        findHiddenOutput(model) === null &&
        first?.type === 'float' &&
        first.shape?.length === 3
      );
    },
  },
  compile: {
    labels: 'required',
    checkHead(model, { path, labels }) {
      const outputs = graphOutputs(model.graph ?? {});
      const logits = outputs[0];
      const fail = (problem: string): never => {
        throw new KilnError('KILN_ERR_MODEL_OUTPUTS', {
          path,
          found: outputs.map(describeTensor).join(', ') || 'none',
          problem,
        });
      };
      if (!logits) return fail('there is no output');
      if (logits.type !== 'float') fail(`"${logits.name}" has element type ${logits.type}, not float`);
      if (logits.shape && logits.shape.length !== 3)
        fail(
          `"${logits.name}" has rank ${logits.shape.length}; token classification reads logits [batch, tokens, labels] (a sequence classifier is --task text-classification)`,
        );
      const classes = logits.shape?.[2];
      if (typeof classes === 'number' && classes !== labels.length)
        fail(
          `"${logits.name}" has ${classes} labels per token while config.json's id2label names ${labels.length} (${labels.join(', ')})`,
        );
      return { width: labels.length, manifest: {} };
    },
    row: 'logits per token (one per label in config.json)',
  },
  verify: tokenVerify,
  open: (dir, manifest, options) => TokenClassifier.open(dir, manifest, options),
  routes: [],
  predict: {
    options: TOKEN_FIELDS,
    async answer(model, inputs, describe, { deadline, fields }) {
      const options = tokenOptions(fields, (problem) => new KilnError('KILN_ERR_HTTP_INVALID_BODY', { problem }));
      return (await model.infer(inputs, describe, { ...options, deadline })).map(entitiesBody);
    },
  },
  invocations: tokenInvocations,
  kserve: {
    inputs: () => [
      { name: 'text', datatype: 'BYTES', shape: [-1] },
      { name: 'aggregation_strategy', datatype: 'BYTES', shape: [1] },
    ],
    outputs: () => [
      { name: 'entities', datatype: 'BYTES', shape: [-1] },
      { name: 'redacted', datatype: 'BYTES', shape: [-1] },
    ],
    async infer(model, inputs, { limits, deadline }) {
      const { texts, options } = readKServe(inputs);
      const parsed = readTextRequest(texts, limits);
      if (parsed.kind !== 'texts')
        throw invalid(
          'a token-classification model places entities in the text: send the texts (BYTES), not token ids',
        );
      const answers = await model.recognize(parsed.texts, parsed.describe, { ...options, redact: true, deadline });
      return {
        entities: {
          name: 'entities',
          datatype: 'BYTES',
          shape: parsed.shape,
          data: answers.map((a) => JSON.stringify(a.entities)),
        },
        redacted: { name: 'redacted', datatype: 'BYTES', shape: parsed.shape, data: answers.map((a) => a.redacted!) },
      };
    },
  },
  answers: {
    json: (a: TokenAnswer) => entitiesBody(a),
    line: (a: TokenAnswer) => highlight(a, process.stdout.isTTY === true),
    batch: (a: TokenAnswer) => entitiesBody(a),
    redacts: true,
  },
  batch: { verb: 'tagging', summary: (model) => `entities of ${labelList(model.labels)}` },
  bench: {
    unit: 'texts/s',
    request: (input) => ({ path: '/predict', body: typeof input === 'string' ? { text: input } : input }),
  },
  serve: {
    describe: (m) => `token-classification, labels ${labelList(m.labels)}`,
    example(url, name, named) {
      const text = 'Ada Lovelace wrote in London';
      const body = named
        ? `{"model":"${name}","text":"${text}","aggregation_strategy":"simple"}`
        : `{"text":"${text}","aggregation_strategy":"simple"}`;
      return `curl -s ${url}/predict -H 'content-type: application/json' -d '${body}'`;
    },
  },
});
