/**
 * Zero-shot classification on a random-weight BERT NLI classifier (safetensors, labels
 * contradiction / entailment / neutral, detected as zero-shot by compile): each label's score is
 * what Hugging Face's pipeline computes from the float64 reference's logits for [CLS] text [SEP]
 * hypothesis [SEP] (laid out here by hand from vocab.txt) — softmax of the entailment logits
 * across labels, or per label entailment against contradiction — with the labels in the
 * reference's order; the same answers through /invocations, KServe v2 and kiln batch; a
 * request's pairs are batched with another request's; bad bodies are coded errors.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { compile } from '../../src/compiler/compile.js';
import { softmax } from '../../src/core/stats.js';
import { runBatch } from '../../src/deploy/batch.js';
import { createServer, type KilnServer } from '../../src/server/server.js';
import { loadModel } from '../../src/tasks/registry.js';
import type { ZeroShotClassifier } from '../../src/tasks/zero-shot-classification/model.js';
import { gatedReplicas, until, within } from '../fixtures/gated-replicas.js';
import { tempDir } from '../fixtures/models.js';
import { bertPairIds, lookup, randomWeights, tinyBertConfig, writeCheckpoint } from '../fixtures/random-checkpoint.js';
import { referenceLogits } from '../fixtures/reference-encoder.js';

const LABELS = ['contradiction', 'entailment', 'neutral'];
const CONFIG = tinyBertConfig(LABELS);
const WEIGHTS = randomWeights(CONFIG, 11);
const TEXT = 'the match went to extra time';
const CANDIDATES = ['sports', 'politics', 'cooking', 'music'];

let server: KilnServer;
let url: string;
let dir: string;
let artifact: string;
let model: ZeroShotClassifier;

before(async () => {
  dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
  const checkpoint = await writeCheckpoint(join(dir, 'nli'), CONFIG, WEIGHTS);
  artifact = (await compile({ source: checkpoint, out: join(dir, 'nli.kiln'), maxLength: 24 })).artifactDir;
  server = createServer({ port: 0, maxLabels: 5 });
  url = await server.listen();
  model = (await loadModel(artifact, { replicas: 1 })) as ZeroShotClassifier;
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

/**
 * Hugging Face's zero-shot answer from the float64 reference: the hypothesis "this example is
 * LABEL ." (the tokenizer lower-cases), entailment logit 1 and contradiction logit 0 of the head.
 */
async function reference(
  text: string,
  labels: readonly string[],
  multiLabel: boolean,
  hypothesis = (label: string) => `this example is ${label} .`,
): Promise<{ labels: string[]; scores: number[] }> {
  const logits: number[][] = [];
  for (const label of labels) {
    const { ids, typeIds } = await bertPairIds(text, hypothesis(label));
    logits.push(
      referenceLogits(CONFIG, lookup(WEIGHTS), {
        inputIds: [ids],
        attentionMask: [ids.map(() => 1)],
        tokenTypeIds: [typeIds],
      })[0]!,
    );
  }
  const scores =
    multiLabel || labels.length === 1
      ? logits.map((l) => softmax([l[0]!, l[1]!])[1]!)
      : softmax(logits.map((l) => l[1]!));
  const order = labels.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  return { labels: order.map((i) => labels[i]!), scores: order.map((i) => scores[i]!) };
}

function assertClose(actual: { labels: string[]; scores: number[] }, expected: { labels: string[]; scores: number[] }) {
  assert.deepEqual(actual.labels, expected.labels, 'labels in the reference order');
  const worst = Math.max(...actual.scores.map((s, i) => Math.abs(s - expected.scores[i]!)));
  assert.ok(worst <= 1e-4, `max |Δscore| ${worst}`);
}

describe('zero-shot classification on a 3-label BERT NLI head', () => {
  test('compile detects the task from id2label (entailment and contradiction)', () => {
    assert.equal(model.task, 'zero-shot-classification');
    assert.deepEqual(model.nli, { entailment: 1, contradiction: 0 });
  });

  test('POST /predict single-label: labels in the reference order, scores within 1e-4, summing to 1', async () => {
    const res = await post({ text: TEXT, candidate_labels: CANDIDATES });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.sequence, TEXT);
    assertClose(res.body, await reference(TEXT, CANDIDATES, false));
    const sum = (res.body.scores as number[]).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-6);
  });

  test('POST /predict multi-label: each label entailment against contradiction, within 1e-4', async () => {
    const res = await post({ text: TEXT, candidate_labels: CANDIDATES, multi_label: true });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const expected = await reference(TEXT, CANDIDATES, true);
    assertClose(res.body, expected);
    assert.notDeepEqual(
      res.body.scores,
      (await reference(TEXT, CANDIDATES, false)).scores,
      'multi-label scores are not the single-label ones',
    );
  });

  test('one candidate label is judged on its own (as multi-label), a custom template and comma-separated labels', async () => {
    const one = await post({ text: TEXT, candidate_labels: ['sports'] });
    assertClose(one.body, await reference(TEXT, ['sports'], false));
    assert.ok(one.body.scores[0] < 1, 'not a softmax over one logit');
    const custom = await post({
      text: TEXT,
      candidate_labels: ' sports, music ,,',
      hypothesis_template: 'a movie about {} !',
    });
    assert.equal(custom.status, 200, JSON.stringify(custom.body));
    assertClose(custom.body, await reference(TEXT, ['sports', 'music'], false, (l) => `a movie about ${l} !`));
  });

  test('SageMaker /invocations and KServe v2 answer as /predict', async () => {
    const predict = await post({ text: TEXT, candidate_labels: CANDIDATES, multi_label: true });
    const invocations = await post({ text: TEXT, candidate_labels: CANDIDATES, multi_label: true }, '/invocations');
    assert.equal(invocations.status, 200, JSON.stringify(invocations.body));
    assert.deepEqual(invocations.body, predict.body);
    const v2 = await post(
      {
        inputs: [
          { name: 'text', datatype: 'BYTES', shape: [2], data: [TEXT, 'a great movie about war'] },
          { name: 'candidate_labels', datatype: 'BYTES', shape: [4], data: CANDIDATES },
          { name: 'multi_label', datatype: 'BOOL', shape: [1], data: [true] },
        ],
      },
      `/v2/models/${model.manifest.name}/infer`,
    );
    assert.equal(v2.status, 200, JSON.stringify(v2.body));
    const byName = Object.fromEntries(v2.body.outputs.map((o: { name: string }) => [o.name, o]));
    assert.deepEqual(byName.labels.shape, [2, 4]);
    assert.deepEqual(byName.labels.data.slice(0, 4), predict.body.labels);
    const second = await reference('a great movie about war', CANDIDATES, true);
    assertClose({ labels: byName.labels.data.slice(4), scores: byName.scores.data.slice(4) }, second);
  });

  test('kiln batch reads text + candidate_labels columns (comma-separated in TSV, a list in JSONL)', async () => {
    const tsv = join(dir, 'zs.tsv');
    await writeFile(tsv, `text\tcandidate_labels\n${TEXT}\tsports,politics,cooking,music\n`);
    const jsonl = join(dir, 'zs.jsonl');
    await writeFile(jsonl, `${JSON.stringify({ text: TEXT, candidate_labels: CANDIDATES })}\n`);
    const expected = await reference(TEXT, CANDIDATES, false);
    for (const input of [tsv, jsonl]) {
      const output = `${input}.out.jsonl`;
      const summary = await runBatch({ model, input, output });
      assert.equal(summary.errors, 0);
      const [row] = (await readFile(output, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.equal(row.label, expected.labels[0]);
      assert.ok(Math.abs(row.score - expected.scores[0]!) <= 1e-4);
      assert.deepEqual(
        row.labels.map((l: { label: string }) => l.label),
        expected.labels,
      );
    }
  });

  test('bad bodies are coded errors naming the rule', async () => {
    const cases: Array<[object, number, string, RegExp]> = [
      [
        { text: TEXT, candidate_labels: ['a', 'b', 'c', 'd', 'e', 'f'] },
        413,
        'KILN_ERR_INPUT_TOO_MANY_LABELS',
        /at most 5.*--max-labels/,
      ],
      [
        { text: TEXT, candidate_labels: ['sports'], hypothesis_template: 'no slot' },
        400,
        'KILN_ERR_INPUT_HYPOTHESIS_TEMPLATE',
        /"no slot".*\{\}/,
      ],
      [{ text: TEXT, candidate_labels: [] }, 400, 'KILN_ERR_INPUT_CANDIDATE_LABELS', /no candidate labels/],
      [{ text: TEXT, candidate_labels: ' , ' }, 400, 'KILN_ERR_INPUT_CANDIDATE_LABELS', /names no label/],
      [{ text: TEXT, candidate_labels: ['sports', ' '] }, 400, 'KILN_ERR_INPUT_CANDIDATE_LABELS', /label 1/],
      [{ text: '  ', candidate_labels: ['sports'] }, 400, 'KILN_ERR_INPUT_EMPTY_TEXT', /text/],
      [{ text: TEXT, candidate_labels: [3] }, 400, 'KILN_ERR_HTTP_INVALID_BODY', /candidate_labels/],
      [{ texts: [TEXT], candidate_labels: ['a'] }, 400, 'KILN_ERR_HTTP_INVALID_BODY', /"texts".*zero-shot/],
      [{ text: TEXT }, 400, 'KILN_ERR_HTTP_INVALID_BODY', /candidate_labels/],
    ];
    for (const [body, status, code, message] of cases) {
      const res = await post(body);
      assert.equal(res.status, status, JSON.stringify(body));
      assert.equal(res.body.error.code, code, JSON.stringify(res.body));
      assert.match(res.body.error.message, message);
    }
  });
});

test("a request's label pairs are batched with another request's: one batch holds both requests' pairs", async () => {
  const gate = gatedReplicas(join(artifact, 'model.onnx'));
  const gated = (await loadModel(artifact, {
    replicas: 1,
    pipeline: 1,
    replicaFactory: gate.factory,
  })) as ZeroShotClassifier;
  try {
    // One pair on the replica (held at the gate), then two requests of three labels each.
    const occupying = gated.classify([{ text: TEXT, labels: ['sports'] }]);
    await within(gate.running, 'the first batch');
    const first = gated.classify([{ text: TEXT, labels: ['sports', 'music', 'cooking'] }]);
    const second = gated.classify([{ text: 'a great movie about war', labels: ['war', 'music', 'sports'] }]);
    await until(() => gated.stats().queueDepth === 6, 'six queued pairs');
    gate.open();
    const [, a, b] = await Promise.all([occupying, first, second]);
    assert.equal(a![0]!.labels.length, 3);
    assert.equal(b![0]!.labels.length, 3);
    assert.deepEqual(gated.stats().batchSizes, { '1': 1, '6': 1 }, "both requests' pairs in one batch");
  } finally {
    gate.open();
    await gated.close();
  }
});
