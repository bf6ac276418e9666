import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import { EMBEDDED_MODEL, randomFloats } from '../fixtures/models.js';
import {
  erf,
  type ReferenceInput,
  referenceLogits,
  robertaPositionIds,
  type Tensor,
  type Weights,
} from '../fixtures/reference-encoder.js';

/** A minimal safetensors reader: u64 LE header length, JSON header, then the raw F32 data. */
function readSafetensors(path: string): Weights {
  const bytes = readFileSync(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const dataStart = 8 + headerLength;
  return (name) => {
    const entry = header[name];
    if (!entry || name === '__metadata__') throw new Error(`weight ${name} is not in ${path}`);
    assert.equal(entry.dtype, 'F32', `${name} dtype`);
    const [begin, end] = entry.data_offsets;
    // Copy into a fresh buffer: a Float32Array view needs 4-byte alignment.
    const data = new Float32Array(new Uint8Array(bytes.subarray(dataStart + begin, dataStart + end)).buffer);
    return { data, shape: entry.shape };
  };
}

function maxAbsDiff(a: number[][], b: number[][]): number {
  assert.equal(a.length, b.length);
  let max = 0;
  a.forEach((row, r) => {
    assert.equal(row.length, b[r]!.length);
    row.forEach((value, c) => {
      max = Math.max(max, Math.abs(value - b[r]![c]!));
    });
  });
  return max;
}

/** Right-pads each row to the longest one: padId in the ids, 0 in the mask. */
function padBatch(rows: number[][], padId: number): ReferenceInput {
  const length = Math.max(...rows.map((row) => row.length));
  return {
    inputIds: rows.map((row) => [...row, ...Array<number>(length - row.length).fill(padId)]),
    attentionMask: rows.map((row) => [...row.map(() => 1), ...Array<number>(length - row.length).fill(0)]),
  };
}

describe('erf', () => {
  // Values from mpmath at 30 digits.
  const cases: [number, number][] = [
    [0, 0],
    [0.001, 0.001128378790969236],
    [0.1, 0.1124629160182849],
    [0.5, 0.5204998778130465],
    [1, 0.8427007929497149],
    [-1.5, -0.9661051464753108],
    [1.9999, 0.9953201979070294],
    [2, 0.9953222650189527],
    [2.0001, 0.9953243313041967],
    [2.5, 0.999593047982555],
    [3.5, 0.9999992569016276],
    [5, 0.9999999999984625],
    [7, 1],
  ];
  for (const [x, expected] of cases) {
    test(`erf(${x}) = ${expected} within 1e-15`, () => {
      assert.ok(Math.abs(erf(x) - expected) <= 1e-15, `erf(${x}) = ${erf(x)}`);
      assert.equal(erf(-x), -erf(x));
    });
  }
});

describe('robertaPositionIds', () => {
  test('robertaPositionIds([0, 5, 6, 2, 1, 1], 1) counts real tokens from pad + 1, pads get pad', () => {
    assert.deepEqual(robertaPositionIds([0, 5, 6, 2, 1, 1], 1), [2, 3, 4, 5, 1, 1]);
  });
  test('robertaPositionIds skips pads in the middle of a row', () => {
    assert.deepEqual(robertaPositionIds([0, 1, 7, 2], 1), [2, 1, 3, 4]);
  });
});

describe('referenceLogits on the embedded DistilBERT', () => {
  const config = JSON.parse(readFileSync(join(EMBEDDED_MODEL, 'config.json'), 'utf8')) as Record<string, unknown>;
  const weights = readSafetensors(join(EMBEDDED_MODEL, 'model.safetensors'));
  const reference = JSON.parse(readFileSync(join(EMBEDDED_MODEL, 'reference-logits.json'), 'utf8')) as {
    sentences: string[];
    logits: number[][];
  };
  const tokenizer = new Tokenizer(
    JSON.parse(readFileSync(join(EMBEDDED_MODEL, 'tokenizer.json'), 'utf8')) as object,
    JSON.parse(readFileSync(join(EMBEDDED_MODEL, 'tokenizer_config.json'), 'utf8')) as object,
  );
  const count = 20;
  const rows = reference.sentences.slice(0, count).map((text) => tokenizer.encode(text.trim()).ids);
  const expected = reference.logits.slice(0, count);

  let batched: number[][] = [];
  let single: number[][] = [];
  before(() => {
    batched = referenceLogits(config, weights, padBatch(rows, 0));
    single = rows.map((ids) => referenceLogits(config, weights, padBatch([ids], 0))[0]!);
  });

  test(`referenceLogits(padded batch of ${count} SST-2 sentences) matches PyTorch's fp32 logits within 1e-4`, () => {
    const delta = maxAbsDiff(batched, expected);
    console.log(`reference vs PyTorch: max |Δlogit| = ${delta.toExponential(2)} over ${count} sentences`);
    assert.ok(delta <= 1e-4, `max |Δ| = ${delta}`);
  });

  test('referenceLogits(one sentence at a time) equals the padded batch within 1e-9', () => {
    const delta = maxAbsDiff(single, batched);
    assert.ok(delta <= 1e-9, `max |Δ| = ${delta}`);
    assert.ok(maxAbsDiff(single, expected) <= 1e-4);
  });
});

/** Random weights for every name in `shapes` (seeded, so the tests repeat). */
function randomWeights(shapes: Record<string, number[]>): Weights {
  const tensors = new Map<string, Tensor>();
  let seed = 11;
  for (const [name, shape] of Object.entries(shapes)) {
    const size = shape.reduce((a, b) => a * b, 1);
    // LayerNorm gains near 1 keep activations in a realistic range.
    const data = name.endsWith('LayerNorm.weight')
      ? randomFloats(size, seed, 0.2).map((v) => 1 + v)
      : randomFloats(size, seed, 0.5);
    tensors.set(name, { data, shape });
    seed += 1;
  }
  return (name) => {
    const tensor = tensors.get(name);
    if (!tensor) throw new Error(`weight ${name} is missing`);
    return tensor;
  };
}

const HIDDEN = 16;
const INNER = 32;
const VOCAB = 40;
const LABELS = 3;

function encoderConfig(
  modelType: 'bert' | 'roberta' | 'xlm-roberta',
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    model_type: modelType,
    hidden_size: HIDDEN,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    intermediate_size: INNER,
    hidden_act: 'gelu',
    layer_norm_eps: modelType === 'bert' ? 1e-12 : 1e-5,
    max_position_embeddings: 24,
    type_vocab_size: modelType === 'bert' ? 2 : 1,
    vocab_size: VOCAB,
    pad_token_id: modelType === 'bert' ? 0 : 1,
    id2label: { 0: 'a', 1: 'b', 2: 'c' },
    ...extra,
  };
}

function encoderShapes(prefix: string, config: Record<string, unknown>): Record<string, number[]> {
  const shapes: Record<string, number[]> = {
    [`${prefix}embeddings.word_embeddings.weight`]: [VOCAB, HIDDEN],
    [`${prefix}embeddings.position_embeddings.weight`]: [config.max_position_embeddings as number, HIDDEN],
    [`${prefix}embeddings.token_type_embeddings.weight`]: [config.type_vocab_size as number, HIDDEN],
    [`${prefix}embeddings.LayerNorm.weight`]: [HIDDEN],
    [`${prefix}embeddings.LayerNorm.bias`]: [HIDDEN],
  };
  for (let i = 0; i < 2; i += 1) {
    const l = `${prefix}encoder.layer.${i}.`;
    for (const proj of ['query', 'key', 'value']) {
      shapes[`${l}attention.self.${proj}.weight`] = [HIDDEN, HIDDEN];
      shapes[`${l}attention.self.${proj}.bias`] = [HIDDEN];
    }
    Object.assign(shapes, {
      [`${l}attention.output.dense.weight`]: [HIDDEN, HIDDEN],
      [`${l}attention.output.dense.bias`]: [HIDDEN],
      [`${l}attention.output.LayerNorm.weight`]: [HIDDEN],
      [`${l}attention.output.LayerNorm.bias`]: [HIDDEN],
      [`${l}intermediate.dense.weight`]: [INNER, HIDDEN],
      [`${l}intermediate.dense.bias`]: [INNER],
      [`${l}output.dense.weight`]: [HIDDEN, INNER],
      [`${l}output.dense.bias`]: [HIDDEN],
      [`${l}output.LayerNorm.weight`]: [HIDDEN],
      [`${l}output.LayerNorm.bias`]: [HIDDEN],
    });
  }
  return shapes;
}

const bertConfig = encoderConfig('bert');
const bertWeights = randomWeights({
  ...encoderShapes('bert.', bertConfig),
  'bert.pooler.dense.weight': [HIDDEN, HIDDEN],
  'bert.pooler.dense.bias': [HIDDEN],
  'classifier.weight': [LABELS, HIDDEN],
  'classifier.bias': [LABELS],
});

const robertaConfig = encoderConfig('roberta');
const robertaWeights = randomWeights({
  ...encoderShapes('roberta.', robertaConfig),
  'classifier.dense.weight': [HIDDEN, HIDDEN],
  'classifier.dense.bias': [HIDDEN],
  'classifier.out_proj.weight': [LABELS, HIDDEN],
  'classifier.out_proj.bias': [LABELS],
});

describe('referenceLogits on random 2-layer BERT and RoBERTa', () => {
  test('referenceLogits(bert) gives the same logits for a row alone and right-padded with masked pads, within 1e-9', () => {
    const ids = [2, 17, 5, 33, 3];
    const alone = referenceLogits(bertConfig, bertWeights, padBatch([ids], 0));
    const padded = referenceLogits(bertConfig, bertWeights, padBatch([ids, [...ids, 9, 9, 9, 9]], 0));
    assert.equal(alone[0]!.length, LABELS);
    assert.ok(maxAbsDiff([alone[0]!], [padded[0]!]) <= 1e-9);
    // The mask matters: the same pad tokens left unmasked change the logits.
    const unmasked = referenceLogits(bertConfig, bertWeights, {
      inputIds: [[...ids, 0, 0]],
      attentionMask: [[1, 1, 1, 1, 1, 1, 1]],
    });
    assert.ok(maxAbsDiff([alone[0]!], [unmasked[0]!]) > 1e-3);
  });

  test('referenceLogits(bert) uses tokenTypeIds and hidden_act', () => {
    const input = padBatch([[2, 17, 5, 3, 8, 3]], 0);
    const plain = referenceLogits(bertConfig, bertWeights, input)[0]!;
    const withTypes = referenceLogits(bertConfig, bertWeights, { ...input, tokenTypeIds: [[0, 0, 0, 0, 1, 1]] })[0]!;
    const tanhGelu = referenceLogits({ ...bertConfig, hidden_act: 'gelu_new' }, bertWeights, input)[0]!;
    assert.ok(maxAbsDiff([plain], [withTypes]) > 1e-3);
    assert.ok(maxAbsDiff([plain], [tanhGelu]) > 1e-6);
    assert.ok(maxAbsDiff([plain], [tanhGelu]) < 1e-1);
  });

  test('referenceLogits(roberta) gives the same logits for a row alone and right-padded with pad_token_id, within 1e-9', () => {
    const ids = [0, 17, 5, 33, 2];
    const alone = referenceLogits(robertaConfig, robertaWeights, padBatch([ids], 1));
    const padded = referenceLogits(robertaConfig, robertaWeights, padBatch([ids, [...ids, 7, 7, 7]], 1));
    assert.ok(maxAbsDiff([alone[0]!], [padded[0]!]) <= 1e-9);
    const xlmr = referenceLogits({ ...robertaConfig, model_type: 'xlm-roberta' }, robertaWeights, padBatch([ids], 1));
    assert.deepEqual(xlmr, alone);
  });

  test('referenceLogits(roberta) equals BERT with positions shifted by pad_token_id + 1 and the head renamed', () => {
    // Same numbers under RoBERTa's names; RoBERTa's position p reads BERT's row p − (pad + 1).
    const pad = robertaConfig.pad_token_id as number;
    const config = { ...bertConfig, model_type: 'roberta', pad_token_id: pad, max_position_embeddings: 24 + pad + 1 };
    const bertPositions = bertWeights('bert.embeddings.position_embeddings.weight');
    const shifted = new Float32Array((24 + pad + 1) * HIDDEN);
    shifted.set(bertPositions.data, (pad + 1) * HIDDEN);
    const renamed: Weights = (name) => {
      if (name === 'roberta.embeddings.position_embeddings.weight')
        return { data: shifted, shape: [24 + pad + 1, HIDDEN] };
      if (name === 'classifier.dense.weight') return bertWeights('bert.pooler.dense.weight');
      if (name === 'classifier.dense.bias') return bertWeights('bert.pooler.dense.bias');
      if (name === 'classifier.out_proj.weight') return bertWeights('classifier.weight');
      if (name === 'classifier.out_proj.bias') return bertWeights('classifier.bias');
      return bertWeights(name.replace(/^roberta\./, 'bert.'));
    };
    const rows = [
      [0, 17, 5, 33, 2],
      [0, 9, 2],
    ];
    const asRoberta = referenceLogits(config, renamed, padBatch(rows, pad));
    const asBert = referenceLogits(bertConfig, bertWeights, padBatch(rows, 0));
    assert.ok(maxAbsDiff(asRoberta, asBert) <= 1e-12);
  });

  test('referenceLogits throws on a missing weight, a wrong shape and an unknown model_type', () => {
    const input = padBatch([[2, 3]], 0);
    assert.throws(() => referenceLogits(robertaConfig, bertWeights, input), /roberta\.embeddings/);
    assert.throws(() => referenceLogits({ ...bertConfig, hidden_size: 8 }, bertWeights, input), /expected \[40, 8\]/);
    assert.throws(() => referenceLogits({ ...bertConfig, model_type: 'gpt2' }, bertWeights, input), /model_type/);
  });
});
