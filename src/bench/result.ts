import type { ConcurrencyPoint, LatencySummary, ThroughputPoint } from './bench.js';

/** Everything `kiln bench` measured, as written by --json and read by --report. */
export interface BenchResult {
  artifact: string;
  model: string;
  synthetic: boolean;
  date: string;
  /** `http://…` when the requests went through a server (--url). */
  target: string | null;
  data: { path: string; texts: number; meanTokens: number };
  layout: { replicas: number; threadsPerReplica: number; maxBatch: number; maxDelayMs: number; buckets: number[] };
  machine: { cpu: string; cores: number };
  versions: { kiln: string; onnxruntime: string };
  latency?: LatencySummary;
  throughput?: ThroughputPoint[];
  concurrency?: ConcurrencyPoint[];
  best?: { textsPerSecond: number; mode: string };
  cost?: { pricePerHour: number; perMillion: number };
  compare?: { seedTextsPerSecond: number; speedup: number };
}
