/**
 * encoderConfig on BERT-shaped config.json files read through the shared ConfigFields and
 * partsHead (arch/module.ts): sizes of 0 and a non-positive epsilon are refused naming the field,
 * and a classifier without id2label gets the message DeBERTa and ModernBERT give.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encoderConfig } from '../../src/import/architectures.js';

const BERT = {
  architectures: ['BertForSequenceClassification'],
  model_type: 'bert',
  hidden_size: 32,
  num_attention_heads: 4,
  num_hidden_layers: 2,
  intermediate_size: 64,
  id2label: { 0: 'a', 1: 'b' },
};
const DISTILBERT = {
  architectures: ['DistilBertForSequenceClassification'],
  model_type: 'distilbert',
  dim: 32,
  n_heads: 4,
  n_layers: 2,
  hidden_dim: 64,
  id2label: { 0: 'a', 1: 'b' },
};

describe('encoderConfig(BERT-shaped fields)', () => {
  const invalid: Array<[string, Record<string, unknown>, RegExp]> = [
    ['BERT, hidden_size 0', { ...BERT, hidden_size: 0 }, /"hidden_size" must be an integer ≥ 1 for BertFor\w+, got 0/],
    ['BERT, num_hidden_layers 0', { ...BERT, num_hidden_layers: 0 }, /"num_hidden_layers" must be an integer ≥ 1/],
    ['BERT, intermediate_size 0', { ...BERT, intermediate_size: 0 }, /"intermediate_size" must be an integer ≥ 1/],
    [
      'BERT, num_attention_heads 0',
      { ...BERT, num_attention_heads: 0 },
      /"num_attention_heads" must be an integer ≥ 1/,
    ],
    ['BERT, 5 heads of 32', { ...BERT, num_attention_heads: 5 }, /"num_attention_heads" is 5: the hidden size 32/],
    ['BERT, layer_norm_eps 0', { ...BERT, layer_norm_eps: 0 }, /"layer_norm_eps" must be a positive number/],
    ['BERT, hidden_act "tanh"', { ...BERT, hidden_act: 'tanh' }, /"hidden_act" must be one of gelu, gelu_new/],
    ['BERT classifier without id2label', { ...BERT, id2label: undefined }, /"id2label" is undefined: a classifier/],
    [
      'RoBERTa, pad_token_id -1',
      { ...BERT, architectures: ['RobertaModel'], model_type: 'roberta', pad_token_id: -1 },
      /"pad_token_id"/,
    ],
    ['DistilBERT, dim 0', { ...DISTILBERT, dim: 0 }, /"dim" must be an integer ≥ 1 for DistilBert\w+, got 0/],
    ['DistilBERT, 5 heads of 32', { ...DISTILBERT, n_heads: 5 }, /"n_heads" is 5: the hidden size 32/],
    ['DistilBERT, sinusoidal positions', { ...DISTILBERT, sinusoidal_pos_embds: true }, /"sinusoidal_pos_embds"/],
  ];
  for (const [what, raw, message] of invalid) {
    test(`encoderConfig(${what}) → KILN_ERR_CONFIG_INVALID naming the field`, () => {
      assert.throws(() => encoderConfig(raw, 'config.json'), { code: 'KILN_ERR_CONFIG_INVALID', message });
    });
  }

  test('encoderConfig(valid BERT, RoBERTa, DistilBERT) reads sizes, defaults and heads as transformers does', () => {
    const bert = encoderConfig({ ...BERT, hidden_act: 'gelu_pytorch_tanh', layer_norm_eps: 1e-5 }, 'config.json');
    assert.deepEqual(
      [bert.hidden, bert.layers, bert.heads, bert.intermediate, bert.activation, bert.layerNormEps, bert.maxPositions],
      [32, 2, 4, 64, 'gelu_new', 1e-5, 512],
    );
    assert.deepEqual([bert.typeVocabSize, bert.padTokenId, bert.head, bert.labels], [2, 0, 'classifier', 2]);
    // RobertaConfig's pad_token_id default is 1; a base model has no head and needs no id2label.
    const roberta = encoderConfig(
      { ...BERT, architectures: ['RobertaModel'], model_type: 'roberta', id2label: undefined },
      'config.json',
    );
    assert.deepEqual([roberta.padTokenId, roberta.head, roberta.labels], [1, 'none', 0]);
    const distil = encoderConfig({ ...DISTILBERT, activation: 'relu' }, 'config.json');
    assert.deepEqual(
      [distil.hidden, distil.layers, distil.heads, distil.intermediate, distil.activation, distil.layerNormEps],
      [32, 2, 4, 64, 'relu', 1e-12],
    );
    assert.equal(distil.typeVocabSize, 0);
  });
});
