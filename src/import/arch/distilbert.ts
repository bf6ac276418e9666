/**
 * DistilBERT (`DistilBertModel`, `DistilBertForSequenceClassification`,
 * `DistilBertForTokenClassification`, `DistilBertForQuestionAnswering`): its own field names
 * (`dim`, `n_layers`, …) and parameter names, absolute learned positions, no token types, a
 * fixed layer-norm epsilon, and a head of `pre_classifier`, ReLU and `classifier` on the first
 * token. Semantics from transformers' modeling_distilbert.py.
 */
import { bertShapedModule } from './bert-shaped.js';

export const DISTILBERT = bertShapedModule({
  family: 'distilbert',
  modelTypes: ['distilbert'],
  heads: ['DistilBertForSequenceClassification', 'DistilBertForTokenClassification', 'DistilBertForQuestionAnswering'],
  baseModels: ['DistilBertModel'],
  fields: 'distilbert',
  names: {
    prefix: 'distilbert.',
    wordEmbeddings: 'embeddings.word_embeddings',
    positionEmbeddings: 'embeddings.position_embeddings',
    tokenTypeEmbeddings: null,
    embeddingNorm: 'embeddings.LayerNorm',
    layer: (i) => ({
      query: `transformer.layer.${i}.attention.q_lin`,
      key: `transformer.layer.${i}.attention.k_lin`,
      value: `transformer.layer.${i}.attention.v_lin`,
      attentionOutput: `transformer.layer.${i}.attention.out_lin`,
      attentionNorm: `transformer.layer.${i}.sa_layer_norm`,
      intermediate: `transformer.layer.${i}.ffn.lin1`,
      output: `transformer.layer.${i}.ffn.lin2`,
      outputNorm: `transformer.layer.${i}.output_layer_norm`,
    }),
    head: { dense: 'pre_classifier', activation: 'Relu', out: 'classifier' },
    basePooler: null,
  },
  parts: { positions: 'absolute', tokenTypes: 'none' },
  presets: {
    'distilbert-base-uncased': {
      architectures: ['DistilBertForSequenceClassification'],
      model_type: 'distilbert',
      activation: 'gelu',
      dim: 768,
      hidden_dim: 3072,
      n_heads: 12,
      n_layers: 6,
      max_position_embeddings: 512,
      vocab_size: 30522,
      pad_token_id: 0,
      sinusoidal_pos_embds: false,
      initializer_range: 0.02,
    },
  },
});
