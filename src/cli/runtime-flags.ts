/**
 * Flags shared by the commands that run a model on replicas (serve, bench, batch): one per
 * runtime option. The defaults shown are the runtime's own constants.
 */
import { MAX_BATCH_LIMIT } from '../compiler/compile.js';
import { KilnError } from '../core/errors.js';
import { DEFAULT_MAX_DELAY_MS, DEFAULT_MAX_QUEUE } from '../runtime/scheduler.js';
import {
  DEFAULT_PIPELINE,
  DEFAULT_REPLICA_NICE,
  DEFAULT_THREADS_PER_REPLICA,
  type ModelOptions,
} from '../runtime/task-model.js';
import { deviceFlag } from './device-flag.js';
import { deferredFlag, type FlagValues, integer, nullFlag, valueFlag } from './table.js';

function replicasFlag(raw: string, flag: string): number | 'auto' {
  return raw === 'auto' ? 'auto' : integer(1, 256)(raw, flag);
}

function bucketsFlag(raw: string, flag: string): number[] {
  const values = raw.split(',').map((v) => Number(v.trim()));
  if (
    values.length === 0 ||
    values.some((v) => !Number.isInteger(v) || v < 2 || v > 8192) ||
    values.some((v, i) => i > 0 && v <= values[i - 1]!)
  ) {
    throw new KilnError('KILN_ERR_CLI_INVALID_FLAG', {
      flag,
      rule: 'ascending integers in [2, 8192] separated by commas, such as 16,32,64,128',
      value: raw,
    });
  }
  return values;
}

export const runtimeFlags = {
  ...deviceFlag,
  replicas: deferredFlag({
    arg: 'N|auto',
    description:
      'Model replicas (ONNX Runtime sessions in worker threads); auto fills the cores with replicas of --threads-per-replica threads. A GPU device runs one.',
    defaultText:
      'the tuned layout (kiln tune), else auto (1 on a GPU), plus on the CPU a wide replica (every core) for requests that find the replicas idle; setting it pins the layout',
    parse: replicasFlag,
  }),
  'threads-per-replica': deferredFlag({
    arg: 'T',
    description: 'Intra-op threads of each replica (cores per model copy).',
    defaultText: `the tuned layout, else ${DEFAULT_THREADS_PER_REPLICA}`,
    parse: integer(1, 256),
  }),
  'max-batch': deferredFlag({
    arg: 'N',
    description: "Most texts per batch (at most the artifact's max batch).",
    defaultText: "the tuned layout, else the artifact's max batch",
    parse: integer(1, MAX_BATCH_LIMIT),
  }),
  'max-batch-tokens': deferredFlag({
    arg: 'N',
    description:
      'Most padded tokens (texts × padded length) in one batch; a batch is cut before the text that would pass it. On the CPU, batches whose activations outgrow the caches run slower per text.',
    defaultText:
      "on the CPU, what keeps a batch's feed-forward activations within 6 MiB (512 for a BERT-base-sized encoder); elsewhere none",
    parse: integer(1, 1_000_000),
  }),
  'max-delay-ms': deferredFlag({
    arg: 'MS',
    description: 'How long a request may wait for companions while every replica is busy.',
    defaultText: `the tuned layout, else ${DEFAULT_MAX_DELAY_MS}`,
    parse: integer(0, 10_000),
  }),
  'max-queue': valueFlag({
    arg: 'N',
    description: 'Most requests waiting; more are refused (HTTP 429, KILN_ERR_QUEUE_FULL).',
    default: DEFAULT_MAX_QUEUE,
    parse: integer(1, 1_000_000),
  }),
  'max-queue-ms': nullFlag({
    arg: 'MS',
    description:
      "Refuse a request (429) that would wait longer than this before its batch starts (what is left of the running batches, then the queue, at the replicas' measured speed): fast refusals instead of long waits under overload.",
    defaultText: 'none (only --max-queue bounds the queue)',
    parse: integer(1, 3_600_000),
  }),
  pipeline: valueFlag({
    arg: 'N',
    description:
      'Batches each replica may hold at once: with 2, a busy replica gets its next batch shortly before the current one ends and starts it at once, instead of idling while answers and batches cross between threads. 1 sends a batch only to an idle replica.',
    default: DEFAULT_PIPELINE,
    parse: integer(1, 4),
  }),
  'replica-nice': valueFlag({
    arg: 'N',
    description:
      "Lower the replicas' CPU priority by N (Linux nice, per thread): when inference saturates the cores, the HTTP thread still gets one at once, so health checks, refusals and answers are not held behind batches. 0 runs replicas at the server's priority.",
    default: DEFAULT_REPLICA_NICE,
    parse: integer(0, 19),
  }),
  buckets: deferredFlag({
    arg: 'L1,L2,…',
    description: 'Sequence lengths batches are padded to (the smallest that fits the longest text).',
    defaultText: "the artifact's: every 4 tokens to 64, every 8 to 128, then every 16",
    parse: bucketsFlag,
  }),
};

/** The runtime options the flags say; an absent flag leaves the option to the runtime's default. */
export function runtimeOptions(flags: FlagValues<typeof runtimeFlags>): ModelOptions {
  return {
    device: flags.device,
    replicas: flags.replicas,
    threadsPerReplica: flags['threads-per-replica'],
    maxBatch: flags['max-batch'],
    maxBatchTokens: flags['max-batch-tokens'],
    maxDelayMs: flags['max-delay-ms'],
    maxQueue: flags['max-queue'],
    maxQueueMs: flags['max-queue-ms'],
    pipeline: flags.pipeline,
    replicaNice: flags['replica-nice'],
    buckets: flags.buckets,
  };
}
