/**
 * The Hugging Face architectures the importer builds, read from config.json: the facts that
 * shape the graph, which every family's module (arch/, listed in `ARCH_MODULES`) reads from its
 * own config fields, and the architecture names compile's detection knows.
 */
import { KilnError } from '../core/errors.js';
import { ARCH_MODULES, archModuleFor } from './arch/index.js';
import { type ArchBuild, headFromName } from './arch/module.js';

export type Activation = 'gelu' | 'gelu_new' | 'relu';

export interface EncoderConfig {
  /** The family whose module builds it (`bert`, `mpnet`, `deberta-v2`, …: arch/index.ts). */
  family: string;
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
  /** The graph and parameter list, from the family's module. */
  arch: ArchBuild;
}

export type HeadKind = 'classifier' | 'token' | 'span' | 'none';

/**
 * Hugging Face base text encoders: no head; their use is the token states, which sentence
 * embedders pool (all-MiniLM-L6-v2 is a BertModel). Compile detects feature-extraction from
 * these names; `kiln import` builds those of the families in `ARCH_MODULES` without a head, the
 * others compile from ONNX exports.
 */
export const BASE_ENCODERS: ReadonlySet<string> = new Set([
  'CamembertModel',
  'AlbertModel',
  'DebertaModel',
  'NomicBertModel',
  // Each family lists its base model and the pretraining classes whose checkpoints serve as
  // encoders (MPNetForMaskedLM, ElectraForPreTraining, DebertaV2ForMaskedLM, ModernBertForMaskedLM).
  ...ARCH_MODULES.flatMap((m) => m.baseModels),
]);

/**
 * The architectures `kiln import` builds: every family's sequence classifiers, then its token
 * classifiers, question-answering heads and base models (the order the error lists them in).
 */
export const SUPPORTED_ARCHITECTURES = [
  ...(['classifier', 'token', 'span'] as const).flatMap((kind) =>
    ARCH_MODULES.flatMap((m) => m.heads.filter((name) => headFromName(name) === kind)),
  ),
  ...ARCH_MODULES.flatMap((m) => m.baseModels),
];

/**
 * Reads the graph-shaping facts from config.json through the module of its architecture, or
 * throws a coded error naming the problem. `headless`: build the encoder only, also for a
 * classifier checkpoint (its head is ignored).
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
  const module = architectures.length > 0 ? archModuleFor(architecture) : undefined;
  if (!module || (modelType && !module.modelTypes.includes(modelType)))
    throw new KilnError('KILN_ERR_IMPORT_ARCHITECTURE', {
      architecture: architecture || '(config.json names none)',
      supported: SUPPORTED_ARCHITECTURES.join(', '),
    });
  return module.config(raw, path, { headless: options.headless === true });
}
