/**
 * Token classification end to end on random-weight BertForTokenClassification and
 * DistilBertForTokenClassification checkpoints written here (safetensors, Hugging Face names),
 * compiled by kiln: per-token logits against the independent float64 reference
 * (test/fixtures/reference-encoder.ts), the `none` and `simple` answers against the reference's
 * scores, windows over a text longer than max length, redaction, and coded refusals.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { compile } from '../../src/compiler/compile.js';
import { softmax } from '../../src/core/stats.js';
import { runBatch } from '../../src/deploy/batch.js';
import { importCheckpoint } from '../../src/import/import.js';
import type { EncodedText } from '../../src/model/tokenizer.js';
import { decodeModel, type ModelProto } from '../../src/onnx/proto.js';
import type { Scheduler } from '../../src/runtime/scheduler.js';
import { createServer, type KilnServer } from '../../src/server/server.js';
import { loadModel, taskFromGraph } from '../../src/tasks/registry.js';
import type { GroupEntity, TokenEntity } from '../../src/tasks/token-classification/aggregate.js';
import type { TokenClassifier } from '../../src/tasks/token-classification/model.js';
import { ownerOfEachToken, windowsOf } from '../../src/tasks/token-classification/windows.js';
import { tempDir } from '../fixtures/models.js';
import {
  type CheckpointWeights,
  lookup,
  randomWeights,
  tinyBertConfig,
  vocabIds,
  writeCheckpoint,
} from '../fixtures/random-checkpoint.js';
import { referenceTokenLogits, type Weights } from '../fixtures/reference-encoder.js';

const LABELS = ['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC'];
const MAX_LENGTH = 16;
const CLS = 101;
const SEP = 102;

/** Words that are each one whole token of the embedded vocabulary: their ids come from vocab.txt, not the tokenizer. */
const SENTENCE = 'the man went to paris with his friend';

const CONFIGS: Record<string, Record<string, unknown>> = {
  bert: tinyBertConfig(LABELS, { architectures: ['BertForTokenClassification'] }),
  distilbert: {
    architectures: ['DistilBertForTokenClassification'],
    model_type: 'distilbert',
    dim: 16,
    n_layers: 2,
    n_heads: 4,
    hidden_dim: 20,
    activation: 'gelu',
    max_position_embeddings: 32,
    vocab_size: 30522,
    pad_token_id: 0,
    id2label: Object.fromEntries(LABELS.map((l, i) => [i, l])),
  },
};
CONFIGS.roberta = {
  ...tinyBertConfig(LABELS, { architectures: ['RobertaForTokenClassification'] }),
  model_type: 'roberta',
  pad_token_id: 1,
  type_vocab_size: 1,
  layer_norm_eps: 1e-5,
  max_position_embeddings: 40,
};

/** The model's scheduler (protected), to watch what the task queues. */
const schedulerOf = (model: TokenClassifier) => (model as unknown as { scheduler: Scheduler<EncodedText> }).scheduler;

/** Where each space-separated word of `text` starts and ends. */
function wordSpans(text: string): Array<{ start: number; end: number }> {
  return [...text.matchAll(/\S+/g)].map((m) => ({ start: m.index, end: m.index + m[0].length }));
}

const compilations = new Map<string, Promise<{ artifactDir: string; weights: CheckpointWeights }>>();

/** Each family's checkpoint, written and compiled once for every test of this file that needs it. */
function compiledOnce(family: string): Promise<{ artifactDir: string; weights: CheckpointWeights }> {
  if (!compilations.has(family)) {
    compilations.set(
      family,
      (async () => {
        const config = CONFIGS[family]!;
        const dir = await tempDir(`kiln-ner-${family}-`);
        const weights = randomWeights(config, family.length);
        const checkpoint = await writeCheckpoint(join(dir, 'checkpoint'), config, weights);
        const { artifactDir, manifest } = await compile({
          source: checkpoint,
          out: join(dir, 'ner.kiln'),
          cache: false,
          maxLength: MAX_LENGTH,
        });
        assert.equal(manifest.task, 'token-classification');
        assert.deepEqual(manifest.labels, LABELS);
        return { artifactDir, weights };
      })(),
    );
  }
  return compilations.get(family)!;
}

for (const [family, config] of Object.entries(CONFIGS)) {
  describe(`${family} token classifier`, () => {
    let model: TokenClassifier;
    let weights: Weights;

    before(async () => {
      const compiled = await compiledOnce(family);
      weights = lookup(compiled.weights);
      model = (await loadModel(compiled.artifactDir, { replicas: 1, maxDelayMs: 0 })) as TokenClassifier;
    });
    after(() => model?.close());

    test('per-token logits equal the float64 reference within 1e-4 (rows of different lengths in one batch)', async () => {
      const rows = [
        [CLS, ...(await vocabIds(SENTENCE)), SEP],
        [CLS, ...(await vocabIds('the man')), SEP],
      ];
      const got = await model.tokenLogits(rows.map((ids) => ({ ids })));
      for (const [r, ids] of rows.entries()) {
        const expected = referenceTokenLogits(config, weights, {
          inputIds: [ids],
          attentionMask: [ids.map(() => 1)],
        })[0]!;
        assert.equal(got[r]!.length, ids.length);
        expected.forEach((logits, t) => {
          logits.forEach((v, j) => {
            assert.ok(
              Math.abs(got[r]![t]![j]! - v) < 1e-4,
              `row ${r} token ${t} label ${j}: ${got[r]![t]![j]} vs ${v}`,
            );
          });
        });
      }
    });

    test('aggregation_strategy none: every token label, score, index, word and offsets equal the reference', async () => {
      const ids = [CLS, ...(await vocabIds(SENTENCE)), SEP];
      const expected = referenceTokenLogits(config, weights, {
        inputIds: [ids],
        attentionMask: [ids.map(() => 1)],
      })[0]!;
      const [answer] = await model.recognize([SENTENCE], undefined, { ignoreLabels: [] });
      const entities = answer!.entities as TokenEntity[];
      const spans = wordSpans(SENTENCE);
      assert.equal(entities.length, spans.length);
      entities.forEach((e, i) => {
        const scores = softmax(expected[i + 1]!);
        const best = scores.indexOf(Math.max(...scores));
        assert.equal(e.entity, LABELS[best]);
        assert.ok(Math.abs(e.score - scores[best]!) < 1e-4);
        assert.equal(e.index, i + 1);
        assert.deepEqual({ start: e.start, end: e.end }, spans[i]);
        assert.equal(e.word, SENTENCE.slice(spans[i]!.start, spans[i]!.end));
      });
      // The default ignores O: exactly the entries whose label is not O remain.
      const [filtered] = await model.recognize([SENTENCE]);
      assert.deepEqual(
        filtered!.entities,
        entities.filter((e) => e.entity !== 'O'),
      );
    });

    test('aggregation_strategy simple groups the reference labels as B-/I- say', async () => {
      const ids = [CLS, ...(await vocabIds(SENTENCE)), SEP];
      const expected = referenceTokenLogits(config, weights, {
        inputIds: [ids],
        attentionMask: [ids.map(() => 1)],
      })[0]!;
      const spans = wordSpans(SENTENCE);
      // Grouping by hand from the reference's per-token labels.
      const groups: Array<{ type: string; scores: number[]; start: number; end: number }> = [];
      spans.forEach((span, i) => {
        const scores = softmax(expected[i + 1]!);
        const best = scores.indexOf(Math.max(...scores));
        const label = LABELS[best]!;
        const type = label.replace(/^[BI]-/, '');
        const last = groups.at(-1);
        if (last && last.type === type && !label.startsWith('B-')) {
          last.scores.push(scores[best]!);
          last.end = span.end;
        } else groups.push({ type, scores: [scores[best]!], start: span.start, end: span.end });
      });
      const [answer] = await model.recognize([SENTENCE], undefined, {
        aggregationStrategy: 'simple',
        ignoreLabels: [],
      });
      const got = answer!.entities as GroupEntity[];
      assert.deepEqual(
        got.map((g) => [g.entity_group, g.start, g.end, g.word]),
        groups.map((g) => [g.type, g.start, g.end, SENTENCE.slice(g.start, g.end)]),
      );
      got.forEach((g, i) => {
        const mean = groups[i]!.scores.reduce((a, b) => a + b, 0) / groups[i]!.scores.length;
        assert.ok(Math.abs(g.score - mean) < 1e-4);
      });
    });

    test('a text longer than max length is read in overlapping windows; every token is answered from its deepest window', async () => {
      const words = `${SENTENCE} and then the man went to london with his friend and his family`;
      const tokens = await vocabIds(words);
      const room = MAX_LENGTH - 2;
      assert.ok(tokens.length > room, 'the text must not fit one window');
      const stride = 4;
      const windows = windowsOf(tokens.length, room, stride);
      const owners = ownerOfEachToken(tokens.length, windows);
      const perWindow = windows.map((w) => {
        const ids = [CLS, ...tokens.slice(w.start, w.end), SEP];
        return referenceTokenLogits(config, weights, { inputIds: [ids], attentionMask: [ids.map(() => 1)] })[0]!;
      });
      const [answer] = await model.recognize([words], undefined, { stride, ignoreLabels: [] });
      assert.equal(answer!.windows, windows.length);
      const entities = answer!.entities as TokenEntity[];
      const spans = wordSpans(words);
      assert.equal(entities.length, tokens.length, 'every token is answered, none cut');
      entities.forEach((e, t) => {
        const w = owners[t]!;
        const scores = softmax(perWindow[w]![1 + t - windows[w]!.start]!);
        const best = scores.indexOf(Math.max(...scores));
        assert.equal(e.entity, LABELS[best], `token ${t}`);
        assert.ok(Math.abs(e.score - scores[best]!) < 1e-4, `token ${t}`);
        assert.deepEqual({ start: e.start, end: e.end }, spans[t]);
        assert.equal(e.index, t + 1);
      });
    });

    test('recognize(two long texts): every window is queued as part of one request, so they take turns with other requests', async (t) => {
      const words = `${SENTENCE} and then the man went to london with his friend and his family`;
      const submit = t.mock.method(schedulerOf(model), 'submit');
      const answers = await model.recognize([words, `${words} again`], undefined, { stride: 4 });
      const requests = submit.mock.calls.map((c) => c.arguments[1]?.request);
      assert.equal(requests.length, answers[0]!.windows + answers[1]!.windows);
      assert.ok(answers[0]!.windows >= 2, `${answers[0]!.windows} windows`);
      assert.ok(requests[0] instanceof Object, 'a request object');
      assert.ok(
        requests.every((r) => r === requests[0]),
        'one request object',
      );
    });

    test('redact replaces each entity with its label and keeps the rest of the text', async () => {
      const [answer] = await model.recognize([SENTENCE], undefined, { aggregationStrategy: 'simple', redact: true });
      const groups = answer!.entities as GroupEntity[];
      let expected = '';
      let at = 0;
      for (const g of groups) {
        expected += `${SENTENCE.slice(at, g.start!)}[${g.entity_group}]`;
        at = g.end!;
      }
      expected += SENTENCE.slice(at);
      assert.equal(answer!.redacted, expected);
      const [plain] = await model.recognize([SENTENCE], undefined, { aggregationStrategy: 'simple' });
      assert.equal(plain!.redacted, undefined);
    });

    test('offsets point into the original text with accents, emoji and CJK', async () => {
      const text = 'Café 😀 naïve 東京 résumé!';
      const [answer] = await model.recognize([text], undefined, { ignoreLabels: [] });
      const words = (answer!.entities as TokenEntity[]).map((e) => text.slice(e.start!, e.end!));
      // Every token's word is its slice of the text, and the slices cover the text's visible characters in order.
      (answer!.entities as TokenEntity[]).forEach((e) => {
        assert.equal(e.word, text.slice(e.start!, e.end!));
      });
      assert.equal(words.join(''), text.replace(/\s+/g, ''));
      assert.ok(words.includes('😀'), 'the emoji (an unknown token) is placed');
      assert.ok(words.includes('東') && words.includes('京'), 'each CJK character is a token');
    });

    test('bad options are refused with coded errors before any text is queued', async () => {
      await assert.rejects(model.recognize([SENTENCE], undefined, { aggregationStrategy: 'longest' as never }), {
        code: 'KILN_ERR_INPUT_AGGREGATION',
      });
      await assert.rejects(model.recognize([SENTENCE], undefined, { stride: MAX_LENGTH - 2 }), {
        code: 'KILN_ERR_INPUT_STRIDE',
      });
      await assert.rejects(model.recognize([SENTENCE], undefined, { stride: -1 }), { code: 'KILN_ERR_INPUT_STRIDE' });
      await assert.rejects(model.recognize(['  ']), { code: 'KILN_ERR_INPUT_EMPTY_TEXT' });
      await assert.rejects(model.infer([{ text: 'a', text_pair: 'b' }]), { code: 'KILN_ERR_INPUT_KIND' });
    });
  });
}

describe('token classification over HTTP', () => {
  let server: KilnServer;
  let url: string;
  let model: TokenClassifier;
  // biome-ignore lint/suspicious/noExplicitAny: answers of several shapes, checked field by field below.
  const post = async (path: string, body: object): Promise<{ status: number; body: any }> => {
    const res = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(20_000),
    });
    return { status: res.status, body: await res.json() };
  };

  before(async () => {
    const { artifactDir } = await compiledOnce('bert');
    model = (await loadModel(artifactDir, { replicas: 1, maxDelayMs: 0 })) as TokenClassifier;
    server = createServer({ port: 0 });
    server.model.set(model);
    url = await server.listen();
  });
  after(() => server?.close());

  test('POST /predict answers the entities the model finds, with the redacted text when asked', async () => {
    const [expected] = await model.recognize([SENTENCE], undefined, { aggregationStrategy: 'average', redact: true });
    const res = await post('/predict', { text: SENTENCE, aggregation_strategy: 'average', redact: true });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { entities: expected!.entities, redacted: expected!.redacted });
    const list = await post('/predict', { texts: [SENTENCE, 'the man'], ignore_labels: [] });
    assert.equal(list.body.predictions.length, 2);
    assert.equal(list.body.predictions[1].entities.length, 2, 'one entry per token with nothing ignored');
  });

  test('POST /invocations reads Hugging Face parameters; KServe answers entities as JSON strings', async () => {
    const [expected] = await model.recognize([SENTENCE], undefined, { aggregationStrategy: 'first', ignoreLabels: [] });
    const single = await post('/invocations', {
      inputs: SENTENCE,
      parameters: { aggregation_strategy: 'first', ignore_labels: [] },
    });
    assert.deepEqual(single.body, { entities: expected!.entities });
    const many = await post('/invocations', {
      inputs: [SENTENCE],
      parameters: { aggregation_strategy: 'first', ignore_labels: [] },
    });
    assert.deepEqual(many.body, [{ entities: expected!.entities }]);
    const [plain] = await model.recognize([SENTENCE], undefined, { redact: true });
    const v2 = await post(`/v2/models/${model.manifest.name}/infer`, {
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: [SENTENCE] }],
    });
    assert.equal(v2.status, 200);
    const outputs = Object.fromEntries(v2.body.outputs.map((o: { name: string }) => [o.name, o]));
    assert.deepEqual(JSON.parse(outputs.entities.data[0]), plain!.entities);
    assert.equal(outputs.redacted.data[0], plain!.redacted);
  });

  test('bad fields are coded 400s naming the fix', async () => {
    const bad = await post('/predict', { text: SENTENCE, aggregation_strategy: 'longest' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'KILN_ERR_INPUT_AGGREGATION');
    assert.match(bad.body.error.message, /"simple"/);
    const stride = await post('/predict', { text: SENTENCE, stride: 99 });
    assert.equal(stride.body.error.code, 'KILN_ERR_INPUT_STRIDE');
    const invocations = await post('/invocations', { inputs: SENTENCE, parameters: { top_k: 3 } });
    assert.equal(invocations.status, 400);
    assert.match(invocations.body.error.message, /top_k/);
  });
});

test('a bare ONNX graph whose first output is logits [batch, tokens, labels] is token-classification; token states are not', async () => {
  const dir = await tempDir('kiln-ner-graph-');
  const config = CONFIGS.bert!;
  const checkpoint = await writeCheckpoint(join(dir, 'checkpoint'), config, randomWeights(config, 4));
  const graphOf = async (headless: boolean): Promise<ModelProto> => {
    const out = join(dir, headless ? 'encoder' : 'tagger');
    await importCheckpoint({ dir: checkpoint, out, headless });
    return decodeModel(await readFile(join(out, 'onnx', 'model.onnx')), out);
  };
  assert.equal(taskFromGraph(await graphOf(false)), 'token-classification');
  assert.equal(taskFromGraph(await graphOf(true)), 'feature-extraction');
});

test('kiln batch --redact (runBatch): one JSON line per row with its entities and the redacted text', async () => {
  const dir = await tempDir('kiln-ner-batch-');
  const { artifactDir } = await compiledOnce('bert');
  const model = (await loadModel(artifactDir, { replicas: 1 })) as TokenClassifier;
  try {
    const texts = [SENTENCE, 'the man went to london', `${SENTENCE} and ${SENTENCE}`];
    const input = join(dir, 'rows.jsonl');
    await writeFile(input, `${texts.map((text, id) => JSON.stringify({ id, text })).join('\n')}\n`);
    const output = join(dir, 'rows.predictions.jsonl');
    const summary = await runBatch({ model, input, output, redact: true });
    assert.equal(summary.rows, texts.length);
    assert.equal(summary.errors, 0);
    const lines = (await readFile(output, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const expected = await model.recognize(texts, undefined, { redact: true });
    lines.forEach((line, i) => {
      assert.equal(line.id, i);
      assert.deepEqual(line.entities, expected[i]!.entities);
      assert.equal(line.redacted, expected[i]!.redacted);
    });
  } finally {
    await model.close();
  }
});
