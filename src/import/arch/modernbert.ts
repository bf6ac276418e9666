/**
 * ModernBERT: ModernBertModel (and ModernBertForMaskedLM, whose checkpoints carry it: answerdotai's
 * base and large), ModernBertForSequenceClassification, and ModernBertForTokenClassification and
 * ModernBertForQuestionAnswering (the head's dense, activation and norm on every token, then
 * `classifier`, two columns for QA's start and end). A pre-norm encoder:
 * token embeddings and LayerNorm (no positions: rotary embeddings rotate each layer's queries
 * and keys), layers that alternate global attention (every `global_attn_every_n_layers`-th,
 * rotary base `global_rope_theta`) with sliding-window attention (|query − key| ≤
 * `local_attention` / 2, base `local_rope_theta`), a gated GELU feed-forward, LayerNorms and
 * Linear layers without biases by default, a final norm, and a head that pools (`cls` or `mean`),
 * then dense, activation, norm, classifier. Field names and defaults follow transformers'
 * ModernBertConfig; the math its modeling_modernbert.py (the eager/SDPA path).
 */
import type { EncoderConfig } from '../architectures.js';
import type { BuiltGraph, WeightSource } from '../encoder-graph.js';
import {
  applyRotary,
  attend,
  mergeHeads,
  paddingBias,
  rotaryTables,
  slidingWindowBias,
  splitHeads,
} from '../parts/attention.js';
import { activationField, ConfigFields, EncoderParts, type PartActivation } from '../parts/encoder-parts.js';
import { gatedFeedForward } from '../parts/feed-forward.js';
import { headOutputs } from '../parts/heads.js';
import { firstToken, maskedMean } from '../parts/pooling.js';
import { type ArchitectureModule, type PartsFacts, padTokenId, partsEncoderConfig, partsHead } from './module.js';

/** The shared facts (PartsFacts) and this family's own. */
export interface ModernBertFacts extends PartsFacts {
  normBias: boolean;
  attentionBias: boolean;
  mlpBias: boolean;
  globalTheta: number;
  localTheta: number;
  globalEvery: number;
  /** The full window; a local layer attends to keys within window / 2 of the query. */
  localWindow: number;
  pooling: 'cls' | 'mean';
  classifierActivation: PartActivation;
  classifierBias: boolean;
}

const BASE = 'ModernBertModel';
const CLASSIFIER = 'ModernBertForSequenceClassification';
/** answerdotai/ModernBERT-base's config.json names it; its `head` and `decoder` are not built. */
const MASKED_LM = 'ModernBertForMaskedLM';
const BASE_MODELS = [BASE, MASKED_LM];
const PREFIX = 'model.';

const layer = (i: number) => ({
  attentionNorm: `layers.${i}.attn_norm`,
  qkv: `layers.${i}.attn.Wqkv`,
  attentionOutput: `layers.${i}.attn.Wo`,
  mlpNorm: `layers.${i}.mlp_norm`,
  up: `layers.${i}.mlp.Wi`,
  down: `layers.${i}.mlp.Wo`,
});

export function modernBertFacts(raw: Record<string, unknown>, path: string, headless: boolean): ModernBertFacts {
  const architecture = (raw.architectures as string[])[0]!;
  const f = new ConfigFields(raw, path, architecture);
  const hidden = f.int('hidden_size', 768, 1);
  const heads = f.int('num_attention_heads', 12, 1);
  if (hidden % heads !== 0 || (hidden / heads) % 2 !== 0)
    f.refuse(
      'num_attention_heads',
      `the head size hidden_size / heads must be an even integer (hidden_size ${hidden})`,
    );
  const { head, labels } = partsHead(raw, f, { architecture, baseModels: BASE_MODELS, headless });
  const globalTheta = f.positive('global_rope_theta', 160000);
  return {
    architecture,
    head,
    labels,
    hidden,
    layers: f.int('num_hidden_layers', 22, 1),
    heads,
    intermediate: f.int('intermediate_size', 1152, 1),
    activation: activationField(raw, 'hidden_activation', 'gelu', path),
    eps: f.positive('norm_eps', 1e-5),
    normBias: f.bool('norm_bias', false),
    attentionBias: f.bool('attention_bias', false),
    mlpBias: f.bool('mlp_bias', false),
    maxPositions: f.int('max_position_embeddings', 8192, 1),
    globalTheta,
    localTheta: raw.local_rope_theta === null ? globalTheta : f.positive('local_rope_theta', 10000),
    globalEvery: f.int('global_attn_every_n_layers', 3, 1),
    localWindow: f.int('local_attention', 128, 1),
    pooling: f.oneOf('classifier_pooling', ['cls', 'mean'] as const, 'cls'),
    classifierActivation: activationField(raw, 'classifier_activation', 'gelu', path),
    classifierBias: f.bool('classifier_bias', false),
  };
}

export function buildModernBert(c: ModernBertFacts, source: WeightSource): BuiltGraph {
  const p = new EncoderParts(source, PREFIX, c.architecture);
  const g = p.g;
  const H = c.hidden;
  const headSize = H / c.heads;
  const ids = g.input('input_ids', 'int64', ['batch', 'sequence']);
  const attentionMask = g.input('attention_mask', 'int64', ['batch', 'sequence']);
  const norm = (x: string, module: string): string => p.layerNorm(x, module, H, c.eps, { bias: c.normBias });

  const word = p.checked('embeddings.tok_embeddings.weight', [null, H]);
  const vocabSize = word.shape[0]!;
  let x = norm(
    g.op(
      'Gather',
      [p.tensor('embeddings.tok_embeddings.weight', [vocabSize, H]), ids],
      { axis: 0 },
      { name: '/embeddings/tok/Gather' },
    ),
    'embeddings.norm',
  );

  const padding = paddingBias(p, attentionMask);
  for (let i = 0; i < c.layers; i += 1) {
    const n = layer(i);
    const local = i % c.globalEvery !== 0;
    const tables = rotaryTables(p, ids, local ? c.localTheta : c.globalTheta, headSize);
    // Layer 0's attention norm is the identity: the embeddings were just normalized.
    const normed = i === 0 ? x : norm(x, n.attentionNorm);
    const qkv = p.linear(normed, n.qkv, H, 3 * H, { bias: c.attentionBias });
    const [q, k, v] = g.node('Split', [qkv, p.int(`split_qkv_${H}`, [H, H, H])], {
      attrs: { axis: -1 },
      outputs: 3,
      name: `/${n.qkv}/Split`,
    }) as [string, string, string];
    const query = applyRotary(p, splitHeads(p, q, c.heads, headSize), tables, headSize);
    const key = applyRotary(p, splitHeads(p, k, c.heads, headSize), tables, headSize);
    const keyT = g.op('Transpose', [key], { perm: [0, 1, 3, 2] });
    const biases = local ? [padding, slidingWindowBias(p, ids, Math.floor(c.localWindow / 2))] : [padding];
    const context = attend(p, {
      q: query,
      keyT,
      v: splitHeads(p, v, c.heads, headSize),
      scale: 1 / Math.sqrt(headSize),
      biases,
      name: `/layer.${i}/attention`,
    });
    x = g.op('Add', [x, p.linear(mergeHeads(p, context, H), n.attentionOutput, H, H, { bias: c.attentionBias })]);
    const ff = gatedFeedForward(p, norm(x, n.mlpNorm), {
      up: n.up,
      down: n.down,
      hidden: H,
      intermediate: c.intermediate,
      activation: c.activation,
      bias: c.mlpBias,
      name: `/layer.${i}/mlp/activation`,
    });
    x = g.op('Add', [x, ff]);
  }
  x = norm(x, 'final_norm');

  /** ModernBertPredictionHead: dense, activation, norm (on the pooled vector, or on every token). */
  const transform = (y: string): string =>
    norm(
      p.activation(
        p.linear(y, 'head.dense', H, H, { bias: c.classifierBias }),
        c.classifierActivation,
        '/head/activation',
      ),
      'head.norm',
    );
  headOutputs(p, x, {
    head: c.head,
    hidden: H,
    labels: c.labels,
    // The QA head is ModernBertForQuestionAnswering's `classifier` with two columns.
    spanHead: 'classifier',
    perToken: transform,
    sequence: {
      pool: (y) => transform(c.pooling === 'cls' ? firstToken(p, y) : maskedMean(p, y, attentionMask)),
      out: 'classifier',
    },
  });
  return { builder: g, inputs: [ids, attentionMask], parameters: p.parameters, vocabSize };
}

/**
 * Parameter names and shapes, as save_pretrained writes them (a ModernBertModel without the
 * `model.` prefix; a masked LM's own head, which kiln ignores, left out).
 */
export function modernBertShapes(c: ModernBertFacts, vocab: number): Array<[string, number[]]> {
  const H = c.hidden;
  const prefix = c.architecture === BASE ? '' : PREFIX;
  const out: Array<[string, number[]]> = [];
  const linear = (name: string, o: number, i: number, bias: boolean): void => {
    out.push([`${name}.weight`, [o, i]]);
    if (bias) out.push([`${name}.bias`, [o]]);
  };
  const norm = (name: string): void => {
    out.push([`${name}.weight`, [H]]);
    if (c.normBias) out.push([`${name}.bias`, [H]]);
  };
  out.push([`${prefix}embeddings.tok_embeddings.weight`, [vocab, H]]);
  norm(`${prefix}embeddings.norm`);
  for (let i = 0; i < c.layers; i += 1) {
    const n = layer(i);
    if (i > 0) norm(prefix + n.attentionNorm);
    linear(prefix + n.qkv, 3 * H, H, c.attentionBias);
    linear(prefix + n.attentionOutput, H, H, c.attentionBias);
    norm(prefix + n.mlpNorm);
    linear(prefix + n.up, 2 * c.intermediate, H, c.mlpBias);
    linear(prefix + n.down, H, c.intermediate, c.mlpBias);
  }
  norm(`${prefix}final_norm`);
  if (c.head !== 'none') {
    linear('head.dense', H, H, c.classifierBias);
    norm('head.norm');
    linear('classifier', c.labels, H, true);
  }
  return out;
}

export const MODERNBERT: ArchitectureModule = {
  family: 'modernbert',
  modelTypes: ['modernbert'],
  baseModels: BASE_MODELS,
  heads: [CLASSIFIER, 'ModernBertForTokenClassification', 'ModernBertForQuestionAnswering'],
  config: (raw, path, { headless }): EncoderConfig => {
    const c = modernBertFacts(raw, path, headless);
    return partsEncoderConfig(
      'modernbert',
      c,
      { typeVocabSize: 0, padTokenId: padTokenId(raw, 50283) },
      { build: (source) => buildModernBert(c, source), shapes: (vocab) => modernBertShapes(c, vocab) },
    );
  },
  presets: {
    // answerdotai/ModernBERT-base's config.json.
    'modernbert-base': {
      architectures: [CLASSIFIER],
      model_type: 'modernbert',
      hidden_size: 768,
      intermediate_size: 1152,
      num_hidden_layers: 22,
      num_attention_heads: 12,
      hidden_activation: 'gelu',
      max_position_embeddings: 8192,
      norm_eps: 1e-5,
      norm_bias: false,
      global_rope_theta: 160000,
      local_rope_theta: 10000,
      global_attn_every_n_layers: 3,
      local_attention: 128,
      attention_bias: false,
      mlp_bias: false,
      classifier_pooling: 'mean',
      classifier_activation: 'gelu',
      classifier_bias: false,
      vocab_size: 50368,
      pad_token_id: 50283,
      initializer_range: 0.02,
    },
  },
};
