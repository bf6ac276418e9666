/**
 * DeBERTa-v2 (and DeBERTa-v3, which uses it): DebertaV2Model (and DebertaV2ForMaskedLM, whose
 * checkpoints carry it), DebertaV2ForSequenceClassification, DebertaV2ForTokenClassification and
 * DebertaV2ForQuestionAnswering (`classifier` and `qa_outputs` on every token's last hidden state).
 * The encoder is BERT's post-norm block with disentangled attention: besides content·content,
 * each score gets content→position (c2p: the query against the projected relative-position
 * embedding of query − key) and position→content (p2c: the key against the embedding of the
 * opposite distance) terms, distances bucketed logarithmically past ±position_buckets/2, all
 * scaled by 1/√(head size · (1 + number of terms)); `conv_kernel_size` adds a convolution after
 * the first layer.
 * Field names and defaults follow transformers' DebertaV2Config; the math its modeling_deberta_v2.py.
 */
import type { EncoderConfig } from '../architectures.js';
import type { BuiltGraph, WeightSource } from '../encoder-graph.js';
import { attend, mergeHeads, paddedTokens, paddingBias, positionIds, splitHeads } from '../parts/attention.js';
import { activationField, ConfigFields, EncoderParts, type PartActivation } from '../parts/encoder-parts.js';
import { denseFeedForward } from '../parts/feed-forward.js';
import { headOutputs, SPAN_HEAD, TOKEN_HEAD } from '../parts/heads.js';
import { firstToken } from '../parts/pooling.js';
import { type ArchitectureModule, type PartsFacts, padTokenId, partsEncoderConfig, partsHead } from './module.js';

/** The shared facts (PartsFacts) and this family's own. */
export interface DebertaV2Facts extends PartsFacts {
  /** Width of the embedding tables; projected to `hidden` (embed_proj) when different. */
  embeddingSize: number;
  positionBiasedInput: boolean;
  typeVocabSize: number;
  /** null: no relative attention (`relative_attention` false). */
  relative: {
    /** Rows of rel_embeddings are 2 · span. */
    span: number;
    /** 0: raw distances; otherwise log buckets with this many buckets up to maxRelative. */
    buckets: number;
    maxRelative: number;
    layerNorm: boolean;
    shareKey: boolean;
  } | null;
  c2p: boolean;
  p2c: boolean;
  conv: { kernel: number; groups: number; activation: PartActivation } | null;
  poolerActivation: PartActivation;
}

const BASE = 'DebertaV2Model';
const CLASSIFIER = 'DebertaV2ForSequenceClassification';
/** microsoft/deberta-v3-base's config.json names it; its `lm_predictions` head is not built. */
const MASKED_LM = 'DebertaV2ForMaskedLM';
const BASE_MODELS = [BASE, MASKED_LM];
const PREFIX = 'deberta.';

/** The parameter names, relative to the `deberta.` prefix (the head's are outside it). */
const layer = (i: number) => {
  const l = `encoder.layer.${i}.`;
  return {
    query: `${l}attention.self.query_proj`,
    key: `${l}attention.self.key_proj`,
    value: `${l}attention.self.value_proj`,
    posKey: `${l}attention.self.pos_key_proj`,
    posQuery: `${l}attention.self.pos_query_proj`,
    attentionOutput: `${l}attention.output.dense`,
    attentionNorm: `${l}attention.output.LayerNorm`,
    intermediate: `${l}intermediate.dense`,
    output: `${l}output.dense`,
    outputNorm: `${l}output.LayerNorm`,
  };
};

export function debertaV2Facts(raw: Record<string, unknown>, path: string, headless: boolean): DebertaV2Facts {
  const architecture = (raw.architectures as string[])[0]!;
  const f = new ConfigFields(raw, path, architecture);
  const hidden = f.int('hidden_size', 1536, 1);
  const heads = f.int('num_attention_heads', 24, 1);
  if (hidden % heads !== 0)
    f.refuse('num_attention_heads', `the hidden size ${hidden} must be a multiple of the number of heads`);
  if (raw.attention_head_size !== undefined && raw.attention_head_size !== hidden / heads)
    f.refuse('attention_head_size', `kiln builds heads of hidden_size / num_attention_heads = ${hidden / heads}`);
  const maxPositions = f.int('max_position_embeddings', 512, 1);
  const { head, labels } = partsHead(raw, f, { architecture, baseModels: BASE_MODELS, headless });

  // pos_att_type: "p2c|c2p" or ["p2c", "c2p"]; transformers reads only these two terms.
  const kinds = raw.pos_att_type ?? [];
  const posAttType = (typeof kinds === 'string' ? kinds.toLowerCase().split('|') : Array.isArray(kinds) ? kinds : [])
    .filter((k): k is string => typeof k === 'string')
    .map((k) => k.trim());
  const relativeAttention = f.bool('relative_attention', false);
  let maxRelative = f.signedInt('max_relative_positions', -1);
  if (maxRelative < 1) maxRelative = maxPositions;
  const buckets = Math.max(f.signedInt('position_buckets', -1), 0);
  if (buckets === 1) f.refuse('position_buckets', 'a bucket count must be at least 2 (or -1 for none)');
  const normRel = String(raw.norm_rel_ebd ?? 'none')
    .toLowerCase()
    .split('|')
    .map((s) => s.trim());

  const convKernel = f.int('conv_kernel_size', 0);
  let conv: DebertaV2Facts['conv'] = null;
  if (convKernel > 0) {
    if (convKernel % 2 === 0)
      f.refuse(
        'conv_kernel_size',
        'an even kernel changes the sequence length in transformers; kiln builds odd kernels',
      );
    const groups = f.int('conv_groups', 1, 1);
    if (hidden % groups !== 0) f.refuse('conv_groups', `it must divide the hidden size ${hidden}`);
    conv = { kernel: convKernel, groups, activation: activationField(raw, 'conv_act', 'tanh', path) };
  }
  const poolerHidden = f.int('pooler_hidden_size', hidden, 1);
  if (head === 'classifier' && poolerHidden !== hidden)
    f.refuse('pooler_hidden_size', `kiln builds the ContextPooler at the hidden size ${hidden}`);

  return {
    architecture,
    head,
    labels,
    hidden,
    layers: f.int('num_hidden_layers', 24, 1),
    heads,
    intermediate: f.int('intermediate_size', 6144, 1),
    activation: activationField(raw, 'hidden_act', 'gelu', path),
    eps: f.positive('layer_norm_eps', 1e-7),
    maxPositions,
    embeddingSize: f.int('embedding_size', hidden, 1),
    positionBiasedInput: f.bool('position_biased_input', true),
    typeVocabSize: f.int('type_vocab_size', 0),
    relative: relativeAttention
      ? {
          span: buckets > 0 ? buckets : maxRelative,
          buckets,
          maxRelative,
          layerNorm: normRel.includes('layer_norm'),
          shareKey: f.bool('share_att_key', false),
        }
      : null,
    c2p: posAttType.includes('c2p'),
    p2c: posAttType.includes('p2c'),
    conv,
    poolerActivation: activationField(raw, 'pooler_hidden_act', 'gelu', path),
  };
}

/**
 * Relative positions query − key [tokens, tokens] as float, bucketed when `buckets` > 0:
 * distances within ±buckets/2 stay, longer ones map to mid + ⌈log(|d|/mid) / log((max−1)/mid) · (mid−1)⌉
 * with their sign (make_log_bucket_position), in float32 as transformers computes them.
 */
function relativePositions(p: EncoderParts, ids: string, facts: NonNullable<DebertaV2Facts['relative']>): string {
  const g = p.g;
  const positions = positionIds(p, ids);
  const distance = g.op(
    'Cast',
    [
      g.op('Sub', [
        g.op('Unsqueeze', [positions, p.int('axis_1', [1])]),
        g.op('Unsqueeze', [positions, p.int('axis_0', [0])]),
      ]),
    ],
    { to: 1 },
  );
  if (facts.buckets === 0) return distance;
  const mid = Math.floor(facts.buckets / 2);
  const near = g.op('And', [
    g.op('Less', [distance, p.float(`bucket_mid_${mid}`, mid)]),
    g.op('Greater', [distance, p.float(`bucket_minus_mid_${mid}`, -mid)]),
  ]);
  const absolute = g.op('Where', [near, p.float(`bucket_mid_less_1_${mid}`, mid - 1), g.op('Abs', [distance])]);
  // The denominator goes through the same Log as the numerator, as in torch: at |d| = max − 1
  // their ratio is then exactly 1 and the ceiling exactly mid − 1 (a constant rounded apart could tip it).
  const denominator = g.op('Log', [p.float('bucket_max_ratio', (facts.maxRelative - 1) / mid)]);
  const logRatio = g.op('Div', [
    g.op('Log', [g.op('Div', [absolute, p.float(`bucket_mid_${mid}`, mid)])]),
    denominator,
  ]);
  const logPosition = g.op('Add', [
    g.op('Ceil', [g.op('Mul', [logRatio, p.float(`bucket_mid_less_1_${mid}`, mid - 1)])]),
    p.float(`bucket_mid_${mid}`, mid),
  ]);
  return g.op(
    'Where',
    [
      g.op('LessOrEqual', [absolute, p.float(`bucket_mid_${mid}`, mid)]),
      distance,
      g.op('Mul', [logPosition, g.op('Sign', [distance])]),
    ],
    undefined,
    { name: '/encoder/relative_position/bucket' },
  );
}

export function buildDebertaV2(c: DebertaV2Facts, source: WeightSource): BuiltGraph {
  const p = new EncoderParts(source, PREFIX, c.architecture);
  const g = p.g;
  const H = c.hidden;
  const E = c.embeddingSize;
  const headSize = H / c.heads;

  const ids = g.input('input_ids', 'int64', ['batch', 'sequence']);
  const attentionMask = g.input('attention_mask', 'int64', ['batch', 'sequence']);
  const inputs = [ids, attentionMask];

  // Embeddings: word (+ absolute position) (+ token type), projected to H, LayerNorm, padding zeroed.
  const word = p.checked('embeddings.word_embeddings.weight', [null, E]);
  const vocabSize = word.shape[0]!;
  let x = g.op(
    'Gather',
    [p.tensor('embeddings.word_embeddings.weight', [vocabSize, E]), ids],
    { axis: 0 },
    { name: '/embeddings/word/Gather' },
  );
  if (c.positionBiasedInput) {
    const table = p.tensor('embeddings.position_embeddings.weight', [c.maxPositions, E]);
    x = g.op('Add', [
      x,
      g.op('Gather', [table, positionIds(p, ids)], { axis: 0 }, { name: '/embeddings/position/Gather' }),
    ]);
  }
  if (c.typeVocabSize > 0) {
    const tokenTypes = g.input('token_type_ids', 'int64', ['batch', 'sequence']);
    inputs.push(tokenTypes);
    const table = p.tensor('embeddings.token_type_embeddings.weight', [c.typeVocabSize, E]);
    x = g.op('Add', [x, g.op('Gather', [table, tokenTypes], { axis: 0 }, { name: '/embeddings/token_type/Gather' })]);
  }
  if (E !== H) x = p.linear(x, 'embeddings.embed_proj', E, H, { bias: false });
  // Padded tokens' embeddings are zeroed (transformers multiplies by the mask).
  const padded = paddedTokens(p, attentionMask, 'axis_last', [-1]);
  x = g.op('Where', [padded, p.float('zero_f', 0), p.layerNorm(x, 'embeddings.LayerNorm', H, c.eps)], undefined, {
    name: '/embeddings/mask',
  });
  const embedded = x;

  // Disentangled attention's shared pieces: the (normalized) relative embeddings and the gather indices.
  const scaleFactor = 1 + (c.c2p ? 1 : 0) + (c.p2c ? 1 : 0);
  const scale = 1 / Math.sqrt(headSize * scaleFactor);
  const terms = c.relative && (c.c2p || c.p2c) ? c.relative : null;
  let relative: { table: string; c2p: string; p2c: string } | null = null;
  if (terms) {
    const span = terms.span;
    let table = p.tensor('encoder.rel_embeddings.weight', [2 * span, H]);
    if (terms.layerNorm) table = p.layerNorm(table, 'encoder.LayerNorm', H, c.eps);
    const distance = relativePositions(p, ids, terms);
    // Every batch row and head gathers with the same [tokens, tokens] index: expand it for GatherElements.
    const idsShape = g.op('Shape', [ids]);
    const batch = g.op('Slice', [idsShape, p.int('zero_1', [0]), p.int('one_1', [1])]);
    const tokens = g.op('Slice', [idsShape, p.int('one_1', [1]), p.int('two_1', [2])]);
    const expanded = g.op('Concat', [batch, p.int(`heads_${c.heads}`, [c.heads]), tokens, tokens], { axis: 0 });
    /** A row of rel_embeddings per (query, key), clamped to the table as torch.clamp does. */
    const index = (row: string, name: string): string =>
      g.op(
        'Expand',
        [
          g.op('Cast', [g.op('Clip', [row, p.float('zero_f', 0), p.float(`span_max_${span}`, 2 * span - 1)])], {
            to: 7,
          }),
          expanded,
        ],
        undefined,
        { name: `/encoder/relative_position/${name}` },
      );
    const spanF = p.float(`span_${span}`, span);
    relative = {
      table,
      c2p: index(g.op('Add', [distance, spanF]), 'c2p_index'),
      p2c: index(g.op('Sub', [spanF, distance]), 'p2c_index'),
    };
  }
  /** rel_embeddings through a layer's projection, as [heads, head size, 2 · span]. */
  const positionProjection = (module: string): string =>
    g.op(
      'Transpose',
      [
        g.op('Reshape', [
          p.linear(relative!.table, module, H, H),
          p.int(`rel_heads_${c.heads}`, [0, c.heads, headSize]),
        ]),
      ],
      {
        perm: [1, 2, 0],
      },
    );

  const padding = paddingBias(p, attentionMask);
  for (let i = 0; i < c.layers; i += 1) {
    const n = layer(i);
    const q = splitHeads(p, p.linear(x, n.query, H, H), c.heads, headSize);
    const k = splitHeads(p, p.linear(x, n.key, H, H), c.heads, headSize);
    const v = splitHeads(p, p.linear(x, n.value, H, H), c.heads, headSize);
    const biases = [padding];
    if (relative && terms) {
      let score: string | null = null;
      if (c.c2p) {
        // c2p[q, k] = query[q] · posKey[c2p_index[q, k]].
        const posKey = positionProjection(terms.shareKey ? n.key : n.posKey);
        score = g.op(
          'GatherElements',
          [g.op('MatMul', [q, posKey]), relative.c2p],
          { axis: 3 },
          { name: `/layer.${i}/attention/c2p` },
        );
      }
      if (c.p2c) {
        // p2c[q, k] = key[k] · posQuery[p2c_index[k, q]]: gathered per key row, then transposed.
        const posQuery = positionProjection(terms.shareKey ? n.query : n.posQuery);
        const gathered = g.op('GatherElements', [g.op('MatMul', [k, posQuery]), relative.p2c], { axis: 3 });
        const p2c = g.op('Transpose', [gathered], { perm: [0, 1, 3, 2] }, { name: `/layer.${i}/attention/p2c` });
        score = score ? g.op('Add', [score, p2c]) : p2c;
      }
      biases.push(g.op('Mul', [score!, p.float(`scale_${scale}`, scale)]));
    }
    const keyT = g.op('Transpose', [k], { perm: [0, 1, 3, 2] });
    const context = mergeHeads(p, attend(p, { q, keyT, v, scale, biases, name: `/layer.${i}/attention` }), H);
    x = p.layerNorm(g.op('Add', [p.linear(context, n.attentionOutput, H, H), x]), n.attentionNorm, H, c.eps);
    const ff = denseFeedForward(p, x, {
      up: n.intermediate,
      down: n.output,
      hidden: H,
      intermediate: c.intermediate,
      activation: c.activation,
      bias: true,
      name: `/layer.${i}/activation`,
    });
    x = p.layerNorm(g.op('Add', [ff, x]), n.outputNorm, H, c.eps);
    if (i === 0 && c.conv) x = convLayer(p, c, embedded, x, padded);
  }

  headOutputs(p, x, {
    head: c.head,
    hidden: H,
    labels: c.labels,
    // ContextPooler: the first token, dense, activation; then the classifier.
    sequence: {
      pool: (y) =>
        p.activation(p.linear(firstToken(p, y), 'pooler.dense', H, H), c.poolerActivation, '/pooler/activation'),
      out: 'classifier',
    },
  });
  return { builder: g, inputs, parameters: p.parameters, vocabSize };
}

/**
 * ConvLayer after the first layer: a 1-D convolution over the embedding output (same padding),
 * padding positions zeroed, activation, added to the layer's output, LayerNorm, padding zeroed.
 */
function convLayer(p: EncoderParts, c: DebertaV2Facts, embedded: string, residual: string, padded: string): string {
  const g = p.g;
  const zeroed = (x: string): string => g.op('Where', [padded, p.float('zero_f', 0), x]);
  const { kernel, groups, activation } = c.conv!;
  const H = c.hidden;
  const weight = p.tensor('encoder.conv.conv.weight', [H, H / groups, kernel]);
  const bias = p.tensor('encoder.conv.conv.bias', [H]);
  const pad = (kernel - 1) / 2;
  const convolved = g.op(
    'Conv',
    [g.op('Transpose', [embedded], { perm: [0, 2, 1] }), weight, bias],
    { group: groups, kernel_shape: [kernel], pads: [pad, pad] },
    { name: '/encoder/conv/Conv' },
  );
  const out = p.activation(
    zeroed(g.op('Transpose', [convolved], { perm: [0, 2, 1] })),
    activation,
    '/encoder/conv/activation',
  );
  return zeroed(p.layerNorm(g.op('Add', [residual, out]), 'encoder.conv.LayerNorm', H, c.eps));
}

/**
 * Parameter names and shapes, as save_pretrained writes them (a DebertaV2Model without the
 * prefix; a masked LM's own head, which kiln ignores, left out).
 */
export function debertaV2Shapes(c: DebertaV2Facts, vocab: number): Array<[string, number[]]> {
  const H = c.hidden;
  const E = c.embeddingSize;
  const prefix = c.architecture === BASE ? '' : PREFIX;
  const out: Array<[string, number[]]> = [];
  const linear = (name: string, o: number, i: number, bias = true): void => {
    out.push([`${name}.weight`, [o, i]]);
    if (bias) out.push([`${name}.bias`, [o]]);
  };
  const norm = (name: string): void => {
    out.push([`${name}.weight`, [H]], [`${name}.bias`, [H]]);
  };
  out.push([`${prefix}embeddings.word_embeddings.weight`, [vocab, E]]);
  if (c.positionBiasedInput) out.push([`${prefix}embeddings.position_embeddings.weight`, [c.maxPositions, E]]);
  if (c.typeVocabSize > 0) out.push([`${prefix}embeddings.token_type_embeddings.weight`, [c.typeVocabSize, E]]);
  if (E !== H) linear(`${prefix}embeddings.embed_proj`, H, E, false);
  norm(`${prefix}embeddings.LayerNorm`);
  for (let i = 0; i < c.layers; i += 1) {
    const n = layer(i);
    for (const m of [n.query, n.key, n.value]) linear(prefix + m, H, H);
    if (c.relative && !c.relative.shareKey) {
      if (c.c2p) linear(prefix + n.posKey, H, H);
      if (c.p2c) linear(prefix + n.posQuery, H, H);
    }
    linear(prefix + n.attentionOutput, H, H);
    norm(prefix + n.attentionNorm);
    linear(prefix + n.intermediate, c.intermediate, H);
    linear(prefix + n.output, H, c.intermediate);
    norm(prefix + n.outputNorm);
  }
  if (c.relative) {
    out.push([`${prefix}encoder.rel_embeddings.weight`, [2 * c.relative.span, H]]);
    if (c.relative.layerNorm) norm(`${prefix}encoder.LayerNorm`);
  }
  if (c.conv) {
    out.push(
      [`${prefix}encoder.conv.conv.weight`, [H, H / c.conv.groups, c.conv.kernel]],
      [`${prefix}encoder.conv.conv.bias`, [H]],
    );
    norm(`${prefix}encoder.conv.LayerNorm`);
  }
  if (c.head === 'classifier') {
    linear('pooler.dense', H, H);
    linear('classifier', c.labels, H);
  } else if (c.head === 'token') linear(TOKEN_HEAD, c.labels, H);
  else if (c.head === 'span') linear(SPAN_HEAD, 2, H);
  return out;
}

/** What the CLI prints and compile reads, plus the builder. */
function encoderConfigOf(c: DebertaV2Facts, raw: Record<string, unknown>): EncoderConfig {
  return partsEncoderConfig(
    DEBERTA_V2.family,
    c,
    { typeVocabSize: c.typeVocabSize, padTokenId: padTokenId(raw, 0) },
    { build: (source) => buildDebertaV2(c, source), shapes: (vocab) => debertaV2Shapes(c, vocab) },
  );
}

export const DEBERTA_V2: ArchitectureModule = {
  family: 'deberta-v2',
  modelTypes: ['deberta-v2'],
  baseModels: BASE_MODELS,
  heads: [CLASSIFIER, 'DebertaV2ForTokenClassification', 'DebertaV2ForQuestionAnswering'],
  config: (raw, path, { headless }) => encoderConfigOf(debertaV2Facts(raw, path, headless), raw),
  presets: {
    // microsoft/deberta-v3-base's config.json.
    'deberta-v3-base': {
      architectures: [CLASSIFIER],
      model_type: 'deberta-v2',
      attention_probs_dropout_prob: 0.1,
      hidden_act: 'gelu',
      hidden_dropout_prob: 0.1,
      hidden_size: 768,
      initializer_range: 0.02,
      intermediate_size: 3072,
      max_position_embeddings: 512,
      relative_attention: true,
      position_buckets: 256,
      norm_rel_ebd: 'layer_norm',
      share_att_key: true,
      pos_att_type: 'p2c|c2p',
      layer_norm_eps: 1e-7,
      max_relative_positions: -1,
      position_biased_input: false,
      num_attention_heads: 12,
      num_hidden_layers: 12,
      type_vocab_size: 0,
      vocab_size: 128100,
    },
  },
};
