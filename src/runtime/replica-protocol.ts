/** Messages between the main thread and a replica worker (one ONNX Runtime session each). */
import type { Backend } from './binding.js';

export type WireTensor =
  | { type: 'int64' | 'int32'; data: BigInt64Array | Int32Array; dims: number[] }
  | { type: 'float32'; data: Float32Array; dims: number[] };

export type ToReplica =
  | { type: 'load'; modelPath: string; backend: Backend; intraOpThreads: number; nice: number }
  | { type: 'run'; id: number; feeds: Record<string, WireTensor> }
  | { type: 'close' };

export type FromReplica =
  | { type: 'ready'; outputName: string }
  | { type: 'load-failed'; message: string; code?: string }
  | { type: 'result'; id: number; data: Float32Array; dims: number[]; computeMs: number }
  | { type: 'run-failed'; id: number; message: string };
