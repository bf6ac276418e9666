/**
 * The Hugging Face architectures the importer builds, read from config.json: the facts that
 * shape the graph, and the parameter names each family uses. Field names and defaults follow
 * the public `transformers` configuration classes.
 */
import { KilnError } from '../core/errors.js';

export type Activation = 'gelu' | 'gelu_new' | 'relu';
export type Family = 'bert' | 'roberta' | 'distilbert';

export interface EncoderConfig {
  family: Family;
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
   * `classifier`: a sequence-classification head gives logits; `span`: a question-answering
   * head gives each token's start and end logits; `none`: the encoder's hidden states.
   */
  head: 'classifier' | 'span' | 'none';
}

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
  head: { dense: string; activation: 'Tanh' | 'Relu'; out: string };
  /** The question-answering head: one Linear from each token's state to its start and end logits. */
  spanHead: string;
}

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

export const FAMILY_NAMES: Record<Family, FamilyNames> = {
  bert: {
    prefix: 'bert.',
    wordEmbeddings: 'embeddings.word_embeddings',
    positionEmbeddings: 'embeddings.position_embeddings',
    tokenTypeEmbeddings: 'embeddings.token_type_embeddings',
    embeddingNorm: 'embeddings.LayerNorm',
    layer: BERT_LAYER,
    head: { dense: 'bert.pooler.dense', activation: 'Tanh', out: 'classifier' },
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
    spanHead: 'qa_outputs',
  },
};

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
]);

/** The architectures `kiln import` builds, by family. */
const ARCHITECTURES: Record<string, Family> = {
  BertForSequenceClassification: 'bert',
  DistilBertForSequenceClassification: 'distilbert',
  RobertaForSequenceClassification: 'roberta',
  XLMRobertaForSequenceClassification: 'roberta',
  BertForQuestionAnswering: 'bert',
  DistilBertForQuestionAnswering: 'distilbert',
  RobertaForQuestionAnswering: 'roberta',
  XLMRobertaForQuestionAnswering: 'roberta',
  BertModel: 'bert',
  DistilBertModel: 'distilbert',
  RobertaModel: 'roberta',
  XLMRobertaModel: 'roberta',
};

/** The head an architecture's class name says (its suffix): `…ForQuestionAnswering` is a span head. */
function headOf(architecture: string): 'classifier' | 'span' {
  return architecture.endsWith('ForQuestionAnswering') ? 'span' : 'classifier';
}

const MODEL_TYPES: Record<string, Family> = {
  bert: 'bert',
  distilbert: 'distilbert',
  roberta: 'roberta',
  'xlm-roberta': 'roberta',
};

export const SUPPORTED_ARCHITECTURES = Object.keys(ARCHITECTURES);

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
  const family = architectures.length > 0 ? ARCHITECTURES[architecture] : undefined;
  if (!family || (modelType && MODEL_TYPES[modelType] !== family)) {
    throw new KilnError('KILN_ERR_IMPORT_ARCHITECTURE', {
      architecture: architecture || '(config.json names none)',
      supported: SUPPORTED_ARCHITECTURES.join(', '),
    });
  }

  const int = (field: string, fallback?: number): number => {
    const value = raw[field] ?? fallback;
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
  const head = options.headless || BASE_ENCODERS.has(architecture) ? 'none' : headOf(architecture);
  const labels =
    head === 'span'
      ? 2
      : head === 'none'
        ? 0
        : typeof id2label === 'object' && id2label !== null
          ? Object.keys(id2label).length
          : 0;
  if (head === 'classifier' && labels === 0)
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
  }
  if (config.heads === 0 || config.hidden % config.heads !== 0) {
    throw new KilnError('KILN_ERR_CONFIG_INVALID', {
      path,
      problem: `the hidden size ${config.hidden} must be a multiple of the number of attention heads ${config.heads}`,
    });
  }
  return config;
}
