/**
 * The measurements `bench` and `tune` make: a latency loop (one request at a time), an offline
 * throughput sweep over max batch sizes, a closed-loop concurrency sweep (perf_analyzer style),
 * and the baseline's throughput; percentiles come from an HDR histogram.
 */
import { createRequire } from 'node:module';
import type { ModelInput, TaskModel } from '../runtime/task-model.js';

export interface LatencySummary {
  count: number;
  avgMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Counts per latency bin, for the report's histogram: [upper bound ms, count]. */
  bins: Array<[number, number]>;
}

export interface ThroughputPoint {
  batch: number;
  textsPerSecond: number;
  seconds: number;
  /** Real tokens / padded tokens over the run. */
  fill: number;
}

export interface ConcurrencyPoint {
  clients: number;
  requestsPerSecond: number;
  latency: LatencySummary;
  avgBatch: number;
}

/** One request = `infer([input])` (a text or an image's bytes), in process or over HTTP. */
export type Predict = (input: ModelInput) => Promise<unknown>;

// Required on first use (it is CommonJS): every kiln command imports this module through the command
// table, and loading hdr-histogram-js (and its pako) costs each of them ~0.07 s of CPU.
const require = createRequire(import.meta.url);
let hdrModule: typeof import('hdr-histogram-js') | undefined;
const hdr = (): typeof import('hdr-histogram-js') =>
  (hdrModule ??= require('hdr-histogram-js') as typeof import('hdr-histogram-js'));

const newHistogram = () =>
  hdr().build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });

/** Latency figures from microsecond samples. */
export function summarize(samplesUs: readonly number[]): LatencySummary {
  const h = newHistogram();
  for (const us of samplesUs) h.recordValue(Math.max(1, Math.round(us)));
  const ms = (us: number): number => us / 1000;
  const max = h.maxValue;
  const bins: Array<[number, number]> = [];
  if (samplesUs.length > 0) {
    const width = Math.max(1, Math.ceil(max / 30));
    const counts = new Array<number>(30).fill(0);
    for (const us of samplesUs) counts[Math.min(29, Math.floor(us / width))]! += 1;
    counts.forEach((c, i) => {
      bins.push([ms((i + 1) * width), c]);
    });
  }
  // HDR reports a bucket's highest equivalent value, which can round past the true maximum.
  const at = (p: number): number => ms(Math.min(h.getValueAtPercentile(p), max));
  return {
    count: h.totalCount,
    avgMs: ms(h.mean),
    p50Ms: at(50),
    p90Ms: at(90),
    p99Ms: at(99),
    maxMs: ms(max),
    bins,
  };
}

export type ProgressSink = (label: string, done: number, total: number) => void;

/** The latency loop: one request at a time, each timed from send to answer. */
export async function latencyRun(
  predict: Predict,
  texts: readonly ModelInput[],
  onProgress?: ProgressSink,
): Promise<LatencySummary> {
  const samples: number[] = [];
  for (const [i, text] of texts.entries()) {
    const started = performance.now();
    await predict(text);
    samples.push((performance.now() - started) * 1000);
    onProgress?.('latency', i + 1, texts.length);
  }
  return summarize(samples);
}

/**
 * Offline throughput at each max batch: every text submitted at once, sorted by length so that
 * batches pad little (what an offline job does), order of answers restored.
 */
export async function throughputSweep(
  model: TaskModel<unknown, unknown>,
  texts: readonly ModelInput[],
  batches: readonly number[],
  onProgress?: ProgressSink,
): Promise<ThroughputPoint[]> {
  const sorted = texts
    .map((text) => ({ text, tokens: model.inputSize(text) }))
    .sort((a, b) => a.tokens - b.tokens)
    .map(({ text }) => text);
  const points: ThroughputPoint[] = [];
  for (const [i, batch] of batches.entries()) {
    model.reconfigure({ maxBatch: batch, maxDelayMs: 0 });
    const before = model.stats();
    const started = performance.now();
    await model.infer(sorted);
    const seconds = (performance.now() - started) / 1000;
    const after = model.stats();
    const padded = after.paddedTokens - before.paddedTokens;
    points.push({
      batch,
      textsPerSecond: texts.length / seconds,
      seconds,
      fill: padded > 0 ? (after.realTokens - before.realTokens) / padded : 1,
    });
    onProgress?.('throughput', i + 1, batches.length);
  }
  return points;
}

/** Closed-loop clients: each sends one text, waits for the answer, sends the next. */
export async function concurrencySweep(
  predict: Predict,
  texts: readonly ModelInput[],
  levels: readonly number[],
  options: { durationS: number; batchStats?: () => { batches: number; completed: number } },
  onProgress?: ProgressSink,
): Promise<ConcurrencyPoint[]> {
  const points: ConcurrencyPoint[] = [];
  for (const [i, clients] of levels.entries()) {
    const samples: number[] = [];
    let cursor = 0;
    const deadline = performance.now() + options.durationS * 1000;
    const before = options.batchStats?.();
    const started = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (performance.now() < deadline) {
          const text = texts[cursor++ % texts.length]!;
          const t0 = performance.now();
          await predict(text);
          samples.push((performance.now() - t0) * 1000);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const after = options.batchStats?.();
    const batches = before && after ? after.batches - before.batches : 0;
    const completed = before && after ? after.completed - before.completed : 0;
    points.push({
      clients,
      requestsPerSecond: samples.length / seconds,
      latency: summarize(samples),
      avgBatch: batches > 0 ? completed / batches : 0,
    });
    onProgress?.('concurrency', i + 1, levels.length);
  }
  return points;
}

/**
 * Inputs per second of `baseline`, a model loaded with the baseline layout (every input padded
 * to max length, batch 1, one replica), each input sent after the one before is answered.
 */
export async function baselineThroughput(
  baseline: TaskModel<unknown, unknown>,
  inputs: readonly ModelInput[],
): Promise<number> {
  const started = performance.now();
  for (const input of inputs) await baseline.infer([input]);
  return inputs.length / ((performance.now() - started) / 1000);
}

/** Cost of a million inferences at `perSecond`, for an instance billed `pricePerHour` USD. */
export function costPerMillion(pricePerHour: number, perSecond: number): number {
  return (pricePerHour / (perSecond * 3600)) * 1e6;
}
