/**
 * Embeddings end to end: a small random BertModel checkpoint written here is imported (no head),
 * pooled and normalized inside the compiled graph, and checked against the float64 reference
 * (test/fixtures/reference-encoder.ts) for every pooling; then served through /v1/embeddings,
 * /embed, /invocations and KServe v2, with the wrong-task error on /predict.
 */
import assert from 'node:assert/strict';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { compile } from '../../src/compiler/compile.js';
import { encoderConfig } from '../../src/import/architectures.js';
import { importCheckpoint } from '../../src/import/import.js';
import { canonicalShapes } from '../../src/import/synth.js';
import type { Pooling } from '../../src/model/artifact.js';
import { writeSafetensors } from '../../src/model/safetensors.js';
import { createServer, type KilnServer } from '../../src/server/server.js';
import { TextEmbedder } from '../../src/tasks/feature-extraction/model.js';
import { loadModel } from '../../src/tasks/registry.js';
import { EMBEDDED_MODEL, randomFloats, tempDir } from '../fixtures/models.js';
import { referenceEmbeddings } from '../fixtures/reference-encoder.js';

const VOCAB = 30522;
/** A BertModel config as save_pretrained writes it: no id2label needed, no head. */
const CONFIG: Record<string, unknown> = {
  architectures: ['BertModel'],
  model_type: 'bert',
  hidden_size: 16,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  intermediate_size: 24,
  hidden_act: 'gelu',
  max_position_embeddings: 16,
  type_vocab_size: 2,
  vocab_size: VOCAB,
  layer_norm_eps: 1e-12,
  pad_token_id: 0,
};

/** BertModel parameter names: the classifier's without the `bert.` prefix and without its head. */
function bertModelWeights(): Map<string, { shape: number[]; data: Float32Array }> {
  const spec = encoderConfig(
    { ...CONFIG, architectures: ['BertForSequenceClassification'], id2label: { 0: 'a', 1: 'b' } },
    'test',
  );
  const weights = new Map<string, { shape: number[]; data: Float32Array }>();
  canonicalShapes(spec, VOCAB).forEach(([name, shape], i) => {
    if (!name.startsWith('bert.')) return;
    const count = shape.reduce((a, b) => a * b, 1);
    const data = randomFloats(count, 4000 + i, 0.4);
    if (/LayerNorm\.weight/.test(name)) for (let j = 0; j < count; j += 1) data[j] = 1 + data[j]!;
    weights.set(name.slice('bert.'.length), { shape, data });
  });
  return weights;
}

/** Token rows of different lengths, so a batch pads and pooling must skip the padding. */
const ROWS = [
  [101, 2023, 2003, 102],
  [101, 1037, 2204, 3185, 1010, 2307, 2147, 102],
  [101, 102],
  [101, 7592, 2088, 2003, 2200, 2204, 1998, 1045, 2066, 2009, 102],
];

let dir: string;
let checkpoint: string;
let weights: Map<string, { shape: number[]; data: Float32Array }>;

before(async () => {
  dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
  checkpoint = join(dir, 'tiny-bert-model');
  weights = bertModelWeights();
  await mkdir(checkpoint, { recursive: true });
  await writeFile(join(checkpoint, 'config.json'), JSON.stringify(CONFIG));
  await cp(join(EMBEDDED_MODEL, 'tokenizer.json'), join(checkpoint, 'tokenizer.json'));
  await writeSafetensors(
    join(checkpoint, 'model.safetensors'),
    [...weights].map(([name, w]) => ({ name, dtype: 'F32' as const, shape: w.shape, data: () => w.data })),
  );
});

function maxDelta(a: number[][], b: number[][]): number {
  let max = 0;
  a.forEach((row, r) => {
    row.forEach((v, c) => {
      max = Math.max(max, Math.abs(v - b[r]![c]!));
    });
  });
  return max;
}

describe('feature-extraction against the float64 reference', () => {
  const cases: Array<{ pooling: Pooling; normalize: boolean }> = [
    { pooling: 'mean', normalize: true },
    { pooling: 'cls', normalize: false },
    { pooling: 'max', normalize: true },
  ];
  for (const { pooling, normalize } of cases) {
    test(`compile(BertModel checkpoint, ${pooling} pooling${normalize ? ', normalized' : ''}) vectors equal referenceEmbeddings within 1e-4, rows batched with padding`, async () => {
      const { artifactDir, manifest } = await compile({
        source: checkpoint,
        out: join(dir, `bert-${pooling}.kiln`),
        cache: false,
        maxLength: 16,
        pooling,
        normalize,
      });
      assert.equal(manifest.task, 'feature-extraction', 'BertModel is detected as an embedding model');
      assert.equal(
        manifest.formatVersion,
        2,
        'a kiln that reads only version 1 must refuse it, not misread its vectors as logits',
      );
      assert.deepEqual(manifest.labels, []);
      assert.deepEqual(manifest.embedding, { dimension: 16, pooling, normalize, hiddenOutput: 'last_hidden_state' });
      assert.deepEqual(
        manifest.model.outputs.map((o) => o.name),
        ['embedding'],
      );
      // One replica and a long delay: the four rows go in one padded batch.
      const model = await loadModel(artifactDir, { replicas: 1, maxDelayMs: 50 });
      try {
        assert.ok(model instanceof TextEmbedder);
        const vectors = await model.embedTokens(ROWS.map((ids) => ({ ids })));
        const stats = model.stats();
        assert.ok(
          stats.paddedTokens > stats.realTokens,
          `the rows were padded together (padded ${stats.paddedTokens}, real ${stats.realTokens})`,
        );
        const expected = ROWS.flatMap((ids) =>
          referenceEmbeddings(
            CONFIG,
            (name) => weights.get(name)!,
            { inputIds: [ids], attentionMask: [ids.map(() => 1)] },
            { pooling, normalize },
          ),
        );
        const delta = maxDelta(vectors, expected);
        console.log(
          `  ${pooling}${normalize ? '+l2' : ''}: max |Δ| vs float64 reference ${delta.toExponential(2)} over ${ROWS.length} rows × 16`,
        );
        assert.ok(delta <= 1e-4, `max |Δ| ${delta}`);
        if (normalize) for (const v of vectors) assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-5, 'unit length');
      } finally {
        await model.close();
      }
    });
  }
});

test('compile(a classifier folder with ONNX and safetensors, task feature-extraction) keys the cache on the checkpoint it imports: changed weights are a cache miss', async () => {
  const folder = join(dir, 'classifier-folder');
  await cp(EMBEDDED_MODEL, folder, { recursive: true });
  const first = await compile({ source: folder, out: null, task: 'feature-extraction' });
  const again = await compile({ source: folder, out: null, task: 'feature-extraction' });
  assert.deepEqual([first.cache, again.cache], ['miss', 'hit']);
  assert.equal(first.manifest.source.kind, 'hf-checkpoint', 'the checkpoint is the source, not the ONNX graph');
  // Change one weight byte near the end of the file (the last tensor's data).
  const weights = join(folder, 'model.safetensors');
  const bytes = await readFile(weights);
  bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 0x40;
  await writeFile(weights, bytes);
  const changed = await compile({ source: folder, out: null, task: 'feature-extraction' });
  assert.equal(changed.cache, 'miss');
  assert.notEqual(changed.cacheKey, first.cacheKey);
});

test('compile(a sentence-transformers folder) follows its modules.json and 1_Pooling/config.json unless flags say otherwise', async () => {
  const folder = join(dir, 'st-model');
  await cp(checkpoint, folder, { recursive: true });
  await writeFile(
    join(folder, 'modules.json'),
    JSON.stringify([
      { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
      { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
    ]),
  );
  await mkdir(join(folder, '1_Pooling'));
  await writeFile(
    join(folder, '1_Pooling', 'config.json'),
    JSON.stringify({
      word_embedding_dimension: 16,
      pooling_mode_cls_token: true,
      pooling_mode_mean_tokens: false,
      pooling_mode_max_tokens: false,
    }),
  );
  const followed = await compile({ source: folder, out: null, maxLength: 16 });
  assert.deepEqual(
    [followed.manifest.embedding?.pooling, followed.manifest.embedding?.normalize],
    ['cls', false],
    'CLS pooling, and no Normalize module: raw vectors',
  );
  const overridden = await compile({ source: folder, out: null, maxLength: 16, pooling: 'mean', normalize: true });
  assert.deepEqual([overridden.manifest.embedding?.pooling, overridden.manifest.embedding?.normalize], ['mean', true]);
  await writeFile(
    join(folder, '1_Pooling', 'config.json'),
    JSON.stringify({ pooling_mode_cls_token: true, pooling_mode_mean_tokens: true }),
  );
  await assert.rejects(compile({ source: folder, out: null, maxLength: 16 }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'KILN_ERR_CONFIG_INVALID');
    assert.match(err.message, /turns on cls \+ mean; kiln pools with exactly one/);
    return true;
  });
  // The fix the message names works: --pooling chooses, and the Pooling module is not read.
  const chosen = await compile({ source: folder, out: null, maxLength: 16, pooling: 'max' });
  assert.equal(chosen.manifest.embedding?.pooling, 'max');
});

test('compile(FOLDER/onnx/model.onnx of a sentence-transformers export) reads modules.json beside config.json, one folder up', async () => {
  const exported = join(dir, 'st-export');
  await importCheckpoint({ dir: checkpoint, out: exported, headless: true });
  await writeFile(
    join(exported, 'modules.json'),
    JSON.stringify([{ idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' }]),
  );
  await mkdir(join(exported, '1_Pooling'));
  await writeFile(join(exported, '1_Pooling', 'config.json'), JSON.stringify({ pooling_mode_cls_token: true }));
  const { manifest } = await compile({
    source: join(exported, 'onnx', 'model.onnx'),
    out: null,
    maxLength: 16,
    task: 'feature-extraction',
  });
  assert.deepEqual([manifest.embedding?.pooling, manifest.embedding?.normalize], ['cls', false]);
});

describe('embedding routes', () => {
  let server: KilnServer;
  let url: string;
  let direct: number[][];
  before(async () => {
    const artifactDir = join(dir, 'served.kiln');
    const { artifactDir: built } = await compile({ source: checkpoint, out: artifactDir, cache: false, maxLength: 16 });
    const embedder = (await loadModel(built, { replicas: 1 })) as TextEmbedder;
    direct = (await embedder.embed(['a good film', 'the market fell'])).map((e) => e.embedding);
    server = createServer({ port: 0 });
    url = await server.listen();
    server.model.set(embedder);
  });
  after(() => server.close());

  const post = (path: string, body: unknown) =>
    fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  test("POST /v1/embeddings answers OpenAI's shape with the vectors, in input order, and token usage", async () => {
    const res = await post('/v1/embeddings', { model: 'tiny-bert-model', input: ['a good film', 'the market fell'] });
    assert.equal(res.status, 200);
    const body = (await res.json()) as {
      object: string;
      data: Array<{ object: string; index: number; embedding: number[] }>;
      model: string;
      usage: { prompt_tokens: number; total_tokens: number };
    };
    assert.equal(body.object, 'list');
    assert.equal(body.model, 'tiny-bert-model');
    assert.deepEqual(
      body.data.map((d) => [d.object, d.index]),
      [
        ['embedding', 0],
        ['embedding', 1],
      ],
    );
    assert.ok(
      maxDelta(
        body.data.map((d) => d.embedding),
        direct,
      ) < 1e-6,
    );
    // [CLS] a good film [SEP] and [CLS] the market fell [SEP]: 5 tokens each.
    assert.deepEqual(body.usage, { prompt_tokens: 10, total_tokens: 10 });
  });

  test('POST /v1/embeddings with encoding_format base64 sends little-endian float32 bytes of the same vector', async () => {
    const res = await post('/v1/embeddings', {
      model: 'tiny-bert-model',
      input: 'a good film',
      encoding_format: 'base64',
    });
    const body = (await res.json()) as { data: Array<{ embedding: string }> };
    const bytes = Buffer.from(body.data[0]!.embedding, 'base64');
    assert.equal(bytes.length, 16 * 4);
    const decoded = Array.from({ length: 16 }, (_, i) => bytes.readFloatLE(i * 4));
    assert.ok(maxDelta([decoded], [direct[0]!]) < 1e-6);
  });

  test('POST /v1/embeddings with token-id arrays is 400 and says to send texts', async () => {
    const res = await post('/v1/embeddings', { model: 'tiny-bert-model', input: [[101, 2023, 102]] });
    assert.equal(res.status, 400);
    const error = ((await res.json()) as { error: { code: string; message: string } }).error;
    assert.equal(error.code, 'KILN_ERR_HTTP_INVALID_BODY');
    assert.match(error.message, /send \{"model": "<name>", "input": .*token-id arrays are not accepted/);
  });

  test('POST /v1/embeddings refuses a model it does not serve (404) and more dimensions than the model makes (400)', async () => {
    const unknown = await post('/v1/embeddings', { model: 'text-embedding-3-small', input: 'hi' });
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { error: { code: string } }).error.code, 'KILN_ERR_HTTP_UNKNOWN_MODEL');
    const dims = await post('/v1/embeddings', { model: 'tiny-bert-model', input: 'hi', dimensions: 17 });
    assert.equal(dims.status, 400);
    const error = ((await dims.json()) as { error: { code: string; message: string } }).error;
    assert.equal(error.code, 'KILN_ERR_HTTP_INVALID_BODY');
    assert.match(error.message, /"dimensions" is 17.*16-dimensional vectors; send 1 to 16/);
  });

  test('dimensions: k on /v1/embeddings and /embed gives the first k dimensions of each vector, scaled to unit length', async () => {
    // The reference: the full vectors computed directly, cut by hand and renormalized here.
    const expected = direct.map((v) => {
      const kept = v.slice(0, 5);
      const norm = Math.hypot(...kept);
      return kept.map((x) => x / norm);
    });
    const openai = await post('/v1/embeddings', {
      model: 'tiny-bert-model',
      input: ['a good film', 'the market fell'],
      dimensions: 5,
    });
    assert.equal(openai.status, 200);
    const data = ((await openai.json()) as { data: Array<{ embedding: number[] }> }).data.map((d) => d.embedding);
    const tei = await post('/embed', { inputs: ['a good film', 'the market fell'], dimensions: 5 });
    assert.equal(tei.status, 200);
    for (const got of [data, (await tei.json()) as number[][]]) {
      assert.deepEqual(
        got.map((v) => v.length),
        [5, 5],
      );
      assert.ok(maxDelta(got, expected) < 1e-6);
      for (const v of got) assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-6);
    }
    const full = await post('/embed', { inputs: ['a good film'], dimensions: 16 });
    assert.ok(maxDelta((await full.json()) as number[][], [direct[0]!]) < 1e-6, 'all dimensions: the vector as is');
  });

  test('POST /embed answers a list of vectors; POST /predict on an embedder is 400 KILN_ERR_HTTP_WRONG_TASK naming the right routes', async () => {
    const res = await post('/embed', { inputs: ['a good film', 'the market fell'] });
    assert.equal(res.status, 200);
    assert.ok(maxDelta((await res.json()) as number[][], direct) < 1e-6);
    const wrong = await post('/predict', { text: 'a good film' });
    assert.equal(wrong.status, 400);
    const error = ((await wrong.json()) as { error: { code: string; message: string } }).error;
    assert.equal(error.code, 'KILN_ERR_HTTP_WRONG_TASK');
    assert.match(error.message, /feature-extraction model; send it to POST \/v1\/embeddings/);
  });

  test('KServe v2 metadata lists the embedding output, and infer with a BYTES text gives FP32 [n, 16]', async () => {
    const meta = (await (await fetch(`${url}/v2/models/tiny-bert-model`)).json()) as { outputs: unknown[] };
    assert.deepEqual(meta.outputs, [{ name: 'embedding', datatype: 'FP32', shape: [-1, 16] }]);
    const res = await post('/v2/models/tiny-bert-model/infer', {
      id: 'r1',
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [2], data: ['a good film', 'the market fell'] }],
    });
    const body = (await res.json()) as {
      id: string;
      outputs: Array<{ name: string; shape: number[]; data: number[] }>;
    };
    assert.equal(body.id, 'r1');
    assert.deepEqual(body.outputs[0]!.shape, [2, 16]);
    const rows = [body.outputs[0]!.data.slice(0, 16), body.outputs[0]!.data.slice(16)];
    assert.ok(maxDelta(rows, direct) < 1e-6);
  });

  test('SageMaker /invocations answers {"embedding"} per input, JSON and JSON Lines', async () => {
    const res = await post('/invocations', { inputs: ['a good film', 'the market fell'] });
    const body = (await res.json()) as { predictions: Array<{ embedding: number[] }> };
    assert.ok(
      maxDelta(
        body.predictions.map((p) => p.embedding),
        direct,
      ) < 1e-6,
    );
    const lines = await fetch(`${url}/invocations`, {
      method: 'POST',
      headers: { 'content-type': 'application/jsonlines' },
      body: '{"inputs":"a good film"}\n{"inputs":"the market fell"}\n',
    });
    const answers = (await lines.text())
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { embedding: number[] }).embedding);
    assert.ok(maxDelta(answers, direct) < 1e-6);
  });
});
