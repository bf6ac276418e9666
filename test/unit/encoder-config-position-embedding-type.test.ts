/**
 * encoderConfig on BERT-shaped config.json files with `position_embedding_type`: transformers'
 * relative_key and relative_key_query attend differently, so every family that reads the field
 * refuses them instead of importing a graph that gives wrong logits.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encoderConfig } from '../../src/import/architectures.js';

const FAMILIES: Array<[string, Record<string, unknown>]> = [
  ['BertForSequenceClassification', { model_type: 'bert' }],
  ['BertModel', { model_type: 'bert' }],
  ['RobertaForSequenceClassification', { model_type: 'roberta', pad_token_id: 1, max_position_embeddings: 514 }],
  ['XLMRobertaForTokenClassification', { model_type: 'xlm-roberta', pad_token_id: 1, max_position_embeddings: 514 }],
  ['ElectraForSequenceClassification', { model_type: 'electra' }],
];

const config = (architecture: string, extra: Record<string, unknown>): Record<string, unknown> => ({
  architectures: [architecture],
  hidden_size: 32,
  num_attention_heads: 4,
  num_hidden_layers: 2,
  intermediate_size: 64,
  id2label: { 0: 'a', 1: 'b' },
  ...extra,
});

describe('encoderConfig(position_embedding_type)', () => {
  for (const [architecture, extra] of FAMILIES) {
    for (const kind of ['relative_key', 'relative_key_query']) {
      test(`encoderConfig(${architecture}, "${kind}") → KILN_ERR_CONFIG_INVALID naming the value and the architecture`, () => {
        assert.throws(
          () => encoderConfig(config(architecture, { ...extra, position_embedding_type: kind }), 'c.json'),
          {
            code: 'KILN_ERR_CONFIG_INVALID',
            message: new RegExp(`"position_embedding_type" is "${kind}": kiln builds ${architecture} with "absolute"`),
          },
        );
      });
    }
    test(`encoderConfig(${architecture}) builds "absolute" and an absent position_embedding_type alike`, () => {
      const absent = encoderConfig(config(architecture, extra), 'c.json');
      const absolute = encoderConfig(config(architecture, { ...extra, position_embedding_type: 'absolute' }), 'c.json');
      assert.equal(absent.architecture, architecture);
      assert.deepEqual({ ...absolute, arch: null }, { ...absent, arch: null });
    });
  }
});
