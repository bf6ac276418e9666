/**
 * The build a cache miss runs, one stage after another: import a checkpoint, check the
 * operators, check the inputs and outputs, append the task's graph tail (embedding pooling),
 * quantize, let ONNX Runtime optimize, run a test inference, measure a replica's memory, verify
 * against the source, write the artifact. Each stage is one function here; `build` lists them.
 */
import { copyFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { KilnError } from '../core/errors.js';
import { pathKind, temporarySibling } from '../core/fs.js';
import { sha256File } from '../core/hash.js';
import { importCheckpoint } from '../import/import.js';
import type { Fp16Report, Placement } from '../model/artifact.js';
import { ARTIFACT_FORMAT, MANIFEST_FILE, type Manifest, type MemoryFigures, MODEL_FILE } from '../model/artifact.js';
import { readDataset } from '../model/dataset.js';
import type { PruneReport, QuantizeReport, StaticQuantizeReport, VerifyReport } from '../model/reports.js';
import { readJson } from '../model/source.js';
import { TextTokenizer } from '../model/tokenizer.js';
import {
  externalTensor,
  graphInputs,
  graphOutputs,
  operatorCounts,
  opsetImports,
  parameterCount,
} from '../onnx/graph.js';
import { decodeModel, encodeModel, type ModelProto } from '../onnx/proto.js';
import { type Backend, createSession, isGpu, RUNTIME_VERSION } from '../runtime/binding.js';
import { checkTextInputs } from '../tasks/io-check.js';
import { findTaskModule } from '../tasks/registry.js';
import type { CheckedHead, HeadOptions, TaskModule } from '../tasks/task.js';
import { KILN_VERSION } from '../version.js';
import type { CompileStep } from './compile-options.js';
import { convertToFp16 } from './fp16.js';
import { fusionCounts } from './fusions.js';
import { imageBatches } from './image-data.js';
import { analyticEstimate, measureReplica, PROCESS_BASE_BYTES, WORKER_OVERHEAD_BYTES } from './memory.js';
import { findUnsupportedOps, unsupportedOpsError } from './op-check.js';
import { placeOperators } from './placement.js';
import { type CompilePlan, compileTarget, deviceBuckets } from './plan.js';
import { pruneToFirstToken } from './prune.js';
import { quantizeModel } from './quantize.js';
import { imageBatch, smokeTest, type TestBatch, textBatch } from './smoke-test.js';
import { companionFiles } from './source-files.js';
import { staticQuantize } from './static-quantize.js';
import { enforceLimits, verifyArtifact, verifyImages } from './verify.js';
import { verifyAnswers } from './verify-answers.js';

/** How a build reports and where it writes. */
export interface BuildRun {
  /** The artifact folder being written. */
  staging: string;
  sourceSha256: string;
  /** `performance.now()` when compile started, for the manifest's duration. */
  started: number;
  step: <T>(name: CompileStep, work: () => Promise<T>) => Promise<T>;
}

/** The source graph as the build sees it: decoded, where it is, and how errors name it. */
interface SourceGraph {
  model: ModelProto;
  path: string;
  /** The checkpoint folder when the graph was imported, else the graph file. */
  shownPath: string;
}

/** What checking the inputs and outputs found: the tokenizer of a text model, the task's head. */
interface Io {
  tokenizer: TextTokenizer | null;
  head: CheckedHead;
}

interface Pruned {
  model: ModelProto;
  report: PruneReport;
}

interface Quantized {
  model: ModelProto;
  quantization?: QuantizeReport;
  staticQuantization?: StaticQuantizeReport;
  fp16?: Fp16Report;
}

export async function build(plan: CompilePlan, run: BuildRun): Promise<Manifest> {
  return withSourceGraph(plan, run, async (onnxPath, shownPath) => {
    const source = await run.step('check-operators', () => checkGraph(plan, onnxPath, shownPath));
    const io = await run.step('check-io', () => checkIo(plan, source));
    const tail = withTaskTail(taskModule(plan), source, io.head);
    const pruned = await run.step('prune', async () => prune(plan, tail));
    const quantized = plan.quantization
      ? await run.step('quantize', () => quantize(plan, pruned.model))
      : { model: pruned.model };
    const modelPath = join(run.staging, MODEL_FILE);
    let optimized = await run.step('optimize', () => optimize(plan, source, quantized.model, modelPath, run.staging));
    if (plan.precision === 'fp16') {
      const converted = await run.step('fp16', () => toFp16(optimized, modelPath));
      optimized = converted.model;
      quantized.fp16 = converted.report;
    }
    const width = io.head.width;
    await run.step('smoke-test', () =>
      smokeTest(modelPath, shownPath, plan.backend, testBatch(plan, io, optimized), width),
    );
    const placement = isGpu(plan.backend)
      ? await run.step('place-operators', () =>
          placeOperators(modelPath, plan.backend, testBatch(plan, io, optimized).feeds),
        )
      : null;
    // The memory probe measures a CPU replica's resident memory; a GPU replica's memory is the
    // device's, which ONNX Runtime's WebGPU and CUDA providers do not report to Node.
    const memory = isGpu(plan.backend)
      ? null
      : await run.step('measure-memory', () => measureMemory(plan, modelPath, optimized));
    const built = { source, io, optimized, pruned, quantized, memory, placement };
    const verified = plan.verify
      ? await run.step('verify', () => verify(plan, run, { ...built, tail, modelPath }))
      : null;
    return run.step('write', () => writeArtifact(plan, run, { ...built, verified }));
  });
}

/**
 * Runs `work` on the source graph: a checkpoint is imported first, next to the staging folder
 * (not in it), and removed afterwards.
 */
async function withSourceGraph(
  plan: CompilePlan,
  run: BuildRun,
  work: (onnxPath: string, shownPath: string) => Promise<Manifest>,
): Promise<Manifest> {
  const { source } = plan;
  if (source.onnxPath !== null) return work(source.onnxPath, source.onnxPath);
  const imported = temporarySibling(run.staging);
  try {
    await run.step('import', () =>
      importCheckpoint({ dir: source.path, out: imported, headless: taskModule(plan).compile.headless === true }),
    );
    return await work(join(imported, 'onnx', 'model.onnx'), source.path);
  } finally {
    await rm(imported, { recursive: true, force: true });
  }
}

/** Every operator has a kernel in this backend, and every weight is inside the file. */
async function checkGraph(plan: CompilePlan, path: string, shownPath: string): Promise<SourceGraph> {
  const model = await plan.graphs.read(path);
  await checkOperators(model, path, plan.backend);
  const external = externalTensor(model.graph ?? {});
  if (external) throw new KilnError('KILN_ERR_ONNX_EXTERNAL_DATA', { path, tensor: external });
  return { model, path, shownPath };
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

/** The module of the task being compiled. */
function taskModule(plan: CompilePlan): TaskModule {
  return findTaskModule(plan.task)!;
}

/**
 * The graph takes what the tokenizer gives (an image model's input was checked when its
 * preprocessing was resolved) and answers what the task reads (its module's head check).
 * Text models also get their tokenizer, checked against the vocabulary.
 */
async function checkIo(plan: CompilePlan, { model, shownPath }: SourceGraph): Promise<Io> {
  const { config, source } = plan;
  const checkHead = (): CheckedHead =>
    taskModule(plan).compile.checkHead(model, {
      path: shownPath,
      labels: config.labels,
      hiddenSize: config.encoderShape?.hidden ?? null,
      options: plan.head,
      maxLength: plan.limits.maxLength,
    });
  if (plan.image) return { tokenizer: null, head: checkHead() };
  checkTextInputs(shownPath, graphInputs(model.graph ?? {}));
  const head = checkHead();
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
  return { tokenizer, head };
}

/** The task's graph tail (embedding pooling), appended before optimizing so ONNX Runtime plans it with the rest. */
function withTaskTail(module: TaskModule, { model, shownPath }: SourceGraph, head: CheckedHead): ModelProto {
  return module.compile.tail ? module.compile.tail(model, head, shownPath) : model;
}

/**
 * The last layer computed for the one token the outputs read (prune.ts), on the graph with its
 * tail (a CLS-pooled embedder reads one token too), before quantizing so that int8 sees the
 * pruned graph. `--no-prune` keeps the graph as it is.
 */
function prune(plan: CompilePlan, model: ModelProto): Pruned {
  if (!plan.prune) return { model, report: { pruned: false, reason: 'turned off (--no-prune)' } };
  try {
    return pruneToFirstToken(model, { length: plan.limits.maxLength });
  } catch (err) {
    // The pass only saves work: a graph it cannot read is compiled as it is, and the summary says so.
    const reason = `the pass could not read the graph (${(err as Error).message})`;
    return { model, report: { pruned: false, reason } };
  }
}

/**
 * int8, on the source graph, before ONNX Runtime's optimizer fuses MatMul + Add away: image
 * models statically (activation ranges calibrated on the sample images), text models
 * dynamically (activations quantized at run time).
 */
async function quantize(plan: CompilePlan, model: ModelProto): Promise<Quantized> {
  const keep = plan.quantization!.keepFp32;
  if (plan.image && plan.calibration) {
    const { image, calibration } = plan;
    const result = await staticQuantize(model, {
      calibration: imageBatches(calibration.paths, image, calibration.path),
      inputName: image.input,
      keep,
    });
    return { model: result.model, staticQuantization: result.report };
  }
  const result = quantizeModel(model, { ...plan.quantization!, keep });
  return { model: result.model, quantization: result.report };
}

/**
 * ONNX Runtime's `all`-level optimization for this machine, written to `modelPath`. A graph
 * compile changed is written beside the staging folder first (ONNX Runtime reads files). The
 * optimizer may introduce fused kernels; they must exist for this backend too.
 */
async function optimize(
  plan: CompilePlan,
  source: SourceGraph,
  model: ModelProto,
  modelPath: string,
  staging: string,
): Promise<ModelProto> {
  const scratch = model === source.model ? null : temporarySibling(staging);
  try {
    let from = source.path;
    if (scratch) {
      await mkdir(scratch, { recursive: true });
      from = join(scratch, 'model.onnx');
      await writeFile(from, encodeModel(model));
    }
    // A GPU artifact stores a portable graph: the basic level (constant folding, redundant nodes;
    // no provider's fused kernels or layouts), written by a CPU session, optimized for the
    // provider when a session loads it.
    const gpu = isGpu(plan.backend);
    const session = await createSession(from, {
      backend: 'cpu',
      optimization: gpu ? 'basic' : 'all',
      optimizedModelPath: modelPath,
    });
    await session.release();
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
  if ((await pathKind(modelPath)) !== 'file') {
    throw new KilnError('KILN_ERR_COMPILE_FAILED', {
      path: source.path,
      step: 'optimizing',
      reason: 'ONNX Runtime wrote no optimized graph',
    });
  }
  const optimized = decodeModel(await readFile(modelPath), modelPath);
  const unsupported = findUnsupportedOps(optimized, plan.backend);
  if (unsupported.length > 0) throw unsupportedOpsError(unsupported, plan.backend);
  return optimized;
}

/** The optimized graph with its MatMuls and embedding tables in fp16 (fp16.ts), written over it. */
async function toFp16(optimized: ModelProto, modelPath: string): Promise<{ model: ModelProto; report: Fp16Report }> {
  const converted = convertToFp16(optimized);
  await writeFile(modelPath, encodeModel(converted.model));
  return converted;
}

/** Two texts or two images, as the task takes them. */
function testBatch(plan: CompilePlan, io: Io, optimized: ModelProto): TestBatch {
  if (plan.image) return imageBatch(plan.image);
  return textBatch(io.tokenizer!, graphInputs(optimized.graph ?? {}), taskModule(plan).compile.row);
}

/** One replica measured in a fresh process at max batch × max length, beside the analytic estimate. */
async function measureMemory(plan: CompilePlan, modelPath: string, optimized: ModelProto): Promise<MemoryFigures> {
  const { limits, source, image } = plan;
  const weightsBytes = (await stat(modelPath)).size;
  const tokenizerConfig = source.extraFiles.find((f) => basename(f) === 'tokenizer_config.json') ?? null;
  const feed = image
    ? { image: [3, image.height, image.width] }
    : { file: source.tokenizerPath!, configFile: tokenizerConfig };
  const inputs = graphInputs(optimized.graph ?? {});
  const measured = await measureReplica(modelPath, inputs, limits.maxBatch, limits.maxLength, feed);
  const measuredBytes = measured.sessionBytes;
  const shape = plan.config.encoderShape;
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
}

/** The compiled graph against the unoptimized fp32 source, on the data file or the images; fails past the limits. */
async function verify(
  plan: CompilePlan,
  run: BuildRun,
  built: Omit<Built, 'verified'> & { tail: ModelProto; modelPath: string },
): Promise<VerifyReport> {
  const { config, backend } = plan;
  const { source, io, optimized, modelPath } = built;
  const settings = plan.verify!;
  const module = taskModule(plan);
  const report =
    plan.image && plan.verifyImages
      ? await verifyImages({
          path: settings.path,
          paths: plan.verifyImages,
          spec: plan.image,
          labels: config.labels,
          referencePath: source.path,
          compiledPath: modelPath,
          backend,
          minAgreement: settings.minAgreement,
          maxAccuracyDrop: settings.maxAccuracyDrop,
        })
      : module.verify
        ? await verifyByAnswers(plan, run, built, module)
        : await verifyArtifact({
            dataset: await readDataset(settings.path),
            labels: config.labels,
            tokenizer: io.tokenizer!,
            maxLength: plan.limits.maxLength,
            backend,
            referencePath: source.path,
            referenceInputs: graphInputs(source.model.graph ?? {}),
            compiledPath: modelPath,
            compiledInputs: graphInputs(optimized.graph ?? {}),
            maxAccuracyDrop: settings.maxAccuracyDrop,
            minAgreement: settings.minAgreement,
          });
  enforceLimits(report, plan.precision);
  return report;
}

/**
 * {@link verifyAnswers}: both graphs opened as the task's runtime class on the staging folder,
 * its companion files copied in and the manifest so far. The reference is the source graph with
 * the task's tail (a question-answering model's span output), written beside the staging folder.
 */
async function verifyByAnswers(
  plan: CompilePlan,
  run: BuildRun,
  built: Omit<Built, 'verified'> & { tail: ModelProto; modelPath: string },
  module: TaskModule,
): Promise<VerifyReport> {
  const settings = plan.verify!;
  const copied = await copyCompanions(plan, run.staging);
  const manifest = artifactManifest(plan, run, { ...built, memory: null, verified: null }, copied, {});
  const scratch = built.tail === built.source.model ? null : temporarySibling(run.staging);
  try {
    let referencePath = built.source.path;
    if (scratch) {
      await mkdir(scratch, { recursive: true });
      referencePath = join(scratch, 'reference.onnx');
      await writeFile(referencePath, encodeModel(built.tail));
    }
    return await verifyAnswers({
      module,
      hooks: module.verify!,
      dataset: await readDataset(settings.path),
      dir: run.staging,
      manifest,
      referencePath,
      compiledPath: built.modelPath,
      backend: plan.backend,
      maxAccuracyDrop: settings.maxAccuracyDrop,
      minAgreement: settings.minAgreement,
    });
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}

/** What the build made, for the manifest. */
interface Built {
  source: SourceGraph;
  io: Io;
  optimized: ModelProto;
  pruned: Pruned;
  quantized: Quantized;
  memory: MemoryFigures | null;
  verified: VerifyReport | null;
  placement: Placement | null;
}

/** Copies the source's companion files (config, tokenizer) into the staging folder; their names. */
async function copyCompanions(plan: CompilePlan, staging: string): Promise<string[]> {
  const copied: string[] = [];
  for (const [name, path] of companionFiles(plan.source)) {
    await copyFile(path, join(staging, name));
    copied.push(name);
  }
  return copied;
}

/** The companion files copied in, every file hashed, and manifest.json written last. */
async function writeArtifact(plan: CompilePlan, run: BuildRun, built: Built): Promise<Manifest> {
  const copied = await copyCompanions(plan, run.staging);
  const files: Manifest['files'] = {};
  for (const name of [MODEL_FILE, ...copied]) {
    const path = join(run.staging, name);
    files[name] = { sha256: await sha256File(path), bytes: (await stat(path)).size };
  }
  const manifest = artifactManifest(plan, run, built, copied, files);
  await writeFile(join(run.staging, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** The manifest of what the build made; verify opens the runtime class with one before the files are hashed. */
function artifactManifest(
  plan: CompilePlan,
  run: BuildRun,
  built: Built,
  copied: readonly string[],
  files: Manifest['files'],
): Manifest {
  const { source, config, image, limits, backend } = plan;
  const { io, optimized, pruned, quantized, memory, verified, placement } = built;
  const model = built.source.model;
  return {
    format: ARTIFACT_FORMAT,
    formatVersion: taskModule(plan).formatVersion,
    name: source.name,
    task: plan.task,
    labels: config.labels,
    ...(io.tokenizer
      ? {
          tokenizer: {
            file: 'tokenizer.json',
            configFile: copied.includes('tokenizer_config.json') ? 'tokenizer_config.json' : null,
            ...io.tokenizer.describe(),
          },
        }
      : {}),
    ...(image ? { image } : {}),
    model: {
      file: MODEL_FILE,
      inputs: graphInputs(optimized.graph ?? {}),
      outputs: graphOutputs(optimized.graph ?? {}),
      opsets: opsetImports(optimized),
      parameters: parameterCount(model.graph ?? {}),
      operators: { source: operatorCounts(model.graph ?? {}), optimized: operatorCounts(optimized.graph ?? {}) },
      fusions: fusionCounts(operatorCounts(optimized.graph ?? {})),
      ...(config.encoderShape && !image ? { encoder: config.encoderShape } : {}),
    },
    ...io.head.manifest,
    ...(config.synthetic ? { synthetic: config.synthetic } : {}),
    precision: plan.precision,
    pruning: pruned.report,
    ...(quantized.quantization ? { quantization: quantized.quantization } : {}),
    ...(quantized.staticQuantization ? { staticQuantization: quantized.staticQuantization } : {}),
    ...(quantized.fp16 ? { fp16: quantized.fp16 } : {}),
    ...(verified ? { verify: verified } : {}),
    ...(memory ? { memory } : {}),
    limits: { ...limits, buckets: deviceBuckets(backend, limits.maxLength) },
    source: { kind: source.kind, path: source.path, name: source.name, sha256: run.sourceSha256 },
    compile: {
      options: {
        ...limits,
        precision: plan.precision,
        prune: plan.prune,
        ...(plan.quantization ?? {}),
        task: plan.task,
        ...(plan.head ? headOptionsRecorded(plan.head) : {}),
        ...(image ? { image } : {}),
      },
      optimization: isGpu(backend) ? 'basic' : 'all',
      backend,
      ...(placement ? { placement } : {}),
      target: compileTarget(),
      durationMs: Math.round(performance.now() - run.started),
      createdAt: new Date().toISOString(),
    },
    versions: { kiln: KILN_VERSION, onnxruntime: RUNTIME_VERSION, node: process.versions.node },
    files,
  };
}

/** The head options compile.options records: prompts live in the manifest's embedding block only. */
function headOptionsRecorded(head: HeadOptions): Omit<HeadOptions, 'prompts'> {
  const { prompts: _prompts, ...recorded } = head;
  return recorded;
}
