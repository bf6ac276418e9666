/**
 * The scheduler, in the shape of undici's Pool: one queue in front of N replicas, served fairly
 * among requests (start-time fair queuing by tokens: a request of 1,000 texts shares the
 * replicas with the one-text requests behind it instead of holding them up), dynamic
 * batching (max batch, max delay, token budget), length buckets (a batch is padded to the
 * smallest bucket that fits its longest sequence), dispatch to the least-busy free replica
 * (or, with a pipeline, ahead to the busy one expected to free first), a bounded queue and an
 * expected-wait limit that refuse with coded errors, an immutable stats() snapshot, close()
 * that finishes queued work and destroy() that fails it. Every request settles exactly once,
 * also when replicas fail: a crashed replica is replaced and its batch retried.
 */
import { type BatchEvent, channels } from '../core/channels.js';
import { KilnError } from '../core/errors.js';
import { percentile } from '../core/stats.js';
import { bucketFor } from '../model/buckets.js';
import type { Batcher } from './batcher.js';
import type { Replica, ReplicaFactory } from './replica.js';
import type { WireTensor } from './replica-protocol.js';

export interface SchedulerOptions<I> {
  /** Number of replicas (ONNX Runtime sessions in worker threads). */
  replicas: number;
  factory: ReplicaFactory;
  /** Most sequences in one batch. */
  maxBatch: number;
  /** How long a request may wait for companions when a replica is busy, in ms. @defaultValue {@link DEFAULT_MAX_DELAY_MS} */
  maxDelayMs?: number;
  /** Most requests waiting; more are refused with KILN_ERR_QUEUE_FULL. @defaultValue 4096 */
  maxQueue?: number;
  /** Most padded tokens (batch size × bucket) in one batch. @defaultValue maxBatch × largest bucket */
  tokenBudget?: number;
  /** Sequence lengths batches are padded to, ascending; the last is the max length. */
  buckets: number[];
  /** Turns the requests of a batch into the graph's feeds (the task's part: text, images…). */
  batcher: Batcher<I>;
  /**
   * Tries per request before it fails: with the replica's own error (KILN_ERR_RUNTIME_RUN when
   * ONNX Runtime refused the batch), or KILN_ERR_REPLICA_FAILED when the replica crashed. @defaultValue 2
   */
  maxAttempts?: number;
  /**
   * Refuse a request (KILN_ERR_QUEUE_WAIT, 429) that would wait longer than this before its batch
   * starts (what is left of the running batches and batches sent ahead, then the queue, at the
   * replicas' measured speed), in ms: overload turns into fast refusals instead of long waits
   * for everyone. @defaultValue null (only max queue bounds the queue)
   */
  maxQueueMs?: number | null;
  /**
   * Batches a replica may hold at once: with 2, a busy replica is handed its next batch before
   * the current one ends, so it starts at once instead of idling while its answer crosses to the
   * main thread and the next batch crosses back (which waits for the main thread's event loop,
   * busiest exactly when the replicas are). @defaultValue 1
   */
  pipeline?: number;
  /**
   * A wide replica (one session on every core) that takes the work when it finds the runtime
   * idle: every replica idle and at most `maxRows` inputs queued. A lone request is then answered
   * at the latency of one session on all cores, while under load the replicas (one core each)
   * give the throughput; while the wide replica computes, the others wait (it holds the cores).
   * @defaultValue none
   */
  wide?: { factory: ReplicaFactory; maxRows: number };
  /**
   * When one replica takes a batch from several queued jobs, take similar lengths together: the
   * candidates (what the batch would take in fair order) are ordered by length and the batch is
   * cut before a longer row that would drop its fill (real tokens / padded tokens) below
   * {@link GROUP_MIN_FILL}, where the cut spares more than {@link GROUP_MIN_SAVED_TOKENS} padded
   * tokens. A row left out goes in the first later batch that considers it, whatever its length:
   * not always the next one (jobs queued ahead of it in fair order, or a token budget, can fill
   * that), but it is never starved. Candidates that are all rows of one request are not split. Off, the
   * candidates go as they come, padded to the longest. @defaultValue false
   */
  lengthGrouping?: boolean;
}

export interface SubmitOptions {
  /** performance.now() time after which the request is dropped unstarted (KILN_ERR_DEADLINE_EXCEEDED). */
  deadline?: number;
  /**
   * The request this item is part of (any object, the same for each of its items): the items of
   * one request take turns with other requests' items instead of all going first. @defaultValue a request of its own
   */
  request?: object;
}

interface Job<I> {
  item: I;
  /** The item's sequence length (1 for fixed-size inputs), measured once. */
  length: number;
  /** Its start tag in fair queuing: the queue is ordered by it (see Scheduler.enqueue). */
  start: number;
  enqueuedAt: number;
  deadline: number;
  attempts: number;
  /** The request it is part of (SubmitOptions.request); null: a request of its own. */
  request: object | null;
  /** Left out of a batch once by length grouping: the first later batch that considers it takes it. */
  passedOver: boolean;
  settled: boolean;
  resolve: (output: number[]) => void;
  reject: (err: Error) => void;
}

interface Slot {
  replica: Replica;
  /** When the batch computing now started: its dispatch, or the answer before it when it waited behind one. */
  since: number;
  /**
   * Padded tokens (rows × bucket) of each batch dispatched to this replica and not answered yet,
   * oldest (computing) first: its length is how many the replica holds (at most the pipeline depth).
   */
  held: number[];
  /** Set while a replacement for a failed replica is starting. */
  restarting: boolean;
  busyMs: number;
  batches: number;
  items: number;
  failures: number;
}

export interface ReplicaStats {
  readonly id: number;
  readonly busy: boolean;
  /** Time computing, failed runs included. */
  readonly busyMs: number;
  /** Batches answered, and their inputs; a failed run counts in `failures` only. */
  readonly batches: number;
  readonly items: number;
  readonly failures: number;
}

export interface SchedulerStats {
  readonly replicas: readonly ReplicaStats[];
  /** The wide replica (SchedulerOptions.wide): lone requests on every core; null without one. */
  readonly wide: ReplicaStats | null;
  readonly queueDepth: number;
  /** Batches on the replicas now, computing or sent ahead (not requests: a batch holds several). */
  readonly inFlight: number;
  readonly submitted: number;
  readonly completed: number;
  readonly failed: number;
  readonly rejected: number;
  /** Batches answered; with the histograms and token counts below, a failed run is not counted (its replica's `failures` is). */
  readonly batches: number;
  /** Batches by size: `{ "1": 10, "16": 4 }`. */
  readonly batchSizes: Readonly<Record<string, number>>;
  /** Batches by padded length (bucket). */
  readonly paddedLengths: Readonly<Record<string, number>>;
  /** Batches by fill (real tokens / padded tokens) in tenths: `{ "0.9": 12 }` means 90–100 %. */
  readonly fill: Readonly<Record<string, number>>;
  readonly realTokens: number;
  readonly paddedTokens: number;
  readonly uptimeMs: number;
  /** Requests answered in the last {@link RECENT_WINDOW_MS}: rate and latency (queue + compute). */
  readonly recent: RecentLatency;
}

/** Every replica of a snapshot: the replicas, then the wide one when there is one. */
export function allReplicas(stats: SchedulerStats): readonly ReplicaStats[] {
  return stats.wide ? [...stats.replicas, stats.wide] : stats.replicas;
}

export interface RecentLatency {
  readonly windowMs: number;
  readonly count: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** The window `stats().recent` covers: long enough for stable percentiles, short enough to be live. */
export const RECENT_WINDOW_MS = 10_000;
/** Latencies kept for it; beyond this rate the window shortens to the newest answers. */
const RECENT_CAPACITY = 8192;

/** How long a request waits for companions while replicas are busy, in ms, unless told otherwise. */
export const DEFAULT_MAX_DELAY_MS = 2;
/** Requests that may wait before new ones are refused, unless told otherwise. */
export const DEFAULT_MAX_QUEUE = 4096;
/** Length grouping cuts a batch before a row that would drop its fill below this. */
export const GROUP_MIN_FILL = 0.6;
/**
 * ...and only when the cut spares the rows taken more padded tokens than this. A cut costs the
 * rows left a whole batch of waiting and a run of their own (a hand-off to a worker and back, the
 * session's per-run work), which a few padded tokens do not repay; small batches are where the fill
 * rule alone cuts for nothing: rows of 5 and 9 tokens (default buckets 8 and 12) fill 14 / 24 =
 * 58 %, and cutting them apart spares 4 tokens. A floor, not a measured optimum: half a row of a
 * 128-token model, under 2 % of a full batch of 32 such rows.
 */
export const GROUP_MIN_SAVED_TOKENS = 64;

export class Scheduler<I> {
  /** Waiting jobs by start tag (ties in arrival order). */
  private readonly queue: Job<I>[] = [];
  /** Fair queuing's virtual time: the latest end (start tag + tokens) of a job dispatched so far. */
  private virtualTime = 0;
  /** Where each request's tokens queued so far end in virtual time: its next item starts there. */
  private readonly requestEnds = new WeakMap<object, number>();
  private readonly slots: Slot[];
  /** The wide replica's slot (SchedulerOptions.wide), or null. */
  private readonly wide: Slot | null;
  private maxDelayMs: number;
  private maxBatch: number;
  private readonly maxQueue: number;
  /** Null: the budget follows max batch × the largest bucket. */
  private readonly tokenBudget: number | null;
  private readonly maxAttempts: number;
  private readonly lengthGrouping: boolean;
  private readonly started = performance.now();
  private timer: NodeJS.Timeout | null = null;
  /** Jobs dispatched to a replica and not answered yet (sent-ahead batches too), so destroy() can fail them at once. */
  private readonly dispatched = new Set<Job<I>>();
  private pumpScheduled = false;
  private state: 'open' | 'closing' | 'closed' = 'open';
  private drained: (() => void) | null = null;
  private closing: Promise<void> | null = null;
  private counters = { submitted: 0, completed: 0, failed: 0, rejected: 0, batches: 0, realTokens: 0, paddedTokens: 0 };
  /** Ring of [done at, latency] for stats().recent. */
  private readonly recentDone = new Float64Array(RECENT_CAPACITY);
  private readonly recentLatency = new Float64Array(RECENT_CAPACITY);
  private recentNext = 0;
  /**
   * Replica compute time per batch (the workers' own timing), averaged over recent batches: the
   * admission check's speed. A capacity, not a completion rate: a rate of answers falls when the
   * queue runs empty, so an estimate built on it would refuse more the less work there is. Per
   * batch, not per request: the queue is served in batches, and a batch of 8 costs far less
   * than 8 batches of 1.
   */
  private msPerBatch: number | null = null;
  /** Time a batch's hand-off to a replica and back adds to its compute (messages, event loops), averaged. */
  private handoffMs = 0;
  /** Padded tokens per batch, averaged like msPerBatch: a batch of twice as many is expected to take twice as long. */
  private tokensPerBatch: number | null = null;
  private readonly histograms = {
    batchSizes: {} as Record<string, number>,
    paddedLengths: {} as Record<string, number>,
    fill: {} as Record<string, number>,
  };

  private constructor(
    private readonly options: SchedulerOptions<I>,
    replicas: Replica[],
    wide: Replica | null,
  ) {
    const slot = (replica: Replica): Slot => ({
      replica,
      since: 0,
      held: [],
      restarting: false,
      busyMs: 0,
      batches: 0,
      items: 0,
      failures: 0,
    });
    this.slots = replicas.map(slot);
    this.wide = wide ? slot(wide) : null;
    this.maxDelayMs = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
    this.maxBatch = options.maxBatch;
    this.maxQueue = options.maxQueue ?? DEFAULT_MAX_QUEUE;
    this.tokenBudget = options.tokenBudget ?? null;
    this.maxAttempts = options.maxAttempts ?? 2;
    this.lengthGrouping = options.lengthGrouping ?? false;
  }

  /** Starts every replica (in parallel) and returns a scheduler that uses them. */
  static async create<I>(options: SchedulerOptions<I>): Promise<Scheduler<I>> {
    // The wide replica, when there is one, takes the id after the others'.
    const settled = await Promise.allSettled([
      ...Array.from({ length: options.replicas }, (_, i) => options.factory(i)),
      ...(options.wide ? [options.wide.factory(options.replicas)] : []),
    ]);
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      // The load error is the one to report; a replica that also fails to close must not hide it.
      await Promise.all(
        settled.map((s) => (s.status === 'fulfilled' ? s.value.close().catch(() => undefined) : undefined)),
      );
      throw failed.reason;
    }
    const replicas = settled.map((s) => (s as PromiseFulfilledResult<Replica>).value);
    return new Scheduler(options, replicas.slice(0, options.replicas), replicas[options.replicas] ?? null);
  }

  /**
   * Queues the items of one request, shortest first, and resolves to their rows in `items`' order:
   * a request of many texts in any order then fills consecutive batches with similar lengths
   * instead of padding each batch to the longest of whatever came together (`npm run
   * bench:latency` gives the default unsorted texts: its fill equals the caller-sorted run's).
   * Its items take turns with other requests' (fair queuing).
   */
  submitAll(items: readonly I[], options: Omit<SubmitOptions, 'request'> = {}): Promise<number[][]> {
    const request = {};
    const lengths = items.map((item) => this.options.batcher.length(item));
    const order = items.map((_, i) => i).sort((a, b) => lengths[a]! - lengths[b]!);
    const rows: number[][] = new Array(items.length);
    return Promise.all(
      order.map((i) =>
        this.submit(items[i]!, { ...options, request }).then((row) => {
          rows[i] = row;
        }),
      ),
    ).then(() => rows);
  }

  /** Queues one request; resolves to its row of the model's first output (logits, embedding…). */
  submit(item: I, options: SubmitOptions = {}): Promise<number[]> {
    if (this.state !== 'open')
      return Promise.reject(new KilnError('KILN_ERR_SCHEDULER_CLOSED', { reason: 'it is shutting down' }));
    const refusal = this.admission();
    if (refusal) {
      this.countRefusal();
      return Promise.reject(refusal);
    }
    this.counters.submitted += 1;
    const length = this.options.batcher.length(item);
    const { request } = options;
    const start = Math.max(this.virtualTime, request ? (this.requestEnds.get(request) ?? 0) : 0);
    if (request) this.requestEnds.set(request, start + length);
    return new Promise((resolve, reject) => {
      this.enqueue({
        item,
        length,
        start,
        enqueuedAt: performance.now(),
        deadline: options.deadline ?? Infinity,
        attempts: 0,
        request: request ?? null,
        passedOver: false,
        settled: false,
        resolve,
        reject,
      });
      this.schedulePump();
    });
  }

  /**
   * Queues a job after every job whose start tag is not later than its own. Start-time fair
   * queuing (Goyal et al., 1996) by tokens: a request's first item starts at the virtual time
   * (where the work dispatched so far ends), each next item where the one before it ends, so requests
   * waiting together get batches in proportion to their tokens, one long request cannot hold up
   * the short ones behind it, and lone requests keep their arrival order.
   */
  private enqueue(job: Job<I>): void {
    const queue = this.queue;
    if (queue.length === 0 || queue[queue.length - 1]!.start <= job.start) queue.push(job);
    else queue.splice(this.queuedBefore(job.start), 0, job);
  }

  /** How many queued jobs start no later than `start`: those a job of that start tag waits behind. */
  private queuedBefore(start: number): number {
    let lo = 0;
    let hi = this.queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.queue[mid]!.start <= start) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * The error a request arriving now would be refused with (queue full, or a wait past
   * maxQueueMs), or null when it would be queued. Cheap: the server asks before reading a body,
   * so overload is refused before any parsing or tokenizing. Counts nothing.
   */
  admission(): KilnError | null {
    if (this.queue.length >= this.maxQueue)
      return new KilnError('KILN_ERR_QUEUE_FULL', { depth: this.queue.length, maxQueue: this.maxQueue });
    const limitMs = this.options.maxQueueMs ?? null;
    if (limitMs !== null) {
      const waitMs = this.expectedWaitMs();
      if (waitMs > limitMs)
        return new KilnError('KILN_ERR_QUEUE_WAIT', { waitMs: Math.round(waitMs), limitMs, depth: this.queue.length });
    }
    return null;
  }

  /** Counts a refusal made for the scheduler before submit (the server's early check). */
  countRefusal(): void {
    this.counters.rejected += 1;
    if (channels.reject.hasSubscribers)
      channels.reject.publish({ queueDepth: this.queue.length, maxQueue: this.maxQueue });
  }

  /**
   * How long a request arriving now would wait before its batch starts: until a replica is free
   * (what is left of its batch, and of any batch sent to it ahead), then the full batches queued
   * before it (fair order: not the later items of a long request), each taken by whichever
   * replica frees first. Zero while a replica is idle.
   */
  private expectedWaitMs(): number {
    const live = this.slots.filter((s) => s.replica.alive && !s.restarting);
    const idle = live.filter((s) => s.held.length === 0).length;
    const before = this.queuedBefore(this.virtualTime);
    const now = performance.now();
    // While the wide replica computes, the others wait for it (it holds every core).
    const wideLeft = this.wide && this.wide.held.length > 0 ? Math.max(0, this.expectedEnd(this.wide) - now) : 0;
    // Idle replicas take the queue at once; without history (start-up) the count bound still holds.
    const perBatch = this.msPerBatch;
    if (perBatch === null || live.length === 0) return 0;
    if (before < idle * this.maxBatch) return wideLeft;
    const freeAt = live
      .map((s) => Math.max(wideLeft, s.held.length === 0 ? 0 : this.expectedEnd(s) - now))
      .sort((a, b) => a - b);
    // The full batches queued ahead go round the replicas, the first free first.
    const ahead = Math.floor(before / this.maxBatch);
    return freeAt[ahead % live.length]! + Math.floor(ahead / live.length) * perBatch;
  }

  /** How long a batch of `tokens` padded tokens is expected to take, from the replicas' own timing. */
  private expectedMs(tokens: number): number {
    const perBatch = this.msPerBatch ?? 0;
    return this.tokensPerBatch ? (perBatch * tokens) / this.tokensPerBatch : perBatch;
  }

  /** When a busy replica is expected to have answered every batch it holds. */
  private expectedEnd(slot: Slot): number {
    return slot.held.reduce((end, tokens) => end + this.expectedMs(tokens), slot.since);
  }

  /** Requests that arrive in the same turn of the event loop can share a batch. */
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    // Set once this pump has ordered a round to share among the idle replicas (below).
    let sharing = false;
    while (this.queue.length > 0) {
      const wide = this.wide;
      // The wide replica holds every core while it computes: the others wait for it.
      if (wide && wide.held.length > 0) break;
      if (
        wide?.replica.alive &&
        !wide.restarting &&
        this.queue.length <= this.options.wide!.maxRows &&
        this.slots.every((s) => s.held.length === 0)
      ) {
        // The runtime is idle and the work is small: one session on every core answers it soonest.
        const batch = this.takeBatch(this.maxBatch);
        if (batch.length > 0) this.dispatch(wide, batch);
        continue;
      }
      const slot = this.freeSlot();
      if (!slot) {
        if (this.dispatchAhead()) continue;
        return;
      }
      const idle = this.slots.filter((sl) => sl.held.length === 0 && !sl.restarting && sl.replica.alive).length;
      if (!sharing) {
        const anyBusy = this.slots.some((s) => s.held.length > 0);
        // Wait for companions only while another replica is working: an idle machine answers now.
        // The oldest job is not always first (fair order): the wait counts from the oldest.
        const waited =
          this.queue.length < this.maxBatch
            ? performance.now() - Math.min(...this.queue.map((j) => j.enqueuedAt))
            : Infinity;
        if (anyBusy && waited < this.maxDelayMs && this.state === 'open') {
          this.timer = setTimeout(() => this.pump(), Math.max(0, this.maxDelayMs - waited));
          return;
        }
        // Share the queue among the idle replicas: four requests and two idle replicas make two
        // batches of two, not one batch of four and an idle core. The requests this round will
        // take are ordered by length first, so each batch holds similar lengths and pads little
        // (order changes only within one round). The whole round goes out in this pump, a share
        // per idle replica: the first share dispatched does not make the others wait for
        // companions, and the last (the round's longest rows) is not cut by length grouping.
        // Only a token budget can leave rows of the round to later batches.
        const round = Math.min(this.queue.length, idle * this.maxBatch);
        if (idle > 1 && round > 1) {
          const head = this.queue.splice(0, round).sort((a, b) => a.length - b.length);
          this.queue.unshift(...head);
          sharing = true;
        }
      }
      const share = Math.ceil(this.queue.length / Math.max(1, idle));
      const batch = this.takeBatch(sharing ? share : this.groupByLength(share));
      if (batch.length > 0) this.dispatch(slot, batch);
    }
    this.checkDrained();
  }

  /**
   * With every live replica busy and a pipeline deeper than 1: hands the next batch to the replica
   * expected to free first (its batches costed by their padded tokens), once it is near that
   * moment (half the last batch's expected time, or two hand-offs before it, whichever is
   * later) or a full batch is waiting, so the batch holds what arrived meanwhile and is already
   * at the replica when it is free. False when it waits.
   */
  private dispatchAhead(): boolean {
    const depth = this.options.pipeline ?? 1;
    let slot: Slot | undefined;
    let end = Infinity;
    for (const s of this.slots) {
      if (s.held.length >= depth || s.restarting || !s.replica.alive) continue;
      const e = this.expectedEnd(s);
      if (e < end) [slot, end] = [s, e];
    }
    if (!slot) return false;
    const now = performance.now();
    const last = this.expectedMs(slot.held.at(-1) ?? 0);
    const due = end - Math.min(last / 2, 2 * this.handoffMs);
    if (this.queue.length < this.maxBatch && now < due && this.state === 'open') {
      this.timer = setTimeout(() => this.pump(), due - now);
      return false;
    }
    const batch = this.takeBatch(this.groupByLength(this.maxBatch));
    if (batch.length > 0) this.dispatch(slot, batch);
    return true;
  }

  /**
   * Length grouping (SchedulerOptions.lengthGrouping) for one batch of at most `share` rows:
   * reorders the queue's first `share` jobs (the batch's candidates in fair order) so the rows to
   * take come first, shortest first, and the rows passed over follow in their fair order; returns
   * how many to take. Rows are added shortest first; the first row that would raise the padded
   * length and drop the fill below GROUP_MIN_FILL ends the batch when cutting there spares the
   * rows taken more than GROUP_MIN_SAVED_TOKENS padded tokens, unless it (or a longer one) was
   * passed over before: those are taken now, so a row is passed over for its length once at most.
   * Candidates that are all rows of one request go as they are: it is answered when its last
   * row is, so splitting it would save only padding, while splitting between requests answers
   * the short ones sooner.
   */
  private groupByLength(share: number): number {
    const n = Math.min(this.queue.length, this.maxBatch, Math.max(1, share));
    // One bucket pads every row alike (image models, every row length 1; a text model's one bucket
    // is its max length, which tokenizing truncates to): nothing to group, nor to sort.
    if (!this.lengthGrouping || n < 2 || this.options.buckets.length < 2) return n;
    const candidates = this.queue.slice(0, n);
    const one = candidates[0]!.request;
    if (one !== null && candidates.every((j) => j.request === one)) return n;
    const sorted = [...candidates].sort((a, b) => a.length - b.length);
    // The longest row that must go now sets the least padded length the batch has anyway.
    const mustPad = sorted.reduce((m, j) => (j.passedOver ? Math.max(m, this.paddedLength(j.length)) : m), 0);
    let real = 0;
    let take = 0;
    let current = mustPad;
    for (const job of sorted) {
      const padded = Math.max(current, this.paddedLength(job.length));
      // Cutting here spares the rows taken the padding up to this row's length (the rows after it
      // are longer still, so at least that).
      const spared = take * (padded - current);
      if (take > 0 && spared > GROUP_MIN_SAVED_TOKENS && (real + job.length) / (padded * (take + 1)) < GROUP_MIN_FILL)
        break;
      real += job.length;
      take += 1;
      current = padded;
    }
    if (take === n) return n;
    const taken = new Set(sorted.slice(0, take));
    for (const job of candidates) if (!taken.has(job)) job.passedOver = true;
    this.queue.splice(0, n, ...sorted.slice(0, take), ...candidates.filter((j) => !taken.has(j)));
    return take;
  }

  /** The free replica that has worked least: spreads load and keeps caches warm evenly. */
  private freeSlot(): Slot | undefined {
    let best: Slot | undefined;
    for (const slot of this.slots) {
      if (slot.held.length > 0 || slot.restarting || !slot.replica.alive) continue;
      if (!best || slot.busyMs < best.busyMs) best = slot;
    }
    return best;
  }

  private takeBatch(share: number): Job<I>[] {
    const limit = Math.min(this.maxBatch, Math.max(1, share));
    const batch: Job<I>[] = [];
    let longest = 0;
    const budget = this.tokenBudget ?? this.maxBatch * this.options.buckets[this.options.buckets.length - 1]!;
    const now = performance.now();
    while (this.queue.length > 0 && batch.length < limit) {
      const next = this.queue[0]!;
      // A request past its deadline is dropped unstarted: its client has gone already.
      if (next.deadline <= now) {
        this.queue.shift();
        this.fail(next, new KilnError('KILN_ERR_DEADLINE_EXCEEDED', { waitedMs: Math.round(now - next.enqueuedAt) }));
        continue;
      }
      const length = Math.max(longest, next.length);
      const padded = this.paddedLength(length) * (batch.length + 1);
      if (batch.length > 0 && padded > budget) break;
      batch.push(this.queue.shift()!);
      longest = length;
      // Virtual time moves with the work dispatched, so whatever is queued is reached in the end:
      // a stream of new requests (each starting at the virtual time) cannot starve a long one.
      this.virtualTime = Math.max(this.virtualTime, next.start + next.length);
    }
    return batch;
  }

  /** The bucket that fits `length`; a sequence longer than every bucket keeps its own length. */
  private paddedLength(length: number): number {
    return Math.max(length, bucketFor(length, this.options.buckets));
  }

  private dispatch(slot: Slot, batch: Job<I>[]): void {
    const longest = Math.max(...batch.map((j) => j.length));
    const paddedLength = this.paddedLength(longest);
    const feeds = this.options.batcher.feeds(
      batch.map((j) => j.item),
      paddedLength,
    );
    const wire = Object.fromEntries(
      Object.entries(feeds).map(([name, t]) => [name, { ...t, dims: [...t.dims] } as WireTensor]),
    );
    const dispatchedAt = performance.now();
    const firstEnqueued = Math.min(...batch.map((j) => j.enqueuedAt));
    const realTokens = batch.reduce((n, j) => n + j.length, 0);
    for (const job of batch) this.dispatched.add(job);
    // Sent ahead: it starts when the batch before it on this replica is answered.
    const ahead = slot.held.length > 0;
    const paddedTokens = paddedLength * batch.length;
    slot.held.push(paddedTokens);
    if (!ahead) slot.since = dispatchedAt;
    /** Counts the batch's time on the replica (from when it started computing) and frees its place. */
    const finish = (ok: boolean): number => {
      const now = performance.now();
      const startedAt = Math.max(dispatchedAt, slot.since);
      slot.held.shift();
      if (slot.held.length > 0) slot.since = now;
      for (const job of batch) this.dispatched.delete(job);
      this.record(slot, batch.length, paddedLength, realTokens, now - startedAt, startedAt - firstEnqueued, ok);
      return now;
    };
    slot.replica.run(wire).then(
      (result) => {
        const answeredAt = finish(true);
        // The speed estimates are the replicas' (one core each): the wide replica is faster by
        // its threads, and is used only when nothing waits behind it.
        if (Number.isFinite(result.computeMs) && slot !== this.wide) {
          this.msPerBatch =
            this.msPerBatch === null ? result.computeMs : 0.8 * this.msPerBatch + 0.2 * result.computeMs;
          this.tokensPerBatch =
            this.tokensPerBatch === null ? paddedTokens : 0.8 * this.tokensPerBatch + 0.2 * paddedTokens;
          // The round trip beyond the replica's own compute, measured where nothing waited ahead.
          if (!ahead)
            this.handoffMs = 0.8 * this.handoffMs + 0.2 * Math.max(0, answeredAt - dispatchedAt - result.computeMs);
        }
        // The first output has one row per request: logits, an embedding, whatever the task's graph gives.
        const width = result.data.length / batch.length;
        batch.forEach((job, row) => {
          // A job destroy() already failed stays failed; count only answers actually given.
          if (this.settle(job, () => job.resolve(Array.from(result.data.subarray(row * width, (row + 1) * width))))) {
            this.counters.completed += 1;
            this.recordLatency(job);
          }
        });
        this.pump();
      },
      (err: Error) => {
        finish(false);
        slot.failures += 1;
        void this.recover(slot, batch, err);
      },
    );
  }

  /** Retries a failed batch (at the front of the queue) and replaces the replica if it died. */
  private async recover(slot: Slot, batch: Job<I>[], err: Error): Promise<void> {
    if (channels.replicaError.hasSubscribers)
      channels.replicaError.publish({ replica: slot.replica.id, message: err.message });
    const retry: Job<I>[] = [];
    for (const job of batch) {
      if (job.settled) continue;
      job.attempts += 1;
      if (job.attempts >= this.maxAttempts || this.state === 'closed') {
        // An error the replica reported itself (a KilnError: ONNX Runtime refused the batch) reaches
        // the caller as it is; wrapping it would repeat its message under another code. A crash
        // or exit has no code of its own: it is told as the replica failing.
        this.fail(
          job,
          err instanceof KilnError
            ? err
            : new KilnError(
                'KILN_ERR_REPLICA_FAILED',
                { replica: slot.replica.id, attempts: job.attempts, reason: err.message },
                { cause: err },
              ),
        );
      } else retry.push(job);
    }
    this.queue.unshift(...retry);
    // A replica that held two batches fails both: the first failure starts its replacement.
    const dead = !slot.replica.alive && this.state !== 'closed' && !slot.restarting;
    if (dead) slot.restarting = true;
    // The other replicas take the retried work now; the replacement joins when it has loaded.
    this.pump();
    if (!dead) return;
    const old = slot.replica;
    try {
      const replacement = await (slot === this.wide ? this.options.wide!.factory : this.options.factory)(old.id);
      if (this.state === 'closed') {
        await replacement.close().catch(() => undefined);
        return;
      }
      slot.replica = replacement;
      await old.close().catch(() => undefined);
    } catch (startErr) {
      // Without a replacement this slot stays out (its replica is dead); the others carry on.
      if (channels.replicaError.hasSubscribers)
        channels.replicaError.publish({ replica: old.id, message: `restart failed: ${(startErr as Error).message}` });
      if (this.slots.every((s) => !s.replica.alive)) this.failQueued(startErr as Error);
    } finally {
      slot.restarting = false;
    }
    this.pump();
  }

  private recordLatency(job: Job<I>): void {
    const now = performance.now();
    const i = this.recentNext++ % RECENT_CAPACITY;
    this.recentDone[i] = now;
    this.recentLatency[i] = now - job.enqueuedAt;
  }

  private recent(): RecentLatency {
    const now = performance.now();
    const values: number[] = [];
    let oldest = now;
    for (let i = 0; i < Math.min(this.recentNext, RECENT_CAPACITY); i += 1) {
      if (now - this.recentDone[i]! <= RECENT_WINDOW_MS) {
        values.push(this.recentLatency[i]!);
        oldest = Math.min(oldest, this.recentDone[i]!);
      }
    }
    values.sort((a, b) => a - b);
    const at = (p: number): number => (values.length === 0 ? 0 : percentile(values, p));
    // A full ring covers less than the window: the rate is over the time it does cover.
    const span =
      values.length >= RECENT_CAPACITY
        ? Math.max(1, now - oldest)
        : Math.min(RECENT_WINDOW_MS, Math.max(1, now - this.started));
    return Object.freeze({
      windowMs: RECENT_WINDOW_MS,
      count: values.length,
      perSecond: (values.length / span) * 1000,
      p50Ms: at(50),
      p90Ms: at(90),
      p99Ms: at(99),
      maxMs: values.at(-1) ?? 0,
    });
  }

  private record(
    slot: Slot,
    size: number,
    paddedLength: number,
    realTokens: number,
    computeMs: number,
    longestWaitMs: number,
    ok: boolean,
  ): void {
    // The replica was busy either way. A failed batch counts as a failure only (slot.failures):
    // its retry is counted when it is answered, and /metrics skips failed batches too.
    slot.busyMs += computeMs;
    const fill = realTokens / (paddedLength * size);
    if (ok) {
      slot.batches += 1;
      slot.items += size;
      this.counters.batches += 1;
      this.counters.realTokens += realTokens;
      this.counters.paddedTokens += paddedLength * size;
      const bump = (h: Record<string, number>, key: string): void => {
        h[key] = (h[key] ?? 0) + 1;
      };
      bump(this.histograms.batchSizes, String(size));
      bump(this.histograms.paddedLengths, String(paddedLength));
      bump(this.histograms.fill, (Math.min(9, Math.floor(fill * 10)) / 10).toFixed(1));
    }
    if (channels.batch.hasSubscribers) {
      channels.batch.publish({
        replica: slot.replica.id,
        wide: slot === this.wide,
        size,
        paddedLength,
        fill,
        computeMs,
        longestWaitMs,
        ok,
      } satisfies BatchEvent);
    }
  }

  /** Runs `action` if the job is not settled yet; returns whether it ran. */
  private settle(job: Job<I>, action: () => void): boolean {
    if (job.settled) return false;
    job.settled = true;
    action();
    return true;
  }

  private fail(job: Job<I>, err: Error): void {
    if (this.settle(job, () => job.reject(err))) this.counters.failed += 1;
  }

  private failQueued(err: Error): void {
    for (const job of this.queue.splice(0)) this.fail(job, err);
  }

  /** Every slot: the replicas and the wide one. */
  private allSlots(): Slot[] {
    return this.wide ? [...this.slots, this.wide] : this.slots;
  }

  private checkDrained(): void {
    if (this.drained && this.queue.length === 0 && this.allSlots().every((s) => s.held.length === 0 && !s.restarting)) {
      const done = this.drained;
      this.drained = null;
      done();
    }
  }

  /** Changes batching for work dispatched from now on (bench sweeps and tune use it). */
  reconfigure(batching: { maxBatch?: number; maxDelayMs?: number }): void {
    if (batching.maxBatch !== undefined) this.maxBatch = batching.maxBatch;
    if (batching.maxDelayMs !== undefined) this.maxDelayMs = batching.maxDelayMs;
  }

  stats(): SchedulerStats {
    const replicaStats = (s: Slot): ReplicaStats =>
      Object.freeze({
        id: s.replica.id,
        busy: s.held.length > 0,
        busyMs: s.busyMs,
        batches: s.batches,
        items: s.items,
        failures: s.failures,
      });
    return Object.freeze({
      replicas: Object.freeze(this.slots.map(replicaStats)),
      wide: this.wide ? replicaStats(this.wide) : null,
      queueDepth: this.queue.length,
      inFlight: this.allSlots().reduce((n, s) => n + s.held.length, 0),
      ...this.counters,
      batchSizes: Object.freeze({ ...this.histograms.batchSizes }),
      paddedLengths: Object.freeze({ ...this.histograms.paddedLengths }),
      fill: Object.freeze({ ...this.histograms.fill }),
      uptimeMs: performance.now() - this.started,
      recent: this.recent(),
    });
  }

  /** Stops taking work, finishes what is queued and in flight, then closes the replicas. */
  async close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.state === 'closed') return;
      this.state = 'closing';
      await new Promise<void>((resolve) => {
        this.drained = resolve;
        this.pump();
      });
      this.state = 'closed';
      await Promise.all(this.allSlots().map((s) => s.replica.close().catch(() => undefined)));
    })();
    return this.closing;
  }

  /** Fails everything queued and in flight with `err`, and closes the replicas now. */
  async destroy(
    err: Error = new KilnError('KILN_ERR_SCHEDULER_CLOSED', { reason: 'it was destroyed' }),
  ): Promise<void> {
    this.state = 'closed';
    if (this.timer) clearTimeout(this.timer);
    this.failQueued(err);
    for (const job of this.dispatched) this.fail(job, err);
    this.dispatched.clear();
    await Promise.all(this.allSlots().map((s) => s.replica.close().catch(() => undefined)));
  }
}
