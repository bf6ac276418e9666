/** Overload behaviour of the scheduler: deadlines drop unstarted work, --max-queue-ms refuses early. */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { textBatcher } from '../../src/runtime/batcher.js';
import type { Replica } from '../../src/runtime/replica.js';
import type { WireTensor } from '../../src/runtime/replica-protocol.js';
import { Scheduler } from '../../src/runtime/scheduler.js';

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
      return auto
        ? Promise.resolve(result)
        : new Promise<typeof result>((resolve) => waiting.push(() => resolve(result)));
    },
    close: async () => undefined,
  };
  return replica;
}

/**
 * A replica that reports `cost(rows)` ms of compute per batch; once `hold()` is called its batches
 * wait until the test calls the functions in `held`.
 */
function timedReplica(cost: (rows: number) => number): { replica: Replica; held: Array<() => void>; hold: () => void } {
  const held: Array<() => void> = [];
  let gate = false;
  const replica: Replica = {
    id: 0,
    alive: true,
    run: (feeds) => {
      const rows = feeds.input_ids!.dims[0]!;
      const result = { data: new Float32Array(rows * 2), dims: [rows, 2], computeMs: cost(rows) };
      return gate ? new Promise((resolve) => held.push(() => resolve(result))) : Promise.resolve(result);
    },
    close: async () => undefined,
  };
  return { replica, held, hold: () => (gate = true) };
}

/** Releases held batches one at a time until nothing is queued or running. */
async function releaseAll(scheduler: Scheduler<unknown>, held: Array<() => void>): Promise<void> {
  while (held.length > 0 || scheduler.stats().queueDepth > 0 || scheduler.stats().inFlight > 0) {
    held.shift()?.();
    await new Promise((r) => setImmediate(r));
  }
}

const INPUTS = [
  { name: 'input_ids', type: 'int64', shape: ['batch', 'sequence'] },
  { name: 'attention_mask', type: 'int64', shape: ['batch', 'sequence'] },
];
/** Freezes performance.now (the admission estimate reads how long replicas have been busy); `advance` moves it. */
function frozenClock(t: TestContext): { advance(ms: number): void } {
  let now = 1_000;
  t.mock.method(performance, 'now', () => now);
  return {
    advance: (ms) => {
      now += ms;
    },
  };
}

const seq = (n = 5) => ({
  ids: Array.from({ length: n }, (_, i) => i + 1),
  typeIds: new Array<number>(n).fill(0),
  truncated: false,
});

test('submit with a deadline that passes while queued rejects KILN_ERR_DEADLINE_EXCEEDED and never runs', async () => {
  const replica = gatedReplica(0, false);
  const scheduler = await Scheduler.create({
    replicas: 1,
    factory: async () => replica,
    maxBatch: 1,
    maxDelayMs: 0,
    buckets: [8],
    batcher: textBatcher(INPUTS, 0),
  });
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

test('with maxQueueMs, a request whose queue would take the replicas too long is refused with KILN_ERR_QUEUE_WAIT (429), at the queue length their measured speed gives', async (t) => {
  frozenClock(t);
  // Each batch (of one: max batch 1) costs the replica 10 ms by its own timing; the limit is 50 ms.
  const { replica, held, hold } = timedReplica((rows) => 10 * rows);
  const scheduler = await Scheduler.create({
    replicas: 1,
    factory: async () => replica,
    maxBatch: 1,
    maxDelayMs: 0,
    buckets: [8],
    batcher: textBatcher(INPUTS, 0),
    maxQueueMs: 50,
  });
  // Without history nothing is refused for time; one answer teaches the speed.
  await scheduler.submit(seq());
  hold();
  const running = scheduler.submit(seq());
  await new Promise((r) => setImmediate(r));
  // The replica has just started a batch: the k-th queued request waits for it and k - 1 more, 10 ms each; 5 fit in 50 ms, the 6th does not.
  const queued = Array.from({ length: 4 }, () => scheduler.submit(seq()));
  assert.equal(scheduler.admission(), null, 'with 4 ahead, the 5th waits 50 ms: admitted');
  queued.push(scheduler.submit(seq()));
  assert.equal(scheduler.stats().queueDepth, 5);
  const refused = scheduler.submit(seq());
  await assert.rejects(refused, (err: Error & { code?: string; status?: number }) => {
    assert.equal(err.code, 'KILN_ERR_QUEUE_WAIT');
    assert.equal(err.status, 429);
    assert.match(err.message, /60 ms/);
    return true;
  });
  assert.equal(scheduler.stats().rejected, 1);
  // The speed is a capacity, not a rate of answers: after a quiet spell the same queue is judged the same.
  await releaseAll(scheduler, held);
  await Promise.all([running, ...queued]);
  await scheduler.destroy();
});

test('with maxQueueMs, the queue is costed in batches: 16 queued behind a busy replica with max batch 8 are 2 rounds', async (t) => {
  frozenClock(t);
  // A batch costs 30 ms whatever its size (by the replica's own timing).
  const { replica, held, hold } = timedReplica(() => 30);
  const scheduler = await Scheduler.create({
    replicas: 1,
    factory: async () => replica,
    maxBatch: 8,
    maxDelayMs: 0,
    buckets: [8],
    batcher: textBatcher(INPUTS, 0),
    maxQueueMs: 60,
  });
  await scheduler.submit(seq());
  hold();
  const running = scheduler.submit(seq());
  await new Promise((r) => setImmediate(r));
  // Per request (30 ms each) the 3rd would already be refused; per batch, 16 queued are 2 rounds = 60 ms.
  const queued = Array.from({ length: 16 }, () => scheduler.submit(seq()));
  assert.equal(scheduler.stats().queueDepth, 16);
  assert.equal(scheduler.stats().rejected, 0);
  // The 17th would start after the running batch and two full ones: 90 ms > 60 ms.
  queued.push(scheduler.submit(seq()));
  await assert.rejects(queued.at(-1)!, { code: 'KILN_ERR_QUEUE_WAIT' });
  await releaseAll(scheduler, held);
  await Promise.all([running, ...queued.slice(0, -1)]);
  await scheduler.destroy();
});

test("with maxQueueMs and an empty queue, a request waits for what is left of the busy replicas' batches: refused while that is over the limit, admitted once it is not", async (t) => {
  const clock = frozenClock(t);
  // Each batch costs 30 ms by the replica's own timing; the limit is 20 ms.
  const { replica, held, hold } = timedReplica(() => 30);
  const scheduler = await Scheduler.create({
    replicas: 1,
    factory: async () => replica,
    maxBatch: 8,
    maxDelayMs: 0,
    buckets: [8],
    batcher: textBatcher(INPUTS, 0),
    maxQueueMs: 20,
  });
  await scheduler.submit(seq());
  hold();
  const running = scheduler.submit(seq());
  await new Promise((r) => setImmediate(r));
  assert.equal(scheduler.stats().queueDepth, 0);
  // Just started: 30 ms left.
  await assert.rejects(scheduler.submit(seq()), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'KILN_ERR_QUEUE_WAIT');
    assert.match(err.message, /30 ms/);
    return true;
  });
  // 15 ms later, 15 ms are left.
  clock.advance(15);
  assert.equal(scheduler.admission(), null);
  const admitted = scheduler.submit(seq());
  await releaseAll(scheduler, held);
  await Promise.all([running, admitted]);
  assert.equal(scheduler.stats().rejected, 1);
  await scheduler.destroy();
});

test('with maxQueueMs and a pipeline of 2, a batch already sent ahead to the busy replica counts in the wait', async (t) => {
  const clock = frozenClock(t);
  // 10 ms per batch by the replica's timing, max batch 1 (a waiting request is a full batch, sent ahead at once), limit 12 ms.
  const { replica, held, hold } = timedReplica(() => 10);
  const scheduler = await Scheduler.create({
    replicas: 1,
    factory: async () => replica,
    maxBatch: 1,
    maxDelayMs: 0,
    buckets: [8],
    batcher: textBatcher(INPUTS, 0),
    maxQueueMs: 12,
    pipeline: 2,
  });
  await scheduler.submit(seq());
  hold();
  const running = scheduler.submit(seq());
  await new Promise((r) => setImmediate(r));
  clock.advance(5);
  // 5 ms left of the running batch: admitted, and sent ahead to the replica.
  const ahead = scheduler.submit(seq());
  await new Promise((r) => setImmediate(r));
  assert.equal(scheduler.stats().inFlight, 2);
  assert.equal(scheduler.stats().queueDepth, 0);
  // Now a request waits 5 ms + the 10 ms batch ahead of it: 15 ms > 12 ms.
  assert.equal(scheduler.admission()?.code, 'KILN_ERR_QUEUE_WAIT');
  clock.advance(4);
  assert.equal(scheduler.admission(), null, '4 ms later: 1 + 10 = 11 ms');
  await releaseAll(scheduler, held);
  await Promise.all([running, ahead]);
  await scheduler.destroy();
});
