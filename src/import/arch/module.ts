/**
 * Every architecture kiln imports is built by parts (src/import/parts/): one file per family
 * under src/import/arch/ reads its config.json fields, names its parameters and composes the
 * parts (the BERT-shaped families through arch/bert-shaped.ts). The importer, `kiln synth` and
 * compile's detection reach it through `ARCH_MODULES` (arch/index.ts).
 */
import type { EncoderConfig, HeadKind } from '../architectures.js';
import type { BuiltGraph, WeightSource } from '../encoder-graph.js';
import type { ConfigFields, PartActivation } from '../parts/encoder-parts.js';

export interface ArchitectureModule {
  /** The family's name, as EncoderConfig.family reports it. */
  family: string;
  /** config.json `model_type` values of the family. */
  modelTypes: readonly string[];
  /**
   * config.json `architectures[0]` names built: the base models (no head; pretraining classes
   * such as `…ForMaskedLM` whose checkpoints carry the base model, their own head ignored) and
   * the heads, each named by its suffix ({@link headFromName}).
   */
  baseModels: readonly string[];
  heads: readonly string[];
  /** The graph facts, with `arch` set; throws KILN_ERR_CONFIG_INVALID naming a field kiln cannot build. */
  config(raw: Record<string, unknown>, path: string, options: { headless: boolean }): EncoderConfig;
  /** `kiln synth` presets: public config.json facts (labels are added per run). */
  presets: Readonly<Record<string, Record<string, unknown>>>;
}

/** What an architecture built by parts adds to its EncoderConfig: its graph and its parameter list. */
export interface ArchBuild {
  build(source: WeightSource): BuiltGraph;
  /** Hugging Face parameter names and shapes of the full model (synth writes them; tests fill them). */
  shapes(vocab: number): Array<[string, number[]]>;
}

/** The facts every family built by parts reads from its config.json, under shared names. */
export interface PartsFacts {
  architecture: string;
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  activation: PartActivation;
  eps: number;
  maxPositions: number;
  labels: number;
  head: HeadKind;
}

/**
 * The head an architecture name's suffix names, as transformers names its classes:
 * `…ForQuestionAnswering` a span head (start and end logits per token), `…ForTokenClassification`
 * logits per token, anything else a sequence classifier.
 */
export function headFromName(architecture: string): Exclude<HeadKind, 'none'> {
  if (architecture.endsWith('ForQuestionAnswering')) return 'span';
  return architecture.endsWith('ForTokenClassification') ? 'token' : 'classifier';
}

/**
 * The head a family built by parts builds for config.json and its number of outputs: none for
 * its base models and when `headless`, two for a span head (start, end), else id2label's size
 * (refused when config.json has no map).
 */
export function partsHead(
  raw: Record<string, unknown>,
  f: ConfigFields,
  options: { architecture: string; baseModels: readonly string[]; headless: boolean },
): { head: HeadKind; labels: number } {
  if (options.headless || options.baseModels.includes(options.architecture)) return { head: 'none', labels: 0 };
  const head = headFromName(options.architecture);
  if (head === 'span') return { head, labels: 2 };
  const id2label = raw.id2label;
  const labels = typeof id2label === 'object' && id2label !== null ? Object.keys(id2label).length : 0;
  if (labels === 0) f.refuse('id2label', 'a classifier needs its map of class ids to names');
  return { head, labels };
}

/**
 * config.json's `pad_token_id`, or the configuration class's default when it names none (null
 * included, as some configs write it).
 */
export function padTokenId(raw: Record<string, unknown>, fallback: number): number {
  return typeof raw.pad_token_id === 'number' ? raw.pad_token_id : fallback;
}

/**
 * A family's EncoderConfig: the shared facts (what the CLI prints and compile reads), its token
 * types and padding id, and `arch`, which builds it.
 */
export function partsEncoderConfig(
  family: string,
  c: PartsFacts,
  more: { typeVocabSize: number; padTokenId: number },
  arch: ArchBuild,
): EncoderConfig {
  return {
    family,
    architecture: c.architecture,
    hidden: c.hidden,
    layers: c.layers,
    heads: c.heads,
    intermediate: c.intermediate,
    activation: c.activation === 'relu' ? 'relu' : c.activation === 'gelu' ? 'gelu' : 'gelu_new',
    layerNormEps: c.eps,
    maxPositions: c.maxPositions,
    ...more,
    labels: c.labels,
    head: c.head,
    arch,
  };
}
