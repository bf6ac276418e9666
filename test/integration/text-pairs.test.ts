/**
 * Text pairs through /predict on a random-weight 3-label BERT classifier (safetensors, imported
 * by compile): the answers' scores are the softmax of the float64 reference's logits for
 * [CLS] A [SEP] B [SEP] with token types 1 on the second segment, laid out here by hand from
 * vocab.txt; SageMaker's /invocations takes the same pairs; malformed pair bodies are refused
 * with coded 400s.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { compile } from '../../src/compiler/compile.js';
import { softmax } from '../../src/core/stats.js';
import { runBatch } from '../../src/deploy/batch.js';
import { createServer, type KilnServer } from '../../src/server/server.js';
import { type LoadedModel, loadModel } from '../../src/tasks/registry.js';
import { tempDir } from '../fixtures/models.js';
import { bertPairIds, lookup, randomWeights, tinyBertConfig, writeCheckpoint } from '../fixtures/random-checkpoint.js';
import { referenceLogits } from '../fixtures/reference-encoder.js';

const LABELS = ['contradiction', 'entailment', 'neutral'];
const CONFIG = tinyBertConfig(LABELS);
const WEIGHTS = randomWeights(CONFIG, 3);
const PAIRS = [
  { text: 'a great movie', text_pair: 'the plot is bad and the actors are worse' },
  { text: 'the plot is bad', text_pair: 'a great movie' },
  { text: 'good film', text_pair: 'good film' },
];

let server: KilnServer;
let url: string;
let dir: string;
let model: LoadedModel;

before(async () => {
  dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
  const checkpoint = await writeCheckpoint(join(dir, 'nli'), CONFIG, WEIGHTS);
  // An NLI head is detected as zero-shot classification; here it classifies the pairs themselves.
  const { artifactDir } = await compile({
    source: checkpoint,
    out: join(dir, 'nli.kiln'),
    maxLength: 16,
    task: 'text-classification',
  });
  server = createServer({ port: 0 });
  url = await server.listen();
  model = await loadModel(artifactDir, { replicas: 1 });
  server.model.set(model);
});
after(() => server?.close());

// biome-ignore lint/suspicious/noExplicitAny: answers are read field by field and asserted on.
async function post(body: object, path = '/predict'): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  return { status: res.status, body: await res.json() };
}

/** Every label's softmax score for a pair, from the float64 reference. */
async function expectedScores(text: string, pair: string): Promise<number[]> {
  const { ids, typeIds } = await bertPairIds(text, pair);
  const [logits] = referenceLogits(CONFIG, lookup(WEIGHTS), {
    inputIds: [ids],
    attentionMask: [ids.map(() => 1)],
    tokenTypeIds: [typeIds],
  });
  return softmax(logits!);
}

function maxDelta(a: readonly number[], b: readonly number[]): number {
  return Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
}

describe('POST /predict with text pairs on a 3-label BERT classifier', () => {
  test('{"texts": [{"text", "text_pair"}, …]} scores match the float64 reference within 1e-4', async () => {
    const res = await post({ texts: PAIRS, return_all_scores: true });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    let worst = 0;
    for (const [i, pair] of PAIRS.entries()) {
      const expected = await expectedScores(pair.text, pair.text_pair);
      const actual = (res.body.predictions[i].scores as Array<{ score: number }>).map((s) => s.score);
      worst = Math.max(worst, maxDelta(actual, expected));
      assert.equal(res.body.predictions[i].label, LABELS[expected.indexOf(Math.max(...expected))]);
    }
    console.log(`pairs: max |Δscore| vs float64 reference = ${worst.toExponential(2)}`);
    assert.ok(worst <= 1e-4, `max |Δ| ${worst}`);
  });

  test('{"text", "text_pair"} answers one pair; the order of the two texts matters (token types, not a concatenation)', async () => {
    const [a, b] = [PAIRS[0]!, PAIRS[1]!];
    const res = await post({ text: a.text, text_pair: a.text_pair, return_all_scores: true });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const actual = (res.body.scores as Array<{ score: number }>).map((s) => s.score);
    assert.ok(maxDelta(actual, await expectedScores(a.text, a.text_pair)) <= 1e-4);
    // The reference with every token type 0 differs: a model fed no second segment fails above.
    const { ids } = await bertPairIds(a.text, a.text_pair);
    const [flat] = referenceLogits(CONFIG, lookup(WEIGHTS), {
      inputIds: [ids],
      attentionMask: [ids.map(() => 1)],
      tokenTypeIds: [ids.map(() => 0)],
    });
    assert.ok(maxDelta(actual, softmax(flat!)) > 1e-3, 'token types change the answer');
    assert.ok(maxDelta(await expectedScores(a.text, a.text_pair), await expectedScores(b.text, b.text_pair)) > 1e-3);
  });

  test('SageMaker /invocations {"inputs": pair} and {"inputs": [pair, …]} answer as /predict (within 1e-6)', async () => {
    const predict = await post({ texts: PAIRS, return_all_scores: true });
    const parameters = { return_all_scores: true };
    const list = await post({ inputs: PAIRS, parameters }, '/invocations');
    const one = await post({ inputs: PAIRS[0], parameters }, '/invocations');
    assert.equal(list.status, 200, JSON.stringify(list.body));
    assert.equal(one.status, 200, JSON.stringify(one.body));
    const scores = (answer: { scores: Array<{ score: number }> }) => answer.scores.map((s) => s.score);
    for (const [i, prediction] of (predict.body.predictions as Array<{ label: string; scores: [] }>).entries()) {
      assert.equal(list.body.predictions[i].label, prediction.label);
      assert.ok(maxDelta(scores(list.body.predictions[i]), scores(prediction)) <= 1e-6);
    }
    assert.ok(maxDelta(scores(one.body), scores(predict.body.predictions[0])) <= 1e-6);
    const bad = await post({ inputs: [{ text: 'a', text_pair: 5 }] }, '/invocations');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'KILN_ERR_HTTP_INVOCATIONS_BODY');
    assert.match(bad.body.error.message, /inputs\[0\].*text_pair/);
  });

  test('TEI\'s {"inputs": …}: a text, a pair [text, text_pair] and a batch [[text], [text, text_pair]] answer as {"text"} and {"texts"} do', async () => {
    const [a, b] = [PAIRS[0]!, PAIRS[1]!];
    const scores = (answer: { scores: Array<{ score: number }> }) => answer.scores.map((s) => s.score);
    const pair = await post({ inputs: [a.text, a.text_pair], return_all_scores: true });
    assert.equal(pair.status, 200, JSON.stringify(pair.body));
    assert.ok(maxDelta(scores(pair.body), await expectedScores(a.text, a.text_pair)) <= 1e-4, 'read as a pair');
    const text = await post({ text: a.text, return_all_scores: true });
    for (const single of [a.text, [a.text]]) {
      const res = await post({ inputs: single, return_all_scores: true });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.predictions, undefined, 'one input answers as {"text"}, not a list');
      assert.equal(res.body.label, text.body.label);
      assert.ok(maxDelta(scores(res.body), scores(text.body)) <= 1e-6);
    }
    const batch = await post({
      inputs: [[a.text], [a.text, a.text_pair], [b.text, b.text_pair]],
      return_all_scores: true,
    });
    assert.equal(batch.status, 200, JSON.stringify(batch.body));
    const texts = await post({ texts: [a.text, a, b], return_all_scores: true });
    assert.equal(batch.body.predictions.length, 3);
    (texts.body.predictions as Array<{ label: string; scores: Array<{ score: number }> }>).forEach((expected, i) => {
      assert.equal(batch.body.predictions[i].label, expected.label);
      assert.ok(maxDelta(scores(batch.body.predictions[i]), scores(expected)) <= 1e-6, `batch item ${i}`);
    });
  });

  for (const [name, body, pattern] of [
    ['three strings', { inputs: ['a', 'b', 'c'] }, /"inputs" is a list of 3 strings.*\[\["…"\], \["…"\]/],
    ['an empty list', { inputs: [] }, /"inputs" is an empty list/],
    ['a number', { inputs: 5 }, /"inputs" is a number/],
    ['a pair with a number', { inputs: ['a', 5] }, /"inputs\[1\]" is 5, not a string/],
    ['a batch item of three', { inputs: [['a'], ['a', 'b', 'c']] }, /"inputs\[1\]" is a list of 3/],
    ['a batch item that is a bare string', { inputs: [['a'], 'b'] }, /"inputs\[1\]" is "b"/],
    ['a batch of objects', { inputs: [{ text: 'a' }] }, /"inputs\[0\]" is \{"text":"a"\}, neither/],
    ['"inputs" beside "text"', { inputs: 'a', text: 'b' }, /"text" and "inputs"; send one/],
  ] as const) {
    test(`{"inputs": …} with ${name} → 400 KILN_ERR_HTTP_INVALID_BODY naming TEI's shapes`, async () => {
      const res = await post(body);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'KILN_ERR_HTTP_INVALID_BODY');
      assert.match(res.body.error.message, pattern);
      assert.match(res.body.error.message, /\["…", "…"\]/, 'the fix shows the shapes');
    });
  }

  test('kiln batch over a TSV with a text_pair column: the scores of /predict pairs, row for row', async () => {
    const input = join(dir, 'pairs.tsv');
    const output = join(dir, 'pairs.jsonl');
    await writeFile(input, `text\ttext_pair\n${PAIRS.map((p) => `${p.text}\t${p.text_pair}`).join('\n')}\n`);
    const summary = await runBatch({ model, input, output });
    assert.equal(summary.errors, 0);
    const rows = (await readFile(output, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const predict = await post({ texts: PAIRS });
    assert.deepEqual(
      rows.map((r) => r.line),
      [2, 3, 4],
    );
    rows.forEach((r, i) => {
      assert.equal(r.label, predict.body.predictions[i].label);
      assert.ok(Math.abs(r.score - predict.body.predictions[i].score) <= 1e-6, `row ${i}: ${r.score}`);
    });
    // The pair is read as a pair: the first text alone scores otherwise.
    const alone = await post({ text: PAIRS[0]!.text });
    assert.ok(Math.abs(alone.body.score - rows[0].score) > 1e-6 || alone.body.label !== rows[0].label);
  });

  test('a list may mix texts and pairs', async () => {
    const res = await post({ texts: ['a great movie', PAIRS[0]] });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.predictions.length, 2);
  });

  test('truncate false refuses a pair over max length (413 KILN_ERR_INPUT_TOO_LONG); truncate true (the default) cuts it', async () => {
    const long = { text: 'a great movie', text_pair: Array.from({ length: 20 }, () => 'good').join(' ') };
    const refused = await post({ texts: [long], truncate: false });
    assert.equal(refused.status, 413);
    assert.equal(refused.body.error.code, 'KILN_ERR_INPUT_TOO_LONG');
    assert.match(refused.body.error.message, /texts\[0\]/);
    const cut = await post({ texts: [long], truncation_direction: 'Left' });
    assert.equal(cut.status, 200, JSON.stringify(cut.body));
  });

  for (const [name, body, pattern] of [
    ['a pair with a non-string text_pair', { texts: [{ text: 'a', text_pair: 5 }] }, /texts/],
    ['a pair without text_pair', { texts: [{ text: 'a' }] }, /texts/],
    ['a pair with an extra field', { texts: [{ text: 'a', text_pair: 'b', label: 'c' }] }, /texts/],
    ['"text_pair" without "text"', { text_pair: 'b' }, /text_pair/],
    ['an unknown truncation_direction', { text: 'a', truncation_direction: 'middle' }, /truncation_direction/],
    ['an empty text_pair', { text: 'a great movie', text_pair: ' ' }, /text_pair/],
  ] as const) {
    test(`${name} → 400 with a code`, async () => {
      const res = await post(body);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.match(res.body.error.code, /^KILN_ERR_/);
      assert.match(res.body.error.message, pattern);
    });
  }
});
