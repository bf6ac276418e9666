/**
 * ModernBERT checkpoints (HF names, safetensors, random weights, small unusual configs) compiled
 * by kiln against the independent float64 reference (test/fixtures/reference-modernbert.ts):
 * classifier logits (cls and mean pooling) and mean-pooled normalized embeddings within 1e-4,
 * rows padded in one batch with one at max positions, a local window shorter than the inputs;
 * int8; the imported ONNX folder (Optimum's layout) compiles too.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { encoderConfig } from '../../src/import/architectures.js';
import { canonicalShapes, PRESETS } from '../../src/import/synth.js';
import { maxDelta } from '../fixtures/graph-rows.js';
import { tempDir } from '../fixtures/models.js';
import {
  checkShardedExport,
  compiledRows,
  paddedBatch,
  parameterCount,
  randomPartsWeights,
} from '../fixtures/parts-checkpoints.js';
import { lookup, writeCheckpoint } from '../fixtures/random-checkpoint.js';
import { modernBertEmbeddings, modernBertLogits } from '../fixtures/reference-modernbert.js';
import { TINY_MODERNBERT } from '../fixtures/tiny-configs.js';

const WIDTH = 20;

// Layers 0 and 2 global, 1 and 3 local with a window of 6 (±3): shorter than the inputs.
const BASE: Record<string, unknown> = {
  ...TINY_MODERNBERT,
  max_position_embeddings: WIDTH,
  norm_bias: false,
  attention_bias: false,
  mlp_bias: false,
};

const CONFIGS: Record<string, Record<string, unknown>> = {
  // ModernBERT-base's choices: no biases, mean pooling, GELU head.
  'no-bias-mean-pooling': {
    ...BASE,
    architectures: ['ModernBertForSequenceClassification'],
    classifier_pooling: 'mean',
    classifier_activation: 'gelu',
    classifier_bias: false,
    id2label: { 0: 'A', 1: 'B', 2: 'C' },
  },
  // Every bias present, cls pooling, other activations, every layer after the first local.
  'biases-cls-pooling': {
    ...BASE,
    architectures: ['ModernBertForSequenceClassification'],
    hidden_activation: 'gelu_pytorch_tanh',
    norm_bias: true,
    attention_bias: true,
    mlp_bias: true,
    global_attn_every_n_layers: 4,
    local_attention: 9,
    local_rope_theta: null,
    classifier_pooling: 'cls',
    classifier_activation: 'silu',
    classifier_bias: true,
    id2label: { 0: 'NEGATIVE', 1: 'POSITIVE' },
  },
};

const BASE_MODEL: Record<string, unknown> = { ...BASE, architectures: ['ModernBertModel'] };
const LENGTHS = [3, 11, WIDTH];

let dir: string;
before(async () => {
  dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
});

describe('ModernBertForSequenceClassification logits equal the float64 reference within 1e-4', () => {
  for (const [name, config] of Object.entries(CONFIGS).filter(([name]) => name !== 'no-bias-mean-pooling')) {
    test(`${name}: rows of ${LENGTHS.join(', ')} tokens padded in one batch`, async () => {
      const weights = randomPartsWeights(config, 21);
      const checkpoint = await writeCheckpoint(join(dir, name), config, weights);
      const input = paddedBatch(LENGTHS, WIDTH, 0);
      const expected = modernBertLogits(config, lookup(weights), input);
      const { rows, fusions, parameters } = await compiledRows(checkpoint, input, {
        out: join(dir, `${name}.kiln`),
        maxLength: WIDTH,
      });
      const delta = maxDelta(rows, expected);
      console.log(`${name}: max |Δlogit| = ${delta.toExponential(2)}; fusions ${JSON.stringify(fusions)}`);
      assert.ok(delta <= 1e-4, `max |Δ| ${delta}`);
      assert.ok(maxDelta([rows[0]!], [rows[1]!]) > 1e-3, 'rows differ');
      assert.equal(parameters, parameterCount(weights), 'the graph holds the checkpoint, nothing more');
    });
  }

  test('the window reaches the reference: a global-only twin of the same weights gives other logits', () => {
    const config = CONFIGS['no-bias-mean-pooling']!;
    const weights = randomPartsWeights(config, 21);
    const input = paddedBatch(LENGTHS, WIDTH, 0);
    const global = { ...config, global_attn_every_n_layers: 1 };
    const differs = maxDelta(
      modernBertLogits(config, lookup(weights), input),
      modernBertLogits(global, lookup(weights), input),
    );
    assert.ok(differs > 1e-3, `the window changes the logits by ${differs}`);
  });
});

describe('ModernBertModel embeddings', () => {
  test('mean-pooled normalized vectors equal the float64 reference within 1e-4, padded in one batch', async () => {
    const weights = randomPartsWeights(BASE_MODEL, 22);
    const checkpoint = await writeCheckpoint(join(dir, 'base'), BASE_MODEL, weights);
    const input = paddedBatch([5, WIDTH, 2, 13], WIDTH, 0);
    const expected = modernBertEmbeddings(BASE_MODEL, lookup(weights), input);
    const { rows } = await compiledRows(checkpoint, input, {
      out: join(dir, 'base.kiln'),
      maxLength: WIDTH,
      pooling: 'mean',
      normalize: true,
    });
    const delta = maxDelta(rows, expected);
    console.log(`ModernBertModel: max |Δ| embedding = ${delta.toExponential(2)}`);
    assert.equal(rows[0]!.length, 16);
    assert.ok(delta <= 1e-4, `max |Δ| ${delta}`);
  });
});

describe('sharded half-precision checkpoints, the imported ONNX folder (Optimum layout), the operator check, int8', () => {
  test('no-bias-mean-pooling, BF16 in two shards, imported to an ONNX folder (input_ids + attention_mask → logits): logits equal the reference within 1e-4; int8 runs close', async () => {
    await checkShardedExport({
      dir,
      label: 'no-bias-mean-pooling',
      config: CONFIGS['no-bias-mean-pooling']!,
      seed: 21,
      dtype: 'BF16',
      ops: ['Cos', 'Sin', 'Split', 'Neg', 'Where'],
      lengths: LENGTHS,
      width: WIDTH,
      reference: (weights, input) => modernBertLogits(CONFIGS['no-bias-mean-pooling']!, weights, input),
    });
  });
});

describe('config refusals', () => {
  test('an unknown classifier_pooling → KILN_ERR_CONFIG_INVALID naming the field', () => {
    assert.throws(
      () => encoderConfig({ ...CONFIGS['no-bias-mean-pooling']!, classifier_pooling: 'max' }, 'config.json'),
      {
        code: 'KILN_ERR_CONFIG_INVALID',
        message: /"classifier_pooling" must be one of cls, mean/,
      },
    );
  });
});

test("the modernbert-base preset has ModernBERT-base's 149,014,272 encoder parameters plus a 2-label head", () => {
  const raw: Record<string, unknown> = { ...PRESETS['modernbert-base']!, id2label: { 0: 'A', 1: 'B' } };
  const shapes = canonicalShapes(encoderConfig(raw, 'modernbert-base'), raw.vocab_size as number);
  const count = (filter: (name: string) => boolean): number =>
    shapes.filter(([name]) => filter(name)).reduce((n, [, shape]) => n + shape.reduce((a, b) => a * b, 1), 0);
  assert.equal(
    count((name) => name.startsWith('model.')),
    149_014_272,
  );
  // head.dense (no bias) + head.norm (no bias) + classifier.
  assert.equal(
    count(() => true),
    149_014_272 + 768 * 768 + 768 + 2 * 768 + 2,
  );
});
