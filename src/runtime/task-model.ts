/**
 * What every loaded artifact shares, whatever its task: the layout (replicas × threads,
 * batching) resolved from options, the tuned layout and defaults; the memory check; a scheduler
 * in front of worker replicas; stats, reconfigure and close. A task (text-classifier.ts,
 * text-embedder.ts, image-classifier.ts) adds how its inputs become a batch and what its output
 * rows mean.
 */

import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { KilnError } from '../core/errors.js';
import { type Manifest, readArtifact } from '../model/artifact.js';
import { defaultBuckets } from '../model/buckets.js';
import type { ModelInput } from '../model/input.js';
import { TextTokenizer, type TruncationDirection } from '../model/tokenizer.js';
import type { Batcher } from './batcher.js';
import type { Backend, DeviceChoice, Spinning } from './binding.js';
import { chooseDevice, deviceLayout } from './device.js';
import { checkDeviceFits } from './device-memory.js';
import { checkLayoutFits } from './memory.js';
import { type ReplicaFactory, workerReplicas } from './replica.js';
import { DEFAULT_MAX_DELAY_MS, DEFAULT_MAX_QUEUE, Scheduler, type SchedulerStats } from './scheduler.js';

export interface ModelOptions {
  /**
   * Replicas: ONNX Runtime sessions, each in its own worker thread; `auto` fills the cores with
   * replicas of `threadsPerReplica` threads. @defaultValue the tuned layout (kiln tune), else 'auto'
   */
  replicas?: number | 'auto';
  /** Intra-op threads of each replica (cores per model copy). @defaultValue the tuned layout, else {@link DEFAULT_THREADS_PER_REPLICA} */
  threadsPerReplica?: number;
  /**
   * Adds a wide replica (one session on every core) that answers a request
   * finding the runtime idle, beside the replicas of one core each that carry the load: lone
   * requests get the latency of one replica × every core, busy times the throughput of one
   * replica per core. Used only for the default layout: `replicas`, `threadsPerReplica` or a
   * tuned layout pin a fixed one. Memory counts it as one more replica. @defaultValue true on
   * a machine of 2 or more cores, unless `replicaFactory` is given
   */
  wide?: boolean;
  /**
   * How the wide replica's idle intra-op threads wait (binding.ts Spinning): `during-run` spins
   * between a run's operators and sleeps as soon as it returns; `always` (ONNX Runtime's default)
   * also spins a while after each run, so a request that follows soon finds them awake. @defaultValue {@link DEFAULT_WIDE_SPINNING}
   */
  wideSpinning?: Spinning;
  /**
   * When one replica takes a batch from requests of different lengths, take similar lengths
   * together (SchedulerOptions.lengthGrouping): less padding under load; a row left out goes in
   * the first later batch that considers it, never starved. @defaultValue true
   */
  lengthGrouping?: boolean;
  /** Most inputs per batch, capped by the artifact's max batch. @defaultValue the tuned layout, else the artifact's max batch */
  maxBatch?: number;
  /**
   * Most padded tokens (rows × padded length) in one batch: a longer batch is cut before the row
   * that would pass it (one row always goes). On the CPU a batch whose activations outgrow the
   * caches runs slower per text, so by default a CPU text encoder's batches hold what keeps
   * their feed-forward activations within {@link CPU_BATCH_ACTIVATION_BYTES} (512 tokens for a
   * BERT-base-sized encoder). `null`: rows only (max batch). @defaultValue {@link defaultMaxBatchTokens}
   */
  maxBatchTokens?: number | null;
  /** How long a request may wait for companions while every replica is busy, in ms. @defaultValue the tuned layout, else {@link DEFAULT_MAX_DELAY_MS} */
  maxDelayMs?: number;
  /** Most requests waiting; more are refused with KILN_ERR_QUEUE_FULL (HTTP 429). @defaultValue {@link DEFAULT_MAX_QUEUE} */
  maxQueue?: number;
  /** Refuse a request (KILN_ERR_QUEUE_WAIT, HTTP 429) that would wait longer than this before its batch starts, in ms. @defaultValue null (no limit) */
  maxQueueMs?: number | null;
  /** Batches a replica may hold at once: 2 hands a busy replica its next batch before the current one ends. @defaultValue {@link DEFAULT_PIPELINE} */
  pipeline?: number;
  /** How much lower the replicas' CPU priority is than the process's, in Linux nice steps (0 to 19). @defaultValue {@link DEFAULT_REPLICA_NICE} */
  replicaNice?: number;
  /** Sequence lengths (tokens) batches are padded to, ascending; text tasks only. @defaultValue the artifact's buckets */
  buckets?: number[];
  /**
   * The device the replicas run on: `cpu`, `webgpu`, `cuda`, or `auto` (the first of cuda, webgpu,
   * cpu that answers and can run the artifact). A GPU runs one replica. @defaultValue the device the artifact was compiled for
   */
  device?: DeviceChoice;
  /** Check every file's SHA-256 against the manifest before loading. @defaultValue true */
  verify?: boolean;
  /** Replaces the worker replicas (tests inject failing ones). */
  replicaFactory?: ReplicaFactory;
}

/**
 * Feed-forward activations (padded tokens × intermediate size × 4 bytes) one CPU batch may hold
 * by default. `npm run bench:batch-tokens` chose it: on `kiln synth distilbert-base-uncased` int8
 * (intermediate 3072: 512 tokens), one call of 96 texts of 93 tokens ran 1.52× faster than with
 * batches of 32 rows (per round 1.43–1.69), 256 SST-2 sentences 1.09× (noisy: 0.83–1.42); half
 * or twice the budget did about as well, batches of 32 long rows did not. The embedded model
 * (intermediate 512) gets 3,072 tokens, more than its max batch of SST-2 sentences fills.
 */
export const CPU_BATCH_ACTIVATION_BYTES = 6 * 1024 * 1024;

/**
 * How the wide replica's threads wait by default (ModelOptions.wideSpinning). `npm run
 * bench:latency` compares both, interleaved, on a 2-core AVX2 EPYC: lone requests with the
 * threads spinning after each run too took 0.76× the time of sleeping ones in one run (every
 * round 0.48–0.92) and 1.03× in the next (0.95–1.54); offline and 32-client throughput were no lower (1.07× and 1.05×, then 1.04× and 1.01×): the replicas
 * lose nothing to the spin.
 */
export const DEFAULT_WIDE_SPINNING: Spinning = 'always';

/** The default {@link ModelOptions.maxBatchTokens}: from a text encoder's size on the CPU; null (rows only) elsewhere. */
export function defaultMaxBatchTokens(manifest: Manifest, device: Backend): number | null {
  const intermediate = manifest.model.encoder?.intermediate;
  if (device !== 'cpu' || !intermediate) return null;
  return Math.max(1, Math.floor(CPU_BATCH_ACTIVATION_BYTES / (4 * intermediate)));
}

/**
 * Replicas run at a lower CPU priority than the main thread (HTTP, tokenizing, scheduling), so
 * that when batches saturate the cores the main thread still gets one when it wakes: under
 * overload, refusals come back faster (`npm run bench:overload`, the `--replica-nice` runs in
 * benchmarks/README.md).
 */
export const DEFAULT_REPLICA_NICE = 10;

/** Each replica is handed its next batch before the current one ends (SchedulerOptions.pipeline). */
export const DEFAULT_PIPELINE = 2;

/** Unless tuned, each model copy gets one core, so that `auto` replicas fill the cores one each. */
export const DEFAULT_THREADS_PER_REPLICA = 1;

/** The layout in use: replicas × threads, batching. */
export interface Layout {
  /** Where the replicas run (ONNX Runtime's execution provider). */
  device: Backend;
  replicas: number;
  threadsPerReplica: number;
  /** Threads of the wide replica that answers lone requests (ModelOptions.wide); 0 without one. */
  wideThreads: number;
  maxBatch: number;
  /** Most padded tokens in one batch (ModelOptions.maxBatchTokens); null: rows only. */
  maxBatchTokens: number | null;
  maxDelayMs: number;
  buckets: number[];
  /** Most inputs waiting for a replica before new ones are refused (429). */
  maxQueue: number;
}

/** Replicas × threads that fill the machine's cores. */
export function resolveReplicas(replicas: number | 'auto' | undefined, threadsPerReplica: number): number {
  if (typeof replicas === 'number') return replicas;
  return Math.max(1, Math.floor(availableParallelism() / threadsPerReplica));
}

/**
 * Resolves the layout (unset options take the layout kiln tune stored, then the defaults),
 * checks it fits in memory, and starts the replicas behind a scheduler.
 * `fixedLength`: inputs of one size (images) use the single bucket [1].
 */
export async function startScheduler<I>(
  dir: string,
  manifest: Manifest,
  options: ModelOptions,
  batcher: Batcher<I>,
  fixedLength = false,
): Promise<{ scheduler: Scheduler<I>; layout: Layout }> {
  const { device, optimization } = await chooseDevice(dir, manifest, options.device);
  // A layout tuned on another device says nothing about this one.
  const tuned = (manifest.tuned?.device ?? 'cpu') === device ? manifest.tuned : undefined;
  const onDevice = deviceLayout(device, options.replicas ?? tuned?.replicas);
  const threadsPerReplica =
    options.threadsPerReplica ?? tuned?.threadsPerReplica ?? onDevice.threadsPerReplica ?? DEFAULT_THREADS_PER_REPLICA;
  const replicas = resolveReplicas(onDevice.replicas, threadsPerReplica);
  const maxBatch = Math.min(options.maxBatch ?? tuned?.maxBatch ?? manifest.limits.maxBatch, manifest.limits.maxBatch);
  let buckets = [1];
  if (!fixedLength) {
    buckets = (options.buckets ?? manifest.limits.buckets ?? defaultBuckets(manifest.limits.maxLength)).filter(
      (b) => b <= manifest.limits.maxLength,
    );
    if (buckets.at(-1) !== manifest.limits.maxLength) buckets.push(manifest.limits.maxLength);
  }
  const maxBatchTokens =
    options.maxBatchTokens === undefined ? defaultMaxBatchTokens(manifest, device) : options.maxBatchTokens;
  const maxDelayMs = options.maxDelayMs ?? tuned?.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
  const maxQueue = options.maxQueue ?? DEFAULT_MAX_QUEUE;
  const context = {
    model: manifest.name,
    maxBatch: manifest.limits.maxBatch,
    maxLength: manifest.limits.maxLength,
    precision: manifest.precision ?? 'fp32',
  };
  const cores = availableParallelism();
  // The default layout only: a pinned one (flags, kiln tune) is what its user chose.
  const pinned = options.replicas !== undefined || options.threadsPerReplica !== undefined || tuned !== undefined;
  const wanted = options.wide ?? options.replicaFactory === undefined;
  // One session per GPU (runtime/device.ts): the wide replica is a CPU layout.
  let wideThreads = wanted && !pinned && device === 'cpu' && threadsPerReplica === 1 && cores > 1 ? cores : 0;
  // The wide replica is a session more in memory; where it does not fit, the layout goes without.
  if (wideThreads > 0) await checkLayoutFits(manifest.memory, replicas + 1, context).catch(() => (wideThreads = 0));
  // Refuse a layout that cannot fit before loading any replica.
  if (wideThreads === 0) await checkLayoutFits(manifest.memory, replicas, context);
  // A GPU session's memory is the device's: checked against the GPU's own figure where one is reported.
  await checkDeviceFits(manifest, device, maxBatch);
  const replicaOptions = {
    modelPath: join(dir, manifest.model.file),
    backend: device,
    optimization,
    nice: options.replicaNice ?? DEFAULT_REPLICA_NICE,
  };
  const scheduler = await Scheduler.create({
    replicas,
    factory: options.replicaFactory ?? workerReplicas({ ...replicaOptions, intraOpThreads: threadsPerReplica }),
    // How its idle threads wait: DEFAULT_WIDE_SPINNING (benchmarks/latency.mjs measured the choice).
    ...(wideThreads > 0
      ? {
          wide: {
            factory:
              options.replicaFactory ??
              workerReplicas({
                ...replicaOptions,
                intraOpThreads: wideThreads,
                spinning: options.wideSpinning ?? DEFAULT_WIDE_SPINNING,
              }),
            maxRows: replicas,
          },
        }
      : {}),
    maxBatch,
    ...(maxBatchTokens !== null ? { tokenBudget: maxBatchTokens } : {}),
    maxDelayMs,
    maxQueue,
    maxQueueMs: options.maxQueueMs ?? null,
    pipeline: options.pipeline ?? DEFAULT_PIPELINE,
    buckets,
    batcher,
    lengthGrouping: options.lengthGrouping ?? true,
  });
  return {
    scheduler,
    layout: {
      device,
      replicas,
      threadsPerReplica,
      wideThreads,
      maxBatch,
      maxBatchTokens,
      maxDelayMs,
      buckets,
      maxQueue,
    },
  };
}

/** The tokenizer stored in a text artifact. */
export async function loadTokenizer(dir: string, manifest: Manifest): Promise<TextTokenizer> {
  const files = manifest.tokenizer;
  if (!files)
    throw new KilnError('KILN_ERR_ARTIFACT_INVALID', {
      path: dir,
      problem: `its task is ${manifest.task} but the manifest names no tokenizer`,
    });
  const tokenizerJson = JSON.parse(await readFile(join(dir, files.file), 'utf8')) as unknown;
  const tokenizerConfig = files.configFile
    ? (JSON.parse(await readFile(join(dir, files.configFile), 'utf8')) as unknown)
    : {};
  return new TextTokenizer(tokenizerJson, tokenizerConfig, join(dir, files.file));
}

/** How one call's inputs are run. */
export interface InferOptions {
  /** When the request's time is up (a `performance.now()` value): inputs still queued then are dropped. */
  deadline?: number;
  /**
   * Cut a text longer than the artifact's max length; with false it is refused
   * (KILN_ERR_INPUT_TOO_LONG). Text tasks only. @defaultValue true
   */
  truncate?: boolean;
  /** Which end of a too long text is cut; text tasks only. @defaultValue 'right' */
  truncationDirection?: TruncationDirection;
  /** Also answer each text with its entities replaced by `[LABEL]`; tasks that find entities only (token-classification). @defaultValue false */
  redact?: boolean;
}

/** The parts of a loaded model that bench, batch, tune, run and the server use whatever the task. */
export abstract class TaskModel<I, R> {
  protected constructor(
    readonly dir: string,
    readonly manifest: Manifest,
    protected readonly scheduler: Scheduler<I>,
    readonly layout: Layout,
  ) {}

  /**
   * Reads an artifact (each file's SHA-256 checked unless `verify: false`) and starts it as the
   * class this is called on: `TextClassifier.load(path)`.
   */
  static async load<M>(
    this: { open(dir: string, manifest: Manifest, options: ModelOptions): Promise<M> },
    artifactPath: string,
    options: ModelOptions = {},
  ): Promise<M> {
    const { dir, manifest } = await readArtifact(artifactPath, { verify: options.verify !== false });
    // biome-ignore lint/complexity/noThisInStatic: `this` is the subclass load() is called on (TextClassifier.load opens a TextClassifier).
    return this.open(dir, manifest, options);
  }

  /** The task this class runs (a literal in each subclass, so a LoadedModel narrows on it). */
  abstract get task(): Manifest['task'];

  get labels(): readonly string[] {
    return this.manifest.labels;
  }

  /**
   * Runs inputs as users give them (texts, image bytes); each is queued on its own and batched
   * with whatever else is waiting. `describe(i)` names input i in errors ("line 5 of reviews.txt").
   */
  abstract infer(
    inputs: readonly ModelInput[],
    describe?: (index: number) => string,
    options?: InferOptions,
  ): Promise<R[]>;

  /** How much work an input is, for ordering batches by size (tokens for text, 1 for an image). */
  abstract inputSize(input: ModelInput): number;

  stats(): SchedulerStats {
    return this.scheduler.stats();
  }

  /**
   * Refuses now, before a request's body is read, when its work would be refused anyway
   * (queue full, or the wait past max queue ms); null when it would be queued. The refusal is
   * counted as the scheduler's.
   */
  refuseEarly(): KilnError | null {
    const refusal = this.scheduler.admission();
    if (refusal) this.scheduler.countRefusal();
    return refusal;
  }

  /** Changes max batch (capped by the artifact's) and max delay without reloading replicas. */
  reconfigure(batching: { maxBatch?: number; maxDelayMs?: number }): void {
    const maxBatch =
      batching.maxBatch === undefined ? undefined : Math.min(batching.maxBatch, this.manifest.limits.maxBatch);
    this.scheduler.reconfigure({ maxBatch, maxDelayMs: batching.maxDelayMs });
    if (maxBatch !== undefined) this.layout.maxBatch = maxBatch;
    if (batching.maxDelayMs !== undefined) this.layout.maxDelayMs = batching.maxDelayMs;
  }

  /** Finishes queued work, then stops the replicas. */
  async close(): Promise<void> {
    await this.scheduler.close();
  }
}

export type { ModelInput, TextPair } from '../model/input.js';
