/** What `kiln compile` takes: its options, their defaults and limits, and the steps it reports. */
import type { PullOptions } from '../hub/pull.js';
import type { Pooling, ScoreFunction, Task } from '../model/artifact.js';
import type { ImageOverrides } from '../model/image.js';
import type { DeviceChoice } from '../runtime/binding.js';

/** Longest token sequence when neither the flag nor the model's position embeddings set a smaller one. */
export const DEFAULT_MAX_LENGTH = 128;
export const DEFAULT_MAX_BATCH = 32;
/** A GPU's throughput keeps growing with batch well past a core's (kiln tune --device webgpu). */
export const DEFAULT_GPU_MAX_BATCH = 128;
export const MAX_BATCH_LIMIT = 1024;

export interface CompileOptions {
  /** A Hugging Face-layout folder, a .onnx file, or a Hub model (`hf:ORG/NAME[@REV]`). */
  source: string;
  /** How a Hub source is fetched: token, offline, which weights, progress. */
  hub?: PullOptions;
  /**
   * Where to write the artifact folder. `null` leaves it in the cache only and returns the
   * cache entry (what `run` and `serve` do). @defaultValue `<source-name>.kiln`
   */
  out?: string | null;
  /** Longest token sequence, special tokens included; capped by the position embeddings. @defaultValue 128 */
  maxLength?: number;
  /** Most sequences per inference call. @defaultValue 32 (128 on a GPU device) */
  maxBatch?: number;
  /** Read and write the compile cache. @defaultValue true */
  cache?: boolean;
  /**
   * The device compiled for: `cpu` stores the graph ONNX Runtime optimized for this CPU; `webgpu`
   * and `cuda` store a portable graph the session optimizes at load, and report which nodes run
   * on the GPU; `auto` picks the first of cuda, webgpu, cpu that answers. @defaultValue 'cpu'
   */
  device?: DeviceChoice;
  /**
   * `int8` (CPU): MatMul/Gemm weights quantized per channel, activations at run time. `fp16`
   * (GPU): MatMul/Gemm weights and compute in fp16, normalization and softmax in fp32. @defaultValue 'fp32'
   */
  precision?: Precision;
  /** int8 only: store the word-embedding table in int8 too (a smaller artifact). @defaultValue false */
  quantizeEmbeddings?: boolean;
  /** int8 only: node names (or prefixes ending in `*`) to keep in fp32. */
  keepFp32?: string[];
  /**
   * Compute the last layer for the first token only when the outputs read nothing else (a
   * classifier, a reranker, a CLS-pooled embedder): exact, about 1/layers less work. @defaultValue true
   */
  prune?: boolean;
  /**
   * A data file to check the compiled model against the fp32 source on: by the top label of
   * classifiers (verify.ts), by the answers of token classification, question answering and
   * zero-shot classification (verify-answers.ts).
   */
  verify?: string | null;
  /** Most accuracy the compiled model may lose on `verify`, in percentage points. @defaultValue 1 */
  maxAccuracyDrop?: number;
  /** Least agreement with the fp32 source on `verify`, in [0, 1], of rows (tokens for token classification); for classifiers, only without labels. @defaultValue 0.98 */
  minAgreement?: number;
  /** What the model does; detected from config.json's architectures and the graph when unset. */
  task?: Task;
  /** feature-extraction: how token states become one vector. @defaultValue 'mean' */
  pooling?: Pooling;
  /** feature-extraction: scale vectors to unit length. @defaultValue true */
  normalize?: boolean;
  /**
   * Text classifiers: what turns logits into scores. @defaultValue sigmoid for one logit or
   * config.json's `problem_type: "multi_label_classification"`, else softmax
   */
  functionToApply?: ScoreFunction;
  /** image-classification: preprocessing that overrides preprocessor_config.json and the graph's shape. */
  image?: ImageOverrides;
  /**
   * image-classification with int8: a folder of sample images (or a file listing them) to
   * calibrate static quantization's activation ranges on. Required then.
   */
  calibrate?: string | null;
  /** Class names by logit index, for a model without config.json id2label (a bare image .onnx). */
  labels?: string[];
  /** Called as each step starts and ends, for progress display. */
  onStep?: (step: CompileStep, phase: 'start' | 'end') => void;
}

export const PRECISIONS = ['fp32', 'int8', 'fp16'] as const;
export type Precision = (typeof PRECISIONS)[number];

export type CompileStep =
  | 'hash'
  | 'import'
  | 'prune'
  | 'quantize'
  | 'fp16'
  | 'place-operators'
  | 'verify'
  | 'measure-memory'
  | 'check-operators'
  | 'check-io'
  | 'optimize'
  | 'smoke-test'
  | 'write';
