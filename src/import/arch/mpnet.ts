/**
 * MPNet (`MPNetModel`, `MPNetForSequenceClassification`, `MPNetForTokenClassification` and
 * `MPNetForQuestionAnswering`, whose `classifier` and `qa_outputs` read every token;
 * sentence-transformers/all-mpnet-base-v2 names `MPNetForMaskedLM`):
 * BERT-shaped post-norm layers with its own parameter names, positions numbered after the padding
 * index as RoBERTa does, no token types, and a relative position bias added to every layer's
 * attention scores. Semantics from transformers' modeling_mpnet.py.
 */
import { KilnError } from '../../core/errors.js';
import type { EncoderConfig } from '../architectures.js';
import { positionIds } from '../parts/attention.js';
import type { EncoderParts } from '../parts/encoder-parts.js';
import { bertShapedModule } from './bert-shaped.js';

/**
 * transformers' MPNetEncoder buckets with its defaults, 32 buckets and a maximum distance of
 * 128, whatever config.json's `relative_attention_num_buckets` says (that only sizes the table).
 */
export const MPNET_BUCKETS = 32;
const MPNET_MAX_DISTANCE = 128;
/** The relative position bias table [buckets, heads], relative to the `mpnet.` prefix. */
const RELATIVE_ATTENTION_BIAS = 'encoder.relative_attention_bias';

/**
 * The bucket of a query at position i attending to a key at position j, from n = i - j: keys
 * after the query use the upper half of the buckets; each half has exact buckets for |n| below a
 * quarter of the buckets, then logarithmically wider ones up to the maximum distance.
 */
export function mpnetBucket(n: number): number {
  const half = MPNET_BUCKETS / 2;
  const exact = half / 2;
  const offset = n < 0 ? half : 0;
  const distance = Math.abs(n);
  if (distance < exact) return offset + distance;
  const wide = exact + Math.trunc((Math.log(distance / exact) / Math.log(MPNET_MAX_DISTANCE / exact)) * (half - exact));
  return offset + Math.min(wide, half - 1);
}

/**
 * The relative position bias [1, heads, tokens, tokens], shared by every layer: each pair of
 * positions looks its bucket up in a constant table (one entry per distance the position table
 * allows), then the bucket's row of `relative_attention_bias`. Like transformers, positions are
 * 0, 1, 2, … whatever the padding (the mask hides padded keys).
 */
function relativePositionBias(p: EncoderParts, ids: string, config: Omit<EncoderConfig, 'arch'>): string {
  const g = p.g;
  const span = config.maxPositions;
  const buckets = p.int(
    'relative_position_buckets',
    Array.from({ length: 2 * span - 1 }, (_, k) => mpnetBucket(k - (span - 1))),
  );
  const table = p.tensor(`${RELATIVE_ATTENTION_BIAS}.weight`, [config.relativeBuckets!, config.heads]);
  const positions = positionIds(p, ids);
  const query = g.op('Unsqueeze', [positions, p.int('axis_1', [1])]);
  const key = g.op('Unsqueeze', [positions, p.int('axis_0', [0])]);
  const distance = g.op('Add', [g.op('Sub', [query, key]), p.int('max_distance', [span - 1], [])]);
  const bucket = g.op('Gather', [buckets, distance], { axis: 0 }, { name: '/relative_position/bucket' });
  const bias = g.op('Gather', [table, bucket], { axis: 0 }, { name: '/relative_position/Gather' });
  return g.op('Unsqueeze', [g.op('Transpose', [bias], { perm: [2, 0, 1] }), p.int('axis_0', [0])], undefined, {
    name: '/relative_position/bias',
  });
}

export const MPNET = bertShapedModule({
  family: 'mpnet',
  modelTypes: ['mpnet'],
  heads: ['MPNetForSequenceClassification', 'MPNetForTokenClassification', 'MPNetForQuestionAnswering'],
  // sentence-transformers/all-mpnet-base-v2's config.json names MPNetForMaskedLM.
  baseModels: ['MPNetModel', 'MPNetForMaskedLM'],
  names: {
    prefix: 'mpnet.',
    wordEmbeddings: 'embeddings.word_embeddings',
    positionEmbeddings: 'embeddings.position_embeddings',
    tokenTypeEmbeddings: null,
    embeddingNorm: 'embeddings.LayerNorm',
    layer: (i) => ({
      query: `encoder.layer.${i}.attention.attn.q`,
      key: `encoder.layer.${i}.attention.attn.k`,
      value: `encoder.layer.${i}.attention.attn.v`,
      attentionOutput: `encoder.layer.${i}.attention.attn.o`,
      attentionNorm: `encoder.layer.${i}.attention.LayerNorm`,
      intermediate: `encoder.layer.${i}.intermediate.dense`,
      output: `encoder.layer.${i}.output.dense`,
      outputNorm: `encoder.layer.${i}.output.LayerNorm`,
    }),
    head: { dense: 'classifier.dense', activation: 'Tanh', out: 'classifier.out_proj' },
    relativeAttentionBias: RELATIVE_ATTENTION_BIAS,
    basePooler: 'mpnet.pooler.dense',
  },
  // MPNetEmbeddings fixes padding_idx at 1, whatever pad_token_id says.
  parts: { positions: 'after-padding', paddingIndex: 1, tokenTypes: 'none', attentionBias: relativePositionBias },
  defaults: { pad_token_id: 1, relative_attention_num_buckets: 32 },
  extra({ int }, config, path) {
    const relativeBuckets = int('relative_attention_num_buckets');
    if (relativeBuckets < MPNET_BUCKETS)
      throw new KilnError('KILN_ERR_CONFIG_INVALID', {
        path,
        problem: `"relative_attention_num_buckets" is ${relativeBuckets}, but transformers' MPNet looks up buckets 0 to ${MPNET_BUCKETS - 1} whatever it says, so its table needs at least ${MPNET_BUCKETS} rows`,
      });
    if (config.maxPositions < 3)
      throw new KilnError('KILN_ERR_CONFIG_INVALID', {
        path,
        problem: `"max_position_embeddings" is ${config.maxPositions}; MPNet numbers tokens from 2, so it needs at least 3`,
      });
    return { relativeBuckets, typeVocabSize: 0 };
  },
  presets: {
    // sentence-transformers/all-mpnet-base-v2: microsoft/mpnet-base's sizes; its config.json names
    // MPNetForMaskedLM, its weights are an MPNetModel's (pooler included).
    'all-mpnet-base-v2': {
      architectures: ['MPNetForMaskedLM'],
      model_type: 'mpnet',
      hidden_act: 'gelu',
      hidden_size: 768,
      intermediate_size: 3072,
      num_attention_heads: 12,
      num_hidden_layers: 12,
      max_position_embeddings: 514,
      relative_attention_num_buckets: 32,
      vocab_size: 30527,
      layer_norm_eps: 1e-5,
      pad_token_id: 1,
      initializer_range: 0.02,
    },
  },
});
