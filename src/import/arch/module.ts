/**
 * An architecture built by parts (src/import/parts/): one file per family under src/import/arch/
 * reads its config.json fields, names its parameters and composes the parts. The importer,
 * `kiln synth` and compile's detection reach it through `ARCH_MODULES` (arch/index.ts).
 */
import type { EncoderConfig } from '../architectures.js';
import type { BuiltGraph, WeightSource } from '../encoder-graph.js';
import type { PartActivation } from '../parts/encoder-parts.js';

export interface ArchitectureModule {
  /** config.json `model_type` values of the family. */
  modelTypes: readonly string[];
  /** config.json `architectures[0]` names built: the base models (no head) and the heads. */
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
  head: 'classifier' | 'none';
}

/**
 * A family's EncoderConfig: the shared facts (what the CLI prints and compile reads), its token
 * types and padding id, and `arch`, which builds it.
 */
export function partsEncoderConfig(
  c: PartsFacts,
  more: { typeVocabSize: number; padTokenId: number },
  arch: ArchBuild,
): EncoderConfig {
  return {
    family: 'parts',
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
