/** The main thread's handle on a replica worker: load, run one batch at a time, close. */
import { Worker } from 'node:worker_threads';
import { KilnError } from '../core/errors.js';
import type { FloatTensor } from '../core/tensor.js';
import type { Backend, Spinning } from './binding.js';
import { type FromReplica, fromWireError, type ToReplica, type WireTensor } from './replica-protocol.js';

/** What the scheduler needs from a replica; tests supply their own to inject failures. */
export interface Replica {
  readonly id: number;
  /** False once the replica has crashed or been closed; the scheduler then replaces it. */
  readonly alive: boolean;
  /**
   * Runs one batch. Rejects with a KilnError when the replica reports the failure itself (ONNX
   * Runtime refused the batch: the replica lives on), with a plain Error when it crashed or exited
   * (it is then replaced).
   */
  run(feeds: Record<string, WireTensor>): Promise<FloatTensor & { computeMs: number }>;
  close(): Promise<void>;
}

export interface ReplicaOptions {
  modelPath: string;
  backend: Backend;
  /** `disabled` loads a CPU artifact's optimized graph as it is; `all` optimizes a GPU artifact's portable graph at load. @defaultValue 'disabled' */
  optimization?: 'all' | 'disabled';
  /** Intra-op threads of this replica's session: the cores one batch may use. */
  intraOpThreads: number;
  /** How the session's idle intra-op threads wait (binding.ts SessionOptions.spinning). @defaultValue 'always' */
  spinning?: Spinning;
  /** How much lower the replica's threads' CPU priority is (Linux nice; 0: unchanged). @defaultValue 0 */
  nice?: number;
}

export type ReplicaFactory = (id: number) => Promise<Replica>;

const WORKER_URL = new URL('./replica-worker.js', import.meta.url);

export class WorkerReplica implements Replica {
  private nextId = 0;
  private readonly pending = new Map<
    number,
    { resolve: (r: FloatTensor & { computeMs: number }) => void; reject: (e: Error) => void }
  >();
  private exited: Error | null = null;

  private constructor(
    readonly id: number,
    private readonly worker: Worker,
  ) {
    worker.on('message', (message: FromReplica) => {
      if (message.type === 'result') {
        this.settle(message.id)?.resolve({ data: message.data, dims: message.dims, computeMs: message.computeMs });
      } else if (message.type === 'run-failed') {
        this.settle(message.id)?.reject(
          fromWireError(message.error, (reason, cause) => new KilnError('KILN_ERR_RUNTIME_RUN', { reason }, { cause })),
        );
      }
    });
    const fail = (err: Error): void => {
      this.exited ??= err;
      for (const [id, p] of this.pending) {
        this.pending.delete(id);
        p.reject(err);
      }
    };
    worker.on('error', (err) => fail(err));
    worker.on('exit', (code) => fail(new Error(`replica ${id} exited with code ${code}`)));
  }

  static async start(id: number, options: ReplicaOptions): Promise<WorkerReplica> {
    // Flags meant for the main script (--input-type, --eval) would stop the worker from starting.
    const worker = new Worker(WORKER_URL, {
      execArgv: process.execArgv.filter((a) => !/^--(input-type|eval|print)\b|^-[ep]$/.test(a)),
    });
    const ready = new Promise<void>((resolve, reject) => {
      const onMessage = (message: FromReplica): void => {
        if (message.type === 'ready') resolve();
        else if (message.type === 'load-failed')
          reject(
            fromWireError(
              message.error,
              (reason, cause) => new KilnError('KILN_ERR_RUNTIME_LOAD', { path: options.modelPath, reason }, { cause }),
            ),
          );
      };
      worker.once('message', onMessage);
      worker.once('error', reject);
    });
    worker.postMessage({
      type: 'load',
      modelPath: options.modelPath,
      backend: options.backend,
      optimization: options.optimization ?? 'disabled',
      intraOpThreads: options.intraOpThreads,
      spinning: options.spinning ?? 'always',
      nice: options.nice ?? 0,
    } satisfies ToReplica);
    try {
      await ready;
    } catch (err) {
      await worker.terminate();
      throw err;
    }
    return new WorkerReplica(id, worker);
  }

  get alive(): boolean {
    return this.exited === null;
  }

  private settle(
    id: number,
  ): { resolve: (r: FloatTensor & { computeMs: number }) => void; reject: (e: Error) => void } | undefined {
    const p = this.pending.get(id);
    this.pending.delete(id);
    return p;
  }

  run(feeds: Record<string, WireTensor>): Promise<FloatTensor & { computeMs: number }> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // Transfer the input buffers: the batch was built for this replica alone.
      const transfer = Object.values(feeds).map((t) => t.data.buffer as ArrayBuffer);
      this.worker.postMessage({ type: 'run', id, feeds } satisfies ToReplica, transfer);
    });
  }

  /** Ends the worker abruptly, as a crash would (fault-injection in tests). */
  async kill(): Promise<void> {
    await this.worker.terminate();
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage({ type: 'close' } satisfies ToReplica);
    await exited;
  }
}

export function workerReplicas(options: ReplicaOptions): ReplicaFactory {
  return (id) => WorkerReplica.start(id, options);
}
