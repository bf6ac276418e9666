/**
 * The Hugging Face architectures the importer builds, read from config.json: the facts that
 * shape the graph, and the parameter names each family uses. Field names and defaults follow
 * the public `transformers` configuration classes.
 */
import { KilnError } from '../core/errors.js';
import { ELECTRA } from './arch/electra.js';
import { ARCH_MODULES, archModuleFor } from './arch/index.js';
import { type ArchBuild, headFromName } from './arch/module.js';
import { MPNET } from './arch/mpnet.js';
import type { EncoderParts } from './encoder-graph.js';

export type Activation = 'gelu' | 'gelu_new' | 'relu';
export type Family = 'bert' | 'roberta' | 'distilbert' | 'mpnet' | 'electra';

export interface EncoderConfig {
  /** `parts`: an architecture built by parts (src/import/arch/), whose `arch` builds it. */
  family: Family | 'parts';
  /** The architecture name, as in config.json's `architectures`. */
  architecture: string;
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  activation: Activation;
  layerNormEps: number;
  maxPositions: number;
  /** 0 when the family has no token type embeddings (DistilBERT). */
  typeVocabSize: number;
  padTokenId: number;
  /** Classes of the classification head (2 for a span head); 0 for a base model (no head: outputs last_hidden_state). */
  labels: number;
  /**
   * `classifier`: a sequence-classification head gives logits [batch, labels]; `token`: a
   * token-classification head gives logits [batch, sequence, labels]; `span`: a
   * question-answering head gives each token's start and end logits; `none`: the encoder's
   * hidden states.
   */
  head: HeadKind;
  /** Width of the embedding tables when it differs from `hidden` (ELECTRA's `embedding_size`): a projection follows. */
  embeddingSize?: number;
  /** Rows of MPNet's relative attention bias table (`relative_attention_num_buckets`). */
  relativeBuckets?: number;
  /** The graph and parameter list of an architecture built by parts; absent for the families above. */
  arch?: ArchBuild;
}

export type HeadKind = 'classifier' | 'token' | 'span' | 'none';

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
   * not run at inference). Its full name; `classifier` in every family kiln builds so far.
   */
  tokenHead: string;
  /** ELECTRA's Linear from the embedding width to the hidden size, relative to `prefix`. */
  embeddingProject?: string;
  /** MPNet's relative position bias table [buckets, heads], relative to `prefix`. */
  relativeAttentionBias?: string;
  /** The base model's own pooler (kept by its checkpoints, unused for embeddings): a full name; null when it has none. */
  basePooler?: string | null;
  /** The question-answering head: one Linear from each token's state to its start and end logits. */
  spanHead: string;
}

/** Reads one config.json field, or throws the coded error naming it. */
export interface ConfigReader {
  int(field: string, fallback?: number): number;
  /** config.json as read. */
  raw: Record<string, unknown>;
}

/**
 * An architecture described in its own file under `src/import/arch/`: what config.json calls
 * it, its parameter names, the graph parts it is built from, and the config facts beyond the
 * BERT-shaped ones (`hidden_size`, `num_hidden_layers`, …, read here for every family but DistilBERT).
 */
export interface ArchitectureDef {
  family: Family;
  modelTypes: readonly string[];
  /** config.json `architectures[0]` names it builds (base encoders also belong in BASE_ENCODERS). */
  classes: readonly string[];
  names: FamilyNames;
  parts: EncoderParts;
  /** Defaults of the BERT-shaped fields where this family's configuration class differs. */
  defaults?: Readonly<Record<string, number>>;
  /** Facts of this family beyond the BERT-shaped ones. */
  extra?: (read: ConfigReader, config: EncoderConfig, path: string) => Partial<EncoderConfig>;
}

/** Architectures defined in their own files: one line each. */
const DEFINED: readonly ArchitectureDef[] = [MPNET, ELECTRA];

const BERT_LAYER = (i: number): LayerNames => ({
  query: `encoder.layer.${i}.attention.self.query`,
  key: `encoder.layer.${i}.attention.self.key`,
  value: `encoder.layer.${i}.attention.self.value`,
  attentionOutput: `encoder.layer.${i}.attention.output.dense`,
  attentionNorm: `encoder.layer.${i}.attention.output.LayerNorm`,
  intermediate: `encoder.layer.${i}.intermediate.dense`,
  output: `encoder.layer.${i}.output.dense`,
  outputNorm: `encoder.layer.${i}.output.LayerNorm`,
});

export const FAMILY_NAMES = {
  bert: {
    prefix: 'bert.',
    wordEmbeddings: 'embeddings.word_embeddings',
    positionEmbeddings: 'embeddings.position_embeddings',
    tokenTypeEmbeddings: 'embeddings.token_type_embeddings',
    embeddingNorm: 'embeddings.LayerNorm',
    layer: BERT_LAYER,
    head: { dense: 'bert.pooler.dense', activation: 'Tanh', out: 'classifier' },
    tokenHead: 'classifier',
    spanHead: 'qa_outputs',
  },
  roberta: {
    prefix: 'roberta.',
    wordEmbeddings: 'embeddings.word_embeddings',
    positionEmbeddings: 'embeddings.position_embeddings',
    tokenTypeEmbeddings: 'embeddings.token_type_embeddings',
    embeddingNorm: 'embeddings.LayerNorm',
    layer: BERT_LAYER,
    head: { dense: 'classifier.dense', activation: 'Tanh', out: 'classifier.out_proj' },
    tokenHead: 'classifier',
    spanHead: 'qa_outputs',
  },
  distilbert: {
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
    tokenHead: 'classifier',
    spanHead: 'qa_outputs',
  },
  ...(Object.fromEntries(DEFINED.map((d) => [d.family, d.names])) as Record<string, FamilyNames>),
} as Record<Family, FamilyNames>;

/** The graph parts of the families defined in their own files (the BERT-shaped ones are encoder-graph.ts's). */
export const DEFINED_PARTS: Readonly<Record<string, EncoderParts>> = Object.fromEntries(
  DEFINED.map((d) => [d.family, d.parts]),
);

/**
 * Hugging Face base text encoders: no head; their use is the token states, which sentence
 * embedders pool (all-MiniLM-L6-v2 is a BertModel). Compile detects feature-extraction from
 * these names; `kiln import` builds the ones whose family it knows (below) without a head.
 */
export const BASE_ENCODERS: ReadonlySet<string> = new Set([
  'BertModel',
  'DistilBertModel',
  'RobertaModel',
  'XLMRobertaModel',
  'CamembertModel',
  'MPNetModel',
  'ElectraModel',
  'AlbertModel',
  'DebertaModel',
  'DebertaV2Model',
  'NomicBertModel',
  // Pretraining classes whose checkpoints serve as encoders: sentence-transformers/all-mpnet-base-v2's
  // config.json names MPNetForMaskedLM, google/electra-*-discriminator's ElectraForPreTraining.
  'MPNetForMaskedLM',
  'ElectraForPreTraining',
  // The families built by parts list theirs (ModernBertForMaskedLM, DebertaV2ForMaskedLM among them).
  ...ARCH_MODULES.flatMap((m) => m.baseModels),
]);

/**
 * The architectures `kiln import` builds, by family; the head comes from the name's suffix
 * ({@link headOf}), so a family's token classifier is one line here.
 */
const ARCHITECTURES: Record<string, Family> = {
  BertForSequenceClassification: 'bert',
  DistilBertForSequenceClassification: 'distilbert',
  RobertaForSequenceClassification: 'roberta',
  XLMRobertaForSequenceClassification: 'roberta',
  BertForTokenClassification: 'bert',
  DistilBertForTokenClassification: 'distilbert',
  RobertaForTokenClassification: 'roberta',
  XLMRobertaForTokenClassification: 'roberta',
  BertForQuestionAnswering: 'bert',
  DistilBertForQuestionAnswering: 'distilbert',
  RobertaForQuestionAnswering: 'roberta',
  XLMRobertaForQuestionAnswering: 'roberta',
  BertModel: 'bert',
  DistilBertModel: 'distilbert',
  RobertaModel: 'roberta',
  XLMRobertaModel: 'roberta',
  ...Object.fromEntries(DEFINED.flatMap((d) => d.classes.map((c) => [c, d.family]))),
};

const MODEL_TYPES: Record<string, Family> = {
  bert: 'bert',
  distilbert: 'distilbert',
  roberta: 'roberta',
  'xlm-roberta': 'roberta',
  ...Object.fromEntries(DEFINED.flatMap((d) => d.modelTypes.map((t) => [t, d.family]))),
};

export const SUPPORTED_ARCHITECTURES = [
  ...Object.keys(ARCHITECTURES),
  ...ARCH_MODULES.flatMap((m) => [...m.heads, ...m.baseModels]),
];

/** The head an architecture name implies: a base encoder has none, `…ForTokenClassification` a per-token one, `…ForQuestionAnswering` a span head. */
export function headOf(architecture: string): HeadKind {
  return BASE_ENCODERS.has(architecture) ? 'none' : headFromName(architecture);
}

const ACTIVATIONS: Record<string, Activation> = {
  gelu: 'gelu',
  gelu_new: 'gelu_new',
  gelu_pytorch_tanh: 'gelu_new',
  relu: 'relu',
};

/**
 * Reads the graph-shaping facts from config.json, or throws a coded error naming the problem.
 * `headless`: build the encoder only, also for a classifier checkpoint (its head is ignored).
 */
export function encoderConfig(
  raw: Record<string, unknown>,
  path: string,
  options: { headless?: boolean } = {},
): EncoderConfig {
  const architectures = Array.isArray(raw.architectures)
    ? raw.architectures.filter((a): a is string => typeof a === 'string')
    : [];
  const modelType = typeof raw.model_type === 'string' ? raw.model_type : '';
  const architecture = architectures[0] ?? modelType;
  const byParts = archModuleFor(architecture);
  if (byParts && (!modelType || byParts.modelTypes.includes(modelType)))
    return byParts.config(raw, path, { headless: options.headless === true });
  const family = architectures.length > 0 ? ARCHITECTURES[architecture] : undefined;
  if (!family || (modelType && MODEL_TYPES[modelType] !== family)) {
    throw new KilnError('KILN_ERR_IMPORT_ARCHITECTURE', {
      architecture: architecture || '(config.json names none)',
      supported: SUPPORTED_ARCHITECTURES.join(', '),
    });
  }

  const defined = DEFINED.find((d) => d.family === family);
  const int = (field: string, fallback?: number): number => {
    const value = raw[field] ?? defined?.defaults?.[field] ?? fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
      throw new KilnError('KILN_ERR_CONFIG_INVALID', {
        path,
        problem: `"${field}" must be a non-negative integer for ${architecture}, got ${JSON.stringify(raw[field])}`,
      });
    }
    return value;
  };
  const activationOf = (field: string, fallback: string): Activation => {
    const name = raw[field] ?? fallback;
    const activation = typeof name === 'string' ? ACTIVATIONS[name] : undefined;
    if (!activation) {
      throw new KilnError('KILN_ERR_CONFIG_INVALID', {
        path,
        problem: `"${field}" is ${JSON.stringify(name)}; kiln builds ${Object.keys(ACTIVATIONS).join(', ')}`,
      });
    }
    return activation;
  };
  const id2label = raw.id2label;
  const head = options.headless ? 'none' : headOf(architecture);
  const labels =
    head === 'span'
      ? 2
      : head === 'none'
        ? 0
        : typeof id2label === 'object' && id2label !== null
          ? Object.keys(id2label).length
          : 0;
  if (head !== 'none' && labels === 0)
    throw new KilnError('KILN_ERR_CONFIG_INVALID', {
      path,
      problem: 'it has no "id2label" map, so the number of classes is unknown',
    });

  let config: EncoderConfig;
  if (family === 'distilbert') {
    if (raw.sinusoidal_pos_embds === true) {
      throw new KilnError('KILN_ERR_CONFIG_INVALID', {
        path,
        problem: '"sinusoidal_pos_embds": true is not supported; kiln imports learned position embeddings',
      });
    }
    config = {
      family,
      architecture,
      hidden: int('dim', 768),
      layers: int('n_layers', 6),
      heads: int('n_heads', 12),
      intermediate: int('hidden_dim', 3072),
      activation: activationOf('activation', 'gelu'),
      // DistilBERT's layer norms use a fixed epsilon of 1e-12.
      layerNormEps: 1e-12,
      maxPositions: int('max_position_embeddings', 512),
      typeVocabSize: 0,
      padTokenId: int('pad_token_id', 0),
      labels,
      head,
    };
  } else {
    const eps = raw.layer_norm_eps ?? 1e-12;
    if (typeof eps !== 'number' || !(eps > 0))
      throw new KilnError('KILN_ERR_CONFIG_INVALID', {
        path,
        problem: `"layer_norm_eps" must be a positive number, got ${JSON.stringify(eps)}`,
      });
    config = {
      family,
      architecture,
      hidden: int('hidden_size', 768),
      layers: int('num_hidden_layers', 12),
      heads: int('num_attention_heads', 12),
      intermediate: int('intermediate_size', 3072),
      activation: activationOf('hidden_act', 'gelu'),
      layerNormEps: eps,
      maxPositions: int('max_position_embeddings', 512),
      typeVocabSize: int('type_vocab_size', 2),
      padTokenId: int('pad_token_id', family === 'roberta' ? 1 : 0),
      labels,
      head,
    };
    if (defined?.extra) config = { ...config, ...defined.extra({ int, raw }, config, path) };
  }
  if (config.heads === 0 || config.hidden % config.heads !== 0) {
    throw new KilnError('KILN_ERR_CONFIG_INVALID', {
      path,
      problem: `the hidden size ${config.hidden} must be a multiple of the number of attention heads ${config.heads}`,
    });
  }
  return config;
}
