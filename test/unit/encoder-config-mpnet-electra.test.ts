/** encoderConfig, parseConfig and task detection on MPNet and ELECTRA config.json files: their own fields, defaults and refusals. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encoderConfig } from '../../src/import/architectures.js';
import { parseConfig } from '../../src/model/source.js';
import { taskFromArchitecture } from '../../src/tasks/registry.js';

/** sentence-transformers/all-mpnet-base-v2's config.json facts (it names MPNetForMaskedLM). */
const ALL_MPNET = {
  architectures: ['MPNetForMaskedLM'],
  model_type: 'mpnet',
  hidden_act: 'gelu',
  hidden_size: 768,
  intermediate_size: 3072,
  num_attention_heads: 12,
  num_hidden_layers: 12,
  max_position_embeddings: 514,
  relative_attention_num_buckets: 32,
  layer_norm_eps: 1e-5,
  pad_token_id: 1,
  vocab_size: 30527,
};

describe('encoderConfig(MPNet)', () => {
  test('encoderConfig(all-mpnet-base-v2, MPNetForMaskedLM) is a base encoder: no head, no token types, 32 buckets', () => {
    const c = encoderConfig(ALL_MPNET, 'config.json');
    assert.deepEqual(
      [c.family, c.head, c.labels, c.typeVocabSize, c.relativeBuckets, c.padTokenId, c.layerNormEps],
      ['mpnet', 'none', 0, 0, 32, 1, 1e-5],
    );
  });

  test('encoderConfig(MPNet with relative_attention_num_buckets 20) → KILN_ERR_CONFIG_INVALID: transformers looks up 32 buckets', () => {
    assert.throws(() => encoderConfig({ ...ALL_MPNET, relative_attention_num_buckets: 20 }, 'config.json'), {
      code: 'KILN_ERR_CONFIG_INVALID',
      message: /"relative_attention_num_buckets" is 20.*at least 32 rows/,
    });
  });

  test('parseConfig(MPNet) leaves max length 2 below max_position_embeddings (positions start after padding index 1)', () => {
    assert.equal(parseConfig({ ...ALL_MPNET, id2label: { 0: 'x' } }, 'config.json').maxPositions, 512);
  });
});

describe('encoderConfig(ELECTRA)', () => {
  const small = {
    architectures: ['ElectraForSequenceClassification'],
    model_type: 'electra',
    num_hidden_layers: 12,
    vocab_size: 30522,
    id2label: { 0: 'a', 1: 'b', 2: 'c' },
  };

  test("encoderConfig(ELECTRA without sizes) takes ElectraConfig's defaults: embedding 128, hidden 256, 4 heads, FFN 1024", () => {
    const c = encoderConfig(small, 'config.json');
    assert.deepEqual(
      [c.family, c.head, c.labels, c.embeddingSize, c.hidden, c.heads, c.intermediate, c.typeVocabSize],
      ['electra', 'classifier', 3, 128, 256, 4, 1024, 2],
    );
  });

  test('encoderConfig(ElectraForPreTraining) is a base encoder (the discriminator checkpoints)', () => {
    const c = encoderConfig({ ...small, architectures: ['ElectraForPreTraining'], id2label: undefined }, 'config.json');
    assert.equal(c.head, 'none');
  });

  test('encoderConfig(ELECTRA with relative_key positions) → KILN_ERR_CONFIG_INVALID naming the field', () => {
    assert.throws(() => encoderConfig({ ...small, position_embedding_type: 'relative_key' }, 'config.json'), {
      code: 'KILN_ERR_CONFIG_INVALID',
      message: /"position_embedding_type" is "relative_key"/,
    });
  });

  test('encoderConfig(model_type electra naming an MPNet class) → KILN_ERR_IMPORT_ARCHITECTURE', () => {
    assert.throws(() => encoderConfig({ ...small, architectures: ['MPNetForSequenceClassification'] }, 'config.json'), {
      code: 'KILN_ERR_IMPORT_ARCHITECTURE',
    });
  });
});

test('taskFromArchitecture: MPNet and ELECTRA classifiers classify (rank with one label), their base and pretraining classes embed', () => {
  const cases: Array<[string, number, string]> = [
    ['MPNetForSequenceClassification', 3, 'text-classification'],
    ['MPNetForSequenceClassification', 1, 'text-ranking'],
    ['ElectraForSequenceClassification', 2, 'text-classification'],
    ['ElectraForSequenceClassification', 1, 'text-ranking'],
    ['MPNetModel', 0, 'feature-extraction'],
    ['MPNetForMaskedLM', 0, 'feature-extraction'],
    ['ElectraModel', 0, 'feature-extraction'],
    ['ElectraForPreTraining', 0, 'feature-extraction'],
  ];
  for (const [architecture, labels, task] of cases) {
    const names = Array.from({ length: labels }, (_, i) => `L${i}`);
    assert.equal(
      taskFromArchitecture({ architectures: [architecture], labels: names }),
      task,
      `${architecture} × ${labels}`,
    );
  }
});
