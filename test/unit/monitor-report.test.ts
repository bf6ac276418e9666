/** `kiln monitor`'s report and `kiln top`'s screen from two /stats readings, the wide replica included. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ServerStats } from '../../src/monitor/poll.js';
import { buildReport } from '../../src/monitor/report.js';
import { renderTop } from '../../src/monitor/top.js';
import type { ReplicaStats } from '../../src/runtime/scheduler.js';
import { replicaStats as replica, schedulerStats } from '../fixtures/scheduler-stats.js';

function stats(uptimeMs: number, replicas: ReplicaStats[], wide: ReplicaStats | null): ServerStats {
  return {
    model: 'm',
    layout: {
      device: 'cpu',
      replicas: replicas.length,
      threadsPerReplica: 1,
      maxBatch: 8,
      maxDelayMs: 2,
      buckets: [128],
    },
    scheduler: schedulerStats(replicas, wide, uptimeMs),
  };
}

test('the wide replica is reported as `wide`, busy share over the period as the others', { timeout: 10_000 }, () => {
  const before = stats(1_000, [replica(0, 0, 0), replica(1, 0, 0)], replica(2, 100, 1));
  const after = stats(2_000, [replica(0, 250, 3), replica(1, 0, 0)], replica(2, 600, 6));
  const counters = buildReport('http://x', before, after, 1).kiln_runtime_data[0]!.report.replica_counters;
  assert.deepEqual(Object.keys(counters.replicas_in_use), ['0', '1', 'wide']);
  assert.equal(counters.replicas_in_use['0']!.utilization, 25);
  assert.equal(counters.replicas_in_use.wide!.utilization, 50, 'busy 500 ms of the 1,000 ms between the readings');
  assert.equal(counters.replicas_in_use.wide!.batches, 5);
  const screen = renderTop(buildReport('http://x', before, after, 1)).join('\n');
  assert.match(screen, /\n {2}wide [█░]+ +50 % +5 batches/);
});

test('a fixed layout (no wide replica) lists its replicas only', { timeout: 10_000 }, () => {
  const current = stats(2_000, [replica(0, 0, 0)], null);
  const counters = buildReport('http://x', null, current, 1).kiln_runtime_data[0]!.report.replica_counters;
  assert.deepEqual(Object.keys(counters.replicas_in_use), ['0']);
});
