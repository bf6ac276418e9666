/**
 * Memory per replica, for the manifest: compile measures one replica in a fresh process at max
 * batch × max length and records it beside an analytic estimate. runtime/memory.ts checks
 * layouts against it.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { TensorInfo } from '../onnx/graph.js';
import { encoderActivationFloats } from '../runtime/device-memory.js';

const run = promisify(execFile);
const PROBE = new URL('../runtime/memory-probe.js', import.meta.url).pathname;

/**
 * A worker thread's own cost beyond its session (a V8 isolate and its heap), measured on
 * Node 20: about 16 MiB per extra worker with kiln's replica loaded (benchmarks/memory-estimate.mjs).
 */
export const WORKER_OVERHEAD_BYTES = 16 * 2 ** 20;

/** Largest activations of a transformer encoder at (batch, length): hidden states, FFN, attention scores. */
export function analyticEstimate(
  weightsBytes: number,
  shape: { batch: number; length: number; hidden: number; intermediate: number; heads: number },
): number {
  const floats = encoderActivationFloats(shape);
  // MLAS packs each GEMM's weights once more at load; the arena and the runtime add ~20 MiB.
  return 2 * weightsBytes + floats * 4 + 20 * 2 ** 20;
}

/**
 * Bytes a process holds once, whatever its replicas: the tokenizer (measured) plus the
 * scheduler, request buffers and the first worker's runtime bindings (~32 MiB on Node 20, benchmarks/memory-estimate.mjs).
 */
export const PROCESS_BASE_BYTES = 32 * 2 ** 20;

/** `feed`: the tokenizer a text model's batch is made with, or an image model's [channels, height, width]. */
export async function measureReplica(
  modelPath: string,
  inputs: TensorInfo[],
  batch: number,
  length: number,
  feed: { file: string; configFile: string | null } | { image: readonly number[] },
): Promise<{ sessionBytes: number; tokenizerBytes: number }> {
  const how =
    'image' in feed ? ['--image', feed.image.join(',')] : [feed.file, ...(feed.configFile ? [feed.configFile] : [])];
  const args = [
    PROBE,
    modelPath,
    JSON.stringify(inputs.map((i) => ({ name: i.name, type: i.type }))),
    String(batch),
    String(length),
    ...how,
  ];
  const { stdout } = await run(process.execPath, args, { maxBuffer: 1 << 20 });
  const { start, before, ran } = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
    start: number;
    before: number;
    ran: number;
  };
  return { sessionBytes: Math.max(0, ran - before), tokenizerBytes: Math.max(0, before - start) };
}
