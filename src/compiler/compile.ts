/**
 * `kiln compile`: source model → checked, optimized, self-describing artifact, through the cache.
 * Order matters: cheap checks that name the user's mistake come before expensive work.
 */
import { copyFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { arch, cpus, platform } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { KilnError } from '../core/errors.js';
import { copyFlatDir, pathKind, replaceDir, temporarySibling } from '../core/fs.js';
import { sha256, sha256File } from '../core/hash.js';
import { snapshotFileId } from '../hub/cache-layout.js';
import type { PullOptions } from '../hub/pull.js';
import { importCheckpoint } from '../import/import.js';
import {
  ARTIFACT_FORMAT,
  type EmbeddingHead,
  formatVersionFor,
  isArtifactDir,
  MANIFEST_FILE,
  type Manifest,
  type MemoryFigures,
  MODEL_FILE,
  type Pooling,
  readArtifact,
  type Task,
} from '../model/artifact.js';
import { defaultBuckets } from '../model/buckets.js';
import { readDataset } from '../model/dataset.js';
import { buildFeeds } from '../model/feeds.js';
import {
  completePreprocessing,
  type ImageOverrides,
  type ImagePreprocessing,
  preprocessingFromConfig,
} from '../model/image.js';
import {
  checkpointFiles,
  imageInput,
  type ModelConfig,
  type ModelSource,
  parseConfig,
  readJson,
  requireCompanion,
  resolveSource,
} from '../model/source.js';
import { TextTokenizer } from '../model/tokenizer.js';
import {
  describeTensor,
  externalTensor,
  graphInputs,
  graphOutputs,
  operatorCounts,
  opsetImports,
  parameterCount,
  type TensorInfo,
} from '../onnx/graph.js';
import { decodeModel, encodeModel, type ModelProto } from '../onnx/proto.js';
import { type Backend, createSession, RUNTIME_VERSION } from '../runtime/binding.js';
import { KILN_VERSION } from '../version.js';
import { cacheKey, commit, lookup, pruneStaging, stagingDir } from './cache.js';
import { fusionCounts } from './fusions.js';
import { imageBatches, sampleImages, verifyImages } from './image-data.js';
import { checkLogits, checkTextInputs } from './io-check.js';
import { analyticEstimate, measureReplica, PROCESS_BASE_BYTES, WORKER_OVERHEAD_BYTES } from './memory.js';
import { findUnsupportedOps, unsupportedOpsError } from './op-check.js';
import { appendPooling, embeddingHead, findHiddenOutput } from './pooling.js';
import { type QuantizeReport, quantizeModel } from './quantize.js';
import { sentenceTransformersPipeline } from './sentence-transformers.js';
import { type StaticQuantizeReport, staticQuantize } from './static-quantize.js';
import { taskFromConfig } from './task.js';
import { enforceLimits, verifyArtifact } from './verify.js';

/** The seed traces with `max_length=128`. */
export const DEFAULT_MAX_LENGTH = 128;
export const DEFAULT_MAX_BATCH = 32;
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
  /** Most sequences per inference call. @defaultValue 32 */
  maxBatch?: number;
  /** Read and write the compile cache. @defaultValue true */
  cache?: boolean;
  /** @defaultValue 'cpu' */
  backend?: Backend;
  /** `int8`: MatMul/Gemm weights quantized per channel, activations at run time. @defaultValue 'fp32' */
  precision?: Precision;
  /** int8 only: store the word-embedding table in int8 too (a smaller artifact). @defaultValue false */
  quantizeEmbeddings?: boolean;
  /** int8 only: node names (or prefixes ending in `*`) to keep in fp32. */
  keepFp32?: string[];
  /** A data file to check the compiled model against the fp32 source on (see verify.ts). */
  verify?: string | null;
  /** Most accuracy the compiled model may lose on `verify`, in percentage points. @defaultValue 1 */
  maxAccuracyDrop?: number;
  /** Without labels: least label agreement with the fp32 source, in [0, 1]. @defaultValue 0.98 */
  minAgreement?: number;
  /** What the model does; detected from config.json's architectures and the graph when unset. */
  task?: Task;
  /** feature-extraction: how token states become one vector. @defaultValue 'mean' */
  pooling?: Pooling;
  /** feature-extraction: scale vectors to unit length. @defaultValue true */
  normalize?: boolean;
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

export type Precision = 'fp32' | 'int8';
export const PRECISIONS: readonly Precision[] = ['fp32', 'int8'];

export type CompileStep =
  | 'hash'
  | 'import'
  | 'quantize'
  | 'verify'
  | 'measure-memory'
  | 'check-operators'
  | 'check-io'
  | 'optimize'
  | 'smoke-test'
  | 'write';

export interface CompileResult {
  artifactDir: string;
  manifest: Manifest;
  cache: 'hit' | 'miss' | 'off';
  cacheKey: string;
  durationMs: number;
}

/** The machine the optimized graph is made for; part of the cache key. */
export function compileTarget(): Manifest['compile']['target'] {
  return { platform: platform(), arch: arch(), cpu: cpus()[0]?.model.trim() ?? 'unknown' };
}

export async function compile(options: CompileOptions): Promise<CompileResult> {
  const started = performance.now();
  const backend = options.backend ?? 'cpu';
  const step = async <T>(name: CompileStep, work: () => Promise<T>): Promise<T> => {
    options.onStep?.(name, 'start');
    const result = await work();
    options.onStep?.(name, 'end');
    return result;
  };

  let source = await resolveSource(options.source, { hub: options.hub });
  // The source graph is read and decoded once: task detection, image checks and the build share it.
  const graphs = new GraphReader();
  // A bare image graph may come without config.json: its labels are then --labels.
  const rawConfig = source.configPath ? await readJson(source.configPath) : {};
  const configPath = source.configPath ?? source.path;
  // Labels are the classes of a classifier; an embedding model has none, so id2label may be absent.
  let config = parseConfig(rawConfig, configPath, { labels: 'optional' });
  const task = await resolveTask(options.task ?? taskFromConfig(config), source, graphs);
  // Embeddings from a folder whose graph ends in a classifier head: its checkpoint is the source
  // (imported without the head), so its weights are what the cache key hashes.
  if (task === 'feature-extraction' && source.onnxPath !== null && (await needsHeadlessImport(source, graphs))) {
    source = { ...source, kind: 'hf-checkpoint', onnxPath: null, weightFiles: await checkpointFiles(source.path) };
  }
  if (task === 'image-classification') {
    config = { ...config, labels: imageLabels(options.labels, rawConfig, configPath, source.configPath !== null) };
  } else {
    requireCompanion(source, 'config.json');
    requireCompanion(source, 'tokenizer.json');
    if (task !== 'feature-extraction') parseConfig(rawConfig, configPath);
  }
  const image = task === 'image-classification' ? await resolveImage(source, options.image ?? {}, graphs) : null;
  // Image models quantize statically: activation ranges come from sample images.
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
  const calibration = options.calibrate
    ? { path: resolve(options.calibrate), ...(await sampleImages(options.calibrate)) }
    : null;
  const imageVerify =
    image && options.verify ? { path: resolve(options.verify), ...(await sampleImages(options.verify)) } : null;
  // Flags, then a sentence-transformers folder's own pipeline, then mean pooling and unit vectors.
  // The folder that holds config.json holds modules.json too (for onnx/model.onnx, the one above).
  const modelHome = source.configPath
    ? dirname(source.configPath)
    : source.kind === 'onnx-file'
      ? dirname(source.path)
      : source.path;
  const pipeline =
    task === 'feature-extraction'
      ? await sentenceTransformersPipeline(modelHome, { pooling: options.pooling === undefined })
      : null;
  const embedding = pipeline
    ? {
        pooling: options.pooling ?? pipeline.pooling ?? 'mean',
        normalize: options.normalize ?? pipeline.normalize ?? true,
      }
    : null;
  if (task === 'feature-extraction' && options.verify) {
    throw new KilnError('KILN_ERR_CLI_INVALID_FLAG', {
      flag: '--verify',
      rule: 'used with classifiers only (it compares labels); an embedding model has none',
      value: options.verify,
    });
  }
  // Sequence length means nothing for an image: every input is one fixed-size tensor.
  const limits = image
    ? { maxLength: 1, maxBatch: resolveLimits({ ...options, maxLength: 2 }, config).maxBatch }
    : resolveLimits(options, config);
  const out =
    options.out === undefined ? resolve(`${source.name}.kiln`) : options.out === null ? null : resolve(options.out);
  if (out !== null) await assertWritableOutput(out);

  const sourceSha256 = await step('hash', () => hashSource(source));
  const precision = options.precision ?? 'fp32';
  const quantization =
    precision === 'int8'
      ? { quantizeEmbeddings: options.quantizeEmbeddings ?? false, keepFp32: options.keepFp32 ?? [] }
      : null;
  // A missing verify file fails now, not after minutes of importing and optimizing.
  if (options.verify && !imageVerify && (await pathKind(options.verify)) !== 'file')
    throw new KilnError('KILN_ERR_INPUT_FILE_NOT_FOUND', { path: options.verify });
  const verify = options.verify
    ? {
        path: resolve(options.verify),
        sha256: imageVerify ? imageVerify.sha256 : await sha256File(resolve(options.verify)),
        maxAccuracyDrop: options.maxAccuracyDrop ?? 1,
        minAgreement: options.minAgreement ?? 0.98,
      }
    : null;
  const key = cacheKey({
    sourceSha256,
    // Everything the manifest derives from the options belongs in the key (the buckets too).
    options: {
      ...limits,
      buckets: defaultBuckets(limits.maxLength),
      backend,
      optimization: 'all',
      precision,
      quantization,
      verify: verify && { ...verify, path: undefined },
      task,
      embedding,
      image,
      labels: config.labels,
      calibration: calibration?.sha256 ?? null,
    },
    target: compileTarget(),
    kilnVersion: KILN_VERSION,
    runtimeVersion: RUNTIME_VERSION,
  });
  const useCache = options.cache !== false;

  if (useCache) {
    const hit = await lookup(key);
    if (hit) {
      const artifactDir = out === null ? hit : await publish(hit, out, 'copy');
      const { manifest } = await readArtifact(artifactDir, { verify: false });
      return { artifactDir, manifest, cache: 'hit', cacheKey: key, durationMs: performance.now() - started };
    }
    await pruneStaging().catch(() => undefined);
  }

  const staging = useCache ? await stagingDir(key) : temporarySibling(out ?? resolve(`${source.name}.kiln`));
  try {
    await mkdir(staging, { recursive: true });
    const manifest = await build({
      source,
      config: task === 'feature-extraction' ? { ...config, labels: [] } : config,
      limits,
      backend,
      staging,
      sourceSha256,
      step,
      started,
      precision,
      quantization,
      verify,
      task,
      embedding,
      image,
      calibration,
      verifyImages: imageVerify?.paths ?? null,
      graphs,
    });
    let artifactDir: string;
    if (useCache) {
      const entry = await commit(staging, key);
      artifactDir = out === null ? entry : await publish(entry, out, 'copy');
    } else {
      artifactDir = await publish(staging, out ?? resolve(`${source.name}.kiln`), 'move');
    }
    return {
      artifactDir,
      manifest,
      cache: useCache ? 'miss' : 'off',
      cacheKey: key,
      durationMs: performance.now() - started,
    };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

function resolveLimits(options: CompileOptions, config: ModelConfig): { maxLength: number; maxBatch: number } {
  const cap = config.maxPositions ?? Infinity;
  const maxLength = options.maxLength ?? Math.min(DEFAULT_MAX_LENGTH, cap);
  if (!Number.isInteger(maxLength) || maxLength < 2 || maxLength > cap) {
    throw new KilnError('KILN_ERR_CLI_INVALID_FLAG', {
      flag: '--max-length',
      rule: `an integer in [2, ${cap}]${Number.isFinite(cap) ? " (this model's position embeddings)" : ''}`,
      value: String(options.maxLength),
    });
  }
  const maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
  if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > MAX_BATCH_LIMIT) {
    throw new KilnError('KILN_ERR_CLI_INVALID_FLAG', {
      flag: '--max-batch',
      rule: `an integer in [1, ${MAX_BATCH_LIMIT}]`,
      value: String(options.maxBatch),
    });
  }
  return { maxLength, maxBatch };
}

/** Refuses to overwrite a folder or file that is not a kiln artifact. */
async function assertWritableOutput(out: string): Promise<void> {
  const kind = await pathKind(out);
  if (kind === 'missing') return;
  if (kind === 'dir' && (await isArtifactDir(out))) return;
  throw new KilnError('KILN_ERR_OUTPUT_EXISTS', { path: out });
}

/** Source files that decide the artifact's content, by role. */
function sourceFiles(source: ModelSource): Array<[string, string]> {
  return [
    ...companionPaths(source),
    ...source.extraFiles.map((f): [string, string] => [basename(f), f]),
    ...(source.onnxPath ? [['model.onnx', source.onnxPath] as [string, string]] : []),
    ...source.weightFiles.map((f): [string, string] => [basename(f), f]),
  ];
}

/** The files copied into the artifact beside the optimized graph. */
function companionFiles(source: ModelSource): Array<[string, string]> {
  return [...companionPaths(source), ...source.extraFiles.map((f): [string, string] => [basename(f), f])];
}

/** config.json and tokenizer.json, those present (an image model has no tokenizer). */
function companionPaths(source: ModelSource): Array<[string, string]> {
  const files: Array<[string, string]> = [];
  if (source.configPath) files.push(['config.json', source.configPath]);
  if (source.tokenizerPath) files.push(['tokenizer.json', source.tokenizerPath]);
  return files;
}

/**
 * A Hub snapshot's files are named by the hashes in the Hub's listing (checked at download), so
 * its key is repo + commit + those names and nothing is read; a local file is hashed.
 */
async function hashSource(source: ModelSource): Promise<string> {
  const lines: string[] = source.hub ? [`hub ${source.hub.repo} ${source.hub.commit}`] : [];
  for (const [role, path] of sourceFiles(source)) {
    const blob = source.hub ? await snapshotFileId(path) : null;
    lines.push(`${role} ${blob ?? (await sha256File(path))}`);
  }
  return sha256(lines.join('\n'));
}

interface BuildInput {
  source: ModelSource;
  config: ModelConfig;
  limits: { maxLength: number; maxBatch: number };
  backend: Backend;
  staging: string;
  sourceSha256: string;
  started: number;
  step: <T>(name: CompileStep, work: () => Promise<T>) => Promise<T>;
  precision: Precision;
  quantization: { quantizeEmbeddings: boolean; keepFp32: string[] } | null;
  verify: { path: string; maxAccuracyDrop: number; minAgreement: number } | null;
  task: Task;
  embedding: { pooling: Pooling; normalize: boolean } | null;
  image: ImagePreprocessing | null;
  /** Static int8 of an image model: the sample images. */
  calibration: { path: string; paths: string[] } | null;
  /** --verify on an image model: the images to compare on. */
  verifyImages: string[] | null;
  /** The source graph, decoded once (task detection may have read it already). */
  graphs: GraphReader;
}

async function build(input: BuildInput): Promise<Manifest> {
  const { source, staging, step } = input;

  // A checkpoint becomes a graph first; it is imported next to the staging folder, not in it.
  const imported = source.onnxPath === null ? temporarySibling(staging) : null;
  try {
    const onnxPath = imported
      ? await step('import', async () => {
          await importCheckpoint({ dir: source.path, out: imported, headless: input.task === 'feature-extraction' });
          return join(imported, 'onnx', 'model.onnx');
        })
      : source.onnxPath!;
    return await buildFromGraph(input, onnxPath, imported ? source.path : onnxPath);
  } finally {
    if (imported) await rm(imported, { recursive: true, force: true });
  }
}

/** `shownPath` names the model in errors: the checkpoint folder when the graph was imported. */
async function buildFromGraph(input: BuildInput, onnxPath: string, shownPath: string): Promise<Manifest> {
  const { source, config, limits, backend, staging, step } = input;

  const model = await step('check-operators', async () => {
    const decoded = await input.graphs.read(onnxPath);
    await checkOperators(decoded, onnxPath, backend);
    const external = externalTensor(decoded.graph ?? {});
    if (external) throw new KilnError('KILN_ERR_ONNX_EXTERNAL_DATA', { path: onnxPath, tensor: external });
    return decoded;
  });

  let head: EmbeddingHead | null = null;
  const tokenizer = await step('check-io', async () => {
    if (input.image) {
      // The inputs were checked when the preprocessing was resolved (resolveImage).
      checkLogits(shownPath, graphOutputs(model.graph ?? {}), config.labels);
      return null;
    }
    checkTextInputs(shownPath, graphInputs(model.graph ?? {}));
    if (input.embedding) {
      const hidden = findHiddenOutput(model);
      const size = hidden?.hidden ?? config.encoderShape?.hidden ?? null;
      if (!hidden || size === null) {
        throw new KilnError('KILN_ERR_MODEL_OUTPUTS', {
          path: shownPath,
          found:
            graphOutputs(model.graph ?? {})
              .map(describeTensor)
              .join(', ') || 'none',
          problem:
            'feature-extraction needs the token states: a float output last_hidden_state [batch, sequence, hidden] (with hidden known from the graph or config.json); export the base model, or compile a checkpoint folder (kiln imports it without its head)',
        });
      }
      head = embeddingHead({ ...input.embedding, hiddenOutput: hidden.name, hidden: size });
    } else {
      checkLogits(shownPath, graphOutputs(model.graph ?? {}), config.labels);
    }
    const tokenizerConfigPath = source.extraFiles.find((f) => basename(f) === 'tokenizer_config.json');
    const tokenizerConfig = tokenizerConfigPath ? await readJson(tokenizerConfigPath) : {};
    const tokenizerPath = source.tokenizerPath!;
    const tokenizer = new TextTokenizer(await readJson(tokenizerPath), tokenizerConfig, tokenizerPath);
    if (config.vocabSize !== null && tokenizer.vocabSize > config.vocabSize) {
      throw new KilnError('KILN_ERR_TOKENIZER_MISMATCH', {
        tokenizer: tokenizerPath,
        maxId: tokenizer.vocabSize - 1,
        rows: config.vocabSize,
      });
    }
    return tokenizer;
  });

  let optimizeFrom = onnxPath;
  const scratch = temporarySibling(staging);
  // Embeddings: pooling joins the graph before optimizing, so ONNX Runtime plans it with the rest.
  let graphModel = model;
  if (head) {
    const h: EmbeddingHead = head;
    graphModel = appendPooling(
      model,
      { pooling: h.pooling, normalize: h.normalize, hiddenOutput: h.hiddenOutput, hidden: h.dimension },
      shownPath,
    );
    if (!input.quantization) {
      await mkdir(scratch, { recursive: true });
      optimizeFrom = join(scratch, 'pooled.onnx');
      await writeFile(optimizeFrom, encodeModel(graphModel));
    }
  }
  // int8: quantize the source graph, before ONNX Runtime's optimizer fuses MatMul + Add away.
  let quantized: QuantizeReport | null = null;
  let staticReport: StaticQuantizeReport | null = null;
  if (input.quantization && input.image && input.calibration) {
    const spec = input.image;
    const samples = input.calibration;
    staticReport = await step('quantize', async () => {
      const { model: q, report } = await staticQuantize(graphModel, {
        calibration: imageBatches(samples.paths, spec, samples.path),
        inputName: spec.input,
        keep: input.quantization!.keepFp32,
      });
      await mkdir(scratch, { recursive: true });
      optimizeFrom = join(scratch, 'quantized.onnx');
      await writeFile(optimizeFrom, encodeModel(q));
      return report;
    });
  } else if (input.quantization) {
    quantized = await step('quantize', async () => {
      const { model: q, report } = quantizeModel(graphModel, {
        ...input.quantization!,
        keep: input.quantization!.keepFp32,
      });
      await mkdir(scratch, { recursive: true });
      optimizeFrom = join(scratch, 'quantized.onnx');
      await writeFile(optimizeFrom, encodeModel(q));
      return report;
    });
  }

  const modelPath = join(staging, MODEL_FILE);
  const optimized = await step('optimize', async () => {
    const session = await createSession(optimizeFrom, {
      backend,
      optimization: 'all',
      optimizedModelPath: modelPath,
    }).finally(() => rm(scratch, { recursive: true, force: true }));
    await session.release();
    if ((await pathKind(modelPath)) !== 'file') {
      throw new KilnError('KILN_ERR_COMPILE_FAILED', {
        path: onnxPath,
        step: 'optimizing',
        reason: 'ONNX Runtime wrote no optimized graph',
      });
    }
    const decoded = decodeModel(await readFile(modelPath), modelPath);
    // The optimizer may introduce fused kernels; they must exist for this backend too.
    const unsupported = findUnsupportedOps(decoded, backend);
    if (unsupported.length > 0) throw unsupportedOpsError(unsupported, backend);
    return decoded;
  });

  const inputs = graphInputs(optimized.graph ?? {});
  const outputs = graphOutputs(optimized.graph ?? {});
  const outputWidth = head ? (head as EmbeddingHead).dimension : config.labels.length;
  const image = input.image;
  await step('smoke-test', () =>
    image
      ? smokeTestImage(modelPath, shownPath, backend, image, outputWidth)
      : smokeTest(
          modelPath,
          shownPath,
          backend,
          inputs,
          outputWidth,
          tokenizer!,
          head ? 'values per text (the embedding size)' : 'logits per text (one per label in config.json)',
        ),
  );

  const memory = await step('measure-memory', async (): Promise<MemoryFigures> => {
    const weightsBytes = (await stat(modelPath)).size;
    const tokenizerConfig = input.source.extraFiles.find((f) => basename(f) === 'tokenizer_config.json') ?? null;
    const feed = image
      ? { image: [3, image.height, image.width] }
      : { file: input.source.tokenizerPath!, configFile: tokenizerConfig };
    const measured = await measureReplica(modelPath, inputs, limits.maxBatch, limits.maxLength, feed);
    const measuredBytes = measured.sessionBytes;
    const shape = config.encoderShape;
    return {
      weightsBytes,
      estimateBytes: shape
        ? analyticEstimate(weightsBytes, { batch: limits.maxBatch, length: limits.maxLength, ...shape })
        : 2 * weightsBytes + 20 * 2 ** 20,
      measuredBytes,
      perReplicaBytes: measuredBytes + WORKER_OVERHEAD_BYTES,
      processBytes: measured.tokenizerBytes + PROCESS_BASE_BYTES,
      batch: limits.maxBatch,
      length: limits.maxLength,
    };
  });

  const verified = input.verify
    ? await step('verify', async () => {
        const v = input.verify!;
        if (image && input.verifyImages) {
          const report = await verifyImages({
            path: v.path,
            paths: input.verifyImages,
            spec: image,
            labels: config.labels,
            referencePath: onnxPath,
            compiledPath: modelPath,
            backend,
            minAgreement: v.minAgreement,
            maxAccuracyDrop: v.maxAccuracyDrop,
          });
          enforceLimits(report, input.precision);
          return report;
        }
        const report = await verifyArtifact({
          dataset: await readDataset(v.path),
          labels: config.labels,
          tokenizer: tokenizer!,
          maxLength: limits.maxLength,
          backend,
          referencePath: onnxPath,
          referenceInputs: graphInputs(model.graph ?? {}),
          compiledPath: modelPath,
          compiledInputs: inputs,
          maxAccuracyDrop: v.maxAccuracyDrop,
          minAgreement: v.minAgreement,
        });
        enforceLimits(report, input.precision);
        return report;
      })
    : null;

  return step('write', async () => {
    const copied: string[] = [];
    for (const [name, path] of companionFiles(input.source)) {
      await copyFile(path, join(staging, name));
      copied.push(name);
    }
    const files: Manifest['files'] = {};
    for (const name of [MODEL_FILE, ...copied]) {
      const path = join(staging, name);
      files[name] = { sha256: await sha256File(path), bytes: (await stat(path)).size };
    }
    const manifest: Manifest = {
      format: ARTIFACT_FORMAT,
      formatVersion: formatVersionFor(input.task),
      name: source.name,
      task: input.task,
      labels: config.labels,
      ...(tokenizer
        ? {
            tokenizer: {
              file: 'tokenizer.json',
              configFile: copied.includes('tokenizer_config.json') ? 'tokenizer_config.json' : null,
              ...tokenizer.describe(),
            },
          }
        : {}),
      ...(image ? { image } : {}),
      model: {
        file: MODEL_FILE,
        inputs,
        outputs,
        opsets: opsetImports(optimized),
        parameters: parameterCount(model.graph ?? {}),
        operators: { source: operatorCounts(model.graph ?? {}), optimized: operatorCounts(optimized.graph ?? {}) },
        fusions: fusionCounts(operatorCounts(optimized.graph ?? {})),
      },
      ...(head ? { embedding: head } : {}),
      ...(config.synthetic ? { synthetic: config.synthetic } : {}),
      precision: input.precision,
      ...(quantized ? { quantization: quantized } : {}),
      ...(staticReport ? { staticQuantization: staticReport } : {}),
      ...(verified ? { verify: verified } : {}),
      memory,
      limits: { ...limits, buckets: defaultBuckets(limits.maxLength) },
      source: { kind: source.kind, path: source.path, name: source.name, sha256: input.sourceSha256 },
      compile: {
        options: {
          ...limits,
          precision: input.precision,
          ...(input.quantization ?? {}),
          task: input.task,
          ...(input.embedding ?? {}),
          ...(image ? { image } : {}),
        },
        optimization: 'all',
        backend,
        target: compileTarget(),
        durationMs: Math.round(performance.now() - input.started),
        createdAt: new Date().toISOString(),
      },
      versions: { kiln: KILN_VERSION, onnxruntime: RUNTIME_VERSION, node: process.versions.node },
      files,
    };
    await writeFile(join(staging, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    return manifest;
  });
}

async function checkOperators(model: ModelProto, path: string, backend: Backend): Promise<void> {
  let unsupported = findUnsupportedOps(model, backend);
  if (unsupported.length === 0) return;
  // ONNX defines some standard ops as functions that ONNX Runtime expands when it has no kernel.
  // The table cannot tell those apart, so a default-domain verdict is confirmed by loading.
  if (unsupported.some((u) => u.domain === '' || u.domain === 'ai.onnx.ml')) {
    const loads = await createSession(path, { backend, optimization: 'disabled' }).then(
      async (s) => {
        await s.release();
        return true;
      },
      () => false,
    );
    if (loads) unsupported = unsupported.filter((u) => u.domain !== '' && u.domain !== 'ai.onnx.ml');
  }
  if (unsupported.length > 0) throw unsupportedOpsError(unsupported, backend);
}

/** One inference on the optimized graph, so an artifact that cannot run is never written. */
async function smokeTest(
  modelPath: string,
  sourcePath: string,
  backend: Backend,
  inputs: TensorInfo[],
  classes: number,
  tokenizer: TextTokenizer,
  what: string,
): Promise<void> {
  const session = await createSession(modelPath, { backend, optimization: 'disabled', intraOpThreads: 1 });
  try {
    const encoded = [
      tokenizer.encode('kiln compiles this sentence.', DEFAULT_MAX_LENGTH),
      tokenizer.encode('short', DEFAULT_MAX_LENGTH),
    ];
    const results = await session.run(buildFeeds(encoded, inputs, tokenizer.padId));
    const logits = results[session.outputNames[0] ?? ''];
    if (logits?.dims.length !== 2 || logits.dims[0] !== encoded.length || logits.dims[1] !== classes) {
      throw new KilnError('KILN_ERR_MODEL_OUTPUTS', {
        path: sourcePath,
        found: `${session.outputNames[0]} with shape [${logits?.dims.join(', ')}]`,
        problem: `a test inference on ${encoded.length} texts did not return ${classes} ${what}`,
      });
    }
  } catch (err) {
    if (err instanceof KilnError && err.code !== 'KILN_ERR_RUNTIME_RUN') throw err;
    throw new KilnError(
      'KILN_ERR_COMPILE_FAILED',
      { path: sourcePath, step: 'running a test inference', reason: (err as Error).message },
      { cause: err },
    );
  } finally {
    await session.release();
  }
}

/** {@link smokeTest} for an image model: a batch of two random images at the compiled size. */
async function smokeTestImage(
  modelPath: string,
  sourcePath: string,
  backend: Backend,
  image: ImagePreprocessing,
  classes: number,
): Promise<void> {
  const session = await createSession(modelPath, { backend, optimization: 'disabled', intraOpThreads: 1 });
  try {
    const size = 3 * image.height * image.width;
    const data = new Float32Array(2 * size);
    for (let i = 0; i < data.length; i += 1) data[i] = ((i * 7919) % 255) / 127.5 - 1;
    const results = await session.run({
      [image.input]: { type: 'float32', data, dims: [2, 3, image.height, image.width] },
    });
    const logits = results[session.outputNames[0] ?? ''];
    if (logits?.dims.length !== 2 || logits.dims[0] !== 2 || logits.dims[1] !== classes) {
      throw new KilnError('KILN_ERR_MODEL_OUTPUTS', {
        path: sourcePath,
        found: `${session.outputNames[0]} with shape [${logits?.dims.join(', ')}]`,
        problem: `a test inference on 2 images of ${image.height} × ${image.width} did not return ${classes} logits per image (one per label)`,
      });
    }
  } catch (err) {
    if (err instanceof KilnError && err.code !== 'KILN_ERR_RUNTIME_RUN') throw err;
    throw new KilnError(
      'KILN_ERR_COMPILE_FAILED',
      { path: sourcePath, step: 'running a test inference', reason: (err as Error).message },
      { cause: err },
    );
  } finally {
    await session.release();
  }
}

/** Puts a finished artifact at `out`, replacing an older artifact there. */
async function publish(from: string, out: string, how: 'copy' | 'move'): Promise<string> {
  await assertWritableOutput(out);
  let staged = from;
  if (how === 'copy') {
    staged = temporarySibling(out);
    await copyFlatDir(from, staged);
  }
  await replaceDir(staged, out);
  return out;
}

/**
 * The task when config.json did not decide it: a graph with one float input of rank 4 is an
 * image classifier, one that outputs token states an embedding model, anything else a text
 * classifier (checked against its labels later).
 */
async function resolveTask(fromConfig: Task | null, source: ModelSource, graphs: GraphReader): Promise<Task> {
  if (fromConfig) return fromConfig;
  if (source.onnxPath === null) return 'text-classification';
  const model = await graphs.read(source.onnxPath);
  if (imageInput(graphInputs(model.graph ?? {}))) return 'image-classification';
  return findHiddenOutput(model) ? 'feature-extraction' : 'text-classification';
}

/** An image model's class names: --labels, else config.json's id2label (required then). */
function imageLabels(flag: string[] | undefined, rawConfig: unknown, configPath: string, hasConfig: boolean): string[] {
  if (flag && flag.length > 0) return flag;
  if (hasConfig) return parseConfig(rawConfig, configPath).labels;
  throw new KilnError('KILN_ERR_CLI_INVALID_FLAG', {
    flag: '--labels',
    rule: 'given for an ONNX file without config.json: the class names in logit order, comma-separated (e.g. --labels 0,180)',
    value: '',
  });
}

/**
 * The preprocessing of an image model: flags over preprocessor_config.json over defaults; the
 * tensor size from the flags, else the graph's fixed height and width, else the config's.
 * Checks the graph takes one float [batch, 3, H, W] input of that size.
 */
async function resolveImage(
  source: ModelSource,
  overrides: ImageOverrides,
  graphs: GraphReader,
): Promise<ImagePreprocessing> {
  if (source.onnxPath === null) {
    throw new KilnError('KILN_ERR_SOURCE_MISSING_FILE', {
      path: source.given,
      file: 'onnx/model.onnx or model.onnx',
      purpose: 'an image model (kiln imports text checkpoints only; export the model to ONNX)',
    });
  }
  const model = await graphs.read(source.onnxPath);
  const inputs = graphInputs(model.graph ?? {});
  const fail = (problem: string): never => {
    throw new KilnError('KILN_ERR_MODEL_IMAGE_INPUTS', {
      path: source.given,
      found: inputs.map(describeTensor).join(', ') || 'none',
      problem,
    });
  };
  const input = imageInput(inputs) ?? fail('it does not take exactly one float input of rank 4');
  const [, channels, graphHeight, graphWidth] = input.shape!;
  if (typeof channels === 'number' && channels !== 3) fail(`"${input.name}" has ${channels} channels, not 3 (RGB)`);
  const preprocessorPath = source.extraFiles.find((f) => basename(f) === 'preprocessor_config.json');
  const fromConfig = preprocessorPath
    ? preprocessingFromConfig(await readJson(preprocessorPath), preprocessorPath)
    : {};
  const fixed = (d: unknown): number | undefined => (typeof d === 'number' && d > 0 ? d : undefined);
  const height =
    overrides.height ??
    fixed(graphHeight) ??
    fromConfig.height ??
    fail(`"${input.name}" leaves its height open and neither --image-size nor preprocessor_config.json gives it`);
  const width =
    overrides.width ??
    fixed(graphWidth) ??
    fromConfig.width ??
    fail(`"${input.name}" leaves its width open and neither --image-size nor preprocessor_config.json gives it`);
  if ((fixed(graphHeight) ?? height) !== height || (fixed(graphWidth) ?? width) !== width) {
    fail(
      `the graph fixes "${input.name}" at ${graphHeight} × ${graphWidth} while ${overrides.height ? '--image-size' : 'preprocessor_config.json'} asks for ${height} × ${width}`,
    );
  }
  const parts: Partial<ImagePreprocessing> = { ...fromConfig };
  for (const key of ['mean', 'std', 'channels', 'resize'] as const)
    if (overrides[key] !== undefined) Object.assign(parts, { [key]: overrides[key] });
  // A graph ending in Softmax returns scores already; softmax over them again would flatten them.
  const last = (model.graph?.node ?? []).find((n) =>
    n.output?.includes(graphOutputs(model.graph ?? {})[0]?.name ?? ''),
  );
  return completePreprocessing(
    input.name,
    height,
    width,
    parts,
    last?.opType === 'Softmax' ? 'probabilities' : 'logits',
  );
}

/** An ONNX folder whose graph has no token-state output but whose checkpoint is beside it. */
async function needsHeadlessImport(source: ModelSource, graphs: GraphReader): Promise<boolean> {
  const model = await graphs.read(source.onnxPath!);
  if (findHiddenOutput(model)) return false;
  return source.kind === 'hf-folder' && (await checkpointFiles(source.path)).length > 0;
}

/** Decodes an ONNX file once and keeps only the latest: compile reads the source graph from several steps. */
class GraphReader {
  private last: { path: string; model: ModelProto } | null = null;

  async read(path: string): Promise<ModelProto> {
    if (this.last?.path !== path) this.last = { path, model: decodeModel(await readFile(path), path) };
    return this.last.model;
  }
}
