/**
 * RoBERTa and XLM-RoBERTa (the same code in transformers): BERT's layers, positions numbered
 * after the padding index, token type row 0 for every token (their tokenizers give no other), and
 * a classification head of dense, tanh and `out_proj` on the first token (no pooler). Semantics
 * from transformers' modeling_roberta.py.
 */
import { BERT_BASE_PRESET } from './bert.js';
import { BERT_LAYER, bertShapedModule } from './bert-shaped.js';

const CLASSES = ['Roberta', 'XLMRoberta'];

export const ROBERTA = bertShapedModule({
  family: 'roberta',
  modelTypes: ['roberta', 'xlm-roberta'],
  heads: CLASSES.flatMap((c) => [
    `${c}ForSequenceClassification`,
    `${c}ForTokenClassification`,
    `${c}ForQuestionAnswering`,
  ]),
  baseModels: CLASSES.map((c) => `${c}Model`),
  names: {
    prefix: 'roberta.',
    wordEmbeddings: 'embeddings.word_embeddings',
    positionEmbeddings: 'embeddings.position_embeddings',
    tokenTypeEmbeddings: 'embeddings.token_type_embeddings',
    embeddingNorm: 'embeddings.LayerNorm',
    layer: BERT_LAYER,
    head: { dense: 'classifier.dense', activation: 'Tanh', out: 'classifier.out_proj' },
    // RobertaModel builds a pooler by default; the heads build the model without it.
    basePooler: 'roberta.pooler.dense',
  },
  parts: { positions: 'after-padding', tokenTypes: 'zero' },
  defaults: { pad_token_id: 1 },
  presets: {
    'roberta-base': {
      ...BERT_BASE_PRESET,
      architectures: ['RobertaForSequenceClassification'],
      model_type: 'roberta',
      max_position_embeddings: 514,
      type_vocab_size: 1,
      vocab_size: 50265,
      layer_norm_eps: 1e-5,
      pad_token_id: 1,
    },
  },
});
