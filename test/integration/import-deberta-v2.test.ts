/**
 * DeBERTa-v2 / v3 checkpoints (HF names, safetensors, random weights, small unusual configs)
 * compiled by kiln against the independent float64 reference (test/fixtures/reference-deberta-v2.ts):
 * classifier logits and mean-pooled normalized embeddings within 1e-4, rows padded in one batch
 * with one at max length; log position buckets with a shared key, separate position projections
 * with an embedding projection and the conv layer, c2p alone; int8; the imported ONNX folder
 * (Optimum's layout: no token_type_ids, logits / last_hidden_state) compiles too.
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
import { debertaV2Embeddings, debertaV2Logits, logBucket } from '../fixtures/reference-deberta-v2.js';
import { DEBERTA_V3_ATTENTION, TINY_DEBERTA_V2 } from '../fixtures/tiny-configs.js';

const BASE: Record<string, unknown> = TINY_DEBERTA_V2;

const CONFIGS: Record<string, Record<string, unknown>> = {
  // DeBERTa-v3's shape: log buckets (8 buckets, so distances past ±4 are bucketed), shared key, normalized relative embeddings.
  'v3-buckets-shared-key': {
    ...BASE,
    architectures: ['DebertaV2ForSequenceClassification'],
    ...DEBERTA_V3_ATTENTION,
    id2label: { 0: 'entailment', 1: 'neutral', 2: 'contradiction' },
  },
  // DeBERTa-v2-xlarge's extras: separate position projections, raw distances clamped at ±5,
  // absolute positions and token types, an embedding projection (12 → 16), the conv layer.
  'v2-conv-projection': {
    ...BASE,
    architectures: ['DebertaV2ForSequenceClassification'],
    hidden_act: 'gelu_new',
    relative_attention: true,
    max_relative_positions: 5,
    share_att_key: false,
    pos_att_type: ['c2p', 'p2c'],
    position_biased_input: true,
    type_vocab_size: 2,
    embedding_size: 12,
    conv_kernel_size: 3,
    conv_groups: 2,
    conv_act: 'gelu',
    pooler_hidden_act: 'tanh',
    id2label: { 0: 'NEGATIVE', 1: 'POSITIVE' },
  },
};

/** A DebertaV2Model (no head, names without `deberta.`): c2p only, shared key, 6 buckets. */
const BASE_MODEL: Record<string, unknown> = {
  ...BASE,
  architectures: ['DebertaV2Model'],
  relative_attention: true,
  position_buckets: 6,
  share_att_key: true,
  pos_att_type: ['c2p'],
  norm_rel_ebd: 'layer_norm',
  position_biased_input: false,
  type_vocab_size: 0,
};

const LENGTHS = [3, 9, 24];

let dir: string;
before(async () => {
  dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
});

test('logBucket (the reference) keeps distances within ±mid and buckets longer ones logarithmically', () => {
  assert.deepEqual(
    [-3, -1, 0, 1, 3, 4, 5, 10, 23].map((d) => logBucket(d, 8, 24)),
    [-3, -1, 0, 1, 3, 4, 5, 6, 7],
  );
});

describe('DebertaV2ForSequenceClassification logits equal the float64 reference within 1e-4', () => {
  for (const [name, config] of Object.entries(CONFIGS).filter(([name]) => name !== 'v3-buckets-shared-key')) {
    test(`${name}: rows of ${LENGTHS.join(', ')} tokens padded in one batch`, async () => {
      const weights = randomPartsWeights(config, 11);
      const checkpoint = await writeCheckpoint(join(dir, name), config, weights);
      const input = paddedBatch(LENGTHS, 24, 0);
      const expected = debertaV2Logits(config, lookup(weights), input);
      const { rows, fusions, parameters } = await compiledRows(checkpoint, input, {
        out: join(dir, `${name}.kiln`),
        maxLength: 24,
      });
      const delta = maxDelta(rows, expected);
      console.log(`${name}: max |Δlogit| = ${delta.toExponential(2)}; fusions ${JSON.stringify(fusions)}`);
      assert.ok(delta <= 1e-4, `max |Δ| ${delta}`);
      assert.ok(maxDelta([rows[0]!], [rows[1]!]) > 1e-3, 'rows differ');
      assert.equal(parameters, parameterCount(weights), 'the graph holds the checkpoint, nothing more');
      assert.ok((fusions.layerNorm ?? 0) > 0, 'the LayerNorms stay fusable');
    });
  }

  test('the relative terms reach the graph: without c2p/p2c the same weights give other logits', async () => {
    const config = CONFIGS['v3-buckets-shared-key']!;
    const weights = randomPartsWeights(config, 11);
    const input = paddedBatch(LENGTHS, 24, 0);
    const plain = { ...config, pos_att_type: [] };
    const differs = maxDelta(
      debertaV2Logits(config, lookup(weights), input),
      debertaV2Logits(plain, lookup(weights), input),
    );
    assert.ok(differs > 1e-3, `c2p/p2c change the logits by ${differs}`);
  });
});

describe('DebertaV2Model embeddings', () => {
  test('mean-pooled normalized vectors equal the float64 reference within 1e-4, padded in one batch', async () => {
    const weights = randomPartsWeights(BASE_MODEL, 12);
    const checkpoint = await writeCheckpoint(join(dir, 'base'), BASE_MODEL, weights);
    const input = paddedBatch([5, 24, 2, 13], 24, 0);
    const expected = debertaV2Embeddings(BASE_MODEL, lookup(weights), input);
    const { rows } = await compiledRows(checkpoint, input, {
      out: join(dir, 'base.kiln'),
      maxLength: 24,
      pooling: 'mean',
      normalize: true,
    });
    const delta = maxDelta(rows, expected);
    console.log(`DebertaV2Model: max |Δ| embedding = ${delta.toExponential(2)}`);
    assert.equal(rows[0]!.length, 16);
    assert.ok(delta <= 1e-4, `max |Δ| ${delta}`);
  });
});

describe('sharded half-precision checkpoints, the imported ONNX folder (Optimum layout), the operator check, int8', () => {
  test('v3-buckets-shared-key, F16 in two shards, imported to an ONNX folder (input_ids + attention_mask → logits): logits equal the reference within 1e-4; int8 runs close', async () => {
    await checkShardedExport({
      dir,
      label: 'v3-buckets-shared-key',
      config: CONFIGS['v3-buckets-shared-key']!,
      seed: 11,
      dtype: 'F16',
      ops: ['GatherElements', 'Sign', 'Log', 'Ceil', 'Clip', 'Expand'],
      lengths: LENGTHS,
      width: 24,
      reference: (weights, input) => debertaV2Logits(CONFIGS['v3-buckets-shared-key']!, weights, input),
    });
  });
});

describe('config refusals', () => {
  test('an even conv_kernel_size → KILN_ERR_CONFIG_INVALID naming the field', () => {
    assert.throws(() => encoderConfig({ ...CONFIGS['v2-conv-projection']!, conv_kernel_size: 4 }, 'config.json'), {
      code: 'KILN_ERR_CONFIG_INVALID',
      message: /"conv_kernel_size" is 4: an even kernel/,
    });
  });
});

test("the deberta-v3-base preset has the public model's 184,423,682 parameters (2-label head)", () => {
  const raw: Record<string, unknown> = { ...PRESETS['deberta-v3-base']!, id2label: { 0: 'A', 1: 'B' } };
  const shapes = canonicalShapes(encoderConfig(raw, 'deberta-v3-base'), raw.vocab_size as number);
  assert.equal(
    shapes.reduce((n, [, shape]) => n + shape.reduce((a, b) => a * b, 1), 0),
    184_423_682,
  );
});
