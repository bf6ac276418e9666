/**
 * Names of kiln's `node:diagnostics_channel` channels, in one place. The monitor and the metrics
 * subscribe to these instead of reaching into the scheduler's internals.
 */
import diagnosticsChannel from 'node:diagnostics_channel';

/** A batch finished (or failed) on a replica: {@link BatchEvent}. */
export const BATCH_CHANNEL = 'kiln:scheduler:batch';
/** A request was refused at admission (queue full, or its expected wait past --max-queue-ms): {@link RejectEvent}. */
export const REJECT_CHANNEL = 'kiln:scheduler:reject';
/** A replica failed and was replaced: {@link ReplicaErrorEvent}. */
export const REPLICA_ERROR_CHANNEL = 'kiln:scheduler:replica-error';

export interface BatchEvent {
  replica: number;
  /** It ran on the wide replica (SchedulerOptions.wide), whose id is the one after the replicas'. */
  wide: boolean;
  size: number;
  /** Sequence length the batch was padded to (its bucket). */
  paddedLength: number;
  /** Real tokens / padded tokens, in (0, 1]. */
  fill: number;
  /** Time on the replica from when the batch started (its dispatch, or the answer of the batch before it on that replica), milliseconds. */
  computeMs: number;
  /** Longest time a request of this batch waited before the batch started (queue, then behind the batch before it), milliseconds. */
  longestWaitMs: number;
  ok: boolean;
}

export interface RejectEvent {
  queueDepth: number;
  maxQueue: number;
}

export interface ReplicaErrorEvent {
  replica: number;
  message: string;
}

export const channels = {
  batch: diagnosticsChannel.channel(BATCH_CHANNEL),
  reject: diagnosticsChannel.channel(REJECT_CHANNEL),
  replicaError: diagnosticsChannel.channel(REPLICA_ERROR_CHANNEL),
};
