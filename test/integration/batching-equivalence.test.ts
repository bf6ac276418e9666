/**
 * Batching must not change answers: a sentence's logits are the same (≤ 1e-5) alone, in a
 * batch with others of mixed lengths, and padded to any bucket. And no request is lost or
 * answered twice when a replica worker dies mid-batch.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TextTokenizer } from '../../src/model/tokenizer.js';
import { type Replica, WorkerReplica } from '../../src/runtime/replica.js';
import { TextClassifier } from '../../src/tasks/text-classification/model.js';
import { compileEmbedded, EMBEDDED_MODEL, REPO, tempDir } from '../fixtures/models.js';

const BUCKETS = [16, 32, 64, 128];
let artifact: string;
let sentences: string[];
let tokenizer: TextTokenizer;
let alone: TextClassifier;

before(async () => {
  const dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
  artifact = (await compileEmbedded(join(dir, 'sst2.kiln'))).artifactDir;
  sentences = (await readFile(join(REPO, 'data', 'sst2', 'dev.tsv'), 'utf8'))
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split('\t')[0]!.trim());
  tokenizer = new TextTokenizer(
    JSON.parse(await readFile(join(EMBEDDED_MODEL, 'tokenizer.json'), 'utf8')),
    JSON.parse(await readFile(join(EMBEDDED_MODEL, 'tokenizer_config.json'), 'utf8')),
    'tokenizer.json',
  );
  // The reference: one sentence per batch, no bucket smaller than the max length.
  alone = await TextClassifier.load(artifact, { replicas: 1, maxBatch: 1, buckets: [128] });
});
after(() => alone.close());

const tokens = (s: string): number => tokenizer.encode(s, 128).ids.length;

function maxDelta(a: number[][], b: number[][]): number {
  let max = 0;
  a.forEach((row, i) => {
    row.forEach((v, j) => {
      max = Math.max(max, Math.abs(v - b[i]![j]!));
    });
  });
  return max;
}

describe('batched and bucketed logits equal the ones computed alone', () => {
  for (const bucket of BUCKETS) {
    test(`a batch of mixed lengths padded to bucket ${bucket} gives each sentence its own logits (≤ 1e-5)`, async () => {
      const lower = BUCKETS[BUCKETS.indexOf(bucket) - 1] ?? 0;
      // One sentence that needs this bucket, and shorter ones of every smaller length class.
      const longest =
        bucket === 128
          ? 'a wonderfully acted , beautifully shot film '.repeat(30)
          : sentences.find((s) => tokens(s) > lower && tokens(s) <= bucket);
      assert.ok(longest, `no dev sentence of ${lower + 1}..${bucket} tokens`);
      const shorter = sentences.filter((s) => tokens(s) <= lower).slice(0, 7);
      const batch = [shorter[0], longest, ...shorter.slice(1)].filter((s): s is string => s !== undefined);
      const batched = await TextClassifier.load(artifact, {
        replicas: 1,
        maxBatch: 16,
        maxDelayMs: 50,
        buckets: BUCKETS,
      });
      try {
        const together = await batched.classify(batch);
        const stats = batched.stats();
        assert.equal(stats.batches, 1, 'the texts went through as one batch');
        assert.deepEqual(Object.keys(stats.paddedLengths), [String(bucket)]);
        const single = await Promise.all(batch.map(async (s) => (await alone.classify([s]))[0]!));
        const delta = maxDelta(
          together.map((p) => p.logits),
          single.map((p) => p.logits),
        );
        assert.ok(delta <= 1e-5, `max |Δ| ${delta} at bucket ${bucket}`);
        assert.deepEqual(
          together.map((p) => p.label),
          single.map((p) => p.label),
        );
      } finally {
        await batched.close();
      }
    });
  }

  test('200 dev sentences through 2 replicas with dynamic batching equal the one-at-a-time logits', async () => {
    const many = sentences.slice(0, 200);
    const pool = await TextClassifier.load(artifact, { replicas: 2, maxBatch: 16, buckets: BUCKETS });
    try {
      const together = await pool.classify(many);
      const stats = pool.stats();
      assert.ok(stats.batches < many.length, 'requests were batched');
      assert.equal(stats.completed, many.length);
      assert.ok(stats.paddedTokens < many.length * 128, 'buckets padded less than max length would');
      const single: number[][] = [];
      for (const s of many) single.push((await alone.classify([s]))[0]!.logits);
      assert.ok(
        maxDelta(
          together.map((p) => p.logits),
          single,
        ) <= 1e-5,
      );
    } finally {
      await pool.close();
    }
  });
});

describe('replica failure', () => {
  test('a worker that dies as a batch arrives is replaced; every request is answered once, correctly', async () => {
    let killed = 0;
    const factoryCalls: number[] = [];
    const classifier = await TextClassifier.load(artifact, {
      replicas: 2,
      maxBatch: 4,
      replicaFactory: async (id) => {
        factoryCalls.push(id);
        const real = await WorkerReplica.start(id, {
          modelPath: join(artifact, 'model.onnx'),
          backend: 'cpu',
          intraOpThreads: 1,
        });
        // Replica 0's first worker dies during its first batch, as a crash would.
        if (id !== 0 || factoryCalls.filter((c) => c === 0).length > 1) return real;
        const crashing: Replica = {
          id,
          get alive() {
            return real.alive;
          },
          run: async (feeds) => {
            // The worker dies as the batch arrives (terminate() resolves once it has exited).
            if (killed === 0) {
              killed += 1;
              await real.kill();
            }
            return real.run(feeds);
          },
          close: () => real.close(),
        };
        return crashing;
      },
    });
    try {
      const texts = sentences.slice(0, 40);
      const settled = await Promise.allSettled(texts.map((t) => classifier.classify([t])));
      assert.ok(
        settled.every((s) => s.status === 'fulfilled'),
        'no request failed',
      );
      const expected: string[] = [];
      for (const t of texts) expected.push((await alone.classify([t]))[0]!.label);
      assert.deepEqual(
        settled.map((s) => (s as PromiseFulfilledResult<Array<{ label: string }>>).value[0]!.label),
        expected,
      );
      const stats = classifier.stats();
      assert.equal(killed, 1);
      assert.equal(stats.completed, texts.length, 'each request completed exactly once');
      assert.deepEqual(factoryCalls.sort(), [0, 0, 1], 'replica 0 was replaced once');
      // Every batch the dead worker held failed: the one it was given, and one sent ahead to it (pipeline 2).
      const failures = stats.replicas.find((r) => r.id === 0)?.failures ?? 0;
      assert.ok(failures >= 1 && failures <= 2, `replica 0 failed ${failures} batch(es)`);
    } finally {
      await classifier.close();
    }
  });
});
