/**
 * A replica: one ONNX Runtime session in its own worker thread, so that while a batch computes
 * the main thread's event loop stays free to take requests, tokenize and schedule the next one.
 * A failure goes back with its code and params (replica-protocol.ts), so the main thread
 * re-creates the same KilnError instead of wrapping its message in another.
 */
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { createSession, type RuntimeSession } from './binding.js';
import { type FromReplica, type ToReplica, toWireError } from './replica-protocol.js';

const port = parentPort!;
let session: RuntimeSession | null = null;
const send = (message: FromReplica, transfer: ArrayBuffer[] = []): void => port.postMessage(message, transfer);

let chain: Promise<void> = Promise.resolve();
// One message at a time, in order: a batch sent ahead waits for the one before it (its compute
// time starts when it does), and close comes after every batch it follows.
port.on('message', (message: ToReplica) => {
  chain = chain.then(() => handle(message));
});

async function handle(message: ToReplica): Promise<void> {
  switch (message.type) {
    case 'load':
      lowerPriority(message.nice);
      try {
        session = await createSession(message.modelPath, {
          backend: message.backend,
          optimization: message.optimization,
          intraOpThreads: message.intraOpThreads,
          spinning: message.spinning,
        });
        send({ type: 'ready' });
      } catch (err) {
        send({ type: 'load-failed', error: toWireError(err) });
      }
      return;
    case 'run': {
      const started = performance.now();
      try {
        const results = await session!.run(message.feeds);
        const logits = results[session!.outputNames[0] ?? '']!;
        // Copy into a buffer of our own so it can be transferred, not cloned.
        const data = logits.data.slice();
        send({ type: 'result', id: message.id, data, dims: [...logits.dims], computeMs: performance.now() - started }, [
          data.buffer as ArrayBuffer,
        ]);
      } catch (err) {
        send({ type: 'run-failed', id: message.id, error: toWireError(err) });
      }
      return;
    }
    case 'close':
      await session?.release();
      session = null;
      port.close();
  }
}

/**
 * Lowers this thread's CPU priority by `nice`. On Linux nice is per thread, and the session's
 * intra-op threads, created after this, inherit it. Best effort: elsewhere, or where the system
 * refuses, the replica runs at the process's priority.
 */
function lowerPriority(nice: number): void {
  if (nice <= 0 || process.platform !== 'linux') return;
  try {
    // "/proc/thread-self" links to "<pid>/task/<tid>": setpriority on a thread id moves that thread only.
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    setPriority(tid, Math.min(19, getPriority(tid) + nice));
  } catch {
    // Not fatal: priority is a latency refinement, not a requirement.
  }
}
