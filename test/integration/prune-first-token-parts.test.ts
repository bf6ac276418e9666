/**
 * The prune pass on the families whose last layer is not BERT's: DeBERTa-v2/v3 (relative
 * attention: the content query also meets the relative keys through a GatherElements) and
 * ModernBERT (rotary positions, a fused Wqkv and a gated feed-forward behind a Split, a final
 * norm before the cls pooling). Each classifier's last layer computes token 0 only, its logits
 * equal the unpruned graph's within 1e-5 and the float64 reference's within 1e-4, and the
 * report counts every product (a saving counted without some reads −0.0 %). A CLS-pooled
 * ModernBERT embedder is pruned too, its vectors unchanged within 1e-5; a mean-pooled ModernBERT
 * classifier reads every token and is left as it was.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { pruneToFirstToken } from '../../src/compiler/prune.js';
import { importCheckpoint } from '../../src/import/import.js';
import { decodeModel, encodeModel, type ModelProto } from '../../src/onnx/proto.js';
import { appendPooling } from '../../src/tasks/feature-extraction/pooling.js';
import { graphRows, maxDelta } from '../fixtures/graph-rows.js';
import { tempDir } from '../fixtures/models.js';
import { paddedBatch, randomPartsWeights } from '../fixtures/parts-checkpoints.js';
import { lookup, writeCheckpoint } from '../fixtures/random-checkpoint.js';
import { debertaV2Logits } from '../fixtures/reference-deberta-v2.js';
import type { ReferenceInput } from '../fixtures/reference-encoder.js';
import { modernBertLogits } from '../fixtures/reference-modernbert.js';
import { DEBERTA_V3_ATTENTION, TINY_DEBERTA_V2, TINY_MODERNBERT } from '../fixtures/tiny-configs.js';

const WIDTH = 14;

const DEBERTA: Record<string, unknown> = {
  ...TINY_DEBERTA_V2,
  architectures: ['DebertaV2ForSequenceClassification'],
  num_hidden_layers: 3,
  relative_attention: true,
  id2label: { 0: 'A', 1: 'B', 2: 'C' },
};

const MODERNBERT: Record<string, unknown> = {
  ...TINY_MODERNBERT,
  architectures: ['ModernBertForSequenceClassification'],
  num_hidden_layers: 3,
  norm_bias: true,
  attention_bias: true,
  mlp_bias: true,
  // Layers 1 and 2 local with a window of 6 (±3), shorter than the inputs: the window mask is sliced too.
  global_attn_every_n_layers: 3,
  classifier_pooling: 'cls',
  classifier_activation: 'gelu',
  classifier_bias: true,
  id2label: { 0: 'NEGATIVE', 1: 'POSITIVE' },
};

/** The products of the last layer that a DeBERTa classifier computes on token 0 only. */
const DEBERTA_PRODUCTS = [
  /layer\.2\.attention\.self\.query_proj/,
  /layer\.2\.attention\.output/,
  /layer\.2\.intermediate/,
  /layer\.2\.output/,
];

type Reference = (
  config: Record<string, unknown>,
  weights: ReturnType<typeof lookup>,
  input: ReferenceInput,
) => number[][];

const CASES: Array<{
  name: string;
  config: Record<string, unknown>;
  products: RegExp[];
  reference: Reference;
}> = [
  {
    // DeBERTa-v3's shape: log buckets, shared key, normalized relative embeddings, both c2p and p2c.
    name: 'deberta-v3',
    config: { ...DEBERTA, ...DEBERTA_V3_ATTENTION },
    products: DEBERTA_PRODUCTS,
    reference: debertaV2Logits,
  },
  {
    // DeBERTa-v2's: separate position projections, raw distances clamped at ±5, token types.
    name: 'deberta-v2',
    config: {
      ...DEBERTA,
      hidden_act: 'gelu_new',
      max_relative_positions: 5,
      share_att_key: false,
      pos_att_type: ['c2p', 'p2c'],
      position_biased_input: true,
      type_vocab_size: 2,
      pooler_hidden_act: 'tanh',
    },
    products: DEBERTA_PRODUCTS,
    reference: debertaV2Logits,
  },
  {
    // Wqkv also computes keys and values for every token: it stays whole.
    name: 'modernbert-cls',
    config: MODERNBERT,
    products: [/layers\.2\.attn\.Wo/, /layers\.2\.mlp\.Wi/, /layers\.2\.mlp\.Wo/],
    reference: modernBertLogits,
  },
];

let dir: string;
before(async () => {
  dir = await tempDir();
});

async function imported(name: string, config: Record<string, unknown>): Promise<ModelProto> {
  const checkpoint = await writeCheckpoint(join(dir, name), config, randomPartsWeights(config, 5));
  const out = join(dir, `${name}-onnx`);
  await importCheckpoint({ dir: checkpoint, out });
  const path = join(out, 'onnx', 'model.onnx');
  return decodeModel(await readFile(path), path);
}

/** The graph's logits for `input`, one row per sequence. */
async function logits(model: ModelProto, path: string, input: ReferenceInput): Promise<number[][]> {
  await writeFile(path, encodeModel(model));
  return graphRows(path, input, 'all');
}

describe('DeBERTa and ModernBERT classifiers: the last layer computes token 0 only, the logits do not change', () => {
  for (const { name, config, products, reference } of CASES) {
    test(`pruneToFirstToken(${name}) equals the unpruned graph within 1e-5 and counts every product`, {
      timeout: 60_000,
    }, async () => {
      const model = await imported(name, config);
      const result = pruneToFirstToken(model, { length: 128 });
      const report = result.report;
      assert.ok(report.pruned, `not pruned: ${report.pruned ? '' : report.reason}`);
      assert.equal(report.weightProducts.length, products.length, report.weightProducts.join(', '));
      products.forEach((pattern, k) => {
        assert.match(report.weightProducts[k]!, pattern);
      });
      // Every product's shape is known in both graphs, so the saving is a true figure (over a fifth with 3 layers).
      assert.equal(report.flops.uncounted, undefined);
      assert.ok(report.flops.after < 0.8 * report.flops.before, JSON.stringify(report.flops));

      const weights = lookup(randomPartsWeights(config, 5));
      for (const [k, lengths] of [[3, 9, WIDTH], [WIDTH], [2, 5, 4]].entries()) {
        const input = paddedBatch(lengths, Math.max(...lengths), 0, 13 + k);
        const full = await logits(model, join(dir, `${name}-full.onnx`), input);
        const cut = await logits(result.model, join(dir, `${name}-pruned.onnx`), input);
        const delta = maxDelta(cut, full);
        assert.ok(delta <= 1e-5, `${name} batch ${k}: max |Δlogit| ${delta}`);
        const toReference = maxDelta(cut, reference(config, weights, input));
        assert.ok(toReference <= 1e-4, `${name} batch ${k} vs float64 reference: ${toReference}`);
        if (lengths.length > 1) assert.ok(maxDelta([cut[0]!], [cut[1]!]) > 1e-3, 'rows differ');
      }
    });
  }

  test('a CLS-pooled ModernBertModel embedder (through the final norm): pruned, the vectors equal the unpruned ones within 1e-5', {
    timeout: 60_000,
  }, async () => {
    const model = await imported('modernbert-base', { ...MODERNBERT, architectures: ['ModernBertModel'] });
    const pooled = appendPooling(
      model,
      { pooling: 'cls', normalize: true, hiddenOutput: 'last_hidden_state', hidden: 16 },
      'modernbert-base',
    );
    const result = pruneToFirstToken(pooled, { length: 128 });
    assert.ok(result.report.pruned && result.report.weightProducts.length === 3, JSON.stringify(result.report));
    const input = paddedBatch([3, WIDTH, 7], WIDTH, 0, 19);
    const full = await logits(pooled, join(dir, 'modernbert-cls-full.onnx'), input);
    const cut = await logits(result.model, join(dir, 'modernbert-cls-pruned.onnx'), input);
    assert.equal(cut[0]!.length, 16);
    assert.ok(maxDelta(cut, full) <= 1e-5, `max |Δ| ${maxDelta(cut, full)}`);
    assert.ok(maxDelta([cut[0]!], [cut[1]!]) > 1e-3, 'rows differ');
  });

  test('a mean-pooled ModernBERT classifier reads every token: not pruned', { timeout: 30_000 }, async () => {
    const model = await imported('modernbert-mean', { ...MODERNBERT, classifier_pooling: 'mean' });
    const result = pruneToFirstToken(model, { length: 128 });
    assert.deepEqual(result.report, { pruned: false, reason: 'the outputs read every token' });
    assert.equal(result.model, model);
  });
});
