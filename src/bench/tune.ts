/**
 * `kiln tune`: the search for the fastest layout (replicas × threads × max batch × max delay)
 * that meets a p99 target. Pruned, not a grid: for each way to split the cores into replicas × threads, max
 * batch grows while throughput grows and p99 meets the SLO; then max delay is tried on the best.
 */
import { availableParallelism } from 'node:os';
import { DEFAULT_MAX_DELAY_MS } from '../runtime/scheduler.js';
import type { ModelInput } from '../runtime/task-model.js';
import type { LoadedModel } from '../tasks/registry.js';
import { concurrencySweep, type Predict } from './measure.js';

export interface Trial {
  replicas: number;
  threadsPerReplica: number;
  maxBatch: number;
  maxDelayMs: number;
  clients: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  meetsSlo: boolean;
}

export interface TuneOptions {
  texts: readonly ModelInput[];
  sloP99Ms: number;
  budgetS: number;
  maxBatchLimit: number;
  /** Loads the model with a replicas × threads layout (the expensive step). */
  load: (replicas: number, threadsPerReplica: number) => Promise<LoadedModel>;
  onTrial?: (trial: Trial, index: number, planned: number) => void;
  cores?: number;
  /** The model runs on a GPU: one replica (the device is not split), and batches up to {@link GPU_BATCHES}. */
  gpu?: boolean;
}

/** Ways to split the cores into replicas × threads (threads a power of two). */
export function splits(cores: number): Array<[replicas: number, threads: number]> {
  const out: Array<[number, number]> = [];
  for (let threads = 1; threads <= cores; threads *= 2) out.push([Math.max(1, Math.floor(cores / threads)), threads]);
  return out;
}

const BATCHES = [1, 2, 4, 8, 16, 32, 64];
/** A GPU's throughput keeps growing with batch long after a core's does. */
const GPU_BATCHES = [...BATCHES, 128, 256, 512];
const DELAYS = [0, 5, 10];

export async function tune(options: TuneOptions): Promise<{ best: Trial | null; trials: Trial[] }> {
  const cores = options.cores ?? availableParallelism();
  const layouts: Array<[number, number]> = options.gpu ? [[1, 1]] : splits(cores);
  const batches = (options.gpu ? GPU_BATCHES : BATCHES).filter((b) => b <= options.maxBatchLimit);
  const planned = layouts.length * batches.length + DELAYS.length;
  const trialS = Math.max(0.5, options.budgetS / planned);
  const trials: Trial[] = [];
  let best: Trial | null = null;
  let bestRT: [number, number] | null = null;
  const better = (t: Trial): boolean => t.meetsSlo && (!best || t.requestsPerSecond > best.requestsPerSecond);

  const measure = async (
    model: LoadedModel,
    layout: [number, number],
    maxBatch: number,
    maxDelayMs: number,
  ): Promise<Trial> => {
    model.reconfigure({ maxBatch, maxDelayMs });
    // Enough closed-loop clients to fill every replica's batch, twice over.
    const clients = Math.min(256, layout[0] * maxBatch * 2);
    const predict: Predict = (text) => model.infer([text]);
    const [point] = await concurrencySweep(predict, options.texts, [clients], { durationS: trialS });
    const trial: Trial = {
      replicas: layout[0],
      threadsPerReplica: layout[1],
      maxBatch,
      maxDelayMs,
      clients,
      requestsPerSecond: point!.requestsPerSecond,
      p50Ms: point!.latency.p50Ms,
      p99Ms: point!.latency.p99Ms,
      meetsSlo: point!.latency.p99Ms <= options.sloP99Ms,
    };
    trials.push(trial);
    options.onTrial?.(trial, trials.length, planned);
    return trial;
  };

  for (const layout of layouts) {
    const model = await options.load(layout[0], layout[1]);
    try {
      let previous: Trial | null = null;
      for (const maxBatch of batches) {
        const trial = await measure(model, layout, maxBatch, DEFAULT_MAX_DELAY_MS);
        if (better(trial)) {
          best = trial;
          bestRT = layout;
        }
        // Larger batches only raise latency once throughput stops growing or the SLO breaks.
        if (!trial.meetsSlo || (previous && trial.requestsPerSecond < previous.requestsPerSecond * 1.03)) break;
        previous = trial;
      }
    } finally {
      await model.close();
    }
  }

  if (best && bestRT) {
    const model = await options.load(bestRT[0], bestRT[1]);
    try {
      const base = best as Trial;
      for (const delay of DELAYS) {
        const trial = await measure(model, bestRT, base.maxBatch, delay);
        if (better(trial)) best = trial;
      }
    } finally {
      await model.close();
    }
  }
  return { best, trials };
}
