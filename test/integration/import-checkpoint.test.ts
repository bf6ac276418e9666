/**
 * kiln's imported graphs against an independent float64 forward pass (test/fixtures/
 * reference-encoder.ts), on small random BERT, RoBERTa and DistilBERT checkpoints written here:
 * padding in a batch, token type ids, a sequence at max positions, every activation, F16/BF16.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { compile } from '../../src/compiler/compile.js';
import { encoderConfig } from '../../src/import/architectures.js';
import { importCheckpoint } from '../../src/import/import.js';
import { canonicalShapes, PRESETS } from '../../src/import/synth.js';
import { decodeBf16, decodeF16, encodeBf16, encodeF16 } from '../../src/model/float16.js';
import { graphRows, maxDelta } from '../fixtures/graph-rows.js';
import { tempDir } from '../fixtures/models.js';
import { paddedBatch } from '../fixtures/parts-checkpoints.js';
import { randomWeights, VOCAB, writeCheckpoint } from '../fixtures/random-checkpoint.js';
import { type ReferenceInput, referenceLogits } from '../fixtures/reference-encoder.js';

const LABELS = { 0: 'A', 1: 'B', 2: 'C' };

const CONFIGS: Record<string, Record<string, unknown>> = {
  bert: {
    architectures: ['BertForSequenceClassification'],
    model_type: 'bert',
    hidden_size: 16,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    intermediate_size: 24,
    hidden_act: 'gelu',
    max_position_embeddings: 12,
    type_vocab_size: 2,
    vocab_size: VOCAB,
    layer_norm_eps: 1e-12,
    pad_token_id: 0,
    id2label: LABELS,
  },
  roberta: {
    architectures: ['RobertaForSequenceClassification'],
    model_type: 'roberta',
    hidden_size: 16,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    intermediate_size: 32,
    hidden_act: 'gelu_new',
    max_position_embeddings: 14,
    type_vocab_size: 1,
    vocab_size: VOCAB,
    layer_norm_eps: 1e-5,
    pad_token_id: 1,
    id2label: LABELS,
  },
  distilbert: {
    architectures: ['DistilBertForSequenceClassification'],
    model_type: 'distilbert',
    dim: 16,
    n_layers: 2,
    n_heads: 4,
    hidden_dim: 20,
    activation: 'relu',
    max_position_embeddings: 12,
    vocab_size: VOCAB,
    pad_token_id: 0,
    id2label: LABELS,
  },
};
CONFIGS['xlm-roberta'] = {
  ...CONFIGS.roberta,
  architectures: ['XLMRobertaForSequenceClassification'],
  model_type: 'xlm-roberta',
  hidden_act: 'relu',
};
CONFIGS['bert-gelu-new'] = { ...CONFIGS.bert, hidden_act: 'gelu_new' };

/** Compiles the checkpoint and runs its graph on explicit tensors, as the runtime does: the logits. */
async function kilnLogits(checkpoint: string, input: ReferenceInput, withTokenTypes: boolean): Promise<number[][]> {
  const { artifactDir } = await compile({ source: checkpoint, out: `${checkpoint}.kiln`, cache: false, maxLength: 8 });
  const names = ['input_ids', 'attention_mask', ...(withTokenTypes ? ['token_type_ids'] : [])];
  return graphRows(join(artifactDir, 'model.onnx'), input, 'disabled', names);
}

/** Three rows: short with padding, medium with padding, and one at the model's max positions. */
function batchFor(config: Record<string, unknown>): ReferenceInput {
  const pad = config.pad_token_id as number;
  const maxPositions =
    (config.max_position_embeddings as number) -
    (config.model_type === 'roberta' || config.model_type === 'xlm-roberta' ? pad + 1 : 0);
  return paddedBatch([3, 7, maxPositions], maxPositions, pad);
}

let dir: string;
before(async () => {
  dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
});

describe('imported graphs match the float64 reference within 1e-4', () => {
  const logitsByConfig = new Map<string, number[][]>();
  for (const [name, config] of Object.entries(CONFIGS)) {
    test(`importCheckpoint(${name}) logits equal referenceLogits, with padding${name.startsWith('bert') ? ', token type ids' : ''} and a sequence at max positions`, async () => {
      const weights = randomWeights(config, 1);
      const checkpoint = await writeCheckpoint(join(dir, name), config, weights);
      const input = batchFor(config);
      const isBert = config.model_type === 'bert';
      if (!isBert) delete input.tokenTypeIds;
      const expected = referenceLogits(
        config,
        (n) =>
          weights.get(n) ??
          (() => {
            throw new Error(`missing ${n}`);
          })(),
        input,
      );
      const actual = await kilnLogits(checkpoint, input, isBert);
      logitsByConfig.set(name, actual);
      const delta = maxDelta(actual, expected);
      console.log(`${name}: max |Δlogit| vs float64 reference = ${delta.toExponential(2)}`);
      assert.ok(delta <= 1e-4, `max |Δ| ${delta}`);
      // The rows differ: a graph that ignored its input would pass a weaker check.
      assert.ok(maxDelta([actual[0]!], [actual[1]!]) > 1e-3);
    });
  }

  test('the activation in config.json reaches the graph: gelu and gelu_new BERTs with equal weights differ', () => {
    const delta = maxDelta(logitsByConfig.get('bert')!, logitsByConfig.get('bert-gelu-new')!);
    console.log(`bert gelu vs gelu_new: max |Δlogit| = ${delta.toExponential(2)}`);
    assert.ok(delta > 1e-5);
  });
});

describe('half-precision checkpoints', () => {
  for (const [dtype, encode, decode] of [
    ['F16', encodeF16, decodeF16],
    ['BF16', encodeBf16, decodeBf16],
  ] as const) {
    test(`a ${dtype} checkpoint imports to the logits of its F32 twin (the same values widened)`, async () => {
      const config = CONFIGS.bert!;
      const weights = randomWeights(config, 2);
      const twin = new Map([...weights].map(([n, w]) => [n, { shape: w.shape, data: decode(encode(w.data)) }]));
      const half = await writeCheckpoint(join(dir, `half-${dtype}`), config, weights, dtype);
      const wide = await writeCheckpoint(join(dir, `twin-${dtype}`), config, twin, 'F32');
      const input = batchFor(config);
      const fromHalf = await kilnLogits(half, input, true);
      const fromTwin = await kilnLogits(wide, input, true);
      assert.ok(maxDelta(fromHalf, fromTwin) <= 1e-6, `${dtype} vs twin: ${maxDelta(fromHalf, fromTwin)}`);
      // And the format's rounding is visible against the original F32 weights, but small.
      const original = await kilnLogits(
        await writeCheckpoint(join(dir, `orig-${dtype}`), config, weights),
        input,
        true,
      );
      const drift = maxDelta(fromHalf, original);
      assert.ok(drift > 0 && drift < (dtype === 'F16' ? 0.05 : 0.3), `${dtype} drift ${drift}`);
    });
  }
});

describe('bad checkpoints get coded errors naming the tensor', () => {
  test('a missing tensor → KILN_ERR_WEIGHTS_MISSING_TENSOR', async () => {
    const config = CONFIGS.bert!;
    const checkpoint = await writeCheckpoint(
      join(dir, 'missing'),
      config,
      randomWeights(config, 3),
      'F32',
      (n) => n === 'bert.encoder.layer.1.attention.self.key.weight',
    );
    await assert.rejects(importCheckpoint({ dir: checkpoint, out: join(dir, 'missing-onnx') }), {
      code: 'KILN_ERR_WEIGHTS_MISSING_TENSOR',
      message: /"bert\.encoder\.layer\.1\.attention\.self\.key\.weight"/,
    });
  });

  test('a misshapen tensor → KILN_ERR_WEIGHTS_SHAPE with expected and actual shapes', async () => {
    const config = CONFIGS.roberta!;
    const weights = randomWeights(config, 4);
    weights.set('roberta.encoder.layer.0.intermediate.dense.weight', {
      shape: [31, 16],
      data: new Float32Array(31 * 16),
    });
    const checkpoint = await writeCheckpoint(join(dir, 'misshapen'), config, weights);
    await assert.rejects(importCheckpoint({ dir: checkpoint, out: join(dir, 'misshapen-onnx') }), {
      code: 'KILN_ERR_WEIGHTS_SHAPE',
      message:
        /"roberta\.encoder\.layer\.0\.intermediate\.dense\.weight" .* has shape \[31, 16\], but config\.json implies \[32, 16\]/,
    });
  });

  test('an architecture kiln cannot build → KILN_ERR_IMPORT_ARCHITECTURE listing the supported ones', async () => {
    const config = { ...CONFIGS.bert!, architectures: ['GPT2ForSequenceClassification'], model_type: 'gpt2' };
    const checkpoint = await writeCheckpoint(join(dir, 'gpt2'), CONFIGS.bert!, randomWeights(CONFIGS.bert!, 5));
    await writeFile(join(checkpoint, 'config.json'), JSON.stringify(config));
    await assert.rejects(importCheckpoint({ dir: checkpoint, out: join(dir, 'gpt2-onnx') }), {
      code: 'KILN_ERR_IMPORT_ARCHITECTURE',
      message:
        /"GPT2ForSequenceClassification"; supported: BertForSequenceClassification, DistilBertForSequenceClassification, RobertaForSequenceClassification, XLMRobertaForSequenceClassification/,
    });
  });
});

describe('kiln synth presets', () => {
  // Parameter counts of the public checkpoints with a 2-label classification head.
  const expected: Record<string, number> = {
    'distilbert-base-uncased': 66_955_010,
    'bert-base-uncased': 109_483_778,
    'roberta-base': 124_647_170,
    'bert-large-uncased': 335_143_938,
    // An MPNetModel with its pooler, as sentence-transformers ships it (no classifier).
    'all-mpnet-base-v2': 109_486_464,
    // ElectraModel (108,891,648, as BERT's encoder without a pooler) and a dense + out_proj head.
    'electra-base-discriminator': 109_483_778,
  };
  for (const [preset, count] of Object.entries(expected)) {
    test(`the ${preset} preset has the public model's ${count.toLocaleString('en-US')} parameters`, () => {
      const raw: Record<string, unknown> = { ...PRESETS[preset]!, id2label: { 0: 'A', 1: 'B' } };
      const shapes = canonicalShapes(encoderConfig(raw, preset), raw.vocab_size as number);
      assert.equal(
        shapes.reduce((n, [, shape]) => n + shape.reduce((a, b) => a * b, 1), 0),
        count,
      );
    });
  }
});
