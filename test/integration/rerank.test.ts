/**
 * Reranking end to end: a random-weight BERT cross-encoder (BertForSequenceClassification,
 * num_labels 1, safetensors) is detected as text-ranking, and its scores through /rerank and
 * /v1/rerank are the float64 reference's for [CLS] query [SEP] passage [SEP] (token types 1 on
 * the passage), laid out here by hand from vocab.txt: sigmoid of the logit, or the logit with
 * raw_scores, best first; SageMaker's /invocations takes /rerank's body and answers as it does.
 * Bad bodies are coded 400s; --max-client-batch is a 413 naming it.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { compile } from '../../src/compiler/compile.js';
import { sigmoid } from '../../src/core/stats.js';
import { runBatch } from '../../src/deploy/batch.js';
import { createServer, type KilnServer } from '../../src/server/server.js';
import { type LoadedModel, loadModel } from '../../src/tasks/registry.js';
import { tempDir } from '../fixtures/models.js';
import { bertPairIds, lookup, randomWeights, tinyBertConfig, writeCheckpoint } from '../fixtures/random-checkpoint.js';
import { referenceLogits } from '../fixtures/reference-encoder.js';

const CONFIG = tinyBertConfig(['LABEL_0']);
const WEIGHTS = randomWeights(CONFIG, 11);
const QUERY = 'a great movie';
const PASSAGES = [
  'the plot is bad and the actors are worse',
  'good film',
  'the actors are good',
  'a bad scene',
  'the film is good and the plot is great',
];

let server: KilnServer;
let url: string;
let task: string;
let dir: string;
let model: LoadedModel;
/** The reference's logit per passage, in request order. */
let logits: number[];

before(async () => {
  dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
  const checkpoint = await writeCheckpoint(join(dir, 'cross-encoder'), CONFIG, WEIGHTS);
  const { artifactDir, manifest } = await compile({ source: checkpoint, out: join(dir, 'ranker.kiln'), maxLength: 24 });
  task = manifest.task;
  server = createServer({ port: 0, maxClientBatch: 8 });
  url = await server.listen();
  model = await loadModel(artifactDir, { replicas: 1 });
  server.model.set(model);
  logits = [];
  for (const passage of PASSAGES) {
    const { ids, typeIds } = await bertPairIds(QUERY, passage);
    logits.push(
      referenceLogits(CONFIG, lookup(WEIGHTS), {
        inputIds: [ids],
        attentionMask: [ids.map(() => 1)],
        tokenTypeIds: [typeIds],
      })[0]![0]!,
    );
  }
});
after(() => server?.close());

// biome-ignore lint/suspicious/noExplicitAny: answers are read field by field and asserted on.
async function post(path: string, body: object): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  return { status: res.status, body: await res.json() };
}

/** Passage indexes, best first by the reference. */
const referenceOrder = (): number[] => PASSAGES.map((_, i) => i).sort((a, b) => logits[b]! - logits[a]!);

describe('a single-logit BERT cross-encoder reranks query–passage pairs as the float64 reference does', () => {
  test('compile detects a num_labels 1 BertForSequenceClassification as text-ranking', () => {
    assert.equal(task, 'text-ranking');
    // The passages are told apart: a model that ignored the pair would rank them all equal.
    assert.ok(Math.max(...logits) - Math.min(...logits) > 1e-2, `logits ${logits}`);
  });

  test('POST /rerank: sigmoid scores within 1e-4, best first, with the texts on return_text', async () => {
    const res = await post('/rerank', { query: QUERY, texts: PASSAGES, return_text: true });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(
      res.body.map((r: { index: number }) => r.index),
      referenceOrder(),
    );
    let worst = 0;
    for (const r of res.body as Array<{ index: number; score: number; text: string }>) {
      worst = Math.max(worst, Math.abs(r.score - sigmoid(logits[r.index]!)));
      assert.equal(r.text, PASSAGES[r.index]);
    }
    console.log(`/rerank: max |Δscore| vs float64 reference = ${worst.toExponential(2)}`);
    assert.ok(worst <= 1e-4, `max |Δ| ${worst}`);
  });

  test('POST /rerank with raw_scores: the logits within 1e-4, and no text unless asked', async () => {
    const res = await post('/rerank', { query: QUERY, texts: PASSAGES, raw_scores: true });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    let worst = 0;
    for (const r of res.body as Array<{ index: number; score: number; text?: string }>) {
      worst = Math.max(worst, Math.abs(r.score - logits[r.index]!));
      assert.equal(r.text, undefined);
    }
    console.log(`/rerank raw_scores: max |Δlogit| vs float64 reference = ${worst.toExponential(2)}`);
    assert.ok(worst <= 1e-4, `max |Δ| ${worst}`);
    assert.ok(
      (res.body as Array<{ score: number }>).some((r) => r.score < 0 || r.score > 1),
      'logits, not probabilities',
    );
  });

  test('POST /v1/rerank with top_n 2: the two best in order, with relevance_score and the documents', async () => {
    const documents = PASSAGES.map((text, i) => (i % 2 === 0 ? text : { text }));
    const res = await post('/v1/rerank', { query: QUERY, documents, top_n: 2, return_documents: true });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const best = referenceOrder().slice(0, 2);
    assert.deepEqual(
      res.body.results.map((r: { index: number }) => r.index),
      best,
    );
    for (const r of res.body.results as Array<{ index: number; relevance_score: number; document: { text: string } }>) {
      assert.ok(Math.abs(r.relevance_score - sigmoid(logits[r.index]!)) <= 1e-4);
      assert.deepEqual(r.document, { text: PASSAGES[r.index] });
    }
    assert.ok(res.body.usage.total_tokens > 0);
  });

  test('POST /v1/rerank without top_n answers every document, best first, without the documents', async () => {
    const res = await post('/v1/rerank', { query: QUERY, documents: PASSAGES });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(
      res.body.results.map((r: { index: number }) => r.index),
      referenceOrder(),
    );
    assert.equal(res.body.results[0].document, undefined);
  });

  test('POST /v1/rerank "model": the served name (/info\'s served_model_name, beside TEI\'s reranker model_type) ranks; another is 404 naming the served one', async () => {
    const { name } = model.manifest;
    const info = (await (await fetch(`${url}/info`)).json()) as Record<string, unknown>;
    assert.deepEqual([info.served_model_name, info.model_id], [name, name]);
    assert.deepEqual(info.model_type, { reranker: { id2label: { 0: 'LABEL_0' }, label2id: { LABEL_0: 0 } } });
    assert.equal(info.max_client_batch_size, 8, "the server's --max-client-batch");
    const res = await post('/v1/rerank', { model: name, query: QUERY, documents: PASSAGES, top_n: 1 });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual([res.body.model, res.body.results[0].index], [name, referenceOrder()[0]]);
    for (const path of ['/v1/rerank', '/rerank']) {
      const texts = path === '/rerank' ? { texts: PASSAGES } : { documents: PASSAGES };
      const wrong = await post(path, { model: 'rerank-english-v3.0', query: QUERY, ...texts });
      assert.equal(wrong.status, 404, JSON.stringify(wrong.body));
      assert.equal(wrong.body.error.code, 'KILN_ERR_HTTP_UNKNOWN_MODEL');
      assert.match(wrong.body.error.message, new RegExp(`"rerank-english-v3\\.0".*models: ${name}$`));
    }
  });

  test('POST /predict with TEI\'s {"inputs": [query, passage]} and a batch of pairs: the reference\'s sigmoid and logit', async () => {
    const one = await post('/predict', { inputs: [QUERY, PASSAGES[0]] });
    assert.equal(one.status, 200, JSON.stringify(one.body));
    assert.ok(Math.abs(one.body.score - sigmoid(logits[0]!)) <= 1e-4);
    assert.ok(Math.abs(one.body.logit - logits[0]!) <= 1e-4);
    const batch = await post('/predict', { inputs: PASSAGES.map((p) => [QUERY, p]) });
    assert.equal(batch.status, 200, JSON.stringify(batch.body));
    (batch.body.predictions as Array<{ logit: number }>).forEach((p, i) => {
      assert.ok(Math.abs(p.logit - logits[i]!) <= 1e-4, `pair ${i}: ${p.logit} vs ${logits[i]}`);
    });
  });

  for (const [name, path, body, code, pattern] of [
    ['an empty query', '/rerank', { query: ' ', texts: ['good film'] }, 'KILN_ERR_INPUT_EMPTY_TEXT', /query/],
    ['an empty texts list', '/rerank', { query: 'a', texts: [] }, 'KILN_ERR_HTTP_INVALID_BODY', /texts/],
    ['an empty text', '/rerank', { query: 'a', texts: ['good', ''] }, 'KILN_ERR_INPUT_EMPTY_TEXT', /texts\[1\]/],
    ['a non-string text', '/rerank', { query: 'a', texts: ['good', 5] }, 'KILN_ERR_HTTP_INVALID_BODY', /texts/],
    ['an empty documents list', '/v1/rerank', { query: 'a', documents: [] }, 'KILN_ERR_HTTP_INVALID_BODY', /documents/],
    [
      'a document that is neither a text nor {"text"}',
      '/v1/rerank',
      { query: 'a', documents: [{ body: 'x' }] },
      'KILN_ERR_HTTP_INVALID_BODY',
      /documents/,
    ],
    ['top_n 0', '/v1/rerank', { query: 'a', documents: ['good'], top_n: 0 }, 'KILN_ERR_HTTP_INVALID_BODY', /top_n/],
  ] as const) {
    test(`${path} with ${name} → 400 ${code}`, async () => {
      const res = await post(path, body);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, code);
      assert.match(res.body.error.message, pattern);
    });
  }

  test('more texts than --max-client-batch (8) → 413 KILN_ERR_HTTP_CLIENT_BATCH naming the limit', async () => {
    const texts = Array.from({ length: 9 }, () => 'good film');
    for (const [path, body] of [
      ['/rerank', { query: QUERY, texts }],
      ['/v1/rerank', { query: QUERY, documents: texts }],
    ] as const) {
      const res = await post(path, body);
      assert.equal(res.status, 413, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'KILN_ERR_HTTP_CLIENT_BATCH');
      assert.match(res.body.error.message, /9 texts.*at most 8.*--max-client-batch/);
    }
    const at = await post('/rerank', { query: QUERY, texts: texts.slice(0, 8) });
    assert.equal(at.status, 200);
  });

  test('POST /invocations {"query", "texts"}: the same answer as /rerank (scores within 1e-6), raw_scores and return_text', async () => {
    for (const options of [{}, { raw_scores: true }, { return_text: true }]) {
      const body = { query: QUERY, texts: PASSAGES, ...options };
      const [rerank, invocations] = await Promise.all([post('/rerank', body), post('/invocations', body)]);
      assert.equal(invocations.status, 200, JSON.stringify(invocations.body));
      assert.deepEqual(
        invocations.body.map((r: { index: number }) => r.index),
        referenceOrder(),
      );
      assert.equal(invocations.body.length, rerank.body.length);
      invocations.body.forEach((r: { index: number; score: number; text?: string }, k: number) => {
        assert.equal(r.index, rerank.body[k].index);
        assert.ok(Math.abs(r.score - rerank.body[k].score) <= 1e-6, `${JSON.stringify(options)}: ${r.score}`);
        assert.equal(r.text, rerank.body[k].text);
      });
      const reference = (i: number) => ('raw_scores' in options ? logits[i]! : sigmoid(logits[i]!));
      for (const r of invocations.body as Array<{ index: number; score: number }>)
        assert.ok(Math.abs(r.score - reference(r.index)) <= 1e-4);
    }
  });

  test('POST /invocations as JSON Lines: one ranking per line, in order', async () => {
    const res = await fetch(`${url}/invocations`, {
      method: 'POST',
      headers: { 'content-type': 'application/jsonlines' },
      body: `${JSON.stringify({ query: QUERY, texts: PASSAGES })}\n${JSON.stringify({ query: QUERY, texts: [PASSAGES[1]] })}\n`,
      signal: AbortSignal.timeout(20_000),
    });
    assert.equal(res.status, 200);
    const [first, second] = (await res.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      first.map((r: { index: number }) => r.index),
      referenceOrder(),
    );
    assert.equal(second.length, 1);
    assert.ok(Math.abs(second[0].score - sigmoid(logits[1]!)) <= 1e-4);
  });

  for (const [name, body, pattern] of [
    ['a classifier\'s {"inputs"}', { inputs: 'good film' }, /unknown field "inputs".*"query"/],
    ['no texts', { query: 'a' }, /no "texts".*"query"/],
    ['a non-string text', { query: 'a', texts: ['good', 5] }, /texts\[1\].*"query"/],
    ['an empty texts list', { query: 'a', texts: [] }, /"texts" is an empty list.*"query"/],
  ] as const) {
    test(`POST /invocations with ${name} → 400 KILN_ERR_HTTP_INVOCATIONS_BODY naming the ranker's body`, async () => {
      const res = await post('/invocations', body);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'KILN_ERR_HTTP_INVOCATIONS_BODY');
      assert.match(res.body.error.message, pattern);
    });
  }

  test('kiln batch over query and text columns (TSV and JSONL): one score per row, the reference sigmoid within 1e-4', async () => {
    for (const [name, content] of [
      ['pairs.tsv', `query\ttext\n${PASSAGES.map((p) => `${QUERY}\t${p}`).join('\n')}\n`],
      ['pairs.jsonl', `${PASSAGES.map((p) => JSON.stringify({ query: QUERY, text: p })).join('\n')}\n`],
    ] as const) {
      const input = join(dir, name);
      const output = join(dir, `${name}.out.jsonl`);
      await writeFile(input, content);
      const summary = await runBatch({ model, input, output });
      assert.equal(summary.errors, 0);
      const rows = (await readFile(output, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.equal(rows.length, PASSAGES.length);
      rows.forEach((r, i) => {
        assert.deepEqual(Object.keys(r).sort(), ['line', 'score']);
        assert.ok(Math.abs(r.score - sigmoid(logits[i]!)) <= 1e-4, `${name} row ${i}: ${r.score}`);
      });
    }
  });
});
