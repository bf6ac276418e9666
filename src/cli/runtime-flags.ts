/** Flags shared by the commands that run a model on replicas (serve, bench). */
import { KilnError } from '../core/errors.js';
import type { ModelOptions } from '../runtime/task-model.js';
import { type FlagSpec, integer } from './table.js';

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
  replicas: {
    type: 'string',
    arg: 'N|auto',
    description:
      'Model replicas (ONNX Runtime sessions in worker threads); auto fills the cores with replicas of --threads-per-replica threads.',
    default: undefined as number | 'auto' | undefined,
    defaultText: 'the tuned layout (kiln tune), else auto',
    parse: replicasFlag,
  } satisfies FlagSpec<number | 'auto' | undefined>,
  'threads-per-replica': {
    type: 'string',
    arg: 'T',
    description: "Intra-op threads of each replica (the seed's cores per model).",
    default: undefined as number | undefined,
    defaultText: 'the tuned layout, else 1',
    parse: integer(1, 256),
  } satisfies FlagSpec<number | undefined>,
  'max-batch': {
    type: 'string',
    arg: 'N',
    description: "Most texts per batch (at most the artifact's max batch).",
    default: undefined as number | undefined,
    defaultText: "the tuned layout, else the artifact's max batch",
    parse: integer(1, 1024),
  } satisfies FlagSpec<number | undefined>,
  'max-delay-ms': {
    type: 'string',
    arg: 'MS',
    description: 'How long a request may wait for companions while every replica is busy.',
    default: undefined as number | undefined,
    defaultText: 'the tuned layout, else 2',
    parse: integer(0, 10_000),
  } satisfies FlagSpec<number | undefined>,
  'max-queue': {
    type: 'string',
    arg: 'N',
    description: 'Most requests waiting; more are refused (HTTP 429, KILN_ERR_QUEUE_FULL).',
    default: 4096,
    parse: integer(1, 1_000_000),
  } satisfies FlagSpec<number>,
  'max-queue-ms': {
    type: 'string',
    arg: 'MS',
    description:
      "Refuse a request (429) that would wait longer than this before its batch starts (what is left of the running batches, then the queue, at the replicas' measured speed): fast refusals instead of long waits under overload.",
    default: null as number | null,
    defaultText: 'none (only --max-queue bounds the queue)',
    parse: integer(1, 3_600_000),
  } satisfies FlagSpec<number | null>,
  pipeline: {
    type: 'string',
    arg: 'N',
    description:
      'Batches each replica may hold at once: with 2, a busy replica gets its next batch shortly before the current one ends and starts it at once, instead of idling while answers and batches cross between threads. 1 sends a batch only to an idle replica.',
    default: 2,
    parse: integer(1, 4),
  } satisfies FlagSpec<number>,
  'replica-nice': {
    type: 'string',
    arg: 'N',
    description:
      "Lower the replicas' CPU priority by N (Linux nice, per thread): when inference saturates the cores, the HTTP thread still gets one at once, so health checks, refusals and answers are not held behind batches. 0 runs replicas at the server's priority.",
    default: 10,
    parse: integer(0, 19),
  } satisfies FlagSpec<number>,
  buckets: {
    type: 'string',
    arg: 'L1,L2,…',
    description: 'Sequence lengths batches are padded to (the smallest that fits the longest text).',
    default: undefined as number[] | undefined,
    defaultText: "the artifact's: every 4 tokens to 64, every 8 to 128, then every 16",
    parse: bucketsFlag,
  } satisfies FlagSpec<number[] | undefined>,
};

export interface RuntimeFlagValues {
  replicas: number | 'auto' | undefined;
  'threads-per-replica': number | undefined;
  'max-batch': number | undefined;
  'max-delay-ms': number | undefined;
  'max-queue': number;
  'max-queue-ms': number | null;
  pipeline: number;
  'replica-nice': number;
  buckets: number[] | undefined;
}

export function classifierOptions(flags: RuntimeFlagValues): ModelOptions {
  return {
    replicas: flags.replicas,
    threadsPerReplica: flags['threads-per-replica'],
    maxBatch: flags['max-batch'],
    maxDelayMs: flags['max-delay-ms'],
    maxQueue: flags['max-queue'],
    maxQueueMs: flags['max-queue-ms'],
    pipeline: flags.pipeline,
    replicaNice: flags['replica-nice'],
    buckets: flags.buckets,
  };
}
