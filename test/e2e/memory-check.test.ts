/** The memory figure in the manifest, and layouts that cannot fit refused before loading. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, test } from 'node:test';
import type { Manifest } from '../../src/model/artifact.js';
import { EMBEDDED_MODEL, errorCode, kiln, SHARED_CACHE_ENV, tempDir } from '../fixtures/models.js';

let env: NodeJS.ProcessEnv;
let artifact: string;
let memory: NonNullable<Manifest['memory']>;

before(async () => {
  const dir = await tempDir();
  env = { KILN_CACHE_DIR: join(dir, 'cache') };
  artifact = join(dir, 'sst2.kiln');
  const compiled = await kiln(['compile', EMBEDDED_MODEL, '-o', artifact, '--json'], { env: SHARED_CACHE_ENV });
  memory = (JSON.parse(compiled.stdout) as { manifest: Manifest }).manifest.memory!;
});

test('compile records a measured and an estimated memory figure per replica at max batch × max length', () => {
  assert.equal(memory.batch, 32);
  assert.equal(memory.length, 128);
  // The weights alone are 18 MiB; a replica at 32 × 128 needs more than that and far less than a GiB.
  assert.ok(memory.weightsBytes > 18 * 2 ** 20 && memory.weightsBytes < 20 * 2 ** 20);
  for (const figure of [memory.measuredBytes, memory.estimateBytes, memory.perReplicaBytes])
    assert.ok(figure > memory.weightsBytes && figure < 2 ** 30, String(figure));
  assert.ok(memory.perReplicaBytes > memory.measuredBytes);
});

test('a layout that cannot fit is refused before loading, with KILN_ERR_MEMORY_INSUFFICIENT naming the numbers and the fix', async () => {
  // Room for the process and two replicas, not four.
  const available = (memory.processBytes ?? 0) + Math.floor((2.5 * memory.perReplicaBytes) / 0.9);
  const result = await kiln(['bench', artifact, '--replicas', '4', '--mode', 'latency', '--requests', '1'], {
    env: { ...env, KILN_MEMORY_AVAILABLE: String(available) },
  });
  assert.equal(result.code, 1);
  assert.equal(errorCode(result.stderr), 'KILN_ERR_MEMORY_INSUFFICIENT');
  assert.match(
    result.stderr,
    /4 replicas of sst2-distilbert-tiny need about \d+ MiB \(\d+ MiB each, measured at compile\), but only \d+ MiB \(KILN_MEMORY_AVAILABLE\) is available; use --replicas 2, or compile with a smaller --max-batch \(now 32\) or --max-length \(now 128\), or compile with --precision int8/,
  );
  // Two replicas fit in the same budget.
  const ok = await kiln(
    ['bench', artifact, '--replicas', '2', '--mode', 'latency', '--requests', '1', '--warmup', '0'],
    { env: { ...env, KILN_MEMORY_AVAILABLE: String(available) } },
  );
  assert.equal(ok.code, 0, ok.stderr);
});
