/**
 * A replica: one ONNX Runtime session in its own worker thread, so `session.run` never blocks
 * the main thread's event loop (measured: design.md, "Decisions already taken").
 */
import { parentPort } from 'node:worker_threads';
import { createSession, type RuntimeSession } from './binding.js';
import type { FromReplica, ToReplica } from './replica-protocol.js';

const port = parentPort!;
let session: RuntimeSession | null = null;
const send = (message: FromReplica, transfer: ArrayBuffer[] = []): void => port.postMessage(message, transfer);

port.on('message', (message: ToReplica) => {
  void handle(message);
});

async function handle(message: ToReplica): Promise<void> {
  switch (message.type) {
    case 'load':
      try {
        session = await createSession(message.modelPath, { backend: message.backend, optimization: 'disabled', intraOpThreads: message.intraOpThreads });
        send({ type: 'ready', outputName: session.outputNames[0] ?? '' });
      } catch (err) {
        send({ type: 'load-failed', message: (err as Error).message, code: (err as { code?: string }).code });
      }
      return;
    case 'run': {
      const started = performance.now();
      try {
        const results = await session!.run(message.feeds);
        const logits = results[session!.outputNames[0] ?? '']!;
        // Copy into a buffer of our own so it can be transferred, not cloned.
        const data = logits.data.slice();
        send({ type: 'result', id: message.id, data, dims: [...logits.dims], computeMs: performance.now() - started }, [data.buffer as ArrayBuffer]);
      } catch (err) {
        send({ type: 'run-failed', id: message.id, message: (err as Error).message });
      }
      return;
    }
    case 'close':
      await session?.release();
      session = null;
      port.close();
  }
}
