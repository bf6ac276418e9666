/** `kiln monitor` and `kiln top` against a live server on loopback. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { MonitorReport } from '../../src/monitor/report.js';
import { createServer, type KilnServer } from '../../src/server/server.js';
import { TextClassifier } from '../../src/tasks/text-classification/model.js';
import { CLI, compileEmbedded, kiln, REPO, tempDir } from '../fixtures/models.js';

let server: KilnServer;
let url: string;

before(async () => {
  const dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
  const { artifactDir } = await compileEmbedded(join(dir, 'sst2.kiln'));
  server = createServer({ port: 0 });
  url = await server.listen();
  server.model.set(await TextClassifier.load(artifactDir, { replicas: 2 }));
});
after(() => server.close());

/** Keeps the server busy until the returned function is called. */
function load(): () => Promise<void> {
  let running = true;
  const clients = Array.from({ length: 4 }, async () => {
    while (running)
      await fetch(`${url}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"text":"a fine and moving film"}',
      });
  });
  return async () => {
    running = false;
    await Promise.all(clients);
  };
}

test('kiln monitor prints one neuron-monitor-style JSON report per period with counters, latency and errors', async () => {
  const stop = load();
  const result = await kiln(['monitor', '--url', url, '--period', '300ms', '--count', '2']);
  await stop();
  assert.equal(result.code, 0, result.stderr);
  const reports = result.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as MonitorReport);
  assert.equal(reports.length, 2);
  for (const report of reports) {
    const data = report.kiln_runtime_data[0]!;
    assert.equal(data.model, 'sst2-distilbert-tiny');
    assert.equal(data.error, '');
    const e = data.report.execution_stats;
    assert.ok(e.execution_summary.completed > 0 && e.execution_summary.requests_per_s > 0, 'the load shows');
    assert.deepEqual(Object.keys(data.report.replica_counters.replicas_in_use), ['0', '1']);
    const busy = Object.values(data.report.replica_counters.replicas_in_use).map((r) => r.utilization);
    assert.ok(busy.every((u) => u >= 0 && u <= 100) && busy.some((u) => u > 0));
    const l = e.latency_stats.total_latency_ms;
    assert.ok(l.p50 > 0 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p100);
    assert.deepEqual(e.error_summary, { failed: 0, rejected: 0 });
    assert.ok(report.system_data.memory_info.memory_total_bytes > 0);
    // The server's own memory, as /stats reports it: more than the tokenizer and two replicas' weights.
    assert.ok((data.report.memory_used.rss_bytes ?? 0) > 50 * 2 ** 20);
  }
});

test('kiln monitor against a port where nothing listens reports the error and keeps its shape', async () => {
  const result = await kiln(['monitor', '--url', 'http://127.0.0.1:9', '--period', '100ms', '--count', '1']);
  assert.equal(result.code, 0);
  const report = JSON.parse(result.stdout) as MonitorReport;
  assert.match(report.kiln_runtime_data[0]!.error, /cannot read http:\/\/127\.0\.0\.1:9\/stats/);
});

test('kiln top without a terminal prints plain blocks of figures, and stops on SIGINT', async () => {
  const stop = load();
  const child = spawn(process.execPath, [CLI, 'top', '--url', url, '--period', '300ms'], { cwd: REPO });
  let out = '';
  const firstBlock = new Promise<void>((resolve) =>
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('latency')) resolve();
    }),
  );
  await firstBlock;
  const exited = once(child, 'exit');
  child.kill('SIGINT');
  await exited;
  await stop();
  assert.match(out, /^kiln top {2}sst2-distilbert-tiny/m);
  assert.match(out, /replicas \(busy share of the last period\)\n {5}0 [█░]+ +\d+ %/);
  assert.match(out, /throughput {3}[\d.]+ req\/s/);
  assert.match(out, /latency {6}p50 [\d.]+ ms {3}p90 [\d.]+ ms {3}p99 [\d.]+ ms/);
  assert.ok(!out.includes('\x1b['), 'no escape codes when stdout is not a terminal');
});
