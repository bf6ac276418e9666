import type { ConcurrencyPoint, LatencySummary, ThroughputPoint } from './measure.js';

/** Everything `bench` measured, as `kiln bench --json` writes it and `--report` renders it. */
export interface BenchResult {
  /** The artifact folder of the model measured. */
  artifact: string;
  model: string;
  synthetic: boolean;
  /** When the run started, ISO 8601. */
  date: string;
  /** `http://…` when the requests went through a server (--url). */
  target: string | null;
  /** Where the inputs came from (null when given in code), how many, and their mean size in tokens. */
  data: { path: string | null; texts: number; meanTokens: number };
  layout: {
    device?: string;
    replicas: number;
    threadsPerReplica: number;
    maxBatch: number;
    maxDelayMs: number;
    buckets: number[];
  };
  machine: { cpu: string; cores: number };
  versions: { kiln: string; onnxruntime: string };
  latency?: LatencySummary;
  throughput?: ThroughputPoint[];
  concurrency?: ConcurrencyPoint[];
  /** The highest rate measured, in inputs per second, and the mode that reached it. */
  best?: { textsPerSecond: number; mode: string };
  /** Dollars per million inferences at the best rate. */
  cost?: { pricePerHour: number; perMillion: number };
  compare?: {
    /** Inputs per second of the baseline: every input padded to max length, batch 1, one replica on every core. */
    baselineTextsPerSecond: number;
    /** @deprecated The same figure as `baselineTextsPerSecond`, under the name earlier readers of this JSON look for. */
    seedTextsPerSecond: number;
    /** The best rate over the baseline's. */
    speedup: number;
  };
}
