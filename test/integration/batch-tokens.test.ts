/**
 * maxBatchTokens: a batch holds at most that many padded tokens (rows × padded length), one row
 * always going; by default a CPU text encoder's batches are sized by its feed-forward width, and
 * a GPU's by rows only.
 */
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { BATCH_CHANNEL, type BatchEvent } from '../../src/core/channels.js';
import type { Manifest } from '../../src/model/artifact.js';
import { CPU_BATCH_ACTIVATION_BYTES, defaultMaxBatchTokens } from '../../src/runtime/task-model.js';
import { TextClassifier } from '../../src/tasks/text-classification/model.js';
import { compileEmbedded, tempDir } from '../fixtures/models.js';

let artifact: string;

before(async () => {
  const dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
  artifact = (await compileEmbedded(join(dir, 'sst2.kiln'))).artifactDir;
});

const encoder = (intermediate: number | null): Manifest =>
  ({ model: intermediate ? { encoder: { hidden: 768, intermediate, heads: 12 } } : {} }) as unknown as Manifest;

test('the default budget: 512 tokens for a BERT-base-sized encoder (intermediate 3072) on the CPU, 3,072 for the embedded one; none on a GPU or without an encoder', () => {
  assert.equal(CPU_BATCH_ACTIVATION_BYTES / (4 * 3072), 512);
  assert.equal(defaultMaxBatchTokens(encoder(3072), 'cpu'), 512);
  assert.equal(defaultMaxBatchTokens(encoder(512), 'cpu'), 3072);
  assert.equal(defaultMaxBatchTokens(encoder(3072), 'webgpu'), null);
  assert.equal(defaultMaxBatchTokens(encoder(3072), 'cuda'), null);
  assert.equal(defaultMaxBatchTokens(encoder(null), 'cpu'), null, 'an image model');
});

const TEXTS = Array.from({ length: 12 }, (_, i) =>
  i % 2 ? `a warm , funny and moving film , part ${i}` : `dull , lifeless and far too long , part ${i}`,
);

/** The batches `run` made, as the scheduler's batch channel told them. */
async function batchesOf<T>(run: () => Promise<T>): Promise<{ result: T; batches: BatchEvent[] }> {
  const batches: BatchEvent[] = [];
  const listen = (e: unknown): void => {
    batches.push(e as BatchEvent);
  };
  diagnosticsChannel.subscribe(BATCH_CHANNEL, listen);
  try {
    return { result: await run(), batches };
  } finally {
    diagnosticsChannel.unsubscribe(BATCH_CHANNEL, listen);
  }
}

test('maxBatchTokens 40: 12 texts padded to 12 tokens go 3 to a batch, answered as one batch of 12 answers them; null: rows only', async () => {
  const limited = await TextClassifier.load(artifact, { replicas: 1, threadsPerReplica: 1, maxBatchTokens: 40 });
  const rowsOnly = await TextClassifier.load(artifact, { replicas: 1, threadsPerReplica: 1, maxBatchTokens: null });
  try {
    assert.equal(limited.layout.maxBatchTokens, 40);
    assert.equal(rowsOnly.layout.maxBatchTokens, null);
    const a = await batchesOf(() => limited.classify(TEXTS));
    const b = await batchesOf(() => rowsOnly.classify(TEXTS));
    const padded = b.batches[0]!.paddedLength;
    assert.deepEqual(
      b.batches.map((e) => e.size),
      [12],
    );
    assert.ok(padded > 4 && padded <= 20, `the texts pad to ${padded} tokens`);
    const perBatch = Math.floor(40 / padded);
    assert.deepEqual(
      a.batches.map((e) => [e.size, e.paddedLength]),
      Array.from({ length: Math.ceil(12 / perBatch) }, (_, i) => [Math.min(perBatch, 12 - i * perBatch), padded]),
    );
    a.result.forEach((answer, i) => {
      assert.equal(answer.label, b.result[i]!.label);
      assert.ok(Math.abs(answer.score - b.result[i]!.score) < 1e-5, `score of text ${i}`);
    });
  } finally {
    await Promise.all([limited.close(), rowsOnly.close()]);
  }
});

test('a single text longer than maxBatchTokens still goes, alone', async () => {
  const model = await TextClassifier.load(artifact, { replicas: 1, threadsPerReplica: 1, maxBatchTokens: 4 });
  try {
    const { result, batches } = await batchesOf(() => model.classify(TEXTS.slice(0, 3)));
    assert.equal(result.length, 3);
    assert.deepEqual(
      batches.map((e) => e.size),
      [1, 1, 1],
    );
  } finally {
    await model.close();
  }
});

test('the default layout on the CPU reports its budget', async () => {
  const model = await TextClassifier.load(artifact, { replicas: 1, threadsPerReplica: 1 });
  try {
    assert.equal(model.layout.maxBatchTokens, 3072, 'the embedded encoder: intermediate 512');
  } finally {
    await model.close();
  }
});
