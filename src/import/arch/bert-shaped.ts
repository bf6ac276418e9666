/**
 * The BERT-shaped families (BERT, RoBERTa and XLM-RoBERTa, DistilBERT, MPNet, ELECTRA): post-norm
 * encoders that differ in their parameter names, how they number positions, their token types,
 * an extra score bias or embedding projection, and their classification head. Each family's file
 * describes itself as a {@link BertShapedFamily}; {@link bertShapedModule} turns that into the
 * family's ArchitectureModule, whose graph is the post-norm encoder part
 * (parts/post-norm-encoder.ts). Field names and defaults follow the public `transformers`
 * configuration classes.
 */
import type { Activation, EncoderConfig } from '../architectures.js';
import { ConfigFields, type EncoderParts } from '../parts/encoder-parts.js';
import { SPAN_HEAD, TOKEN_HEAD } from '../parts/heads.js';
import { buildPostNormEncoder } from '../parts/post-norm-encoder.js';
import { type ArchitectureModule, partsHead } from './module.js';

/** Parameter names of one encoder layer, relative to the model prefix. */
export interface LayerNames {
  query: string;
  key: string;
  value: string;
  attentionOutput: string;
  attentionNorm: string;
  intermediate: string;
  output: string;
  outputNorm: string;
}

/**
 * A family's parameter names, as Hugging Face checkpoints write them (each a module name; its
 * tensors add `.weight` and `.bias`). Importing and `kiln synth` both read them from here.
 */
export interface FamilyNames {
  /** Prefix of the base model's parameters, e.g. `bert.`. */
  prefix: string;
  /** The embedding and layer names below are relative to `prefix`. */
  wordEmbeddings: string;
  positionEmbeddings: string;
  tokenTypeEmbeddings: string | null;
  embeddingNorm: string;
  layer: (i: number) => LayerNames;
  /**
   * The sequence-classification head on the first token: a dense layer and its activation,
   * then the output layer. Full names: BERT's pooler sits inside the base model, the other
   * heads outside it.
   */
  head: { dense: string; activation: 'Tanh' | 'Relu' | 'Gelu'; out: string };
  /**
   * The token-classification head: one Linear on every token's last hidden state (dropout is
   * not run at inference). Its full name. @defaultValue {@link TOKEN_HEAD}
   */
  tokenHead?: string;
  /** The question-answering head: one Linear from each token's state to its start and end logits. @defaultValue {@link SPAN_HEAD} */
  spanHead?: string;
  /** ELECTRA's Linear from the embedding width to the hidden size, relative to `prefix`. */
  embeddingProject?: string;
  /** MPNet's relative position bias table [buckets, heads], relative to `prefix`. */
  relativeAttentionBias?: string;
  /**
   * The base model's own pooler (`…Model` builds one by default; unused for embeddings), which
   * synth writes for a base model instead of a head: a full name; null when it has none.
   */
  basePooler: string | null;
}

/** How a family's graph differs, part by part. */
export interface BertShapedParts {
  /**
   * Position ids: `absolute` counts from 0; `after-padding` numbers real tokens from the padding
   * index + 1 and gives padding the padding index (RoBERTa, MPNet).
   */
  positions: 'absolute' | 'after-padding';
  /** The padding index `after-padding` counts from, when fixed by the model's code (MPNet: 1) rather than config.json's pad_token_id. */
  paddingIndex?: number;
  /** token_type_ids: a graph input (BERT, ELECTRA), row 0 for every token (RoBERTa's tokenizer gives no other), or none. */
  tokenTypes: 'input' | 'zero' | 'none';
  /** A bias [1 or batch, heads, tokens, tokens] added to every layer's attention scores, built once. */
  attentionBias?: (p: EncoderParts, ids: string, config: Omit<EncoderConfig, 'arch'>) => string;
}

/** Reads one config.json field, or throws the coded error naming it. */
export interface ConfigReader {
  int(field: string, fallback?: number): number;
  /** config.json as read. */
  raw: Record<string, unknown>;
}

/** A BERT-shaped family as its own file describes it. */
export interface BertShapedFamily {
  family: string;
  modelTypes: readonly string[];
  /** config.json `architectures[0]` names with a head (the suffix says which, {@link headFromName}). */
  heads: readonly string[];
  /** Names built without a head: the base model, and pretraining classes whose checkpoints carry it. */
  baseModels: readonly string[];
  names: FamilyNames;
  parts: BertShapedParts;
  /** DistilBERT names its sizes `dim`, `n_layers`, …; the others as BERT does. */
  fields?: 'bert' | 'distilbert';
  /** Defaults of the BERT-shaped fields where this family's configuration class differs. */
  defaults?: Readonly<Record<string, number>>;
  /** Facts of this family beyond the BERT-shaped ones. */
  extra?: (
    read: ConfigReader,
    config: Omit<EncoderConfig, 'arch'>,
    path: string,
  ) => Partial<Omit<EncoderConfig, 'arch'>>;
  /** `kiln synth` presets: public config.json facts (labels are added per run). */
  presets?: Readonly<Record<string, Record<string, unknown>>>;
}

/** BERT's layer names, relative to the prefix (RoBERTa's and ELECTRA's too). */
export const BERT_LAYER = (i: number): LayerNames => ({
  query: `encoder.layer.${i}.attention.self.query`,
  key: `encoder.layer.${i}.attention.self.key`,
  value: `encoder.layer.${i}.attention.self.value`,
  attentionOutput: `encoder.layer.${i}.attention.output.dense`,
  attentionNorm: `encoder.layer.${i}.attention.output.LayerNorm`,
  intermediate: `encoder.layer.${i}.intermediate.dense`,
  output: `encoder.layer.${i}.output.dense`,
  outputNorm: `encoder.layer.${i}.output.LayerNorm`,
});

const ACTIVATIONS: Record<string, Activation> = {
  gelu: 'gelu',
  gelu_new: 'gelu_new',
  gelu_pytorch_tanh: 'gelu_new',
  relu: 'relu',
};

/** The family's ArchitectureModule: its config reader, graph and parameter list. */
export function bertShapedModule(def: BertShapedFamily): ArchitectureModule {
  return {
    family: def.family,
    modelTypes: def.modelTypes,
    baseModels: def.baseModels,
    heads: def.heads,
    presets: def.presets ?? {},
    config(raw, path, { headless }) {
      const config = bertShapedConfig(def, raw, path, headless);
      return {
        ...config,
        arch: {
          build: (source) => buildPostNormEncoder(config, def.names, def.parts, source),
          shapes: (vocab) => bertShapedShapes(config, def.names, vocab),
        },
      };
    },
  };
}

/** The graph-shaping facts from config.json, or the coded error naming the problem. */
function bertShapedConfig(
  def: BertShapedFamily,
  raw: Record<string, unknown>,
  path: string,
  headless: boolean,
): Omit<EncoderConfig, 'arch'> {
  const architecture = (raw.architectures as string[])[0]!;
  const f = new ConfigFields(raw, path, architecture);
  /** An integer ≥ `min`, its default this family's where its configuration class differs from BERT's. */
  const int = (field: string, fallback?: number, min = 0): number =>
    f.int(field, def.defaults?.[field] ?? fallback, min);
  const activationOf = (field: string): Activation => ACTIVATIONS[f.oneOf(field, Object.keys(ACTIVATIONS), 'gelu')]!;
  const { head, labels } = partsHead(raw, f, { architecture, baseModels: def.baseModels, headless });

  let config: Omit<EncoderConfig, 'arch'>;
  let headsField: string;
  if (def.fields === 'distilbert') {
    if (raw.sinusoidal_pos_embds === true)
      f.refuse('sinusoidal_pos_embds', 'kiln imports learned position embeddings, not sinusoidal ones');
    headsField = 'n_heads';
    config = {
      family: def.family,
      architecture,
      hidden: int('dim', 768, 1),
      layers: int('n_layers', 6, 1),
      heads: int('n_heads', 12, 1),
      intermediate: int('hidden_dim', 3072, 1),
      activation: activationOf('activation'),
      // DistilBERT's layer norms use a fixed epsilon of 1e-12.
      layerNormEps: 1e-12,
      maxPositions: int('max_position_embeddings', 512, 1),
      typeVocabSize: 0,
      padTokenId: int('pad_token_id', 0),
      labels,
      head,
    };
  } else {
    // transformers' relative_key and relative_key_query drop the absolute position embeddings and
    // add a learned distance embedding to every layer's attention scores: a graph built without
    // that would import and give wrong logits.
    if ((raw.position_embedding_type ?? 'absolute') !== 'absolute')
      f.refuse('position_embedding_type', `kiln builds ${architecture} with "absolute" positions only`);
    headsField = 'num_attention_heads';
    config = {
      family: def.family,
      architecture,
      hidden: int('hidden_size', 768, 1),
      layers: int('num_hidden_layers', 12, 1),
      heads: int('num_attention_heads', 12, 1),
      intermediate: int('intermediate_size', 3072, 1),
      activation: activationOf('hidden_act'),
      layerNormEps: f.positive('layer_norm_eps', 1e-12),
      maxPositions: int('max_position_embeddings', 512, 1),
      typeVocabSize: int('type_vocab_size', 2),
      padTokenId: int('pad_token_id', 0),
      labels,
      head,
    };
    if (def.extra) config = { ...config, ...def.extra({ int, raw }, config, path) };
  }
  if (config.hidden % config.heads !== 0)
    f.refuse(headsField, `the hidden size ${config.hidden} must be a multiple of the number of attention heads`);
  return config;
}

/** The canonical Hugging Face parameter names and shapes of the model config.json describes. */
function bertShapedShapes(
  config: Omit<EncoderConfig, 'arch'>,
  names: FamilyNames,
  vocab: number,
): Array<[string, number[]]> {
  const H = config.hidden;
  const I = config.intermediate;
  const p = names.prefix;
  const out: Array<[string, number[]]> = [];
  const linear = (name: string, o: number, i: number): void => {
    out.push([`${name}.weight`, [o, i]], [`${name}.bias`, [o]]);
  };
  const norm = (name: string, width = H): void => {
    out.push([`${name}.weight`, [width]], [`${name}.bias`, [width]]);
  };
  const E = config.embeddingSize ?? H;
  out.push(
    [`${p}${names.wordEmbeddings}.weight`, [vocab, E]],
    [`${p}${names.positionEmbeddings}.weight`, [config.maxPositions, E]],
  );
  if (names.tokenTypeEmbeddings) out.push([`${p}${names.tokenTypeEmbeddings}.weight`, [config.typeVocabSize, E]]);
  norm(p + names.embeddingNorm, E);
  if (names.embeddingProject && E !== H) linear(p + names.embeddingProject, H, E);
  if (names.relativeAttentionBias)
    out.push([`${p}${names.relativeAttentionBias}.weight`, [config.relativeBuckets!, config.heads]]);
  for (let l = 0; l < config.layers; l += 1) {
    const n = names.layer(l);
    for (const attention of [n.query, n.key, n.value, n.attentionOutput]) linear(p + attention, H, H);
    norm(p + n.attentionNorm);
    linear(p + n.intermediate, I, H);
    linear(p + n.output, H, I);
    norm(p + n.outputNorm);
  }
  if (config.head === 'span') {
    linear(names.spanHead ?? SPAN_HEAD, 2, H);
    return out;
  }
  if (config.head === 'token') {
    linear(names.tokenHead ?? TOKEN_HEAD, config.labels, H);
    return out;
  }
  if (config.head === 'none') {
    // A base model holds its pooler, if it has one, and no head.
    if (names.basePooler) linear(names.basePooler, H, H);
    return out;
  }
  linear(names.head.dense, H, H);
  linear(names.head.out, config.labels, H);
  return out;
}
