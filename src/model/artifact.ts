/**
 * The compiled artifact: a folder with `manifest.json`, the optimized graph and the tokenizer
 * files. Everything downstream of compile (run, serve) reads only this. Format: docs/artifact.md.
 */
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { KilnError } from '../core/errors.js';
import { pathKind } from '../core/fs.js';
import { sha256File } from '../core/hash.js';
import type { TensorInfo } from '../onnx/graph.js';
import type { ImagePreprocessing } from './image.js';
import type { PruneReport, QuantizeReport, StaticQuantizeReport, VerifyReport } from './reports.js';

export const ARTIFACT_FORMAT = 'kiln-artifact';
/**
 * Bumped when a reader of the previous version could misread the new one. 2: tasks other than
 * text classification (a kiln that knows only version 1 would read an embedder's vector as
 * logits). Text classifiers are still written as 1, which every kiln reads.
 */
export const ARTIFACT_FORMAT_VERSION = 2;

export const MANIFEST_FILE = 'manifest.json';
export const MODEL_FILE = 'model.onnx';

export interface Manifest {
  format: typeof ARTIFACT_FORMAT;
  formatVersion: number;
  name: string;
  task: Task;
  /** Class names by logit index, from config.json's id2label; empty for feature-extraction. */
  labels: string[];
  /** Text tasks: the tokenizer files and facts. */
  tokenizer?: {
    file: string;
    configFile: string | null;
    padTokenId: number;
    specialTokensAfterText: number;
    specialTokensTotal: number;
  };
  model: {
    file: string;
    inputs: TensorInfo[];
    outputs: TensorInfo[];
    opsets: Record<string, number>;
    parameters: number;
    /** Operator counts of the source graph and of the optimized one. */
    operators: { source: Record<string, number>; optimized: Record<string, number> };
    /** Fused kernels in the optimized graph, by kind. */
    fusions: { attention: number; layerNorm: number; gelu: number; matmul: number };
    /**
     * Text encoders: the sizes activations grow with (config.json's), for the GPU memory check
     * (runtime/device-memory.ts); absent for image models and configs that do not name them.
     */
    encoder?: { hidden: number; intermediate: number; heads: number };
  };
  /** feature-extraction: how the graph turns token states into one vector per text. */
  embedding?: EmbeddingHead;
  /**
   * Text classifiers: what turns the logits into scores (see {@link ScoreFunction}); absent in
   * artifacts compiled before it was recorded, which read as {@link defaultScoreFunction} says.
   */
  functionToApply?: ScoreFunction;
  /** image-classification: how image bytes become the input tensor (model/image.ts). */
  image?: ImagePreprocessing;
  /** Present when the weights are random (kiln synth): predictions are meaningless. */
  synthetic?: string;
  /**
   * Number format of the weights: fp32, int8 (dynamic quantization, CPU), or fp16 (GPU: the
   * MatMul/Gemm weights and their compute in fp16, the rest in fp32). Absent means fp32.
   */
  precision?: 'fp32' | 'int8' | 'fp16';
  /** fp16: what was converted (compiler/fp16.ts). */
  fp16?: Fp16Report;
  /**
   * Whether the last layer computes only the token the outputs read (compiler/prune.ts). Absent
   * in artifacts compiled before the pass existed.
   */
  pruning?: PruneReport;
  /** int8 of a text model: what was quantized (compiler/quantize.ts QuantizeReport). */
  quantization?: QuantizeReport;
  /** int8 of an image model: static quantization calibrated on sample images (compiler/static-quantize.ts). */
  staticQuantization?: StaticQuantizeReport;
  /** Present when compile ran --verify: the compiled model against the fp32 source (compiler/verify.ts). */
  verify?: VerifyReport;
  /** Memory per replica: measured at compile, checked before loading replicas. */
  memory?: MemoryFigures;
  /** The layout `kiln tune` chose on this machine; serve and bench use it unless flags say otherwise. */
  tuned?: TunedLayout;
  limits: {
    /** Longest token sequence (special tokens included); longer texts are truncated. 1 for image models. */
    maxLength: number;
    /** Most sequences in one inference call. */
    maxBatch: number;
    /** Sequence lengths batches are padded to, ascending, ending at maxLength; when absent, derived from maxLength. */
    buckets?: number[];
  };
  /** `sha256` covers the graph or checkpoint, config and tokenizer files. */
  source: { kind: string; path: string; name: string; sha256: string };
  compile: {
    options: CompileOptionsRecord;
    /**
     * `all`: the graph ONNX Runtime optimized for the CPU (loaded as it is); `basic`: a portable
     * graph (constant folding, no provider-specific fusions) that a GPU session optimizes at load.
     */
    optimization: 'all' | 'basic';
    /** The device compiled for: `cpu`, `webgpu` or `cuda` (run and serve default to it). */
    backend: string;
    /** GPU devices: where each node ran in compile's test inference (see {@link Placement}). */
    placement?: Placement;
    /** The optimized graph may use kernels specific to this CPU (ONNX Runtime's NCHWc, AVX paths). */
    target: { platform: string; arch: string; cpu: string };
    durationMs: number;
    createdAt: string;
  };
  versions: { kiln: string; onnxruntime: string; node: string };
  /** SHA-256 and size of every other file in the artifact. */
  files: Record<string, { sha256: string; bytes: number }>;
}

/**
 * What turns a classifier's logits into the scores users read, as transformers' pipelines name
 * it: `softmax` (one label of many), `sigmoid` (each label on its own: multi-label heads, and a
 * single logit, whose softmax would be 1 for every input), `none` (the logits themselves).
 */
export const SCORE_FUNCTIONS = ['softmax', 'sigmoid', 'none'] as const;
export type ScoreFunction = (typeof SCORE_FUNCTIONS)[number];

/**
 * The score function a classifier head implies when nothing overrides it: sigmoid for one
 * logit or config.json's `problem_type: "multi_label_classification"`, softmax otherwise.
 */
export function defaultScoreFunction(labels: number, problemType?: unknown): ScoreFunction {
  return labels === 1 || problemType === 'multi_label_classification' ? 'sigmoid' : 'softmax';
}

/** The score function of a manifest: the recorded one, else what its head implies. */
export function scoreFunctionOf(manifest: Pick<Manifest, 'functionToApply' | 'labels'>): ScoreFunction {
  return manifest.functionToApply ?? defaultScoreFunction(manifest.labels.length);
}

/** What a compiled model does with its input; decides the runtime class, routes and outputs. */
export const TASKS = [
  'text-classification',
  'feature-extraction',
  'image-classification',
  'text-ranking',
  'token-classification',
  'zero-shot-classification',
  'question-answering',
] as const;
export type Task = (typeof TASKS)[number];

/** How feature-extraction turns token states into one vector (see {@link EmbeddingHead}). */
export const POOLINGS = ['mean', 'cls', 'max'] as const;
export type Pooling = (typeof POOLINGS)[number];

/** The pooling compile appends to an encoder for feature-extraction (output `embedding`). */
export interface EmbeddingHead {
  /** Length of each vector (the encoder's hidden size). */
  dimension: number;
  /** `mean` over real tokens (mask-aware), the first token (`cls`), or the per-dimension `max`. */
  pooling: Pooling;
  /** Vectors are scaled to unit L2 length (cosine similarity = dot product). */
  normalize: boolean;
  /** The graph output the pooling reads: last_hidden_state [batch, tokens, hidden]. */
  hiddenOutput: string;
  /**
   * Prompts a request may name (`prompt_name`) to put before its texts, from a
   * sentence-transformers folder's config_sentence_transformers.json; absent when it has none.
   */
  prompts?: Record<string, string>;
}

/** Memory one replica needs (compiler/memory.ts measures it). */
export interface MemoryFigures {
  /** Bytes of weights in the optimized graph. */
  weightsBytes: number;
  /** Analytic: weights + activations at max batch × max length + runtime overhead. */
  estimateBytes: number;
  /** Measured: resident memory one replica added in a fresh process (load + one max-size batch). */
  measuredBytes: number;
  /** What a replica is counted at when checking a layout: the measurement plus a worker's overhead. */
  perReplicaBytes: number;
  /** Held once per process whatever the replicas: the tokenizer (measured) and the runtime's base. */
  processBytes?: number;
  batch: number;
  length: number;
}

/** Nodes on the GPU provider and nodes ONNX Runtime left on the CPU, from a profiled test inference. */
export interface Placement {
  /** The GPU provider's nodes, counted. */
  onDevice: number;
  /** Nodes the CPU provider ran, counted and named (`OpType:node name`). */
  onCpu: { count: number; nodes: string[] };
  /** The CPU nodes with a floating-point output: data leaving the device (the rest is shape arithmetic). */
  computeOnCpu: string[];
}

/** fp16 conversion: the MatMul/Gemm nodes and embedding tables converted, and the nodes kept fp32. */
export interface Fp16Report {
  matmuls: number;
  gathers: number;
  /** Weights stored in fp16, in bytes (before: twice that). */
  weightBytes: number;
  /** What stays fp32, in words (LayerNorm, Softmax, ...). */
  keptFp32: string;
}

export interface TunedLayout {
  /** The device the layout was measured on; serve and bench use it only there. Absent: cpu. */
  device?: string;
  replicas: number;
  threadsPerReplica: number;
  maxBatch: number;
  maxDelayMs: number;
  /** What the chosen layout measured: closed-loop throughput and p99 at `clients`. */
  requestsPerSecond: number;
  p99Ms: number;
  clients: number;
  sloP99Ms: number;
  cpu: string;
  cores: number;
  tunedAt: string;
}

export interface CompileOptionsRecord {
  maxLength: number;
  maxBatch: number;
  precision?: string;
  /** Whether the prune pass ran (compile's `prune` option); absent before it existed. */
  prune?: boolean;
  quantizeEmbeddings?: boolean;
  keepFp32?: string[];
  task?: Task;
  pooling?: Pooling;
  normalize?: boolean;
  functionToApply?: ScoreFunction;
  image?: ImagePreprocessing;
}

export interface Artifact {
  dir: string;
  manifest: Manifest;
}

export async function isArtifactDir(path: string): Promise<boolean> {
  return (await pathKind(join(path, MANIFEST_FILE))) === 'file';
}

/** Reads the manifest and checks its shape; `verify` also checks every file's SHA-256. */
export async function readArtifact(input: string, options: { verify?: boolean } = {}): Promise<Artifact> {
  const dir = resolve(input);
  const manifestPath = join(dir, MANIFEST_FILE);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest;
  } catch (err) {
    const problem =
      (err as NodeJS.ErrnoException).code === 'ENOENT'
        ? `it has no ${MANIFEST_FILE}`
        : `${MANIFEST_FILE} is not valid JSON (${(err as Error).message})`;
    throw new KilnError('KILN_ERR_ARTIFACT_INVALID', { path: input, problem }, { cause: err });
  }
  if (manifest?.format !== ARTIFACT_FORMAT || typeof manifest.formatVersion !== 'number') {
    throw new KilnError('KILN_ERR_ARTIFACT_INVALID', {
      path: input,
      problem: `${MANIFEST_FILE} is not a kiln manifest (no "format": "${ARTIFACT_FORMAT}")`,
    });
  }
  if (manifest.formatVersion > ARTIFACT_FORMAT_VERSION) {
    throw new KilnError('KILN_ERR_ARTIFACT_INVALID', {
      path: input,
      problem: `its format version ${manifest.formatVersion} is newer than this kiln reads (${ARTIFACT_FORMAT_VERSION}); upgrade kiln`,
    });
  }
  if (!manifest.files?.[manifest.model?.file] || !Array.isArray(manifest.labels)) {
    throw new KilnError('KILN_ERR_ARTIFACT_INVALID', {
      path: input,
      problem: `${MANIFEST_FILE} lacks the model file entry or labels`,
    });
  }
  if (options.verify !== false) await verifyFiles(dir, manifest, input);
  return { dir, manifest };
}

async function verifyFiles(dir: string, manifest: Manifest, input: string): Promise<void> {
  for (const [file, expected] of Object.entries(manifest.files)) {
    const path = join(dir, file);
    let bytes: number;
    try {
      bytes = (await stat(path)).size;
    } catch (err) {
      throw new KilnError('KILN_ERR_ARTIFACT_CORRUPT', { path: input, file, problem: 'is missing' }, { cause: err });
    }
    if (bytes !== expected.bytes) {
      throw new KilnError('KILN_ERR_ARTIFACT_CORRUPT', {
        path: input,
        file,
        problem: `has ${bytes} bytes, the manifest says ${expected.bytes}`,
      });
    }
    const actual = await sha256File(path);
    if (actual !== expected.sha256) {
      throw new KilnError('KILN_ERR_ARTIFACT_CORRUPT', {
        path: input,
        file,
        problem: `has SHA-256 ${actual.slice(0, 12)}…, the manifest says ${expected.sha256.slice(0, 12)}…`,
      });
    }
  }
}

/** Rewrites manifest.json atomically (temporary file, then rename); the other files are untouched. */
export async function writeManifest(dir: string, manifest: Manifest): Promise<void> {
  const path = join(dir, MANIFEST_FILE);
  const temporary = `${path}.tmp-${process.pid}`;
  await writeFile(temporary, `${JSON.stringify(manifest, null, 2)}\n`);
  await rename(temporary, path);
}
