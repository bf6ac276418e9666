/**
 * Prometheus' naming rules on what kiln exposes, without promtool: namingProblems() on a table
 * of names that keep or break them, and on every family of a server's registry.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { familyOf, namingProblems, ServerMetrics } from '../../src/server/metrics.js';
import { ModelHost } from '../../src/server/model-host.js';

describe('namingProblems()', () => {
  const cases: Array<[string, string, RegExp | null]> = [
    ['kiln_http_requests_total', 'counter', null],
    ['kiln_queue_wait_seconds', 'histogram', null],
    ['kiln_process_resident_memory_bytes', 'gauge', null],
    ['kiln_replica_busy_ratio', 'gauge', null],
    ['kiln_http_requests', 'counter', /counter without the _total suffix/],
    ['kiln_nodejs_active_handles_total', 'gauge', /gauge with the _total suffix/],
    ['kiln_gc_pauses_total', 'histogram', /histogram with the _total suffix/],
    ['kiln_request_duration_milliseconds', 'histogram', /not a base unit/],
    ['kiln_latency_ms', 'gauge', /not a base unit/],
    ['kiln_artifact_megabytes', 'gauge', /not a base unit/],
    ['kiln_cpu_percent', 'gauge', /not a base unit/],
    ['kiln_batch_size_count', 'histogram', /suffix its series add/],
    ['kiln_queueDepth', 'gauge', /snake_case/],
    ['process_cpu_seconds_total', 'counter', /does not start with kiln_/],
  ];
  for (const [name, type, problem] of cases) {
    test(`namingProblems({${name}, ${type}}) ${problem === null ? 'is empty' : `names ${problem.source}`}`, () => {
      const problems = namingProblems({ name, type, help: 'a help text' });
      if (problem === null) assert.deepEqual(problems, []);
      else
        assert.ok(
          problems.some((p) => problem.test(p)),
          problems.join('; ') || 'no problem found',
        );
    });
  }
});

test('every family a ServerMetrics registry exposes keeps the rules (only counters end in _total)', async () => {
  const metrics = new ServerMetrics(new ModelHost(), () => 0);
  try {
    const families = (await metrics.registry.getMetricsAsJSON()).map(familyOf);
    assert.ok(families.length > 30, `${families.length} families, prom-client's defaults among them`);
    assert.ok(families.some((f) => f.name === 'kiln_nodejs_active_handles' && f.type === 'gauge'));
    for (const family of families) assert.deepEqual(namingProblems(family), [], `${family.name} (${family.type})`);
  } finally {
    metrics.close();
  }
});
