/**
 * A loaded text-classification artifact: the tokenizer on the calling thread, a scheduler in
 * front of replica workers (ONNX Runtime sessions), softmax and labels on the way back.
 */
import { availableParallelism } from 'node:os';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError } from '../core/errors.js';
import { readArtifact, type Manifest } from '../model/artifact.js';
import { TextTokenizer } from '../model/tokenizer.js';
import type { Backend } from './binding.js';
import { checkLayoutFits } from './memory.js';
import { workerReplicas, type ReplicaFactory } from './replica.js';
import { defaultBuckets } from '../model/buckets.js';
import { Scheduler, type SchedulerStats } from './scheduler.js';

export interface Prediction {
  label: string;
  /** Softmax probability of `label`, in [0, 1]. */
  score: number;
  /** Raw logits, one per label in the manifest's order. */
  logits: number[];
  /** Tokens the model saw, special tokens included. */
  tokens: number;
  /** True when the text was cut at the artifact's max length. */
  truncated: boolean;
}

export interface ClassifierOptions {
  /** Replicas (sessions in worker threads); `auto` fills the cores. @defaultValue 'auto' */
  replicas?: number | 'auto';
  /** Intra-op threads per replica (the seed's cores per model). @defaultValue 1 */
  threadsPerReplica?: number;
  /** Most texts per batch; at most the artifact's max batch. @defaultValue the artifact's max batch */
  maxBatch?: number;
  /** How long a request may wait for companions while replicas are busy, in ms. @defaultValue 2 */
  maxDelayMs?: number;
  /** Most requests waiting before new ones are refused (429 in the server). @defaultValue 4096 */
  maxQueue?: number;
  /** Refuse requests when the queue would take longer than this to clear, in ms (429). @defaultValue none */
  maxQueueMs?: number | null;
  /** Sequence lengths to pad batches to. @defaultValue the artifact's buckets */
  buckets?: number[];
  /** @defaultValue 'cpu' */
  backend?: Backend;
  /** Check every file's SHA-256 against the manifest before loading. @defaultValue true */
  verify?: boolean;
  /** Replaces the worker replicas (tests inject failing ones). */
  replicaFactory?: ReplicaFactory;
}

/** Replicas × threads that fill the machine's cores. */
export function resolveReplicas(replicas: number | 'auto' | undefined, threadsPerReplica: number): number {
  if (typeof replicas === 'number') return replicas;
  return Math.max(1, Math.floor(availableParallelism() / threadsPerReplica));
}

export class TextClassifier {
  private constructor(
    readonly dir: string,
    readonly manifest: Manifest,
    private readonly tokenizer: TextTokenizer,
    private readonly scheduler: Scheduler,
    /** The layout in use: replicas × threads, batching. */
    readonly layout: { replicas: number; threadsPerReplica: number; maxBatch: number; maxDelayMs: number; buckets: number[] },
  ) {}

  static async load(artifactPath: string, options: ClassifierOptions = {}): Promise<TextClassifier> {
    const { dir, manifest } = await readArtifact(artifactPath, { verify: options.verify !== false });
    const tokenizerJson = JSON.parse(await readFile(join(dir, manifest.tokenizer.file), 'utf8')) as unknown;
    const tokenizerConfig = manifest.tokenizer.configFile ? (JSON.parse(await readFile(join(dir, manifest.tokenizer.configFile), 'utf8')) as unknown) : {};
    const tokenizer = new TextTokenizer(tokenizerJson, tokenizerConfig, join(dir, manifest.tokenizer.file));

    // Unset options take the layout kiln tune stored in the artifact, then the defaults.
    const tuned = manifest.tuned;
    const threadsPerReplica = options.threadsPerReplica ?? tuned?.threadsPerReplica ?? 1;
    const replicas = resolveReplicas(options.replicas ?? tuned?.replicas, threadsPerReplica);
    const maxBatch = Math.min(options.maxBatch ?? tuned?.maxBatch ?? manifest.limits.maxBatch, manifest.limits.maxBatch);
    const buckets = (options.buckets ?? manifest.limits.buckets ?? defaultBuckets(manifest.limits.maxLength)).filter((b) => b <= manifest.limits.maxLength);
    if (buckets.at(-1) !== manifest.limits.maxLength) buckets.push(manifest.limits.maxLength);
    const maxDelayMs = options.maxDelayMs ?? tuned?.maxDelayMs ?? 2;
    // Refuse a layout that cannot fit before loading any replica.
    await checkLayoutFits(manifest.memory, replicas, { model: manifest.name, maxBatch: manifest.limits.maxBatch, maxLength: manifest.limits.maxLength, precision: manifest.precision ?? 'fp32' });
    const scheduler = await Scheduler.create({
      replicas,
      factory: options.replicaFactory ?? workerReplicas({ modelPath: join(dir, manifest.model.file), backend: options.backend ?? 'cpu', intraOpThreads: threadsPerReplica }),
      maxBatch,
      maxDelayMs,
      maxQueue: options.maxQueue,
      maxQueueMs: options.maxQueueMs ?? null,
      buckets,
      inputs: manifest.model.inputs,
      padId: tokenizer.padId,
      classes: manifest.labels.length,
    });
    return new TextClassifier(dir, manifest, tokenizer, scheduler, { replicas, threadsPerReplica, maxBatch, maxDelayMs, buckets });
  }

  get labels(): readonly string[] {
    return this.manifest.labels;
  }

  /**
   * Classifies texts; each is queued on its own and batched with whatever else is waiting.
   * `describe(i)` names text i in errors (e.g. "line 5 of reviews.txt").
   */
  async classify(
    texts: readonly string[],
    describe: (index: number) => string = (i) => `text ${i} (counting from 0)`,
    options: { deadline?: number } = {},
  ): Promise<Prediction[]> {
    texts.forEach((text, index) => {
      if (text.trim() === '') throw new KilnError('KILN_ERR_INPUT_EMPTY_TEXT', { where: describe(index) });
    });
    const { maxLength } = this.manifest.limits;
    const encoded = texts.map((text) => this.tokenizer.encode(text, maxLength));
    const logits = await Promise.all(encoded.map((e) => this.scheduler.submit(e, options)));
    return logits.map((values, i) => ({ ...topLabel(values, this.labels), logits: values, tokens: encoded[i]!.ids.length, truncated: encoded[i]!.truncated }));
  }

  /**
   * Classifies sequences a client tokenized itself (KServe v2 INT64 tensors): each row's ids,
   * without padding. Ids must be in the tokenizer's vocabulary and rows no longer than max length.
   */
  async classifyTokens(rows: ReadonlyArray<{ ids: readonly number[]; typeIds?: readonly number[] }>): Promise<number[][]> {
    const { maxLength } = this.manifest.limits;
    rows.forEach((row, i) => {
      if (row.ids.length === 0 || row.ids.length > maxLength) {
        throw new KilnError('KILN_ERR_INPUT_TOKENS', { row: i, problem: `it has ${row.ids.length} tokens; a row needs 1 to ${maxLength} (the artifact's max length)` });
      }
      const bad = row.ids.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= this.tokenizer.vocabSize);
      if (bad >= 0) throw new KilnError('KILN_ERR_INPUT_TOKENS', { row: i, problem: `token ${bad} is ${row.ids[bad]}, outside the vocabulary's ids 0..${this.tokenizer.vocabSize - 1}` });
    });
    return Promise.all(rows.map((row) => this.scheduler.submit({ ids: [...row.ids], typeIds: row.typeIds ? [...row.typeIds] : row.ids.map(() => 0), truncated: false })));
  }

  stats(): SchedulerStats {
    return this.scheduler.stats();
  }

  /** Changes max batch (capped by the artifact's) and max delay without reloading replicas. */
  reconfigure(batching: { maxBatch?: number; maxDelayMs?: number }): void {
    const maxBatch = batching.maxBatch === undefined ? undefined : Math.min(batching.maxBatch, this.manifest.limits.maxBatch);
    this.scheduler.reconfigure({ maxBatch, maxDelayMs: batching.maxDelayMs });
    if (maxBatch !== undefined) this.layout.maxBatch = maxBatch;
    if (batching.maxDelayMs !== undefined) this.layout.maxDelayMs = batching.maxDelayMs;
  }

  /** Token count of a text after truncation (special tokens included). */
  tokenCount(text: string): number {
    return this.tokenizer.encode(text, this.manifest.limits.maxLength).ids.length;
  }

  /** Finishes queued work, then stops the replicas. */
  async close(): Promise<void> {
    await this.scheduler.close();
  }
}

/** The most likely label and its softmax probability (computed stably, max subtracted). */
export function topLabel(logits: readonly number[], labels: readonly string[]): { label: string; score: number } {
  let best = 0;
  for (let i = 1; i < logits.length; i += 1) if (logits[i]! > logits[best]!) best = i;
  const max = logits[best]!;
  let sum = 0;
  for (const value of logits) sum += Math.exp(value - max);
  return { label: labels[best] ?? String(best), score: 1 / sum };
}
