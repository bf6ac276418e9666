import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  type CacheKeyParts,
  cacheKey,
  cacheRoot,
  clearCache,
  commit,
  listEntries,
  lookup,
  stagingDir,
} from '../../src/compiler/cache.js';
import { tempDir } from '../fixtures/models.js';

const BASE: CacheKeyParts = {
  sourceSha256: 'a'.repeat(64),
  options: { maxLength: 128, maxBatch: 32 },
  target: { platform: 'linux', arch: 'x64', cpu: 'test-cpu' },
  kilnVersion: '0.1.0',
  runtimeVersion: '1.30.0',
};

describe('cacheKey', () => {
  test('cacheKey is 32 hex characters and stable', () => {
    assert.match(cacheKey(BASE), /^[0-9a-f]{32}$/);
    assert.equal(cacheKey(BASE), cacheKey(structuredClone(BASE)));
  });

  test('cacheKey is the same for options and parts with keys in another order', () => {
    const reordered: CacheKeyParts = {
      runtimeVersion: '1.30.0',
      kilnVersion: '0.1.0',
      target: { cpu: 'test-cpu', arch: 'x64', platform: 'linux' },
      options: { maxBatch: 32, maxLength: 128 },
      sourceSha256: 'a'.repeat(64),
    };
    assert.equal(cacheKey(reordered), cacheKey(BASE));
  });

  const changes: [string, Partial<CacheKeyParts>][] = [
    ['source hash', { sourceSha256: 'b'.repeat(64) }],
    ['maxLength option', { options: { maxLength: 256, maxBatch: 32 } }],
    ['maxBatch option', { options: { maxLength: 128, maxBatch: 33 } }],
    ['an extra option', { options: { maxLength: 128, maxBatch: 32, quantize: true } }],
    ['target cpu', { target: { platform: 'linux', arch: 'x64', cpu: 'other-cpu' } }],
    ['target arch', { target: { platform: 'linux', arch: 'arm64', cpu: 'test-cpu' } }],
    ['kiln version', { kilnVersion: '0.1.1' }],
    ['runtime version', { runtimeVersion: '1.31.0' }],
  ];
  for (const [what, change] of changes) {
    test(`cacheKey changes when the ${what} changes`, () => {
      assert.notEqual(cacheKey({ ...BASE, ...change }), cacheKey(BASE));
    });
  }

  test('cacheKey tells an option value apart from the same text as a string', () => {
    assert.notEqual(cacheKey({ ...BASE, options: { maxLength: '128', maxBatch: 32 } }), cacheKey(BASE));
  });
});

/** The smallest manifest that readArtifact({ verify: false }) accepts. */
function manifest(sourcePath: string, createdAt: string): object {
  return {
    format: 'kiln-artifact',
    formatVersion: 1,
    labels: ['NEGATIVE', 'POSITIVE'],
    model: { file: 'model.onnx' },
    files: { 'model.onnx': { sha256: '0'.repeat(64), bytes: 5 } },
    source: { kind: 'hf-folder', path: sourcePath, name: 'm', sha256: '0'.repeat(64) },
    compile: { options: { maxLength: 128, maxBatch: 32 }, createdAt },
  };
}

/** Writes a complete entry through the public staging → commit path. */
async function addEntry(key: string, sourcePath: string, createdAt: string): Promise<string> {
  const staged = await stagingDir(key);
  await writeFile(join(staged, 'model.onnx'), 'bytes');
  await writeFile(join(staged, 'manifest.json'), JSON.stringify(manifest(sourcePath, createdAt)));
  return commit(staged, key);
}

const KEY_A = 'a'.repeat(32);
const KEY_B = 'b'.repeat(32);

describe('compile cache folders', () => {
  const saved = process.env.KILN_CACHE_DIR;
  let root = '';
  let artifacts = '';

  after(() => {
    if (saved === undefined) delete process.env.KILN_CACHE_DIR;
    else process.env.KILN_CACHE_DIR = saved;
  });

  /** A fresh, empty cache root for one test. */
  async function freshCache(): Promise<void> {
    root = await tempDir('kiln-cache-');
    process.env.KILN_CACHE_DIR = root;
    artifacts = join(root, 'artifacts');
  }

  test('cacheRoot() follows KILN_CACHE_DIR', async () => {
    await freshCache();
    assert.equal(cacheRoot(), root);
  });

  test('lookup is null for a key with only a staging folder (files, no manifest.json)', async () => {
    await freshCache();
    const staged = await stagingDir(KEY_A);
    assert.ok(staged.startsWith(join(artifacts, '.kiln-tmp-')), staged);
    await writeFile(join(staged, 'model.onnx'), 'bytes');
    assert.equal(await lookup(KEY_A), null);
  });

  test('lookup is null for a key folder without manifest.json', async () => {
    await freshCache();
    await mkdir(join(artifacts, KEY_A), { recursive: true });
    await writeFile(join(artifacts, KEY_A, 'model.onnx'), 'bytes');
    assert.equal(await lookup(KEY_A), null);
  });

  test('lookup finds a committed entry', async () => {
    await freshCache();
    const entry = await addEntry(KEY_A, '/src/a', new Date().toISOString());
    assert.equal(entry, join(artifacts, KEY_A));
    assert.equal(await lookup(KEY_A), entry);
    assert.equal(await lookup(KEY_B), null);
  });

  test('commit twice for one key keeps the first entry and removes the second staging folder', async () => {
    await freshCache();
    const first = await stagingDir(KEY_A);
    const second = await stagingDir(KEY_A);
    assert.notEqual(first, second);
    await writeFile(join(first, 'manifest.json'), JSON.stringify(manifest('/src/first', '2024-01-01T00:00:00.000Z')));
    await writeFile(join(second, 'manifest.json'), JSON.stringify(manifest('/src/second', '2024-01-01T00:00:00.000Z')));

    const a = await commit(first, KEY_A);
    const b = await commit(second, KEY_A);
    assert.equal(a, join(artifacts, KEY_A));
    assert.equal(b, a);
    await assert.rejects(stat(second), { code: 'ENOENT' });
    await assert.rejects(stat(first), { code: 'ENOENT' });
    const kept = JSON.parse(await readFile(join(a, 'manifest.json'), 'utf8')) as { source: { path: string } };
    assert.equal(kept.source.path, '/src/first');
    assert.deepEqual(await readdir(artifacts), [KEY_A]);
  });

  test('listEntries is empty when the cache folder does not exist', async () => {
    await freshCache();
    assert.deepEqual(await listEntries(), []);
  });

  test('listEntries lists complete entries newest first and ignores staging folders and foreign manifests', async () => {
    await freshCache();
    const older = new Date(Date.now() - 3_600_000).toISOString();
    const newer = new Date(Date.now() - 60_000).toISOString();
    await addEntry(KEY_A, '/src/a', older);
    await addEntry(KEY_B, '/src/b', newer);
    // A compile still running (or killed): a staging folder with a valid manifest inside.
    const staged = await stagingDir('c'.repeat(32));
    await writeFile(join(staged, 'manifest.json'), JSON.stringify(manifest('/src/staged', newer)));
    // A folder whose manifest.json is some other tool's.
    await mkdir(join(artifacts, 'foreign'));
    await writeFile(join(artifacts, 'foreign', 'manifest.json'), JSON.stringify({ name: 'not kiln', version: 3 }));
    // A folder with broken JSON, and a stray file.
    await mkdir(join(artifacts, 'broken'));
    await writeFile(join(artifacts, 'broken', 'manifest.json'), '{');
    await writeFile(join(artifacts, 'stray.txt'), 'x');

    const entries = await listEntries();
    assert.deepEqual(
      entries.map((e) => [e.key, e.source, e.createdAt]),
      [
        [KEY_B, '/src/b', newer],
        [KEY_A, '/src/a', older],
      ],
    );
    const a = entries[1]!;
    assert.equal(a.dir, join(artifacts, KEY_A));
    assert.deepEqual(a.options, { maxLength: 128, maxBatch: 32 });
    assert.equal(a.bytes, 'bytes'.length + JSON.stringify(manifest('/src/a', older)).length);
    assert.ok(a.ageMs >= 3_600_000, String(a.ageMs));
  });

  test('clearCache removes entries and staging leftovers and reports what it freed', async () => {
    await freshCache();
    const createdAt = new Date().toISOString();
    await addEntry(KEY_A, '/src/a', createdAt);
    await addEntry(KEY_B, '/src/b', createdAt);
    const staged = await stagingDir('c'.repeat(32));
    await writeFile(join(staged, 'model.onnx'), '1234567');
    const entryBytes = 2 * ('bytes'.length + JSON.stringify(manifest('/src/a', createdAt)).length);

    assert.deepEqual(await clearCache(), { entries: 2, bytes: entryBytes + 7 });
    assert.deepEqual(await readdir(artifacts), []);
    assert.deepEqual(await listEntries(), []);
    assert.equal(await lookup(KEY_A), null);
    assert.deepEqual(await clearCache(), { entries: 0, bytes: 0 });
  });

  test('clearCache on a cache folder that does not exist reports nothing freed', async () => {
    await freshCache();
    assert.deepEqual(await clearCache(), { entries: 0, bytes: 0 });
  });
});
