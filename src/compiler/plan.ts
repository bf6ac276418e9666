/**
 * The first stage of compile: the source resolved and every option checked against it, before
 * any expensive work, into the plan the build follows. Order matters: cheap checks that name
 * the user's mistake come before reading sample images, hashing or importing.
 */

import { arch, cpus, platform } from 'node:os';
import { dirname, resolve } from 'node:path';
import { KilnError } from '../core/errors.js';
import { pathKind } from '../core/fs.js';
import { sha256File } from '../core/hash.js';
import type { Manifest, Task } from '../model/artifact.js';
import { defaultBuckets } from '../model/buckets.js';
import type { ImagePreprocessing } from '../model/image.js';
import {
  checkpointFiles,
  type ModelConfig,
  type ModelSource,
  parseConfig,
  readJson,
  requireCompanion,
  resolveSource,
} from '../model/source.js';
import { type Backend, isGpu, resolveDevice } from '../runtime/binding.js';
import { findTaskModule, taskFromArchitecture } from '../tasks/registry.js';
import type { HeadOptions } from '../tasks/task.js';
import {
  type CompileOptions,
  DEFAULT_GPU_MAX_BATCH,
  DEFAULT_MAX_BATCH,
  DEFAULT_MAX_LENGTH,
  MAX_BATCH_LIMIT,
  type Precision,
} from './compile-options.js';
import { GraphReader, imageLabels, needsHeadlessImport, resolveImage, resolveTask } from './detect.js';
import { sampleImages } from './image-data.js';
import { assertWritableOutput } from './publish.js';

export interface CompilePlan {
  source: ModelSource;
  /** config.json's facts; labels are the classes (none for feature-extraction). */
  config: ModelConfig;
  task: Task;
  limits: { maxLength: number; maxBatch: number };
  backend: Backend;
  precision: Precision;
  /** Run the prune pass (compile's `prune` option). */
  prune: boolean;
  quantization: { quantizeEmbeddings: boolean; keepFp32: string[] } | null;
  verify: { path: string; sha256: string; maxAccuracyDrop: number; minAgreement: number } | null;
  /** The task's head options (an embedder's pooling, a classifier's score function); null when it has none. */
  head: HeadOptions | null;
  image: ImagePreprocessing | null;
  /** Static int8 of an image model: the sample images. */
  calibration: { path: string; paths: string[]; sha256: string } | null;
  /** --verify on an image model: the images to compare on. */
  verifyImages: string[] | null;
  /** Where the artifact goes; null: it stays in the cache. */
  out: string | null;
  /** The source graph, decoded once (task detection may have read it already). */
  graphs: GraphReader;
  /** Everything the manifest derives from the options: the options part of the cache key. */
  keyOptions: Record<string, unknown>;
}

/** The machine the optimized graph is made for; part of the cache key. */
export function compileTarget(): Manifest['compile']['target'] {
  return { platform: platform(), arch: arch(), cpu: cpus()[0]?.model.trim() ?? 'unknown' };
}

/** The buckets a compile stores: fine on the CPU (any length costs nothing), powers of two on a GPU. */
export function deviceBuckets(backend: Backend, maxLength: number): number[] {
  return isGpu(backend) ? gpuBuckets(maxLength) : defaultBuckets(maxLength);
}

/**
 * A GPU provider prepares its kernels per input shape (WebGPU compiles a pipeline the first time
 * it sees one), so fewer, coarser buckets: 16, 32, 64, … up to max length.
 */
function gpuBuckets(maxLength: number): number[] {
  const out: number[] = [];
  for (let b = 16; b < maxLength; b *= 2) out.push(b);
  out.push(maxLength);
  return out;
}

/**
 * The precision must suit the device: int8 is a CPU path (ONNX Runtime's dynamic quantization
 * kernels are CPU kernels: on a GPU every quantized MatMul would run on the CPU), fp16 a GPU one.
 */
function checkPrecision(backend: Backend, precision: Precision): void {
  if (precision === 'int8' && isGpu(backend))
    throw new KilnError('KILN_ERR_DEVICE_PRECISION', {
      device: backend,
      precision,
      rule: "int8 runs on ONNX Runtime's CPU kernels (DynamicQuantizeMatMul), so on a GPU each quantized MatMul would leave the device; use --precision fp16 (or fp32) on a GPU, or --device cpu for int8",
    });
  if (precision === 'fp16' && !isGpu(backend))
    throw new KilnError('KILN_ERR_DEVICE_PRECISION', {
      device: backend,
      precision,
      rule: 'fp16 is for GPU devices (--device webgpu or cuda); on the CPU use --precision int8 for a smaller, faster model',
    });
}

export async function planCompile(options: CompileOptions): Promise<CompilePlan> {
  // The device first: a precision it cannot take, or a GPU that does not answer, fails before any other work.
  const precision = options.precision ?? 'fp32';
  if (options.device && options.device !== 'auto') checkPrecision(options.device, precision);
  const { device: backend } = await resolveDevice(options.device ?? 'cpu');
  checkPrecision(backend, precision);
  const { source, config, task, graphs } = await resolveModel(options);
  const module = findTaskModule(task)!;
  const image = module.input === 'image' ? await resolveImage(source, options.image ?? {}, graphs) : null;
  const { calibration, verifyImages } = await imageSamples(options, image);
  const head = module.compile.headOptions
    ? await module.compile.headOptions(
        { pooling: options.pooling, normalize: options.normalize, functionToApply: options.functionToApply },
        modelHome(source),
      )
    : null;
  if (module.compile.verifyRefusal && options.verify) {
    throw new KilnError('KILN_ERR_CLI_INVALID_FLAG', {
      flag: '--verify',
      rule: module.compile.verifyRefusal,
      value: options.verify,
    });
  }
  // Sequence length means nothing for an image: every input is one fixed-size tensor.
  const limits = image
    ? { maxLength: 1, maxBatch: resolveLimits({ ...options, maxLength: 2 }, config, backend).maxBatch }
    : resolveLimits(options, config, backend);
  const out =
    options.out === undefined ? resolve(`${source.name}.kiln`) : options.out === null ? null : resolve(options.out);
  if (out !== null) await assertWritableOutput(out);

  const quantization =
    precision === 'int8'
      ? { quantizeEmbeddings: options.quantizeEmbeddings ?? false, keepFp32: options.keepFp32 ?? [] }
      : null;
  // A missing verify file or a limit out of range fails now, not after minutes of hashing,
  // importing and optimizing.
  const checkedLimits = options.verify ? verifyLimits(options) : null;
  if (options.verify && !verifyImages && (await pathKind(options.verify)) !== 'file')
    throw new KilnError('KILN_ERR_INPUT_FILE_NOT_FOUND', { path: options.verify });
  const verify =
    options.verify && checkedLimits
      ? {
          path: resolve(options.verify),
          sha256: verifyImages ? verifyImages.sha256 : await sha256File(resolve(options.verify)),
          ...checkedLimits,
        }
      : null;
  return {
    source,
    config: module.compile.labels === 'none' ? { ...config, labels: [] } : config,
    task,
    limits,
    backend,
    precision,
    prune: options.prune ?? true,
    quantization,
    verify,
    head,
    image,
    calibration,
    verifyImages: verifyImages?.paths ?? null,
    out,
    graphs,
    keyOptions: {
      ...limits,
      buckets: deviceBuckets(backend, limits.maxLength),
      backend,
      optimization: isGpu(backend) ? 'basic' : 'all',
      precision,
      prune: options.prune ?? true,
      quantization,
      verify: verify && { ...verify, path: undefined },
      task,
      embedding: head,
      image,
      labels: config.labels,
      calibration: calibration?.sha256 ?? null,
    },
  };
}

/**
 * The source, its config.json facts and its task. Embeddings from a folder whose graph ends in
 * a classifier head come from its checkpoint instead (imported without the head), so its
 * weights are what the cache key hashes.
 */
async function resolveModel(
  options: CompileOptions,
): Promise<{ source: ModelSource; config: ModelConfig; task: Task; graphs: GraphReader }> {
  let source = await resolveSource(options.source, { hub: options.hub });
  const graphs = new GraphReader();
  // A bare image graph may come without config.json: its labels are then --labels.
  const rawConfig = source.configPath ? await readJson(source.configPath) : {};
  const configPath = source.configPath ?? source.path;
  // Labels are the classes of a classifier; an embedding model has none, so id2label may be absent.
  let config = parseConfig(rawConfig, configPath, { labels: 'optional' });
  const task = await resolveTask(options.task ?? taskFromArchitecture(config), source, graphs);
  const module = findTaskModule(task)!;
  if (module.compile.headless && source.onnxPath !== null && (await needsHeadlessImport(source, graphs))) {
    source = { ...source, kind: 'hf-checkpoint', onnxPath: null, weightFiles: await checkpointFiles(source.path) };
  }
  if (module.input === 'image') {
    config = { ...config, labels: imageLabels(options.labels, rawConfig, configPath, source.configPath !== null) };
  } else {
    requireCompanion(source, 'config.json');
    requireCompanion(source, 'tokenizer.json');
    if (module.compile.labels === 'required') parseConfig(rawConfig, configPath);
  }
  return { source, config, task, graphs };
}

type SampleSet = { path: string; paths: string[]; sha256: string };

/** Image models quantize statically, so int8 needs sample images (--calibrate); --verify on one names images too. */
async function imageSamples(
  options: CompileOptions,
  image: ImagePreprocessing | null,
): Promise<{ calibration: SampleSet | null; verifyImages: SampleSet | null }> {
  if (options.calibrate && !(image && options.precision === 'int8')) {
    throw new KilnError('KILN_ERR_CLI_INVALID_FLAG', {
      flag: '--calibrate',
      rule: 'used with image models and --precision int8 (text models quantize activations at run time)',
      value: options.calibrate,
    });
  }
  if (image && options.precision === 'int8' && !options.calibrate) {
    throw new KilnError('KILN_ERR_CLI_INVALID_FLAG', {
      flag: '--calibrate',
      rule: 'given with --precision int8 for an image model: a folder of sample images (or a file listing them), a few dozen like those it will see',
      value: '(none)',
    });
  }
  const samples = async (path: string): Promise<SampleSet> => ({ path: resolve(path), ...(await sampleImages(path)) });
  return {
    calibration: options.calibrate ? await samples(options.calibrate) : null,
    verifyImages: image && options.verify ? await samples(options.verify) : null,
  };
}

/**
 * The folder that holds the model's own files: config.json's (for onnx/model.onnx, the one above).
 */
function modelHome(source: ModelSource): string {
  return source.configPath
    ? dirname(source.configPath)
    : source.kind === 'onnx-file'
      ? dirname(source.path)
      : source.path;
}

/**
 * The verify limits, range-checked as the CLI's flags are: a limit outside its range (NaN, or an
 * agreement of 98 meant as a percentage) would pass or fail every compile whatever the figures.
 */
function verifyLimits(options: CompileOptions): { maxAccuracyDrop: number; minAgreement: number } {
  const maxAccuracyDrop = options.maxAccuracyDrop ?? 1;
  const minAgreement = options.minAgreement ?? 0.98;
  const check = (flag: string, value: number, max: number, unit: string): void => {
    if (!Number.isFinite(value) || value < 0 || value > max)
      throw new KilnError('KILN_ERR_CLI_INVALID_FLAG', {
        flag,
        rule: `a number in [0, ${max}] (${unit})`,
        value: String(value),
      });
  };
  check('--max-accuracy-drop', maxAccuracyDrop, 100, 'percentage points');
  check('--min-agreement', minAgreement, 1, 'a fraction: 0.98 is 98 %');
  return { maxAccuracyDrop, minAgreement };
}

function resolveLimits(
  options: CompileOptions,
  config: ModelConfig,
  backend: Backend,
): { maxLength: number; maxBatch: number } {
  const cap = config.maxPositions ?? Infinity;
  const maxLength = options.maxLength ?? Math.min(DEFAULT_MAX_LENGTH, cap);
  if (!Number.isInteger(maxLength) || maxLength < 2 || maxLength > cap) {
    throw new KilnError('KILN_ERR_CLI_INVALID_FLAG', {
      flag: '--max-length',
      rule: `an integer in [2, ${cap}]${Number.isFinite(cap) ? " (this model's position embeddings)" : ''}`,
      value: String(options.maxLength),
    });
  }
  const maxBatch = options.maxBatch ?? (isGpu(backend) ? DEFAULT_GPU_MAX_BATCH : DEFAULT_MAX_BATCH);
  if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > MAX_BATCH_LIMIT) {
    throw new KilnError('KILN_ERR_CLI_INVALID_FLAG', {
      flag: '--max-batch',
      rule: `an integer in [1, ${MAX_BATCH_LIMIT}]`,
      value: String(options.maxBatch),
    });
  }
  return { maxLength, maxBatch };
}
