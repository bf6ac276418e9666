/**
 * Extractive question answering on random-weight BERT and RoBERTa `…ForQuestionAnswering`
 * checkpoints (safetensors, Hugging Face names, `qa_outputs` heads) compiled by kiln: the answer
 * text, its start and end and its score (within 1e-4) equal the best span computed here from the
 * float64 reference's start and end logits, as Hugging Face's pipeline scores spans (question and
 * special tokens masked, [CLS] kept, a softmax each, start × end, start ≤ end < start +
 * max_answer_len). Inputs are laid out by hand from vocab.txt, one whole-word token per word, so
 * expected offsets come from the words, not from the tokenizer under test. Long contexts are read
 * in windows; offsets hold with accents, CJK and emoji; /invocations, KServe v2 and kiln batch
 * answer as /predict; bad requests are coded errors.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { compile } from '../../src/compiler/compile.js';
import { runBatch } from '../../src/deploy/batch.js';
import type { EncodedText } from '../../src/model/tokenizer.js';
import type { Scheduler } from '../../src/runtime/scheduler.js';
import { createServer, type KilnServer } from '../../src/server/server.js';
import type { QuestionAnswerer } from '../../src/tasks/question-answering/model.js';
import { loadModel } from '../../src/tasks/registry.js';
import { tempDir } from '../fixtures/models.js';
import {
  type CheckpointWeights,
  lookup,
  randomWeights,
  tinyBertConfig,
  vocabIds,
  writeCheckpoint,
} from '../fixtures/random-checkpoint.js';
import { referenceSpanLogits } from '../fixtures/reference-encoder.js';

const MAX_LENGTH = 24;
const BERT = { ...tinyBertConfig([]), architectures: ['BertForQuestionAnswering'] };
const ROBERTA = {
  ...tinyBertConfig([]),
  architectures: ['RobertaForQuestionAnswering'],
  model_type: 'roberta',
  type_vocab_size: 1,
};
const QUESTION = 'what is the movie about';
const CONTEXT = 'a great movie about war and music from the time of the match';

interface Family {
  config: Record<string, unknown>;
  weights: CheckpointWeights;
  model: QuestionAnswerer;
  url: string;
  server: KilnServer;
}
const families: Record<'bert' | 'roberta', Family> = {} as never;
let dir: string;

before(async () => {
  dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
  for (const [name, config, seed] of [
    ['bert', BERT, 21],
    ['roberta', ROBERTA, 22],
  ] as const) {
    const weights = randomWeights(config, seed);
    const checkpoint = await writeCheckpoint(join(dir, name), config, weights);
    const { artifactDir } = await compile({
      source: checkpoint,
      out: join(dir, `${name}.kiln`),
      maxLength: MAX_LENGTH,
    });
    const model = (await loadModel(artifactDir, { replicas: 1 })) as QuestionAnswerer;
    const server = createServer({ port: 0 });
    const url = await server.listen();
    server.model.set(model);
    families[name] = { config, weights, model, url, server };
  }
});
after(async () => {
  for (const f of Object.values(families)) await f.server.close();
});

// biome-ignore lint/suspicious/noExplicitAny: answers are read field by field and asserted on.
async function post(url: string, body: object, path = '/predict'): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  return { status: res.status, body: await res.json() };
}

interface Expected {
  answer: string;
  score: number;
  start: number;
  end: number;
}

/** Where each space-separated word of `text` starts and ends (every word here is one token). */
function wordOffsets(text: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let at = 0;
  for (const word of text.split(' ')) {
    out.push([at, at + word.length]);
    at += word.length + 1;
  }
  return out;
}

/**
 * The pipeline's answers from the reference: windows of the context (`room` words, each
 * starting room − stride after the one before), each [CLS] question [SEP] window [SEP], scored
 * and merged as the pipeline does.
 */
async function reference(
  family: Family,
  question: string,
  context: string,
  options: { topK?: number; maxAnswerLen?: number; stride?: number; impossible?: boolean } = {},
): Promise<Expected[]> {
  const { topK = 1, maxAnswerLen = 15, impossible = false } = options;
  const q = await vocabIds(question);
  const c = await vocabIds(context);
  const room = MAX_LENGTH - 3 - q.length;
  const stride = options.stride ?? Math.min(128, Math.floor(room / 2));
  const offsets = wordOffsets(context);
  const answers: Expected[] = [];
  let nullScore = Number.POSITIVE_INFINITY;
  for (let from = 0; ; from += room - stride) {
    const window = c.slice(from, from + room);
    const ids = [101, ...q, 102, ...window, 102];
    const roberta = family.config.model_type === 'roberta';
    const types = roberta ? ids.map(() => 0) : ids.map((_, i) => (i <= q.length + 1 ? 0 : 1));
    const [logits] = referenceSpanLogits(family.config, lookup(family.weights), {
      inputIds: [ids],
      attentionMask: [ids.map(() => 1)],
      tokenTypeIds: [types],
    });
    const first = q.length + 2;
    const keep = [0, ...window.map((_, i) => first + i)];
    const softmax = (values: number[]): Map<number, number> => {
      const max = Math.max(...keep.map((k) => values[k]!));
      const sum = keep.reduce((n, k) => n + Math.exp(values[k]! - max), 0);
      return new Map(keep.map((k) => [k, Math.exp(values[k]! - max) / sum]));
    };
    const [ps, pe] = [softmax(logits!.start), softmax(logits!.end)];
    nullScore = Math.min(nullScore, ps.get(0)! * pe.get(0)!);
    const spans: Expected[] = [];
    for (let s = 0; s < window.length; s += 1)
      for (let e = s; e < window.length && e < s + maxAnswerLen; e += 1) {
        const [start, end] = [offsets[from + s]![0], offsets[from + e]![1]];
        spans.push({ answer: context.slice(start, end), score: ps.get(first + s)! * pe.get(first + e)!, start, end });
      }
    answers.push(...spans.sort((a, b) => b.score - a.score).slice(0, topK));
    if (from + room >= c.length) break;
  }
  if (impossible) answers.push({ answer: '', score: nullScore, start: 0, end: 0 });
  return answers.sort((a, b) => b.score - a.score).slice(0, topK);
}

function assertAnswer(actual: Expected, expected: Expected, what: string): void {
  assert.equal(actual.answer, expected.answer, `${what}: answer`);
  assert.equal(actual.start, expected.start, `${what}: start`);
  assert.equal(actual.end, expected.end, `${what}: end`);
  assert.ok(
    Math.abs(actual.score - expected.score) <= 1e-4,
    `${what}: |Δscore| ${Math.abs(actual.score - expected.score)}`,
  );
}

for (const name of ['bert', 'roberta'] as const) {
  describe(`question answering on a random-weight ${name} …ForQuestionAnswering`, () => {
    test('compile detects the task; POST /predict answers the reference best span (text, start, end; score within 1e-4)', async () => {
      const family = families[name];
      assert.equal(family.model.task, 'question-answering');
      const res = await post(family.url, { question: QUESTION, context: CONTEXT });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const [expected] = await reference(family, QUESTION, CONTEXT);
      assertAnswer(res.body, expected!, 'best');
      assert.equal(CONTEXT.slice(res.body.start, res.body.end), res.body.answer);
    });

    test('top_k answers a list in the reference order; max_answer_len bounds the spans; handle_impossible_answer scores ""', async () => {
      const family = families[name];
      const res = await post(family.url, { question: QUESTION, context: CONTEXT, top_k: 5, max_answer_len: 2 });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const expected = await reference(family, QUESTION, CONTEXT, { topK: 5, maxAnswerLen: 2 });
      assert.equal(res.body.length, 5);
      for (const [i, e] of expected.entries()) assertAnswer(res.body[i], e, `answer ${i}`);
      for (const a of res.body) assert.ok(a.answer.split(' ').length <= 2);
      // Every span of the context (100 ≥ its valid spans) and "no answer", in the reference's order.
      const all = { question: QUESTION, context: CONTEXT, top_k: 100, handle_impossible_answer: true };
      const withNull = await post(family.url, all);
      assert.equal(withNull.status, 200, JSON.stringify(withNull.body));
      const expectedAll = await reference(family, QUESTION, CONTEXT, { topK: 100, impossible: true });
      assert.equal(withNull.body.length, expectedAll.length);
      for (const [i, e] of expectedAll.entries()) assertAnswer(withNull.body[i], e, `answer ${i} of all`);
      assert.equal((withNull.body as Expected[]).filter((a) => a.answer === '').length, 1, 'one "no answer"');
    });
  });
}

describe('long contexts, offsets, other routes, errors (BERT)', () => {
  const LONG = `${CONTEXT} and the war went to extra time a great match about music and the movie`;

  test('a context longer than a window is read in windows with the question in each; the best span over all wins', async () => {
    const family = families.bert;
    for (const stride of [2, 5]) {
      const res = await post(family.url, { question: QUESTION, context: LONG, doc_stride: stride, top_k: 3 });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const expected = await reference(family, QUESTION, LONG, { stride, topK: 3 });
      for (const [i, e] of expected.entries()) assertAnswer(res.body[i], e, `stride ${stride}, answer ${i}`);
    }
    const [answers] = await family.model.ask([{ question: QUESTION, context: LONG, docStride: 2 }]);
    assert.ok(answers!.windows >= 2, `${answers!.windows} windows`);
  });

  test('ask(two long contexts): every window is queued as part of one request, so they take turns with other requests', async (t) => {
    const { model } = families.bert;
    const scheduler = (model as unknown as { scheduler: Scheduler<EncodedText> }).scheduler;
    const submit = t.mock.method(scheduler, 'submit');
    const answers = await model.ask([
      { question: QUESTION, context: LONG, docStride: 2 },
      { question: QUESTION, context: `${LONG} again`, docStride: 2 },
    ]);
    const requests = submit.mock.calls.map((c) => c.arguments[1]?.request);
    assert.equal(requests.length, answers[0]!.windows + answers[1]!.windows);
    assert.ok(requests[0] instanceof Object, 'a request object');
    assert.ok(
      requests.every((r) => r === requests[0]),
      'one request object',
    );
  });

  test('start and end are UTF-16 offsets of whole words, with accents, CJK and emoji', async () => {
    const context = 'Café 東京 😀 naïve résumé, Zürich 🎉 münchen';
    // Words as the BERT pre-tokenizer splits them (CJK characters and punctuation on their own).
    const words = ['Café', '東', '京', '😀', 'naïve', 'résumé', ',', 'Zürich', '🎉', 'münchen'];
    const bounds = new Set<number>();
    let at = 0;
    for (const word of words) {
      at = context.indexOf(word, at);
      bounds.add(at);
      bounds.add(at + word.length);
      at += word.length;
    }
    const res = await post(families.bert.url, { question: 'what is it', context, top_k: 30 });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    for (const a of res.body as Expected[]) {
      assert.equal(context.slice(a.start, a.end), a.answer);
      assert.ok(bounds.has(a.start) && bounds.has(a.end), `${JSON.stringify(a)} starts and ends on word bounds`);
    }
    assert.ok(
      (res.body as Expected[]).some((a) => a.answer.includes('😀') || a.answer.includes('東')),
      'answers cover the non-ASCII words',
    );
  });

  test('SageMaker /invocations, KServe v2 and kiln batch (question + context columns) answer as /predict', async () => {
    const { url, model } = families.bert;
    const predict = await post(url, { question: QUESTION, context: CONTEXT });
    const invocations = await post(url, { question: QUESTION, context: CONTEXT }, '/invocations');
    assert.deepEqual(invocations.body, predict.body);
    const v2 = await post(
      url,
      {
        inputs: [
          { name: 'question', datatype: 'BYTES', shape: [1], data: [QUESTION] },
          { name: 'context', datatype: 'BYTES', shape: [1], data: [CONTEXT] },
        ],
      },
      `/v2/models/${model.manifest.name}/infer`,
    );
    assert.equal(v2.status, 200, JSON.stringify(v2.body));
    const out = Object.fromEntries(v2.body.outputs.map((o: { name: string; data: unknown[] }) => [o.name, o.data[0]]));
    assert.deepEqual(
      { answer: out.answer, start: out.start, end: out.end },
      { answer: predict.body.answer, start: predict.body.start, end: predict.body.end },
    );
    const input = join(dir, 'questions.tsv');
    await writeFile(input, `question\tcontext\n${QUESTION}\t${CONTEXT}\n`);
    const output = join(dir, 'answers.jsonl');
    assert.equal((await runBatch({ model, input, output })).errors, 0);
    const row = JSON.parse((await readFile(output, 'utf8')).trim());
    assert.deepEqual(
      { answer: row.answer, start: row.start, end: row.end },
      { answer: predict.body.answer, start: predict.body.start, end: predict.body.end },
    );
  });

  test('bad requests are coded errors naming the rule', async () => {
    const { url } = families.bert;
    const long = Array.from({ length: 30 }, () => 'movie').join(' ');
    const cases: Array<[object, number, string, RegExp]> = [
      [{ question: QUESTION, context: '  ' }, 400, 'KILN_ERR_INPUT_EMPTY_TEXT', /context/],
      // The tokenizer drops a zero-width space: no token, so no span to answer with.
      [{ question: QUESTION, context: '\u200b' }, 400, 'KILN_ERR_INPUT_EMPTY_TEXT', /context \(only characters/],
      [{ question: '', context: CONTEXT }, 400, 'KILN_ERR_INPUT_EMPTY_TEXT', /question/],
      [{ question: QUESTION, context: CONTEXT, top_k: 0 }, 400, 'KILN_ERR_INPUT_ANSWER_OPTION', /top_k is 0/],
      [
        { question: QUESTION, context: CONTEXT, max_answer_len: 0 },
        400,
        'KILN_ERR_INPUT_ANSWER_OPTION',
        /max_answer_len/,
      ],
      [
        { question: QUESTION, context: CONTEXT, doc_stride: 16 },
        400,
        'KILN_ERR_INPUT_ANSWER_OPTION',
        /doc_stride.*room/,
      ],
      [{ question: long, context: CONTEXT }, 413, 'KILN_ERR_INPUT_QUESTION_TOO_LONG', /30 tokens/],
      [{ question: QUESTION }, 400, 'KILN_ERR_HTTP_INVALID_BODY', /"context"/],
      [{ question: QUESTION, context: CONTEXT, text: 'x' }, 400, 'KILN_ERR_HTTP_INVALID_BODY', /"text"/],
      [{ text: 'a question' }, 400, 'KILN_ERR_HTTP_INVALID_BODY', /question-answering/],
    ];
    for (const [body, status, code, message] of cases) {
      const res = await post(url, body);
      assert.equal(res.status, status, JSON.stringify(body));
      assert.equal(res.body.error.code, code, JSON.stringify(res.body));
      assert.match(res.body.error.message, message);
    }
  });
});
