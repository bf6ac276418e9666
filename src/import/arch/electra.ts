/**
 * ELECTRA discriminators (`ElectraModel`, `ElectraForSequenceClassification`,
 * `ElectraForTokenClassification` and `ElectraForQuestionAnswering` with `classifier` and
 * `qa_outputs` on every token, `ElectraForPreTraining`): BERT's embeddings and layers, with embedding tables `embedding_size`
 * wide and a Linear (`embeddings_project`) up to the hidden size when the two differ, no pooler,
 * and a classification head of dense, exact GELU (not tanh, not `hidden_act`) and out_proj on the
 * first token. Semantics from transformers' modeling_electra.py.
 */
import { BERT_BASE_PRESET } from './bert.js';
import { BERT_LAYER, bertShapedModule } from './bert-shaped.js';

export const ELECTRA = bertShapedModule({
  family: 'electra',
  modelTypes: ['electra'],
  heads: ['ElectraForSequenceClassification', 'ElectraForTokenClassification', 'ElectraForQuestionAnswering'],
  // google/electra-*-discriminator's config.json names ElectraForPreTraining.
  baseModels: ['ElectraModel', 'ElectraForPreTraining'],
  names: {
    prefix: 'electra.',
    wordEmbeddings: 'embeddings.word_embeddings',
    positionEmbeddings: 'embeddings.position_embeddings',
    tokenTypeEmbeddings: 'embeddings.token_type_embeddings',
    embeddingNorm: 'embeddings.LayerNorm',
    layer: BERT_LAYER,
    head: { dense: 'classifier.dense', activation: 'Gelu', out: 'classifier.out_proj' },
    embeddingProject: 'embeddings_project',
    basePooler: null,
  },
  parts: { positions: 'absolute', tokenTypes: 'input' },
  // ElectraConfig's defaults (electra-small's sizes) where they differ from BERT's.
  defaults: {
    embedding_size: 128,
    hidden_size: 256,
    num_attention_heads: 4,
    intermediate_size: 1024,
  },
  extra: ({ int }) => ({ embeddingSize: int('embedding_size') }),
  presets: {
    // google/electra-base-discriminator's sizes, with a sequence-classification head.
    'electra-base-discriminator': {
      ...BERT_BASE_PRESET,
      architectures: ['ElectraForSequenceClassification'],
      model_type: 'electra',
      embedding_size: 768,
    },
  },
});
