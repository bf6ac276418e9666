/** Overload behaviour of the scheduler: deadlines drop unstarted work, --max-queue-ms refuses early. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { WireTensor } from '../../src/runtime/replica-protocol.js';
import type { Replica } from '../../src/runtime/replica.js';
import { Scheduler } from '../../src/runtime/scheduler.js';
import { textBatcher } from '../../src/runtime/batcher.js';

/** A replica that answers each batch when the test releases it (or at once when `auto`). */
function gatedReplica(id: number, auto: boolean): Replica & { runs: number; release: () => void } {
  const waiting: Array<() => void> = [];
  const replica = {
    id,
    alive: true,
    runs: 0,
    release: () => waiting.shift()?.(),
    run(feeds: Record<string, WireTensor>) {
      replica.runs += 1;
      const rows = feeds.input_ids!.dims[0]!;
      const result = { data: new Float32Array(rows * 2), dims: [rows, 2], computeMs: 1 };
      return auto ? Promise.resolve(result) : new Promise<typeof result>((resolve) => waiting.push(() => resolve(result)));
    },
    close: async () => undefined,
  };
  return replica;
}

const INPUTS = [
  { name: 'input_ids', type: 'int64', shape: ['batch', 'sequence'] },
  { name: 'attention_mask', type: 'int64', shape: ['batch', 'sequence'] },
];
const seq = (n = 5) => ({ ids: Array.from({ length: n }, (_, i) => i + 1), typeIds: new Array<number>(n).fill(0), truncated: false });

test('submit with a deadline that passes while queued rejects KILN_ERR_DEADLINE_EXCEEDED and never runs', async () => {
  const replica = gatedReplica(0, false);
  const scheduler = await Scheduler.create({ replicas: 1, factory: async () => replica, maxBatch: 1, maxDelayMs: 0, buckets: [8], batcher: textBatcher(INPUTS, 0) });
  const first = scheduler.submit(seq());
  await new Promise((r) => setImmediate(r));
  assert.equal(replica.runs, 1);
  const late = scheduler.submit(seq(), { deadline: performance.now() + 1 });
  // Wait past the deadline on the real clock, then free the replica: the queued request is dropped.
  const until = performance.now() + 5;
  while (performance.now() < until) await new Promise((r) => setImmediate(r));
  replica.release();
  await first;
  await assert.rejects(late, { code: 'KILN_ERR_DEADLINE_EXCEEDED', status: 504 });
  assert.equal(replica.runs, 1, 'the expired request was not run');
  assert.equal(scheduler.stats().failed, 1);
  await scheduler.destroy();
});

test('with maxQueueMs, a request whose queue would take too long to clear is refused with KILN_ERR_QUEUE_WAIT (429)', async () => {
  const auto = gatedReplica(0, true);
  let gate = false;
  const replica: Replica = { ...auto, id: 0, alive: true, run: (feeds) => (gate ? gatedRun(feeds) : auto.run(feeds)), close: async () => undefined };
  const held: Array<() => void> = [];
  function gatedRun(feeds: Record<string, WireTensor>) {
    const rows = feeds.input_ids!.dims[0]!;
    return new Promise<{ data: Float32Array; dims: number[]; computeMs: number }>((resolve) => held.push(() => resolve({ data: new Float32Array(rows * 2), dims: [rows, 2], computeMs: 1 })));
  }
  const scheduler = await Scheduler.create({ replicas: 1, factory: async () => replica, maxBatch: 1, maxDelayMs: 0, buckets: [8], batcher: textBatcher(INPUTS, 0), maxQueueMs: 50 });
  // History: 40 answers, so the recent rate is known.
  await Promise.all(Array.from({ length: 40 }, () => scheduler.submit(seq())));
  const rate = scheduler.stats().recent.perSecond;
  assert.ok(rate > 0);
  // Block the replica and queue more than 50 ms of work at that rate.
  gate = true;
  const queued: Array<Promise<number[]>> = [];
  const fits = Math.max(1, Math.floor((50 / 1000) * rate));
  let refused: unknown = null;
  for (let i = 0; i < fits + 50 && refused === null; i += 1) {
    const p = scheduler.submit(seq());
    queued.push(p);
    p.catch((err: unknown) => (refused ??= err));
    await new Promise((r) => setImmediate(r));
  }
  assert.ok(refused, 'a request was refused');
  assert.equal((refused as { code: string }).code, 'KILN_ERR_QUEUE_WAIT');
  assert.equal((refused as { status: number }).status, 429);
  assert.ok(scheduler.stats().rejected >= 1);
  while (held.length > 0) held.shift()!();
  await scheduler.destroy();
});
