/**
 * The only file that imports onnxruntime-node. The rest of kiln sees `RuntimeSession` and plain
 * typed arrays, so another backend (onnxruntime-web, a CUDA build) can slot in here.
 */
import ort from 'onnxruntime-node';
import { KilnError } from '../core/errors.js';
import type { FloatTensor, InputTensor } from '../core/tensor.js';

export const RUNTIME_VERSION: string = ort.env.versions.node ?? ort.env.versions.common;

/** Execution providers kiln can name; `cpu` is the one every install has. */
export type Backend = 'cpu';

export interface SessionOptions {
  backend: Backend;
  /**
   * `all` applies every graph optimization for this machine (compile); `disabled` loads an
   * already optimized graph as it is (run, serve).
   */
  optimization: 'all' | 'disabled';
  /** Where ONNX Runtime writes the optimized graph; compile only. */
  optimizedModelPath?: string;
  /** Intra-op threads; 0 lets ONNX Runtime use every core. @defaultValue 0 */
  intraOpThreads?: number;
  /**
   * Whether idle intra-op threads spin waiting for work (ONNX Runtime's
   * `session.intra_op.allow_spinning`); false puts them to sleep, so a session that is used now
   * and then leaves its cores to others in between. @defaultValue true
   */
  spinning?: boolean;
}

export interface RuntimeSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Token ids are int tensors; images and other float inputs are Float32Array tensors (`type` 'float32' optional). */
  run(feeds: Record<string, InputTensor | FloatTensor>): Promise<Record<string, FloatTensor>>;
  release(): Promise<void>;
}

export async function createSession(modelPath: string, options: SessionOptions): Promise<RuntimeSession> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(modelPath, {
      executionProviders: [options.backend],
      graphOptimizationLevel: options.optimization,
      ...(options.optimizedModelPath ? { optimizedModelFilePath: options.optimizedModelPath } : {}),
      intraOpNumThreads: options.intraOpThreads ?? 0,
      ...(options.spinning === false ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
      // Level 4 = fatal only. Errors reach kiln as exceptions and become coded errors; the warning
      // that an 'all'-optimized graph is specific to this machine is in the manifest's target.
      logSeverityLevel: 4,
    });
  } catch (err) {
    throw new KilnError('KILN_ERR_RUNTIME_LOAD', { path: modelPath, reason: (err as Error).message }, { cause: err });
  }
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    async run(feeds) {
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) {
        ortFeeds[name] =
          t.data instanceof Float32Array
            ? new ort.Tensor('float32', t.data, t.dims)
            : new ort.Tensor((t as InputTensor).type as 'int64', t.data as BigInt64Array, t.dims);
      }
      let results: ort.InferenceSession.OnnxValueMapType;
      try {
        results = await session.run(ortFeeds);
      } catch (err) {
        throw new KilnError('KILN_ERR_RUNTIME_RUN', { reason: (err as Error).message }, { cause: err });
      }
      const out: Record<string, FloatTensor> = {};
      for (const [name, value] of Object.entries(results)) {
        const tensor = value as ort.Tensor;
        out[name] = {
          data: tensor.data instanceof Float32Array ? tensor.data : Float32Array.from(tensor.data as ArrayLike<number>),
          dims: tensor.dims,
        };
      }
      return out;
    },
    release: () => session.release(),
  };
}
