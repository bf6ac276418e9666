/**
 * kiln as a library, imported by its package name as a user's code imports it: compile, load
 * and classify with the embedded model, bench it, serve it, and a coded error.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { EMBEDDED_MODEL, tempDir } from '../fixtures/models.js';

// Resolved through package.json "exports", as from a project that depends on kiln.
const kiln = await import('kiln');

interface Reference {
  sentences: string[];
  logits: number[][];
  labels: string[];
}

let dir: string;
let artifact: string;
let reference: Reference;

before(async () => {
  dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
  reference = JSON.parse(await readFile(join(EMBEDDED_MODEL, 'reference-logits.json'), 'utf8')) as Reference;
  const compiled = await kiln.compile({ source: EMBEDDED_MODEL, out: join(dir, 'sst2.kiln'), cache: false });
  artifact = compiled.artifactDir;
  assert.equal(compiled.manifest.task, 'text-classification');
  assert.deepEqual(compiled.manifest.labels, ['NEGATIVE', 'POSITIVE']);
});

test('loadModel + classify give the PyTorch reference labels and logits, and the softmax score of the label', async () => {
  const model = await kiln.loadModel({ model: artifact, replicas: 1 });
  try {
    assert.equal(model.task, 'text-classification');
    if (model.task !== 'text-classification') return;
    const count = 24;
    const predictions = await model.classify(reference.sentences.slice(0, count).map((s) => s.trim()));
    predictions.forEach((p, i) => {
      const expected = reference.logits[i]!;
      assert.equal(p.label, reference.labels[i], `sentence ${i}: ${reference.sentences[i]}`);
      for (const [j, logit] of p.logits.entries())
        assert.ok(Math.abs(logit - expected[j]!) < 1e-4, `sentence ${i} logit ${j}`);
      const exp = p.logits.map((l) => Math.exp(l));
      assert.ok(Math.abs(p.score - Math.max(...exp) / (exp[0]! + exp[1]!)) < 1e-9, `sentence ${i} score`);
    });
    const [loved, cold] = await model.classify([
      'I absolutely loved this movie, it was fantastic!',
      'The service was terrible and the food was cold.',
    ]);
    assert.equal(loved!.label, 'POSITIVE');
    assert.equal(cold!.label, 'NEGATIVE');
    assert.ok(loved!.score > 0.9 && cold!.score > 0.9);
  } finally {
    await model.close();
  }
});

test('loadModel of a source compiles it through the cache once and predicts as the compiled artifact does', async () => {
  const caches: string[] = [];
  const onCompile = (_source: string, result: { cache: string }): void => {
    caches.push(result.cache);
  };
  const text = 'a gorgeous, witty, seductive movie.';
  const predictions: number[][] = [];
  for (let i = 0; i < 2; i += 1) {
    const model = await kiln.loadModel({ model: EMBEDDED_MODEL, replicas: 1, onCompile });
    try {
      assert.equal(model.task, 'text-classification');
      if (model.task === 'text-classification') predictions.push((await model.classify([text]))[0]!.logits);
    } finally {
      await model.close();
    }
  }
  assert.deepEqual(caches, ['miss', 'hit']);
  assert.deepEqual(predictions[0], predictions[1]);
  const fromArtifact = await kiln.loadModel({ model: artifact, replicas: 1 });
  try {
    if (fromArtifact.task === 'text-classification')
      assert.deepEqual((await fromArtifact.classify([text]))[0]!.logits, predictions[0]);
  } finally {
    await fromArtifact.close();
  }
});

test('bench measures the latency loop and the throughput sweep of a loaded model', async () => {
  const model = await kiln.loadModel({ model: artifact, replicas: 1 });
  try {
    const seen: string[] = [];
    const result = await kiln.bench({
      model,
      inputs: ['a wonderful film', 'dull and far too long', 'the cast is great but the story is thin'],
      modes: ['throughput', 'latency'],
      requests: 7,
      batches: [1, 2],
      warmup: 1,
      pricePerHour: 1,
      onMeasured: (mode) => seen.push(mode),
    });
    assert.deepEqual(seen, ['latency', 'throughput'], 'modes run in their fixed order');
    assert.equal(result.latency?.count, 7);
    assert.deepEqual(
      result.throughput?.map((p) => p.batch),
      [1, 2],
    );
    assert.equal(result.concurrency, undefined);
    assert.equal(result.data.texts, 3);
    const best = Math.max(1000 / result.latency!.avgMs, ...result.throughput!.map((p) => p.textsPerSecond));
    assert.equal(result.best?.textsPerSecond, best);
    assert.ok(Math.abs(result.cost!.perMillion - (1 / (best * 3600)) * 1e6) < 1e-9);
    // The sweep changes max batch; bench puts the model's own back.
    assert.equal(model.layout.maxBatch, model.manifest.limits.maxBatch);
  } finally {
    await model.close();
  }
});

test('createServer serves the artifact: /predict answers what classify answers', async () => {
  const server = kiln.createServer({ models: artifact, port: 0, replicas: 1 });
  try {
    const url = await server.listen();
    const [model] = await server.ready;
    assert.equal(model?.manifest.name, 'sst2-distilbert-tiny');
    const text = 'an utterly charming and hilarious film';
    const res = await fetch(`${url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ text }),
      signal: AbortSignal.timeout(30_000),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { label: string; score: number };
    assert.ok(model?.task === 'text-classification');
    const [direct] = await model.classify([text]);
    assert.equal(body.label, direct!.label);
    assert.equal(body.score, direct!.score);
  } finally {
    await server.close();
  }
});

test('a model that does not exist rejects with a KilnError and its code', async () => {
  await assert.rejects(
    kiln.loadModel({ model: join(dir, 'no-such-model') }),
    (err: unknown) => err instanceof kiln.KilnError && err.code === 'KILN_ERR_SOURCE_NOT_FOUND',
  );
});
