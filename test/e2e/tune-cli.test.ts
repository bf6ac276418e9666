/** `kiln tune` stores the layout it picks, and bench uses it unless a flag overrides it. */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Manifest } from '../../src/model/artifact.js';
import { EMBEDDED_MODEL, errorCode, kiln, tempDir } from '../fixtures/models.js';

test('kiln tune prints its trials, stores the fastest layout meeting the target, and bench uses it', async () => {
  const dir = await tempDir();
  const env = { KILN_CACHE_DIR: join(dir, 'cache') };
  const artifact = join(dir, 'sst2.kiln');
  assert.equal((await kiln(['compile', EMBEDDED_MODEL, '-o', artifact], { env })).code, 0);
  const tuned = await kiln(['tune', artifact, '--budget-s', '5', '--p99-ms', '5000'], { env });
  assert.equal(tuned.code, 0, tuned.stderr);
  const rows = tuned.stdout
    .split('\n')
    .filter((l) => /^\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+(yes|no)$/.test(l));
  assert.ok(rows.length >= 3, `trials printed:\n${tuned.stdout}`);
  const manifest = JSON.parse(await readFile(join(artifact, 'manifest.json'), 'utf8')) as Manifest;
  const t = manifest.tuned!;
  assert.ok(t.p99Ms <= 5000 && t.sloP99Ms === 5000);
  // The stored layout is the fastest trial printed that met the target.
  const fastest = Math.max(...rows.filter((r) => r.endsWith('yes')).map((r) => Number(r.trim().split(/\s+/)[5])));
  assert.equal(t.requestsPerSecond.toFixed(1), fastest.toFixed(1));
  assert.match(
    tuned.stdout,
    new RegExp(
      `chosen: ${t.replicas} replica\\(s\\) × ${t.threadsPerReplica} thread\\(s\\), max batch ${t.maxBatch}, max delay ${t.maxDelayMs} ms`,
    ),
  );
  // The artifact still verifies: tune rewrote the manifest only.
  const bench = await kiln(['bench', artifact, '--mode', 'latency', '--requests', '3', '--warmup', '0'], { env });
  assert.equal(bench.code, 0, bench.stderr);
  assert.match(
    bench.stdout,
    new RegExp(
      `${t.replicas} replica\\(s\\) × ${t.threadsPerReplica} thread\\(s\\), max batch ${t.maxBatch}, max delay ${t.maxDelayMs} ms`,
    ),
  );
  const overridden = await kiln(
    ['bench', artifact, '--mode', 'latency', '--requests', '3', '--warmup', '0', '--replicas', '1', '--max-batch', '3'],
    { env },
  );
  assert.match(overridden.stdout, /1 replica\(s\) × \d+ thread\(s\), max batch 3,/);
});

test('kiln tune with a target no layout can meet → KILN_ERR_TUNE_NO_LAYOUT, manifest unchanged', async () => {
  const dir = await tempDir();
  const env = { KILN_CACHE_DIR: join(dir, 'cache') };
  const artifact = join(dir, 'sst2.kiln');
  await kiln(['compile', EMBEDDED_MODEL, '-o', artifact], { env });
  const before = await readFile(join(artifact, 'manifest.json'), 'utf8');
  // 1 µs at the 99th percentile: less than a message between threads takes, on any machine.
  const result = await kiln(['tune', artifact, '--budget-s', '5', '--p99-ms', '0.001'], { env });
  assert.equal(errorCode(result.stderr), 'KILN_ERR_TUNE_NO_LAYOUT', result.stderr + result.stdout);
  assert.equal(await readFile(join(artifact, 'manifest.json'), 'utf8'), before);
});
