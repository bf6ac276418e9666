/**
 * The `replica` label of /metrics: the wide replica is `wide`, told by the batch event itself for
 * failures (in a model repository, stats() is the first model's, and another model's replica of
 * the same number is not its wide one) and by the snapshot for busy ratios.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type BatchEvent, channels } from '../../src/core/channels.js';
import type { SchedulerStats } from '../../src/runtime/scheduler.js';
import { ServerMetrics } from '../../src/server/metrics.js';
import { ModelHost } from '../../src/server/model-host.js';
import type { LoadedModel } from '../../src/tasks/registry.js';
import { replicaStats as replica, schedulerStats } from '../fixtures/scheduler-stats.js';

/** What ServerMetrics reads of a loaded model: its name, device and scheduler snapshot. */
const model = (name: string, stats: SchedulerStats): LoadedModel =>
  ({ manifest: { name }, layout: { device: 'cpu' }, stats: () => stats }) as unknown as LoadedModel;

/** Every sample of `name` on the page, as `{ replica label: value }`. */
async function byReplica(metrics: ServerMetrics, name: string): Promise<Record<string, number>> {
  const page = await metrics.registry.metrics();
  const samples = [...page.matchAll(new RegExp(`^${name}\\{replica="([^"]+)"\\} (\\S+)$`, 'gm'))];
  return Object.fromEntries(samples.map((m) => [m[1]!, Number(m[2])]));
}

const failed = (replica: number, wide: boolean): BatchEvent => ({
  replica,
  wide,
  size: 1,
  paddedLength: 16,
  fill: 1,
  computeMs: 1,
  longestWaitMs: 0,
  ok: false,
});

test("kiln_batch_failures_total labels a failed batch `wide` from its event, not from the first model's wide id", async () => {
  const host = new ModelHost();
  // The first model's wide replica is id 2; the second model has three replicas (0, 1, 2) and no wide one.
  host.set(model('a', schedulerStats([replica(0, 0), replica(1, 0)], replica(2, 0))));
  host.set(model('b', schedulerStats([replica(0, 0), replica(1, 0), replica(2, 0)], null)));
  const metrics = new ServerMetrics(host, () => 0);
  try {
    channels.batch.publish(failed(2, false));
    channels.batch.publish(failed(2, false));
    channels.batch.publish(failed(2, true));
    assert.deepEqual(await byReplica(metrics, 'kiln_batch_failures_total'), { 2: 2, wide: 1 });
  } finally {
    metrics.close();
  }
});

test('kiln_replica_busy_ratio: the replicas by id and the wide one as `wide`; without a wide replica, the ids alone', async () => {
  const withWide = new ModelHost();
  withWide.set(model('a', schedulerStats([replica(0, 100), replica(1, 200)], replica(2, 500))));
  const without = new ModelHost();
  without.set(model('a', schedulerStats([replica(0, 100), replica(1, 200), replica(2, 500)], null)));
  const metrics = [new ServerMetrics(withWide, () => 0), new ServerMetrics(without, () => 0)];
  try {
    assert.deepEqual(await byReplica(metrics[0]!, 'kiln_replica_busy_ratio'), { 0: 0.1, 1: 0.2, wide: 0.5 });
    assert.deepEqual(await byReplica(metrics[1]!, 'kiln_replica_busy_ratio'), { 0: 0.1, 1: 0.2, 2: 0.5 });
  } finally {
    for (const m of metrics) m.close();
  }
});
