/**
 * `bench`: a loaded model's latency loop, throughput sweep and concurrency sweep in one run (in
 * process, or through a running server), with the best rate, its cost, and the speedup over the
 * baseline layout. `kiln bench` prints what this returns.
 */
import { availableParallelism, cpus } from 'node:os';
import { KilnError } from '../core/errors.js';
import { RUNTIME_VERSION } from '../runtime/binding.js';
import { type LoadedModel, loadModel } from '../runtime/load-model.js';
import type { ModelInput } from '../runtime/task-model.js';
import { KILN_VERSION } from '../version.js';
import {
  baselineThroughput,
  concurrencySweep,
  costPerMillion,
  latencyRun,
  type Predict,
  type ProgressSink,
  throughputSweep,
} from './measure.js';
import type { BenchResult } from './result.js';

/** The measurements bench can make, in the order it makes them. */
export const BENCH_MODES = ['latency', 'throughput', 'concurrency'] as const;
export type BenchMode = (typeof BENCH_MODES)[number];

/** What an unset {@link BenchOptions} field means. */
export const BENCH_DEFAULTS = {
  requests: 500,
  batches: [1, 4, 16, 32] as readonly number[],
  concurrency: [1, 4, 16, 32] as readonly number[],
  durationS: 3,
  warmup: 20,
};

/** The baseline is the slowest layout: a sample of the inputs is enough to time it. */
const BASELINE_SAMPLE = 300;
const BASELINE_WARMUP = 10;

export interface BenchOptions {
  /** The model to measure, as `loadModel` returns it; the throughput sweep changes its batching and restores it. */
  model: LoadedModel;
  /** Inputs to send, in order and round again: texts, or the bytes of image files (JPEG, PNG, WebP) for an image model. */
  inputs: readonly ModelInput[];
  /** Where the inputs came from, recorded as the result's `data.path`. @defaultValue null */
  dataPath?: string | null;
  /** The measurements to make (always in the order of {@link BENCH_MODES}). @defaultValue all three */
  modes?: readonly BenchMode[];
  /** Requests the latency loop sends, one at a time. @defaultValue 500 */
  requests?: number;
  /** Max batch sizes the throughput sweep tries; sizes above the artifact's max batch are skipped. @defaultValue [1, 4, 16, 32] */
  batches?: readonly number[];
  /** Numbers of closed-loop clients the concurrency sweep runs. @defaultValue [1, 4, 16, 32] */
  concurrency?: readonly number[];
  /** How long each concurrency level runs, in seconds. @defaultValue 3 */
  durationS?: number;
  /** Untimed requests sent before measuring. @defaultValue 20 */
  warmup?: number;
  /** A kiln server's base URL: latency and concurrency requests then go to it over HTTP. @defaultValue null (in process) */
  url?: string | null;
  /** The server's API key, sent as `authorization: Bearer KEY`. @defaultValue null */
  apiKey?: string | null;
  /** The machine's price in US dollars per hour, to compute the cost per million inferences at the best rate. @defaultValue null */
  pricePerHour?: number | null;
  /**
   * Also time the baseline layout (every input padded to max length, batch 1, one replica on
   * every core) and report the best rate's speedup over it. @defaultValue false
   */
  compareBaseline?: boolean;
  /** Progress within a measurement: `done` of `total` steps. */
  onProgress?: ProgressSink;
  /** Called as each measurement ends, with the result so far. */
  onMeasured?: (mode: BenchMode, result: Readonly<BenchResult>) => void;
}

/** Mean size of the inputs in the model's units (tokens for text, 1 for an image). */
export function meanInputSize(model: LoadedModel, inputs: readonly ModelInput[]): number {
  return inputs.reduce((n, input) => n + model.inputSize(input), 0) / inputs.length;
}

/** Measures `options.model`; see {@link BenchOptions} for what and how. */
export async function bench(options: BenchOptions): Promise<BenchResult> {
  const { model, inputs } = options;
  if (inputs.length === 0) throw new KilnError('KILN_ERR_BENCH_NO_INPUTS', {});
  const url = options.url ? options.url.replace(/\/$/, '') : null;
  const predict: Predict = url ? httpPredict(model.task, url, options.apiKey ?? null) : (input) => model.infer([input]);
  const layout = { ...model.layout, buckets: [...model.layout.buckets] };
  const m = model.manifest;
  const result: BenchResult = {
    artifact: model.dir,
    model: m.name,
    synthetic: Boolean(m.synthetic),
    date: new Date().toISOString(),
    target: url,
    data: { path: options.dataPath ?? null, texts: inputs.length, meanTokens: meanInputSize(model, inputs) },
    layout,
    machine: { cpu: cpus()[0]?.model.trim() ?? 'unknown', cores: availableParallelism() },
    versions: { kiln: KILN_VERSION, onnxruntime: RUNTIME_VERSION },
  };
  const warmup = options.warmup ?? BENCH_DEFAULTS.warmup;
  for (let i = 0; i < warmup; i += 1) await predict(inputs[i % inputs.length]!);

  const modes = BENCH_MODES.filter((mode) => (options.modes ?? BENCH_MODES).includes(mode));
  const candidates: Array<{ textsPerSecond: number; mode: string }> = [];
  for (const mode of modes) {
    if (mode === 'latency') {
      const count = options.requests ?? BENCH_DEFAULTS.requests;
      const requests = Array.from({ length: count }, (_, i) => inputs[i % inputs.length]!);
      result.latency = await latencyRun(predict, requests, options.onProgress);
      candidates.push({ textsPerSecond: 1000 / result.latency.avgMs, mode: 'latency loop' });
    } else if (mode === 'throughput') {
      const batches = (options.batches ?? BENCH_DEFAULTS.batches).filter((b) => b <= m.limits.maxBatch);
      try {
        result.throughput = await throughputSweep(model, inputs, batches, options.onProgress);
      } finally {
        model.reconfigure({ maxBatch: layout.maxBatch, maxDelayMs: layout.maxDelayMs });
      }
      for (const p of result.throughput)
        candidates.push({ textsPerSecond: p.textsPerSecond, mode: `offline, batch ${p.batch}` });
    } else {
      result.concurrency = await concurrencySweep(
        predict,
        inputs,
        options.concurrency ?? BENCH_DEFAULTS.concurrency,
        { durationS: options.durationS ?? BENCH_DEFAULTS.durationS, batchStats: url ? undefined : () => model.stats() },
        options.onProgress,
      );
      for (const p of result.concurrency)
        candidates.push({ textsPerSecond: p.requestsPerSecond, mode: `${p.clients} concurrent clients` });
    }
    options.onMeasured?.(mode, result);
  }

  result.best = candidates.sort((a, b) => b.textsPerSecond - a.textsPerSecond)[0];
  if (!result.best) return result;
  if (options.pricePerHour != null) {
    result.cost = {
      pricePerHour: options.pricePerHour,
      perMillion: costPerMillion(options.pricePerHour, result.best.textsPerSecond),
    };
  }
  if (options.compareBaseline) {
    const rate = await timeBaseline(model, inputs.slice(0, BASELINE_SAMPLE), Math.min(warmup, BASELINE_WARMUP));
    result.compare = {
      baselineTextsPerSecond: rate,
      seedTextsPerSecond: rate,
      speedup: result.best.textsPerSecond / rate,
    };
  }
  return result;
}

/**
 * The baseline: a second copy of the model with no batching and no length buckets (every input
 * padded to max length, batch 1, one replica on every core), fed one input at a time.
 */
async function timeBaseline(model: LoadedModel, sample: readonly ModelInput[], warmup: number): Promise<number> {
  const baseline = await loadModel(model.dir, {
    replicas: 1,
    threadsPerReplica: availableParallelism(),
    maxBatch: 1,
    buckets: [model.manifest.limits.maxLength],
  });
  try {
    for (let i = 0; i < warmup; i += 1) await baseline.infer([sample[0]!]);
    return await baselineThroughput(baseline, sample);
  } finally {
    await baseline.close();
  }
}

/** One request through a kiln server: each task on its route, with the body that route reads. */
function httpPredict(task: LoadedModel['task'], url: string, apiKey: string | null): Predict {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
  };
  const route =
    task === 'feature-extraction'
      ? { path: '/embed', body: (input: ModelInput) => ({ inputs: input }) }
      : task === 'image-classification'
        ? { path: '/predict', body: (input: ModelInput) => ({ image: Buffer.from(input).toString('base64') }) }
        : { path: '/predict', body: (input: ModelInput) => ({ text: input }) };
  return async (input) => {
    const res = await fetch(`${url}${route.path}`, {
      method: 'POST',
      headers,
      body: JSON.stringify(route.body(input)),
    });
    if (!res.ok) throw new Error(`POST ${url}${route.path} answered ${res.status}: ${await res.text()}`);
    return res.json();
  };
}
