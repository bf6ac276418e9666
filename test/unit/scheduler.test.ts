import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { describe, type TestContext, test } from 'node:test';
import {
  BATCH_CHANNEL,
  type BatchEvent,
  REJECT_CHANNEL,
  REPLICA_ERROR_CHANNEL,
  type RejectEvent,
  type ReplicaErrorEvent,
} from '../../src/core/channels.js';
import { KilnError } from '../../src/core/errors.js';
import type { FloatTensor } from '../../src/core/tensor.js';
import type { EncodedText } from '../../src/model/tokenizer.js';
import type { TensorInfo } from '../../src/onnx/graph.js';
import { textBatcher } from '../../src/runtime/batcher.js';
import type { Replica, ReplicaFactory } from '../../src/runtime/replica.js';
import type { WireTensor } from '../../src/runtime/replica-protocol.js';
import {
  GROUP_MIN_SAVED_TOKENS,
  Scheduler,
  type SchedulerOptions,
  type SubmitOptions,
} from '../../src/runtime/scheduler.js';
import { until } from '../fixtures/gated-replicas.js';

// ---------------------------------------------------------------------------------------------
// Fakes: replicas that compute "logits" from their feeds, so a row answered to the wrong request
// shows up as a wrong number. Row r of a batch gets [sum of its input_ids, count of its mask ones].
// ---------------------------------------------------------------------------------------------

type Outcome = 'ok' | 'hold' | 'fail' | 'crash';
type Result = FloatTensor & { computeMs: number };

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (err: Error) => void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** One call of `Replica.run`, as the fake saw it. */
interface Run {
  replica: FakeReplica;
  feeds: Record<string, WireTensor>;
  dims: number[];
  /** input_ids, row by row, padding included. */
  ids: number[][];
  mask: number[][];
  /** First id of each row: the tag of the sequence (see `seq`). */
  tags: number[];
  logits: number[][];
  state: 'pending' | 'resolved' | 'rejected';
  /** The replica was already dead (crashed or closed) when it was asked to run. */
  dead: boolean;
  release(): void;
  fail(err?: Error): void;
  /** Fails the run and marks the replica dead, as a worker that exited. */
  crash(err?: Error): void;
}

class FakeReplica implements Replica {
  alive = true;
  closes = 0;
  ran = 0;

  constructor(
    readonly id: number,
    /** 0 for the first replica of this id, 1 for its first replacement… */
    readonly generation: number,
    private readonly fleet: Fleet,
  ) {}

  run(feeds: Record<string, WireTensor>): Promise<Result> {
    return this.fleet.handle(this, feeds);
  }

  async close(): Promise<void> {
    this.closes += 1;
    this.alive = false;
    await this.fleet.closing(this);
  }
}

const rowsOf = (tensor: WireTensor): number[][] => {
  const [rows, width] = tensor.dims as [number, number];
  const flat = Array.from(tensor.data as ArrayLike<number | bigint>, Number);
  return Array.from({ length: rows }, (_, r) => flat.slice(r * width, (r + 1) * width));
};

/** Every replica a test's factory made, and every run they were given. */
class Fleet {
  readonly runs: Run[] = [];
  readonly replicas: FakeReplica[] = [];
  readonly factoryCalls: number[] = [];
  /** What a replica does with its nth run (0-based, per replica instance). */
  outcome: (replica: FakeReplica, nth: number) => Outcome = () => 'ok';
  /** Runs while the factory starts replica `id`; throw to fail the start. */
  starting: (id: number, generation: number) => Promise<void> | void = () => undefined;
  closing: (replica: FakeReplica) => Promise<void> | void = () => undefined;
  private waiters: { count: number; resolve: () => void }[] = [];

  readonly factory: ReplicaFactory = async (id) => {
    const generation = this.factoryCalls.filter((i) => i === id).length;
    this.factoryCalls.push(id);
    await this.starting(id, generation);
    const replica = new FakeReplica(id, generation, this);
    this.replicas.push(replica);
    return replica;
  };

  handle(replica: FakeReplica, feeds: Record<string, WireTensor>): Promise<Result> {
    const nth = replica.ran++;
    const ids = rowsOf(feeds.input_ids!);
    const mask = rowsOf(feeds.attention_mask!);
    const logits = ids.map((row, r) => [row.reduce((a, b) => a + b, 0), mask[r]!.filter((m) => m !== 0).length]);
    const answer = deferred<Result>();
    const settle = (state: 'resolved' | 'rejected'): void => {
      if (run.state !== 'pending') throw new Error('test bug: a fake run was settled twice');
      run.state = state;
    };
    const run: Run = {
      replica,
      feeds,
      dims: [...feeds.input_ids!.dims],
      ids,
      mask,
      tags: ids.map((row) => row[0]!),
      logits,
      state: 'pending',
      dead: !replica.alive,
      release: () => {
        settle('resolved');
        answer.resolve({ data: Float32Array.from(logits.flat()), dims: [logits.length, 2], computeMs: 1 });
      },
      fail: (err = new Error(`replica ${replica.id} failed`)) => {
        settle('rejected');
        answer.reject(err);
      },
      crash: (err = new Error(`replica ${replica.id} exited with code 1`)) => {
        replica.alive = false;
        run.fail(err);
      },
    };
    this.runs.push(run);
    this.waiters = this.waiters.filter((w) => {
      if (this.runs.length < w.count) return true;
      w.resolve();
      return false;
    });
    if (run.dead) run.fail(new Error(`replica ${replica.id} is dead`));
    else {
      const outcome = this.outcome(replica, nth);
      if (outcome === 'ok') run.release();
      else if (outcome === 'fail') run.fail();
      else if (outcome === 'crash') run.crash();
    }
    return answer.promise;
  }

  /** Resolves once the replicas have been given `count` runs in all. */
  waitForRuns(count: number): Promise<void> {
    if (this.runs.length >= count) return Promise.resolve();
    const d = deferred();
    this.waiters.push({ count, resolve: d.resolve });
    return d.promise;
  }

  at(index: number): Run {
    const run = this.runs[index];
    assert.ok(run, `run #${index} happened (${this.runs.length} runs)`);
    return run;
  }

  sizes(): number[] {
    return this.runs.map((r) => r.dims[0]!);
  }
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

const INPUTS: TensorInfo[] = [
  { name: 'input_ids', type: 'int64', shape: ['batch', 'sequence'] },
  { name: 'attention_mask', type: 'int64', shape: ['batch', 'sequence'] },
];

/** A sequence `[tag, 1, 1, …]` of `length` ids: its logits are [tag + length - 1, length]. */
const seq = (tag: number, length: number): EncodedText => ({
  ids: [tag, ...Array<number>(length - 1).fill(1)],
  typeIds: Array<number>(length).fill(0),
  truncated: false,
});
const logitsOf = (encoded: EncodedText): number[] => [encoded.ids.reduce((a, b) => a + b, 0), encoded.ids.length];

/** A submitted request, with how often the scheduler called its resolve/reject. */
interface Watched {
  encoded: EncodedText;
  promise: Promise<number[]>;
  settlements(): number;
  outcome: { status: 'pending' } | { status: 'fulfilled'; value: number[] } | { status: 'rejected'; reason: unknown };
}

/**
 * `scheduler.submit(encoded)`, counting calls of the resolve and reject it was given. A native
 * promise ignores a second settlement, so watching the promise cannot catch a request answered
 * twice: for the one synchronous call, `Promise` is a subclass whose executor counts them.
 */
function submit(scheduler: Scheduler<EncodedText>, encoded: EncodedText, submitOptions: SubmitOptions = {}): Watched {
  const Native = globalThis.Promise;
  let calls = 0;
  class Counting<T> extends Native<T> {
    static override get [Symbol.species](): PromiseConstructor {
      return Native;
    }
    constructor(executor: (resolve: (value: T | PromiseLike<T>) => void, reject: (reason?: unknown) => void) => void) {
      super((resolve, reject) =>
        executor(
          (value) => {
            calls += 1;
            resolve(value);
          },
          (reason) => {
            calls += 1;
            reject(reason);
          },
        ),
      );
    }
  }
  let promise: Promise<number[]>;
  (globalThis as { Promise: PromiseConstructor }).Promise = Counting as unknown as PromiseConstructor;
  try {
    promise = scheduler.submit(encoded, submitOptions);
  } finally {
    (globalThis as { Promise: PromiseConstructor }).Promise = Native;
  }
  const watched: Watched = { encoded, promise, settlements: () => calls, outcome: { status: 'pending' } };
  promise.then(
    (value) => (watched.outcome = { status: 'fulfilled', value }),
    (reason: unknown) => (watched.outcome = { status: 'rejected', reason }),
  );
  return watched;
}

/** The scheduler pumps its queue from a setImmediate; this resolves after that pump ran. */
const afterPump = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function options(fleet: Fleet, overrides: Partial<SchedulerOptions<EncodedText>> = {}): SchedulerOptions<EncodedText> {
  return {
    replicas: 1,
    factory: fleet.factory,
    maxBatch: 4,
    buckets: [16, 32, 64],
    batcher: textBatcher(INPUTS, 0),
    ...overrides,
  };
}

async function start(
  t: TestContext,
  fleet: Fleet,
  overrides: Partial<SchedulerOptions<EncodedText>> = {},
): Promise<Scheduler<EncodedText>> {
  const scheduler = await Scheduler.create(options(fleet, overrides));
  t.after(() => scheduler.destroy());
  return scheduler;
}

/** Every request resolved exactly once, to its own logits. */
async function assertAnswered(requests: Watched[]): Promise<void> {
  for (const r of requests) assert.deepEqual(await r.promise, logitsOf(r.encoded), `logits of tag ${r.encoded.ids[0]}`);
  assert.deepEqual(
    requests.map((r) => r.settlements()),
    requests.map(() => 1),
    'settlements per request',
  );
}

/** Each tag was computed in exactly one batch that the replica answered. */
function assertComputedOnceEach(fleet: Fleet, requests: Watched[]): void {
  const answered = fleet.runs.filter((r) => r.state === 'resolved').flatMap((r) => r.tags);
  assert.deepEqual(
    [...answered].sort((a, b) => a - b),
    requests.map((r) => r.encoded.ids[0]!).sort((a, b) => a - b),
  );
}

function subscribe<E>(t: TestContext, name: string): E[] {
  const events: E[] = [];
  const onMessage = (message: unknown): void => {
    events.push(message as E);
  };
  diagnosticsChannel.subscribe(name, onMessage);
  t.after(() => diagnosticsChannel.unsubscribe(name, onMessage));
  return events;
}

/** Replaces performance.now and setTimeout with a clock that moves only on `advance`. */
function fakeClock(t: TestContext): { advance(ms: number): void } {
  let now = 1_000;
  t.mock.method(performance, 'now', () => now);
  t.mock.timers.enable({ apis: ['setTimeout'] });
  return {
    advance(ms: number): void {
      now += ms;
      t.mock.timers.tick(ms);
    },
  };
}

const isCode =
  (code: string, status: number) =>
  (err: unknown): boolean => {
    assert.ok(err instanceof KilnError, `expected a KilnError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.status, status);
    return true;
  };

// ---------------------------------------------------------------------------------------------

describe('Scheduler.submit batching', () => {
  test('submit(10 sequences in one tick), maxBatch 4, 1 replica → batches of 4, 4, 2 in FIFO order, each its own logits', async (t) => {
    const fleet = new Fleet();
    const scheduler = await start(t, fleet, { maxBatch: 4 });
    const requests = Array.from({ length: 10 }, (_, i) => submit(scheduler, seq(1000 + i, 3 + i)));
    await assertAnswered(requests);
    assert.deepEqual(fleet.sizes(), [4, 4, 2]);
    assert.deepEqual(
      fleet.runs.map((r) => r.tags),
      [
        [1000, 1001, 1002, 1003],
        [1004, 1005, 1006, 1007],
        [1008, 1009],
      ],
    );
    assertComputedOnceEach(fleet, requests);
  });

  test('submit() while the only replica is busy: the waiting requests go together in the next batch', async (t) => {
    const fleet = new Fleet();
    fleet.outcome = () => 'hold';
    const scheduler = await start(t, fleet, { maxBatch: 8 });
    const first = submit(scheduler, seq(1000, 4));
    await fleet.waitForRuns(1);
    const later = [submit(scheduler, seq(1001, 4)), submit(scheduler, seq(1002, 5))];
    await afterPump();
    assert.equal(fleet.runs.length, 1, 'nothing dispatched while the replica is busy');
    later.push(submit(scheduler, seq(1003, 6)));
    await afterPump();
    fleet.at(0).release();
    await fleet.waitForRuns(2);
    assert.deepEqual(fleet.at(1).tags, [1001, 1002, 1003]);
    fleet.at(1).release();
    await assertAnswered([first, ...later]);
  });
});

describe('Scheduler fair queuing (requests take turns by tokens)', () => {
  /** Submits `count` sequences of `length` tokens as one request, tagged first, first + 1, … */
  const request = (scheduler: Scheduler<EncodedText>, first: number, count: number, length: number): Watched[] => {
    const key = {};
    return Array.from({ length: count }, (_, i) => submit(scheduler, seq(first + i, length), { request: key }));
  };

  test('a 3-text request submitted after a 1,000-text request is answered in the next two batches, while 990 of the long one still wait', async (t) => {
    const fleet = new Fleet();
    fleet.outcome = () => 'hold';
    const scheduler = await start(t, fleet, { maxBatch: 4, pipeline: 1 });
    const long = request(scheduler, 10_000, 1000, 8);
    await fleet.waitForRuns(1);
    assert.deepEqual(fleet.at(0).tags, [10_000, 10_001, 10_002, 10_003]);
    const short = request(scheduler, 1, 3, 8);
    // Its texts start where the dispatched work ends (token 32), so they alternate with the long one's.
    fleet.at(0).release();
    await fleet.waitForRuns(2);
    assert.deepEqual(fleet.at(1).tags, [10_004, 1, 10_005, 2]);
    fleet.at(1).release();
    await fleet.waitForRuns(3);
    assert.deepEqual(fleet.at(2).tags, [10_006, 3, 10_007, 10_008]);
    fleet.at(2).release();
    await assertAnswered(short);
    assert.equal(long.filter((r) => r.outcome.status === 'pending').length, 1000 - 9);
    assert.equal(scheduler.stats().queueDepth, 1000 - 13, 'the next batch of the long one is on the replica');
    fleet.outcome = () => 'ok';
    await fleet.waitForRuns(4);
    fleet.at(3).release();
    await assertAnswered(long);
    assertComputedOnceEach(fleet, [...long, ...short]);
  });

  test('two requests queued together take turns in proportion to tokens: one 16-token text of the first per two 8-token texts of the second', async (t) => {
    const fleet = new Fleet();
    const scheduler = await start(t, fleet, { maxBatch: 6, buckets: [16, 32] });
    const wide = request(scheduler, 100, 4, 16);
    const narrow = request(scheduler, 200, 8, 8);
    await assertAnswered([...wide, ...narrow]);
    assert.deepEqual(
      fleet.runs.map((r) => r.tags),
      [
        [100, 200, 201, 101, 202, 203],
        [102, 204, 205, 103, 206, 207],
      ],
    );
  });

  test('submitAll(8 texts, lengths 40 and 4 alternating): shortest first, so batches of 4 are padded to 16 and of 40 to 64, answers in the order given', async (t) => {
    const fleet = new Fleet();
    const scheduler = await start(t, fleet, { maxBatch: 4 });
    const items = Array.from({ length: 8 }, (_, i) => seq(300 + i, i % 2 === 0 ? 40 : 4));
    const rows = await scheduler.submitAll(items);
    assert.deepEqual(rows, items.map(logitsOf), 'each row back at its own index');
    assert.deepEqual(
      fleet.runs.map((r) => r.tags),
      [
        [301, 303, 305, 307],
        [300, 302, 304, 306],
      ],
    );
    assert.deepEqual(
      fleet.runs.map((r) => r.dims[1]),
      [16, 64],
      'submit() in the given order pads both batches to 64',
    );
  });

  test('submitAll takes turns with another request like submit: its texts are one request for fair queuing', async (t) => {
    const fleet = new Fleet();
    fleet.outcome = () => 'hold';
    const scheduler = await start(t, fleet, { maxBatch: 4, pipeline: 1 });
    const first = submit(scheduler, seq(1, 8));
    await fleet.waitForRuns(1);
    const many = scheduler.submitAll(Array.from({ length: 6 }, (_, i) => seq(500 + i, 8)));
    const other = request(scheduler, 600, 2, 8);
    fleet.outcome = () => 'ok';
    fleet.at(0).release();
    await assertAnswered([first, ...other]);
    await many;
    assert.deepEqual(fleet.at(1).tags, [500, 600, 501, 601]);
  });

  test('requests without a request key (one text each) keep their arrival order', async (t) => {
    const fleet = new Fleet();
    fleet.outcome = () => 'hold';
    const scheduler = await start(t, fleet, { maxBatch: 2, pipeline: 1 });
    const lone = [submit(scheduler, seq(1, 30)), submit(scheduler, seq(2, 3))];
    await fleet.waitForRuns(1);
    const later = [3, 4, 5, 6].map((tag) => submit(scheduler, seq(tag, tag === 4 ? 40 : 2)));
    for (let n = 0; n < 3; n += 1) {
      await fleet.waitForRuns(n + 1);
      fleet.at(n).release();
    }
    await assertAnswered([...lone, ...later]);
    assert.deepEqual(
      fleet.runs.map((r) => r.tags),
      [
        [1, 2],
        [3, 4],
        [5, 6],
      ],
    );
  });

  test('a long request is not starved by a stream of one-text requests: one arrives per batch, and the long one still finishes', async (t) => {
    const fleet = new Fleet();
    fleet.outcome = () => 'hold';
    const scheduler = await start(t, fleet, { maxBatch: 1, pipeline: 1 });
    const long = request(scheduler, 1000, 10, 8);
    const stream: Watched[] = [];
    let n = 0;
    while (long.some((r) => r.outcome.status === 'pending')) {
      assert.ok(n < 200, `the long request still waits after ${n} batches`);
      await fleet.waitForRuns(n + 1);
      stream.push(submit(scheduler, seq(n + 1, 8)));
      fleet.at(n).release();
      n += 1;
      await afterPump();
    }
    // Each one-text request is a request of its own: the long one's next text waits behind those
    // queued before it was due, one more each time, but virtual time moves with every batch, so it
    // is reached (where a clock that stood still while the stream was served would starve it).
    const order = fleet.runs.map((r) => r.tags[0]!);
    const positions = order.flatMap((tag, i) => (tag >= 1000 ? [i] : []));
    assert.deepEqual(
      positions.slice(1).map((p, k) => p - positions[k]! - 1),
      [0, 1, 2, 3, 4, 5, 6, 7, 8],
      `one-text requests between the long one's texts (batches: ${order.join(' ')})`,
    );
    fleet.outcome = () => 'ok';
    while (fleet.runs.some((r) => r.state === 'pending')) fleet.runs.find((r) => r.state === 'pending')!.release();
    await assertAnswered([...long, ...stream]);
  });
});

describe('Scheduler wide replica (lone requests on every core)', () => {
  /**
   * Two replicas and a wide one (id 2, made by the same fleet) for up to `maxRows` inputs; no
   * waiting for companions, so where a batch goes depends on the order of events only.
   */
  const withWide = (
    t: TestContext,
    fleet: Fleet,
    maxRows = 2,
    overrides: Partial<SchedulerOptions<EncodedText>> = {},
  ) =>
    start(t, fleet, {
      replicas: 2,
      pipeline: 1,
      maxDelayMs: 0,
      wide: { factory: fleet.factory, maxRows },
      ...overrides,
    });

  test('a lone request that finds every replica idle goes to the wide replica; stats().wide counts it', async (t) => {
    const fleet = new Fleet();
    const scheduler = await withWide(t, fleet);
    assert.deepEqual(fleet.factoryCalls, [0, 1, 2]);
    const lone = submit(scheduler, seq(1, 5));
    await assertAnswered([lone]);
    assert.equal(fleet.at(0).replica.id, 2);
    const stats = scheduler.stats();
    assert.equal(stats.replicas.length, 2);
    assert.deepEqual(
      { id: stats.wide?.id, batches: stats.wide?.batches, items: stats.wide?.items },
      { id: 2, batches: 1, items: 1 },
    );
    assert.deepEqual(
      stats.replicas.map((r) => r.batches),
      [0, 0],
    );
  });

  test('more than maxRows queued at once go to the replicas, shared out, not to the wide one', async (t) => {
    const fleet = new Fleet();
    const scheduler = await withWide(t, fleet, 2);
    const burst = [1, 2, 3, 4].map((tag) => submit(scheduler, seq(tag, 5)));
    await assertAnswered(burst);
    assert.deepEqual(
      fleet.runs.map((r) => [r.replica.id, r.tags.length]),
      [
        [0, 2],
        [1, 2],
      ],
    );
  });

  test('while the wide replica computes, nothing goes to the replicas; then a queue over maxRows goes to them, and a lone request to the wide one again', async (t) => {
    const fleet = new Fleet();
    fleet.outcome = () => 'hold';
    const scheduler = await withWide(t, fleet, 2);
    const first = submit(scheduler, seq(1, 5));
    await fleet.waitForRuns(1);
    assert.equal(fleet.at(0).replica.id, 2);
    const queued = [2, 3, 4].map((tag) => submit(scheduler, seq(tag, 5)));
    await afterPump();
    assert.equal(fleet.runs.length, 1, 'the replicas wait while the wide replica holds the cores');
    assert.equal(scheduler.stats().inFlight, 1);
    fleet.outcome = () => 'ok';
    fleet.at(0).release();
    await assertAnswered([first, ...queued]);
    assert.deepEqual(
      fleet.runs.slice(1).map((r) => r.replica.id),
      [0, 1],
    );
    const lone = submit(scheduler, seq(5, 5));
    await assertAnswered([lone]);
    assert.equal(fleet.runs.at(-1)!.replica.id, 2);
  });

  test('a lone request while a replica is busy goes to the idle replica, not the wide one', async (t) => {
    const fleet = new Fleet();
    fleet.outcome = () => 'hold';
    const scheduler = await withWide(t, fleet, 1);
    const pair = [submit(scheduler, seq(1, 5)), submit(scheduler, seq(2, 5))];
    await fleet.waitForRuns(2);
    fleet.at(0).release();
    await pair[0]!.promise;
    const lone = submit(scheduler, seq(3, 5));
    await fleet.waitForRuns(3);
    assert.equal(fleet.at(2).replica.id, fleet.at(0).replica.id);
    assert.notEqual(fleet.at(2).replica.id, 2);
    fleet.at(1).release();
    fleet.at(2).release();
    await assertAnswered([...pair, lone]);
  });

  test('a wide replica that crashes is replaced by its own factory and its batch retried; close() closes it; batch events tell the wide replica', async (t) => {
    const events = subscribe<BatchEvent>(t, BATCH_CHANNEL);
    const fleet = new Fleet();
    const wideFleet = new Fleet();
    wideFleet.outcome = (_, nth) => (nth === 0 ? 'crash' : 'ok');
    const scheduler = await withWide(t, fleet, 2, { wide: { factory: wideFleet.factory, maxRows: 2 } });
    const lone = submit(scheduler, seq(1, 5));
    await assertAnswered([lone]);
    assert.equal(wideFleet.at(0).state, 'rejected');
    // Retried on a replica (the wide one was restarting), and the wide one came back.
    assert.equal(fleet.runs.length + wideFleet.runs.length, 2);
    assert.deepEqual(
      events.map(({ replica, wide, ok }) => ({ replica, wide, ok })),
      [
        { replica: 2, wide: true, ok: false },
        { replica: fleet.at(0).replica.id, wide: false, ok: true },
      ],
    );
    await until(() => wideFleet.factoryCalls.length === 2);
    assert.deepEqual(wideFleet.factoryCalls, [2, 2]);
    await scheduler.close();
    assert.equal(wideFleet.replicas[1]!.closes, 1);
  });
});

describe('Scheduler.submit buckets', () => {
  // Each case is one batch (submitted in one tick, fewer than maxBatch).
  const cases: { name: string; lengths: number[]; dims: [number, number] }[] = [
    { name: 'lengths 5 and 20 share a batch padded to bucket 32', lengths: [5, 20], dims: [2, 32] },
    { name: 'only length-5 sequences pad to bucket 16', lengths: [5, 5, 3], dims: [3, 16] },
    { name: 'length 16 fits bucket 16 exactly', lengths: [16], dims: [1, 16] },
    { name: 'length 17 takes bucket 32', lengths: [17, 2], dims: [2, 32] },
    { name: 'length 64 (the last bucket) pads to 64', lengths: [64, 5], dims: [2, 64] },
  ];
  for (const { name, lengths, dims } of cases) {
    test(`submit(lengths ${lengths.join(', ')}), buckets [16, 32, 64]: ${name}; the mask marks exactly the real tokens`, async (t) => {
      const fleet = new Fleet();
      const scheduler = await start(t, fleet, { maxBatch: 8, buckets: [16, 32, 64] });
      const requests = lengths.map((length, i) => submit(scheduler, seq(1000 + i, length)));
      await assertAnswered(requests);
      assert.equal(fleet.runs.length, 1);
      const run = fleet.at(0);
      assert.deepEqual(run.dims, dims);
      assert.deepEqual(run.feeds.attention_mask!.dims, dims);
      assert.equal(run.feeds.input_ids!.type, 'int64');
      assert.ok(run.feeds.input_ids!.data instanceof BigInt64Array);
      lengths.forEach((length, row) => {
        const width = dims[1];
        assert.deepEqual(
          run.mask[row],
          [...Array<number>(length).fill(1), ...Array<number>(width - length).fill(0)],
          `mask row ${row}`,
        );
        assert.deepEqual(
          run.ids[row],
          [...seq(1000 + row, length).ids, ...Array<number>(width - length).fill(0)],
          `ids row ${row}`,
        );
      });
    });
  }

  test("submit(a sequence longer than the last bucket): the batch keeps the sequence's own width (never truncated here), and stats count the width sent", async (t) => {
    const fleet = new Fleet();
    const events = subscribe<BatchEvent>(t, BATCH_CHANNEL);
    const scheduler = await start(t, fleet, { maxBatch: 8, buckets: [16, 32, 64] });
    await submit(scheduler, seq(1000, 70)).promise;
    const run = fleet.at(0);
    const stats = scheduler.stats();
    assert.equal(stats.paddedTokens, run.dims[0]! * run.dims[1]!, 'paddedTokens is what was sent');
    assert.ok(
      stats.realTokens <= stats.paddedTokens,
      `realTokens ${stats.realTokens} <= paddedTokens ${stats.paddedTokens}`,
    );
    assert.ok(events[0]!.fill <= 1, `fill ${events[0]!.fill} <= 1`);
    assert.deepEqual(run.dims, [1, 70]);
  });
});

describe('Scheduler.submit token budget', () => {
  const cases: { name: string; tokenBudget: number; lengths: number[]; batches: [number, number][] }[] = [
    {
      name: 'four length-20 (bucket 32) go two by two',
      tokenBudget: 64,
      lengths: [20, 20, 20, 20],
      batches: [
        [2, 32],
        [2, 32],
      ],
    },
    {
      name: 'five length-5 (bucket 16): four fit, the fifth waits',
      tokenBudget: 64,
      lengths: [5, 5, 5, 5, 5],
      batches: [
        [4, 16],
        [1, 16],
      ],
    },
    {
      name: 'a longer sequence raises the bucket of the whole batch, so it starts the next one',
      tokenBudget: 64,
      lengths: [5, 5, 20, 5],
      batches: [
        [2, 16],
        [2, 32],
      ],
    },
    {
      name: 'a sequence over the budget on its own still runs, alone',
      tokenBudget: 16,
      lengths: [20, 3],
      batches: [
        [1, 32],
        [1, 16],
      ],
    },
  ];
  for (const { name, tokenBudget, lengths, batches } of cases) {
    test(`submit(lengths ${lengths.join(', ')}), tokenBudget ${tokenBudget}, buckets [16, 32]: ${name}`, async (t) => {
      const fleet = new Fleet();
      const scheduler = await start(t, fleet, { maxBatch: 8, buckets: [16, 32], tokenBudget });
      const requests = lengths.map((length, i) => submit(scheduler, seq(1000 + i, length)));
      await assertAnswered(requests);
      assert.deepEqual(
        fleet.runs.map((r) => r.dims),
        batches,
      );
      assert.deepEqual(
        fleet.runs.flatMap((r) => r.tags),
        requests.map((r) => r.encoded.ids[0]),
        'FIFO',
      );
    });
  }
});

describe('Scheduler dispatch to replicas', () => {
  test('submit() while replica 0 is busy dispatches to replica 1; stats().replicas count batches and items per replica', async (t) => {
    const fleet = new Fleet();
    fleet.outcome = () => 'hold';
    const scheduler = await start(t, fleet, { replicas: 2, maxBatch: 8, maxDelayMs: 0 });
    const a = [submit(scheduler, seq(1000, 3))];
    await fleet.waitForRuns(1);
    const b = [submit(scheduler, seq(1001, 3)), submit(scheduler, seq(1002, 3)), submit(scheduler, seq(1003, 3))];
    await fleet.waitForRuns(2);
    assert.deepEqual(
      fleet.runs.map((r) => [r.replica.id, r.tags]),
      [
        [0, [1000]],
        [1, [1001, 1002, 1003]],
      ],
    );
    let stats = scheduler.stats();
    assert.deepEqual(
      stats.replicas.map((r) => r.busy),
      [true, true],
    );
    assert.equal(stats.inFlight, 2);
    fleet.at(1).release();
    fleet.at(0).release();
    await assertAnswered([...a, ...b]);
    stats = scheduler.stats();
    assert.deepEqual(
      stats.replicas.map(({ id, busy, batches, items, failures }) => ({ id, busy, batches, items, failures })),
      [
        { id: 0, busy: false, batches: 1, items: 1, failures: 0 },
        { id: 1, busy: false, batches: 1, items: 3, failures: 0 },
      ],
    );
  });

  test('submit() of several requests with two idle replicas shares them out: two batches, not one batch and an idle core', async (t) => {
    const fleet = new Fleet();
    fleet.outcome = () => 'hold';
    const scheduler = await start(t, fleet, { replicas: 2, maxBatch: 8, maxDelayMs: 0 });
    const requests = [1000, 1001, 1002, 1003, 1004].map((tag) => submit(scheduler, seq(tag, 3)));
    await fleet.waitForRuns(2);
    assert.deepEqual(fleet.runs.map((r) => r.tags.length).sort(), [2, 3]);
    fleet.at(0).release();
    fleet.at(1).release();
    await assertAnswered(requests);
  });

  test('submit() of several requests with two idle replicas and the default maxDelayMs: both shares go in the same pump, the second not held back for companions', async (t) => {
    const fleet = new Fleet();
    fleet.outcome = () => 'hold';
    const scheduler = await start(t, fleet, { replicas: 2, maxBatch: 8 });
    const requests = [1000, 1001, 1002, 1003].map((tag) => submit(scheduler, seq(tag, 3)));
    await fleet.waitForRuns(1);
    // The pump that dispatched the first share has ended: a share it left for later would be missing here.
    assert.deepEqual(
      fleet.runs.map((r) => [r.replica.id, r.tags.length]),
      [
        [0, 2],
        [1, 2],
      ],
    );
    fleet.at(0).release();
    fleet.at(1).release();
    await assertAnswered(requests);
  });

  test('submit() of a round shared by two idle replicas with lengthGrouping: the last share (the longest rows) is not split by length', async (t) => {
    const fleet = new Fleet();
    fleet.outcome = () => 'hold';
    const scheduler = await start(t, fleet, { replicas: 2, maxBatch: 8, maxDelayMs: 0, lengthGrouping: true });
    const lengths = [4, 60, 4, 4, 4, 4];
    const requests = lengths.map((length, i) => submit(scheduler, seq(1000 + i, length)));
    await fleet.waitForRuns(1);
    // Ordered by length, the round is five 4s and the 60: three 4s, then two 4s with the 60
    // (grouping those would pad 2 × 48 fewer tokens but leave the 60 waiting for a batch).
    assert.deepEqual(
      fleet.runs.map((r) => ({ replica: r.replica.id, tags: r.tags, dims: r.dims })),
      [
        { replica: 0, tags: [1000, 1002, 1003], dims: [3, 16] },
        { replica: 1, tags: [1004, 1005, 1001], dims: [3, 64] },
      ],
    );
    fleet.at(0).release();
    fleet.at(1).release();
    await assertAnswered(requests);
  });

  test('submit() with both replicas idle picks the one with the least busy time, not the first or the one with fewest items', async (t) => {
    const clock = fakeClock(t);
    const fleet = new Fleet();
    fleet.outcome = () => 'hold';
    const scheduler = await start(t, fleet, { replicas: 2, maxBatch: 8, maxDelayMs: 0 });
    const requests = [submit(scheduler, seq(1000, 3))];
    await fleet.waitForRuns(1);
    requests.push(submit(scheduler, seq(1001, 3)), submit(scheduler, seq(1002, 3)), submit(scheduler, seq(1003, 3)));
    await fleet.waitForRuns(2);
    // Replica 1 (3 items) is done after 10 ms, replica 0 (1 item) after 50 ms.
    clock.advance(10);
    fleet.at(1).release();
    await Promise.all(requests.slice(1).map((r) => r.promise));
    clock.advance(40);
    fleet.at(0).release();
    await requests[0]!.promise;
    assert.deepEqual(
      scheduler.stats().replicas.map(({ id, busyMs, items }) => ({ id, busyMs, items })),
      [
        { id: 0, busyMs: 50, items: 1 },
        { id: 1, busyMs: 10, items: 3 },
      ],
    );
    requests.push(submit(scheduler, seq(1004, 3)));
    await fleet.waitForRuns(3);
    assert.equal(fleet.at(2).replica.id, 1);
    fleet.at(2).release();
    await assertAnswered(requests);
  });
});

describe('Scheduler pipeline (a busy replica is handed its next batch ahead)', () => {
  test('pipeline 2: with the only replica busy, the next batch goes to it when its batch is expected to end (less two hand-offs, at least half-way), not before; answers keep their order', async (t) => {
    const clock = fakeClock(t);
    const fleet = new Fleet();
    const scheduler = await start(t, fleet, { maxBatch: 4, maxDelayMs: 0, pipeline: 2 });
    // One answered batch teaches the speed: 1 ms per batch by the replica's own timing.
    const warm = submit(scheduler, seq(999, 3));
    await assertAnswered([warm]);
    fleet.outcome = () => 'hold';
    const first = submit(scheduler, seq(1000, 3));
    await fleet.waitForRuns(2);
    const second = [submit(scheduler, seq(1001, 3)), submit(scheduler, seq(1002, 3))];
    await afterPump();
    assert.equal(fleet.runs.length, 2, 'not sent ahead at once: later arrivals may still join it');
    // The replica reported 1 ms per batch, and hand-offs here take no time: due 1 ms after it started.
    clock.advance(0.5);
    await afterPump();
    assert.equal(fleet.runs.length, 2, 'not half-way through');
    clock.advance(0.5);
    await fleet.waitForRuns(3);
    assert.equal(fleet.at(2).replica, fleet.at(1).replica, 'sent to the busy replica');
    assert.deepEqual(fleet.at(2).tags, [1001, 1002]);
    assert.equal(fleet.at(1).state, 'pending', 'while its batch still runs');
    assert.equal(scheduler.stats().inFlight, 2);
    // A third batch waits: the replica holds two already.
    const third = submit(scheduler, seq(1003, 3));
    clock.advance(10);
    await afterPump();
    assert.equal(fleet.runs.length, 3);
    // The first batch answered: the second computes now, and the third goes ahead of its end.
    fleet.at(1).release();
    await first.promise;
    clock.advance(1);
    await fleet.waitForRuns(4);
    assert.deepEqual(fleet.at(3).tags, [1003]);
    assert.equal(fleet.at(2).state, 'pending');
    fleet.at(2).release();
    fleet.at(3).release();
    await assertAnswered([first, ...second, third]);
    assertComputedOnceEach(fleet, [warm, first, ...second, third]);
  });

  test('pipeline 2: the batch goes ahead to the replica expected to free first, costed by padded tokens, not to the one that started first', async (t) => {
    const clock = fakeClock(t);
    const fleet = new Fleet();
    const scheduler = await start(t, fleet, { replicas: 2, maxBatch: 4, maxDelayMs: 0, pipeline: 2 });
    // Teaches the speed: a batch of 16 padded tokens takes 1 ms.
    const warm = submit(scheduler, seq(999, 3));
    await assertAnswered([warm]);
    fleet.outcome = () => 'hold';
    // Replica A: 64 padded tokens, expected 4 ms. Half a millisecond later, replica B: 16 tokens, 1 ms.
    const long = submit(scheduler, seq(1000, 60));
    await fleet.waitForRuns(2);
    clock.advance(0.5);
    const short = submit(scheduler, seq(1001, 3));
    await fleet.waitForRuns(3);
    assert.notEqual(fleet.at(2).replica, fleet.at(1).replica);
    const next = submit(scheduler, seq(1002, 3));
    clock.advance(1);
    await fleet.waitForRuns(4);
    assert.equal(fleet.at(3).replica, fleet.at(2).replica, 'sent to the replica with the short batch');
    for (const i of [1, 2, 3]) fleet.at(i).release();
    await assertAnswered([long, short, next]);
  });

  test('pipeline 2: a full batch waiting is sent ahead at once', async (t) => {
    fakeClock(t);
    const fleet = new Fleet();
    const scheduler = await start(t, fleet, { maxBatch: 2, maxDelayMs: 0, pipeline: 2 });
    await assertAnswered([submit(scheduler, seq(999, 3))]);
    fleet.outcome = () => 'hold';
    const first = submit(scheduler, seq(1000, 3));
    await fleet.waitForRuns(2);
    const full = [submit(scheduler, seq(1001, 3)), submit(scheduler, seq(1002, 3))];
    await fleet.waitForRuns(3);
    assert.deepEqual(fleet.at(2).tags, [1001, 1002]);
    fleet.at(1).release();
    fleet.at(2).release();
    await assertAnswered([first, ...full]);
  });

  test('pipeline 1 (the default): nothing is sent to a busy replica, however long it runs', async (t) => {
    const clock = fakeClock(t);
    const fleet = new Fleet();
    const scheduler = await start(t, fleet, { maxBatch: 4, maxDelayMs: 0 });
    await assertAnswered([submit(scheduler, seq(999, 3))]);
    fleet.outcome = () => 'hold';
    const first = submit(scheduler, seq(1000, 3));
    await fleet.waitForRuns(2);
    const later = submit(scheduler, seq(1001, 3));
    clock.advance(100);
    await afterPump();
    assert.equal(fleet.runs.length, 2);
    fleet.at(1).release();
    await fleet.waitForRuns(3);
    fleet.at(2).release();
    await assertAnswered([first, later]);
  });

  test('pipeline 2: a replica that crashes holding two batches is replaced once, and each request of both is answered once', async (t) => {
    const clock = fakeClock(t);
    const fleet = new Fleet();
    const scheduler = await start(t, fleet, { maxBatch: 2, maxDelayMs: 0, pipeline: 2 });
    const warm = submit(scheduler, seq(999, 3));
    await assertAnswered([warm]);
    fleet.outcome = (replica) => (replica.generation === 0 ? 'hold' : 'ok');
    const requests = [submit(scheduler, seq(1000, 3))];
    await fleet.waitForRuns(2);
    requests.push(submit(scheduler, seq(1001, 3)));
    clock.advance(1);
    await fleet.waitForRuns(3);
    assert.equal(scheduler.stats().inFlight, 2);
    // The worker exits: both of its batches fail.
    fleet.at(1).crash();
    fleet.at(2).fail(new Error('replica 0 exited with code 1'));
    await assertAnswered(requests);
    assert.deepEqual(fleet.factoryCalls, [0, 0], 'one replacement for one crash');
    assertComputedOnceEach(fleet, [warm, ...requests]);
  });
});

describe('Scheduler dynamic delay (maxDelayMs)', () => {
  test('submit() while another replica is busy waits maxDelayMs from the first arrival; arrivals within it join the batch', async (t) => {
    const clock = fakeClock(t);
    const fleet = new Fleet();
    fleet.outcome = () => 'hold';
    const scheduler = await start(t, fleet, { replicas: 2, maxBatch: 4, maxDelayMs: 10 });
    const first = submit(scheduler, seq(1000, 3));
    await afterPump();
    assert.equal(fleet.runs.length, 1, 'the first request, with both replicas idle, goes at once');
    const b = submit(scheduler, seq(1001, 3));
    await afterPump();
    clock.advance(5);
    await afterPump();
    assert.equal(fleet.runs.length, 1, 'at 5 ms the lone request still waits for companions');
    const c = submit(scheduler, seq(1002, 3));
    await afterPump();
    clock.advance(4);
    await afterPump();
    assert.equal(fleet.runs.length, 1, 'at 9 ms still waiting');
    clock.advance(1);
    await afterPump();
    assert.equal(
      fleet.runs.length,
      2,
      'at 10 ms (maxDelayMs after the first arrival) the batch goes, not 10 ms after the last',
    );
    assert.equal(fleet.at(1).replica.id, 1);
    assert.deepEqual(fleet.at(1).tags, [1001, 1002]);
    fleet.at(0).release();
    fleet.at(1).release();
    await assertAnswered([first, b, c]);
  });

  test('submit() with all replicas idle dispatches a lone request without waiting for maxDelayMs', async (t) => {
    fakeClock(t);
    const fleet = new Fleet();
    const scheduler = await start(t, fleet, { replicas: 2, maxBatch: 4, maxDelayMs: 10_000 });
    const lone = submit(scheduler, seq(1000, 3));
    // The timers never move: only an immediate dispatch can answer.
    await assertAnswered([lone]);
    assert.deepEqual(fleet.sizes(), [1]);
  });

  test('submit() while a replica is busy stops waiting as soon as maxBatch requests are queued', async (t) => {
    fakeClock(t);
    const fleet = new Fleet();
    fleet.outcome = () => 'hold';
    const scheduler = await start(t, fleet, { replicas: 2, maxBatch: 3, maxDelayMs: 10_000 });
    const first = submit(scheduler, seq(1000, 3));
    await fleet.waitForRuns(1);
    const rest = [submit(scheduler, seq(1001, 3)), submit(scheduler, seq(1002, 3))];
    await afterPump();
    assert.equal(fleet.runs.length, 1);
    rest.push(submit(scheduler, seq(1003, 3)));
    await fleet.waitForRuns(2);
    assert.deepEqual(fleet.at(1).tags, [1001, 1002, 1003]);
    fleet.at(0).release();
    fleet.at(1).release();
    await assertAnswered([first, ...rest]);
  });

  test('close() dispatches a request that waits for companions at once', async (t) => {
    fakeClock(t);
    const fleet = new Fleet();
    fleet.outcome = () => 'hold';
    const scheduler = await start(t, fleet, { replicas: 2, maxBatch: 4, maxDelayMs: 10_000 });
    const first = submit(scheduler, seq(1000, 3));
    await fleet.waitForRuns(1);
    const waiting = submit(scheduler, seq(1001, 3));
    await afterPump();
    assert.equal(fleet.runs.length, 1);
    const closed = scheduler.close();
    await fleet.waitForRuns(2);
    fleet.at(0).release();
    fleet.at(1).release();
    await closed;
    await assertAnswered([first, waiting]);
  });
});

describe('Scheduler bounded queue (maxQueue)', () => {
  test('submit() beyond maxQueue rejects with KILN_ERR_QUEUE_FULL (429), counts it and publishes kiln:scheduler:reject', async (t) => {
    const events = subscribe<RejectEvent>(t, REJECT_CHANNEL);
    const fleet = new Fleet();
    fleet.outcome = () => 'hold';
    const scheduler = await start(t, fleet, { maxBatch: 2, maxQueue: 3 });
    // The first batch leaves the queue for the replica, which then stays busy.
    const inFlight = [submit(scheduler, seq(1000, 3)), submit(scheduler, seq(1001, 3))];
    await fleet.waitForRuns(1);
    assert.equal(scheduler.stats().queueDepth, 0);
    const queued = [submit(scheduler, seq(1002, 3)), submit(scheduler, seq(1003, 3)), submit(scheduler, seq(1004, 3))];
    const refused = [submit(scheduler, seq(1005, 3)), submit(scheduler, seq(1006, 3))];
    for (const r of refused) {
      await assert.rejects(r.promise, (err: unknown) => {
        isCode('KILN_ERR_QUEUE_FULL', 429)(err);
        assert.deepEqual((err as KilnError<'KILN_ERR_QUEUE_FULL'>).params, { depth: 3, maxQueue: 3 });
        return true;
      });
    }
    const stats = scheduler.stats();
    assert.equal(stats.rejected, 2);
    assert.equal(stats.submitted, 5);
    assert.equal(stats.queueDepth, 3);
    assert.deepEqual(events, [
      { queueDepth: 3, maxQueue: 3 },
      { queueDepth: 3, maxQueue: 3 },
    ]);
    fleet.at(0).release();
    await fleet.waitForRuns(2);
    fleet.at(1).release();
    await fleet.waitForRuns(3);
    fleet.at(2).release();
    await assertAnswered([...inFlight, ...queued]);
    assert.deepEqual(
      refused.map((r) => r.settlements()),
      [1, 1],
    );
    assertComputedOnceEach(fleet, [...inFlight, ...queued]);
    // Room again once the queue drained.
    fleet.outcome = () => 'ok';
    await assertAnswered([submit(scheduler, seq(1007, 3))]);
    assert.equal(scheduler.stats().rejected, 2);
  });
});

describe('Scheduler replica failures', () => {
  test('a replica run that rejects once (replica alive) → the batch is retried and each request resolves once to its logits', async (t) => {
    const errors = subscribe<ReplicaErrorEvent>(t, REPLICA_ERROR_CHANNEL);
    const fleet = new Fleet();
    fleet.outcome = (_replica, nth) => (nth === 0 ? 'fail' : 'ok');
    const scheduler = await start(t, fleet, { maxBatch: 4 });
    const requests = [
      submit(scheduler, seq(1000, 3)),
      submit(scheduler, seq(1001, 7)),
      submit(scheduler, seq(1002, 5)),
    ];
    await assertAnswered(requests);
    assert.deepEqual(
      fleet.runs.map((r) => [r.state, r.tags]),
      [
        ['rejected', [1000, 1001, 1002]],
        ['resolved', [1000, 1001, 1002]],
      ],
    );
    assertComputedOnceEach(fleet, requests);
    assert.deepEqual(fleet.factoryCalls, [0], 'a live replica is not replaced');
    const stats = scheduler.stats();
    assert.equal(stats.replicas[0]!.failures, 1);
    assert.equal(stats.completed, 3);
    assert.equal(stats.failed, 0);
    // The failed run counts as a failure only: the batch and its tokens once, for the retry.
    assert.deepEqual(
      {
        batches: stats.batches,
        realTokens: stats.realTokens,
        paddedTokens: stats.paddedTokens,
        batchSizes: stats.batchSizes,
        paddedLengths: stats.paddedLengths,
        fill: stats.fill,
        replica: { batches: stats.replicas[0]!.batches, items: stats.replicas[0]!.items },
      },
      {
        batches: 1,
        realTokens: 3 + 7 + 5,
        paddedTokens: 3 * 16,
        batchSizes: { 3: 1 },
        paddedLengths: { 16: 1 },
        fill: { '0.3': 1 },
        replica: { batches: 1, items: 3 },
      },
    );
    assert.deepEqual(errors, [{ replica: 0, message: 'replica 0 failed' }]);
  });

  test('a replica that crashes (alive false) is replaced by factory(same id) and the batch retried on the new one', async (t) => {
    const fleet = new Fleet();
    fleet.outcome = (replica) => (replica.generation === 0 ? 'crash' : 'ok');
    const scheduler = await start(t, fleet, { maxBatch: 4 });
    const requests = [
      submit(scheduler, seq(1000, 3)),
      submit(scheduler, seq(1001, 4)),
      submit(scheduler, seq(1002, 9)),
    ];
    await assertAnswered(requests);
    assert.deepEqual(fleet.factoryCalls, [0, 0]);
    const [old, replacement] = fleet.replicas;
    assert.equal(old!.closes, 1, 'the crashed replica is closed');
    assert.deepEqual(
      fleet.runs.map((r) => [r.replica.generation, r.state, r.tags]),
      [
        [0, 'rejected', [1000, 1001, 1002]],
        [1, 'resolved', [1000, 1001, 1002]],
      ],
    );
    assert.ok(fleet.runs.every((r) => !r.dead));
    assertComputedOnceEach(fleet, requests);
    const stats = scheduler.stats();
    assert.deepEqual(
      stats.replicas.map(({ id, failures }) => ({ id, failures })),
      [{ id: 0, failures: 1 }],
    );
    assert.equal(stats.completed, 3);
    assert.equal(replacement!.alive, true);
  });

  test('a crash while the other replica is busy: no request is lost or answered twice', async (t) => {
    const fleet = new Fleet();
    fleet.outcome = () => 'hold';
    const scheduler = await start(t, fleet, { replicas: 2, maxBatch: 2, maxDelayMs: 0 });
    const requests = [submit(scheduler, seq(1000, 3))];
    await fleet.waitForRuns(1);
    requests.push(submit(scheduler, seq(1001, 4)), submit(scheduler, seq(1002, 5)));
    await fleet.waitForRuns(2);
    requests.push(submit(scheduler, seq(1003, 7)));
    await afterPump();
    fleet.at(0).crash();
    // The retried request goes first, with the queued one, to the replica free first: the replacement.
    await fleet.waitForRuns(3);
    assert.deepEqual(fleet.factoryCalls, [0, 1, 0]);
    assert.deepEqual(fleet.at(2).tags, [1000, 1003]);
    assert.equal(fleet.at(2).replica.generation, 1);
    fleet.at(2).release();
    fleet.at(1).release();
    await assertAnswered(requests);
    assertComputedOnceEach(fleet, requests);
    assert.ok(fleet.runs.every((r) => !r.dead));
    const stats = scheduler.stats();
    assert.equal(stats.completed + stats.failed, stats.submitted);
    assert.equal(stats.completed, 4);
  });

  test('a crash while the replacement starts slowly: the batch is retried on the other, idle replica at once', async (t) => {
    const fleet = new Fleet();
    const replacementStarted = deferred();
    fleet.starting = (_id, generation) => (generation > 0 ? replacementStarted.promise : undefined);
    fleet.outcome = (replica) => (replica.id === 0 && replica.generation === 0 ? 'crash' : 'ok');
    const scheduler = await start(t, fleet, { replicas: 2, maxBatch: 4 });
    t.after(() => replacementStarted.resolve());
    const requests = [submit(scheduler, seq(1000, 3)), submit(scheduler, seq(1001, 4))];
    // The two requests go one to each idle replica; replica 0 crashes. Its request must be
    // retried on replica 1 while the replacement is still starting (it never finishes here).
    const onReplica1 = (): number[] => fleet.runs.filter((r) => r.replica.id === 1).flatMap((r) => r.tags);
    for (let turn = 0; turn < 100 && onReplica1().length < 2; turn += 1) await afterPump();
    assert.deepEqual(
      onReplica1().sort(),
      [1000, 1001],
      'the retry was dispatched to replica 1 while the replacement is starting',
    );
    await assertAnswered(requests);
  });

  test('a crashed replica whose restart fails is left out: its batch is retried on the live replica', async (t) => {
    // The clock makes the dead replica the least busy one (0 ms against 10 ms), so the policy picks it if it may.
    const clock = fakeClock(t);
    const fleet = new Fleet();
    fleet.starting = (_id, generation) => {
      if (generation > 0) throw new Error('replacement failed to load');
    };
    fleet.outcome = () => 'hold';
    const scheduler = await start(t, fleet, { replicas: 2, maxBatch: 4, maxDelayMs: 0 });
    const a = [submit(scheduler, seq(1000, 3))];
    await fleet.waitForRuns(1);
    const b = [submit(scheduler, seq(1001, 3))];
    await fleet.waitForRuns(2);
    assert.equal(fleet.at(1).replica.id, 1);
    fleet.at(0).crash();
    await afterPump();
    await afterPump();
    assert.deepEqual(fleet.factoryCalls, [0, 1, 0], 'a restart was tried');
    clock.advance(10);
    fleet.at(1).release();
    await fleet.waitForRuns(3);
    const retry = fleet.at(2);
    assert.equal(retry.dead, false, 'the retry was not sent to the dead replica');
    retry.release();
    await assertAnswered([...a, ...b]);
  });

  const attempts: { maxAttempts: number | undefined; runs: number }[] = [
    { maxAttempts: undefined, runs: 2 },
    { maxAttempts: 1, runs: 1 },
    { maxAttempts: 3, runs: 3 },
  ];
  for (const { maxAttempts, runs } of attempts) {
    test(`a replica that always rejects, maxAttempts ${maxAttempts ?? 'default'} → ${runs} run(s), then each request rejects with KILN_ERR_REPLICA_FAILED`, async (t) => {
      const fleet = new Fleet();
      fleet.outcome = () => 'fail';
      const scheduler = await start(t, fleet, { maxBatch: 4, ...(maxAttempts === undefined ? {} : { maxAttempts }) });
      const requests = [
        submit(scheduler, seq(1000, 3)),
        submit(scheduler, seq(1001, 4)),
        submit(scheduler, seq(1002, 5)),
      ];
      for (const r of requests) {
        await assert.rejects(r.promise, (err: unknown) => {
          isCode('KILN_ERR_REPLICA_FAILED', 500)(err);
          const e = err as KilnError<'KILN_ERR_REPLICA_FAILED'>;
          assert.equal(e.params.attempts, runs);
          assert.equal(e.params.replica, 0);
          assert.ok(e.cause instanceof Error && e.cause.message === 'replica 0 failed', 'keeps the cause');
          return true;
        });
      }
      assert.deepEqual(
        requests.map((r) => r.settlements()),
        [1, 1, 1],
      );
      assert.equal(fleet.runs.length, runs);
      const stats = scheduler.stats();
      assert.equal(stats.failed, 3);
      assert.equal(stats.completed, 0);
      assert.equal(stats.replicas[0]!.failures, runs);
      assert.deepEqual(
        [stats.batches, stats.realTokens, stats.paddedTokens, stats.replicas[0]!.batches],
        [0, 0, 0, 0],
        'no batch was answered',
      );
    });
  }

  test('a replica that always rejects with a KilnError (alive) → after maxAttempts each request rejects with exactly that error, not KILN_ERR_REPLICA_FAILED', async (t) => {
    const fleet = new Fleet();
    const coded = new KilnError('KILN_ERR_RUNTIME_RUN', { reason: 'Unexpected input data type' });
    fleet.outcome = () => 'hold';
    const scheduler = await start(t, fleet, { maxBatch: 4 });
    const request = submit(scheduler, seq(1000, 3));
    await fleet.waitForRuns(1);
    fleet.at(0).fail(coded);
    await fleet.waitForRuns(2);
    fleet.at(1).fail(coded);
    await assert.rejects(request.promise, (err: unknown) => err === coded);
    assert.equal(request.settlements(), 1);
    assert.equal(fleet.runs.length, 2, 'retried once, as any failure');
  });
});

describe('Scheduler.close and Scheduler.destroy', () => {
  test('close() finishes queued and in-flight work, then closes the replicas; submit() after it rejects with KILN_ERR_SCHEDULER_CLOSED', async (t) => {
    const fleet = new Fleet();
    fleet.outcome = () => 'hold';
    const scheduler = await start(t, fleet, { replicas: 1, maxBatch: 2 });
    const requests = [
      submit(scheduler, seq(1000, 3)),
      submit(scheduler, seq(1001, 4)),
      submit(scheduler, seq(1002, 5)),
    ];
    await fleet.waitForRuns(1);
    let closed = false;
    const closing = scheduler.close().then(() => (closed = true));
    const late = submit(scheduler, seq(1003, 3));
    await assert.rejects(late.promise, isCode('KILN_ERR_SCHEDULER_CLOSED', 503));
    await afterPump();
    assert.equal(closed, false, 'close() waits for the work');
    assert.equal(fleet.replicas[0]!.closes, 0, 'replicas stay open while work remains');
    fleet.at(0).release();
    await fleet.waitForRuns(2);
    assert.deepEqual(fleet.at(1).tags, [1002], 'the queued request still runs');
    await afterPump();
    assert.equal(closed, false);
    assert.equal(fleet.replicas[0]!.closes, 0);
    fleet.at(1).release();
    await closing;
    assert.equal(fleet.replicas[0]!.closes, 1);
    await assertAnswered(requests);
    assert.equal(late.settlements(), 1);
    assert.equal(fleet.runs.length, 2, 'the refused request never ran');
  });

  test('close() called twice while work is in flight: both calls resolve', async (t) => {
    const fleet = new Fleet();
    fleet.outcome = () => 'hold';
    const scheduler = await start(t, fleet);
    const request = submit(scheduler, seq(1000, 3));
    await fleet.waitForRuns(1);
    let firstDone = false;
    const first = scheduler.close().then(() => (firstDone = true));
    const second = scheduler.close();
    fleet.at(0).release();
    await second;
    await afterPump();
    assert.equal(firstDone, true, 'the first close() resolved too');
    await first;
    await assertAnswered([request]);
  });

  test('destroy(err) rejects queued and in-flight requests with exactly err; a late replica result settles nothing', async (t) => {
    const fleet = new Fleet();
    fleet.outcome = () => 'hold';
    const scheduler = await start(t, fleet, { replicas: 1, maxBatch: 2 });
    const inFlight = [submit(scheduler, seq(1000, 3)), submit(scheduler, seq(1001, 4))];
    await fleet.waitForRuns(1);
    const queued = [submit(scheduler, seq(1002, 5))];
    const err = new Error('shutting down for a test');
    await scheduler.destroy(err);
    for (const r of [...inFlight, ...queued]) {
      await assert.rejects(r.promise, (e: unknown) => e === err);
    }
    assert.equal(fleet.replicas[0]!.closes, 1);
    fleet.at(0).release();
    await afterPump();
    assert.deepEqual(
      [...inFlight, ...queued].map((r) => r.settlements()),
      [1, 1, 1],
    );
    assert.equal(fleet.runs.length, 1, 'the queued request never ran');
    await assert.rejects(submit(scheduler, seq(1003, 3)).promise, isCode('KILN_ERR_SCHEDULER_CLOSED', 503));
  });

  test('destroy() without an error rejects with KILN_ERR_SCHEDULER_CLOSED', async (t) => {
    const fleet = new Fleet();
    fleet.outcome = () => 'hold';
    const scheduler = await start(t, fleet);
    const request = submit(scheduler, seq(1000, 3));
    await fleet.waitForRuns(1);
    await scheduler.destroy();
    await assert.rejects(request.promise, isCode('KILN_ERR_SCHEDULER_CLOSED', 503));
  });

  test('destroy(err) with requests in flight: stats count them failed, not completed when the late result arrives', async (t) => {
    const fleet = new Fleet();
    fleet.outcome = () => 'hold';
    const scheduler = await start(t, fleet, { maxBatch: 2 });
    const requests = [submit(scheduler, seq(1000, 3)), submit(scheduler, seq(1001, 4))];
    await fleet.waitForRuns(1);
    requests.push(submit(scheduler, seq(1002, 5)));
    await scheduler.destroy(new Error('stop'));
    fleet.at(0).release();
    await afterPump();
    const stats = scheduler.stats();
    assert.deepEqual(
      { submitted: stats.submitted, completed: stats.completed, failed: stats.failed },
      { submitted: 3, completed: 0, failed: 3 },
    );
  });

  test('destroy() while a crashed replica is being replaced: the replacement is closed too', async (t) => {
    const fleet = new Fleet();
    const replacementStarted = deferred();
    fleet.starting = (_id, generation) => (generation > 0 ? replacementStarted.promise : undefined);
    fleet.outcome = () => 'crash';
    const scheduler = await start(t, fleet);
    const request = submit(scheduler, seq(1000, 3));
    await fleet.waitForRuns(1);
    await afterPump();
    assert.deepEqual(fleet.factoryCalls, [0, 0], 'a replacement is starting');
    await scheduler.destroy(new Error('stop'));
    await assert.rejects(request.promise, /stop/);
    replacementStarted.resolve();
    await afterPump();
    assert.equal(fleet.replicas.length, 2);
    assert.deepEqual(
      fleet.replicas.map((r) => r.closes > 0),
      [true, true],
      'every replica the factory made is closed',
    );
  });
});

describe('Scheduler.stats', () => {
  test('stats() is a frozen snapshot with exact token counts and batchSizes / paddedLengths / fill histograms', async (t) => {
    const fleet = new Fleet();
    const scheduler = await start(t, fleet, { maxBatch: 4, buckets: [16, 32, 64] });
    // Batch 1: lengths 5 + 20 padded to 32 → 25 real of 64 padded tokens, fill 0.39.
    await assertAnswered([submit(scheduler, seq(1000, 5)), submit(scheduler, seq(1001, 20))]);
    const early = scheduler.stats();
    const earlyCopy = structuredClone(early);
    // Batch 2: one length 16 in bucket 16, fill 1. Batch 3: four length 3 in bucket 16, fill 12/64.
    await assertAnswered([submit(scheduler, seq(1002, 16))]);
    await assertAnswered([1003, 1004, 1005, 1006].map((tag) => submit(scheduler, seq(tag, 3))));
    const stats = scheduler.stats();
    assert.deepEqual(fleet.sizes(), [2, 1, 4]);

    assert.deepEqual(early, earlyCopy, 'an earlier snapshot does not change');
    assert.equal(early.batches, 1);
    assert.deepEqual(early.batchSizes, { 2: 1 });

    assert.equal(stats.submitted, 7);
    assert.equal(stats.completed, 7);
    assert.equal(stats.failed, 0);
    assert.equal(stats.rejected, 0);
    assert.equal(stats.batches, 3);
    assert.equal(stats.queueDepth, 0);
    assert.equal(stats.inFlight, 0);
    assert.equal(stats.realTokens, 25 + 16 + 12);
    assert.equal(stats.paddedTokens, 64 + 16 + 64);
    assert.deepEqual(stats.batchSizes, { 1: 1, 2: 1, 4: 1 });
    assert.deepEqual(stats.paddedLengths, { 16: 2, 32: 1 });
    assert.deepEqual(stats.fill, { '0.1': 1, '0.3': 1, '0.9': 1 });
    assert.deepEqual(
      stats.replicas.map(({ id, batches, items }) => ({ id, batches, items })),
      [{ id: 0, batches: 3, items: 7 }],
    );
    assert.ok(stats.uptimeMs >= 0);

    // ESM is strict: writing to a frozen object throws.
    const writes: [string, () => void][] = [
      ['a counter', () => ((stats as { completed: number }).completed = 0)],
      ['a histogram', () => ((stats.batchSizes as Record<string, number>)['1'] = 9)],
      ['a new histogram key', () => ((stats.fill as Record<string, number>)['0.5'] = 1)],
      ['the replica list', () => (stats.replicas as unknown as unknown[]).push({})],
      ['a replica', () => ((stats.replicas[0] as { items: number }).items = 0)],
    ];
    for (const [what, write] of writes) assert.throws(write, TypeError, what);
    assert.equal(scheduler.stats().completed, 7);
  });
});

describe('kiln:scheduler:batch channel', () => {
  test('publishes one event per batch with replica, size, paddedLength, fill and ok (false for a failed run)', async (t) => {
    const events = subscribe<BatchEvent>(t, BATCH_CHANNEL);
    const fleet = new Fleet();
    fleet.outcome = (_replica, nth) => (nth === 1 ? 'fail' : 'ok');
    const scheduler = await start(t, fleet, { maxBatch: 4, buckets: [16, 32, 64] });
    await assertAnswered([submit(scheduler, seq(1000, 5)), submit(scheduler, seq(1001, 20))]);
    // Fails once, then succeeds on the retry.
    await assertAnswered([submit(scheduler, seq(1002, 16))]);
    assert.equal(events.length, 3);
    assert.deepEqual(
      events.map(({ replica, size, paddedLength, fill, ok }) => ({ replica, size, paddedLength, fill, ok })),
      [
        { replica: 0, size: 2, paddedLength: 32, fill: 25 / 64, ok: true },
        { replica: 0, size: 1, paddedLength: 16, fill: 1, ok: false },
        { replica: 0, size: 1, paddedLength: 16, fill: 1, ok: true },
      ],
    );
    for (const e of events) {
      assert.equal(typeof e.computeMs, 'number');
      assert.ok(e.computeMs >= 0 && e.longestWaitMs >= 0);
    }
  });
});

describe('Scheduler.create', () => {
  test('Scheduler.create() with a factory that fails for replica 1 rejects with its error and closes the replicas that started', async () => {
    const fleet = new Fleet();
    const slowStarts = deferred();
    const loadError = new Error('replica 1 could not load');
    fleet.starting = (id) => {
      if (id === 1) throw loadError;
      return slowStarts.promise;
    };
    let settled = false;
    const created = Scheduler.create(options(fleet, { replicas: 3 })).finally(() => (settled = true));
    created.catch(() => undefined);
    await afterPump();
    assert.equal(settled, false, 'create() waits for the replicas still starting');
    slowStarts.resolve();
    await assert.rejects(created, (err: unknown) => err === loadError);
    assert.deepEqual([...fleet.factoryCalls].sort(), [0, 1, 2]);
    assert.deepEqual(
      fleet.replicas.map((r) => [r.id, r.closes]),
      [
        [0, 1],
        [2, 1],
      ],
    );
  });

  test('Scheduler.create() with a failing replica and a started one whose close() fails still rejects with the load error', async () => {
    const fleet = new Fleet();
    const loadError = new Error('replica 1 could not load');
    fleet.starting = (id) => {
      if (id === 1) throw loadError;
    };
    fleet.closing = () => {
      throw new Error('close failed');
    };
    await assert.rejects(Scheduler.create(options(fleet, { replicas: 2 })), (err: unknown) => err === loadError);
  });
});

describe('Scheduler length grouping (lengthGrouping: similar lengths share a batch)', () => {
  test('8 queued rows, lengths 4 and 60 alternating, one free replica: a batch of the 4s padded to 16, then the 60s padded to 64 (FIFO pads all 8 to 64)', {
    timeout: 10_000,
  }, async (t) => {
    const paddedTokens = async (lengthGrouping: boolean) => {
      const fleet = new Fleet();
      fleet.outcome = () => 'hold';
      const scheduler = await start(t, fleet, { maxBatch: 8, lengthGrouping });
      const first = submit(scheduler, seq(1000, 4));
      await fleet.waitForRuns(1);
      const queued = Array.from({ length: 8 }, (_, i) => submit(scheduler, seq(1001 + i, i % 2 === 0 ? 4 : 60)));
      await afterPump();
      fleet.outcome = () => 'ok';
      fleet.at(0).release();
      await assertAnswered([first, ...queued]);
      assertComputedOnceEach(fleet, [first, ...queued]);
      return { fleet, padded: scheduler.stats().paddedTokens - 16 };
    };
    const grouped = await paddedTokens(true);
    assert.deepEqual(
      grouped.fleet.runs.slice(1).map((r) => ({ tags: r.tags, dims: r.dims })),
      [
        { tags: [1001, 1003, 1005, 1007], dims: [4, 16] },
        { tags: [1002, 1004, 1006, 1008], dims: [4, 64] },
      ],
    );
    const fifo = await paddedTokens(false);
    assert.deepEqual(
      fifo.fleet.runs.slice(1).map((r) => r.dims),
      [[8, 64]],
    );
    assert.deepEqual([grouped.padded, fifo.padded], [4 * 16 + 4 * 64, 8 * 64]);
  });

  // Queued behind a busy replica, then taken by it: the batches (rows × padded length) it computes next.
  const floorCases: { name: string; lengths: number[]; dims: number[][] }[] = [
    {
      name: 'rows of 5 and 9 share a batch: cutting them apart spares 4 padded tokens',
      lengths: [9, 5],
      dims: [[2, 12]],
    },
    {
      name: 'a 60 after them is cut off: it would pad the two to 64, 2 × 52 tokens',
      lengths: [60, 9, 5],
      dims: [
        [2, 12],
        [1, 64],
      ],
    },
    {
      name: 'a 60 with one 5 shares its batch: the cut would spare 56 tokens, under the floor',
      lengths: [60, 5],
      dims: [[2, 64]],
    },
  ];
  for (const { name, lengths, dims } of floorCases) {
    test(`lengths ${lengths.join(', ')}, buckets [8, 12, 64]: ${name} (GROUP_MIN_SAVED_TOKENS ${GROUP_MIN_SAVED_TOKENS})`, {
      timeout: 10_000,
    }, async (t) => {
      const fleet = new Fleet();
      fleet.outcome = () => 'hold';
      const scheduler = await start(t, fleet, { maxBatch: 8, buckets: [8, 12, 64], lengthGrouping: true });
      const first = submit(scheduler, seq(1000, 4));
      await fleet.waitForRuns(1);
      const queued = lengths.map((length, i) => submit(scheduler, seq(1001 + i, length)));
      await afterPump();
      fleet.outcome = () => 'ok';
      fleet.at(0).release();
      await assertAnswered([first, ...queued]);
      assert.deepEqual(
        fleet.runs.slice(1).map((r) => r.dims),
        dims,
      );
    });
  }

  test('a row passed over for its length goes in the next batch, ahead of shorter rows that arrived meanwhile', {
    timeout: 10_000,
  }, async (t) => {
    const fleet = new Fleet();
    fleet.outcome = () => 'hold';
    const scheduler = await start(t, fleet, { maxBatch: 8, lengthGrouping: true });
    const first = submit(scheduler, seq(1000, 4));
    await fleet.waitForRuns(1);
    const queued = [submit(scheduler, seq(1001, 60)), submit(scheduler, seq(1002, 4)), submit(scheduler, seq(1003, 4))];
    await afterPump();
    fleet.at(0).release();
    await fleet.waitForRuns(2);
    assert.deepEqual(fleet.at(1).tags, [1002, 1003], 'the 60-token row would pad the 4s to 64');
    // Shorter rows arrive while that batch computes: the long row still goes in the next batch.
    queued.push(submit(scheduler, seq(1004, 4)), submit(scheduler, seq(1005, 4)));
    await afterPump();
    fleet.at(1).release();
    await fleet.waitForRuns(3);
    assert.deepEqual(fleet.at(2).tags, [1001, 1004, 1005]);
    assert.deepEqual(fleet.at(2).dims, [3, 64]);
    fleet.at(2).release();
    await assertAnswered([first, ...queued]);
    assertComputedOnceEach(fleet, [first, ...queued]);
  });
});
