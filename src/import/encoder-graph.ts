/**
 * The graph of an imported text encoder: what its family's module (arch/, built from the parts in
 * parts/) produces from a Hugging Face checkpoint, a sequence classifier, a token classifier, a
 * question-answering model, or a base model whose output is last_hidden_state. Standard ONNX
 * operators at opset 17. Weights are not read here: each becomes a lazy initializer, streamed
 * when the file is written.
 */
import type { GraphBuilder } from '../onnx/builder.js';
import type { EncoderConfig } from './architectures.js';

export const IMPORT_OPSET = 17;

/** Where weights come from: a checkpoint on disk, or a generator of synthetic ones. */
export interface WeightSource {
  /** For error messages: the checkpoint folder. */
  readonly path: string;
  shape(name: string): number[] | undefined;
  load(name: string): Promise<Float32Array>;
}

export interface BuiltGraph {
  builder: GraphBuilder;
  inputs: string[];
  parameters: number;
  vocabSize: number;
}

/** The graph `config` describes, with its weights from `source` (every tensor's presence and shape checked). */
export function buildEncoderClassifier(config: EncoderConfig, source: WeightSource): BuiltGraph {
  return config.arch.build(source);
}
