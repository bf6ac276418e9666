/**
 * BERT (`BertModel`, `BertForSequenceClassification`, `BertForTokenClassification`,
 * `BertForQuestionAnswering`): absolute positions, `token_type_ids` as an input, the pooler (dense
 * and tanh on the first token, inside the base model) before the sequence classifier. Semantics
 * from transformers' modeling_bert.py.
 */
import { BERT_LAYER, bertShapedModule } from './bert-shaped.js';

/** bert-base-uncased's public config.json facts; the other BERT-shaped presets differ in a few. */
export const BERT_BASE_PRESET: Readonly<Record<string, unknown>> = {
  architectures: ['BertForSequenceClassification'],
  model_type: 'bert',
  hidden_act: 'gelu',
  hidden_size: 768,
  intermediate_size: 3072,
  num_attention_heads: 12,
  num_hidden_layers: 12,
  max_position_embeddings: 512,
  type_vocab_size: 2,
  vocab_size: 30522,
  layer_norm_eps: 1e-12,
  pad_token_id: 0,
  initializer_range: 0.02,
};

export const BERT = bertShapedModule({
  family: 'bert',
  modelTypes: ['bert'],
  heads: ['BertForSequenceClassification', 'BertForTokenClassification', 'BertForQuestionAnswering'],
  baseModels: ['BertModel'],
  names: {
    prefix: 'bert.',
    wordEmbeddings: 'embeddings.word_embeddings',
    positionEmbeddings: 'embeddings.position_embeddings',
    tokenTypeEmbeddings: 'embeddings.token_type_embeddings',
    embeddingNorm: 'embeddings.LayerNorm',
    layer: BERT_LAYER,
    head: { dense: 'bert.pooler.dense', activation: 'Tanh', out: 'classifier' },
    basePooler: 'bert.pooler.dense',
  },
  parts: { positions: 'absolute', tokenTypes: 'input' },
  presets: {
    'bert-base-uncased': BERT_BASE_PRESET,
    // sentence-transformers/all-MiniLM-L6-v2: a head-less BertModel (its embeddings are mean-pooled outside the model).
    'all-minilm-l6': {
      ...BERT_BASE_PRESET,
      architectures: ['BertModel'],
      hidden_size: 384,
      intermediate_size: 1536,
      num_hidden_layers: 6,
    },
    'bert-large-uncased': {
      ...BERT_BASE_PRESET,
      hidden_size: 1024,
      intermediate_size: 4096,
      num_attention_heads: 16,
      num_hidden_layers: 24,
    },
  },
});
