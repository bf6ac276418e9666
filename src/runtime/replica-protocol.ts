/** Messages between the main thread and a replica worker (one ONNX Runtime session each). */
import { type ErrorCode, type ErrorParams, isKilnError, KilnError } from '../core/errors.js';
import type { Backend, Spinning } from './binding.js';

export type WireTensor =
  | { type: 'int64' | 'int32'; data: BigInt64Array | Int32Array; dims: number[] }
  | { type: 'float32'; data: Float32Array; dims: number[] };

/**
 * An error as it crosses to the main thread: a KilnError as its code and params, so the main
 * thread re-creates the same error (same code, same message) instead of wrapping its message in
 * another; anything else as its message and stack.
 */
export type WireError = { code: ErrorCode; params: ErrorParams<ErrorCode> } | { message: string; stack?: string };

export type ToReplica =
  | {
      type: 'load';
      modelPath: string;
      backend: Backend;
      optimization: 'all' | 'disabled';
      intraOpThreads: number;
      spinning: Spinning;
      nice: number;
    }
  | { type: 'run'; id: number; feeds: Record<string, WireTensor> }
  | { type: 'close' };

export type FromReplica =
  | { type: 'ready' }
  | { type: 'load-failed'; error: WireError }
  | { type: 'result'; id: number; data: Float32Array; dims: number[]; computeMs: number }
  | { type: 'run-failed'; id: number; error: WireError };

export function toWireError(err: unknown): WireError {
  if (isKilnError(err)) return { code: err.code, params: err.params };
  return err instanceof Error ? { message: err.message, stack: err.stack } : { message: String(err) };
}

/**
 * The worker's KilnError re-created as it was thrown; an error without a code is wrapped once by
 * `wrap`, with the worker's error (message and stack) as the cause.
 */
export function fromWireError(error: WireError, wrap: (reason: string, cause: Error) => KilnError): KilnError {
  if ('code' in error) return new KilnError(error.code, error.params);
  const cause = new Error(error.message);
  if (error.stack) cause.stack = error.stack;
  return wrap(error.message, cause);
}
