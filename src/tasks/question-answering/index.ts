/**
 * Extractive question answering: the span of a context that answers a question, scored as
 * Hugging Face's question-answering pipeline scores it, with offsets into the context as
 * JavaScript string indices. Detected for a `…ForQuestionAnswering`, or a graph whose outputs
 * are `start_logits` and `end_logits`; compile appends a tail that puts both in one output.
 */
import { KilnError } from '../../core/errors.js';
import { invalid, type TensorInput } from '../kserve-tensors.js';
import { checkTexts, MAX_TEXTS_PER_REQUEST, type RequestLimits } from '../limits.js';
import { defineTask } from '../task.js';
import { answerBody, QA_EXPECTED, QA_FIELDS, readQuestionBody } from './body.js';
import { type Answer, type Answers, QuestionAnswerer, type QuestionRequest } from './model.js';
import { appendSpanTail, checkSpanOutputs, hasSpanOutputs } from './tail.js';
import { answerVerify } from './verify.js';

/** An infer request's questions and contexts: BYTES [n] each, element i of one with element i of the other. */
function readInfer(
  inputs: readonly TensorInput[],
  limits: RequestLimits,
): { requests: QuestionRequest[]; describe: (i: number) => string } {
  const unknown = inputs.find((i) => i.name !== 'question' && i.name !== 'context');
  if (unknown)
    throw invalid(
      `input ${JSON.stringify(unknown.name)} is not one a question-answering model takes ("question", "context")`,
    );
  const read = (name: string): string[] => {
    const input = inputs.find((i) => i.name === name);
    if (!input)
      throw invalid(`a question-answering model takes "question" and "context" (BYTES [n] each); "${name}" is missing`);
    if (input.datatype !== 'BYTES')
      throw invalid(`input "${name}" has datatype ${JSON.stringify(input.datatype)}, not BYTES`);
    const data = input.data.flat();
    const bad = data.findIndex((d) => typeof d !== 'string');
    if (bad >= 0) throw invalid(`element ${bad} of input "${name}" is ${JSON.stringify(data[bad])}, not a string`);
    return data as string[];
  };
  const questions = read('question');
  const contexts = read('context');
  if (questions.length === 0 || questions.length !== contexts.length)
    throw invalid(
      `inputs "question" and "context" have ${questions.length} and ${contexts.length} elements; send n ≥ 1 of each`,
    );
  if (questions.length > MAX_TEXTS_PER_REQUEST)
    throw new KilnError('KILN_ERR_HTTP_TOO_MANY_TEXTS', { count: questions.length, limit: MAX_TEXTS_PER_REQUEST });
  const describe = (i: number): string => `element ${i} of "question" and "context"`;
  const pairs = questions.map((question, i) => ({ text: question, text_pair: contexts[i]! }));
  checkTexts(pairs, describe, limits);
  return { requests: pairs.map((p) => ({ question: p.text, context: p.text_pair })), describe };
}

const best = (a: Answers): Answer => a.answers[0]!;

export const questionAnswering = defineTask<QuestionAnswerer>({
  name: 'question-answering',
  input: 'text',
  formatVersion: 2,
  detect: {
    architecture: (name) => name.endsWith('ForQuestionAnswering'),
    graph: hasSpanOutputs,
  },
  compile: {
    labels: 'none',
    checkHead(model, { path, maxLength }) {
      checkSpanOutputs(model, path);
      return { width: 2 * maxLength, manifest: {} };
    },
    tail: (model, head) => appendSpanTail(model, head.width / 2),
    row: 'start and end logits per token (padded to the max length)',
  },
  verify: answerVerify,
  open: (dir, manifest, options) => QuestionAnswerer.open(dir, manifest, options),
  routes: [],
  predict: {
    fields: QA_FIELDS,
    expected: QA_EXPECTED,
    async read(model, body, { limits, deadline, invalid }) {
      const request = readQuestionBody(body, { limits, invalid });
      const [answers] = await model.ask([request], () => 'the request', { deadline });
      return answerBody(answers!, request.topK);
    },
  },
  invocations: {
    expected: QA_EXPECTED,
    async read(model, body, { limits, deadline, invalid }) {
      const request = readQuestionBody(body, { limits, invalid });
      const [answers] = await model.ask([request], () => 'the request', { deadline });
      return answerBody(answers!, request.topK);
    },
  },
  kserve: {
    inputs: () => [
      { name: 'question', datatype: 'BYTES', shape: [-1] },
      { name: 'context', datatype: 'BYTES', shape: [-1] },
    ],
    outputs: () => [
      { name: 'answer', datatype: 'BYTES', shape: [-1] },
      { name: 'score', datatype: 'FP32', shape: [-1] },
      { name: 'start', datatype: 'INT64', shape: [-1] },
      { name: 'end', datatype: 'INT64', shape: [-1] },
    ],
    async infer(model, inputs, { limits, deadline }) {
      const { requests, describe } = readInfer(inputs, limits);
      const answers = (await model.ask(requests, describe, { deadline })).map(best);
      const shape = [answers.length];
      return {
        answer: { name: 'answer', datatype: 'BYTES', shape, data: answers.map((a) => a.answer) },
        score: { name: 'score', datatype: 'FP32', shape, data: answers.map((a) => a.score) },
        start: { name: 'start', datatype: 'INT64', shape, data: answers.map((a) => a.start) },
        end: { name: 'end', datatype: 'INT64', shape, data: answers.map((a) => a.end) },
      };
    },
  },
  answers: {
    json: (a: Answers) => best(a),
    line: (a: Answers) =>
      `${JSON.stringify(best(a).answer)}  ${best(a).score.toFixed(4)}  [${best(a).start}, ${best(a).end})`,
    batch: (a: Answers) => ({ ...best(a) }),
  },
  batch: { verb: 'answering', summary: () => 'answers with their context offsets' },
  bench: {
    unit: 'questions/s',
    request: (input) => ({
      path: '/predict',
      body:
        typeof input === 'object' && !(input instanceof Uint8Array)
          ? { question: input.text, context: input.text_pair }
          : { question: 'what is it?', context: input },
    }),
  },
  info: { modelType: () => ({ question_answering: {} }) },
  serve: {
    describe: () => 'extractive question answering (answers are spans of the context)',
    example(url, name, named) {
      const body = `{${named ? `"model":"${name}",` : ''}"question":"what does kiln serve?","context":"kiln compiles and serves encoder models."}`;
      return `curl -s ${url}/predict -H 'content-type: application/json' -d '${body}'`;
    },
  },
});
