/**
 * Two compiles of one source and options into one cache at the same time (as the test files of a
 * run do through the shared cache, or two CI jobs on one machine): both succeed with the same
 * complete entry, the loser's staging folder is gone, and the entry verifies.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { compile } from '../../src/compiler/compile.js';
import { readArtifact } from '../../src/model/artifact.js';
import { sourceFolder, tempDir } from '../fixtures/models.js';

test('concurrent compiles of the same key both succeed, share one verified entry, and leave no staging folder', async () => {
  const dir = await tempDir();
  const cache = join(dir, 'cache');
  process.env.KILN_CACHE_DIR = cache;
  const source = await sourceFolder(dir, 'racing');
  const results = await Promise.all([
    compile({ source, out: null, maxLength: 8, maxBatch: 2 }),
    compile({ source, out: null, maxLength: 8, maxBatch: 2 }),
    compile({ source, out: join(dir, 'copy.kiln'), maxLength: 8, maxBatch: 2 }),
  ]);
  const [a, b, c] = results;
  assert.ok(
    results.some((r) => r.cache === 'miss'),
    results.map((r) => r.cache).join(),
  );
  for (const r of results) assert.ok(r.cache === 'miss' || r.cache === 'hit', r.cache);
  assert.equal(a!.cacheKey, b!.cacheKey);
  assert.equal(b!.cacheKey, c!.cacheKey);
  assert.equal(a!.artifactDir, join(cache, 'artifacts', a!.cacheKey));
  assert.equal(b!.artifactDir, a!.artifactDir, 'the loser returns the winner entry');
  assert.equal(c!.artifactDir, join(dir, 'copy.kiln'));
  assert.deepEqual(await readdir(join(cache, 'artifacts')), [a!.cacheKey], 'one entry, no staging leftovers');
  for (const artifact of [a!.artifactDir, c!.artifactDir]) {
    const { manifest } = await readArtifact(artifact, { verify: true });
    assert.equal(manifest.source.sha256, a!.manifest.source.sha256);
    assert.equal(manifest.limits.maxLength, 8);
  }
});
