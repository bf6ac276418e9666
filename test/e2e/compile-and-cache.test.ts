/** `kiln compile` and `kiln cache` as a user runs them, on the embedded model. */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { pathKind } from '../../src/core/fs.js';
import { sha256File } from '../../src/core/hash.js';
import type { Manifest } from '../../src/model/artifact.js';
import { EMBEDDED_MODEL, kiln, tempDir } from '../fixtures/models.js';

let dir: string;
let env: NodeJS.ProcessEnv;

before(async () => {
  dir = await tempDir();
  env = { KILN_CACHE_DIR: join(dir, 'cache') };
});

describe('kiln compile on the embedded model', () => {
  let first: { artifact: string; cache: string; manifest: Manifest };

  test('the first compile is a cache miss and writes a complete artifact', async () => {
    const result = await kiln(['compile', EMBEDDED_MODEL, '--json'], { env, cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    first = JSON.parse(result.stdout);
    assert.equal(first.cache, 'miss');
    assert.equal(first.artifact, join(dir, 'sst2-distilbert-tiny.kiln'), 'OUT defaults to <source-name>.kiln');
    const m = first.manifest;
    assert.equal(m.format, 'kiln-artifact');
    assert.equal(m.formatVersion, 1);
    assert.equal(m.task, 'text-classification');
    assert.deepEqual(m.labels, ['NEGATIVE', 'POSITIVE']);
    assert.deepEqual(m.limits, {
      maxLength: 128,
      maxBatch: 32,
      buckets: [4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60, 64, 72, 80, 88, 96, 104, 112, 120, 128],
    });
    assert.deepEqual(
      m.model.inputs.map((i) => i.name),
      ['input_ids', 'attention_mask'],
    );
    assert.equal(m.model.outputs[0]?.name, 'logits');
    assert.equal(m.model.parameters, 4_782_466);
    assert.ok(m.source.sha256.match(/^[0-9a-f]{64}$/));
    assert.equal(m.versions.onnxruntime, '1.30.0');
    // The optimizer really ran: fused kernels appear, the op count drops.
    assert.ok((m.model.operators.optimized['com.microsoft:BiasGelu'] ?? 0) > 0);
    assert.ok(
      Object.values(m.model.operators.optimized).reduce((a, b) => a + b) <
        Object.values(m.model.operators.source).reduce((a, b) => a + b),
    );
    // Every file is listed with its true SHA-256, and nothing unlisted is there but the manifest.
    const files = (await readdir(first.artifact)).sort();
    assert.deepEqual(files, ['manifest.json', ...Object.keys(m.files)].sort());
    for (const [name, entry] of Object.entries(m.files))
      assert.equal(await sha256File(join(first.artifact, name)), entry.sha256, name);
  });

  test('the second compile of the same source and options is a cache hit with the same artifact', async () => {
    const result = await kiln(['compile', EMBEDDED_MODEL, '-o', join(dir, 'again.kiln'), '--json'], { env });
    const second = JSON.parse(result.stdout) as typeof first & { durationMs: number };
    assert.equal(second.cache, 'hit');
    assert.deepEqual(second.manifest.files, first.manifest.files);
    console.log(`cache hit took ${second.durationMs} ms inside kiln compile`);
  });

  test('other options are another cache entry; --no-cache neither reads nor writes the cache', async () => {
    const other = JSON.parse(
      (await kiln(['compile', EMBEDDED_MODEL, '-o', join(dir, 'short.kiln'), '--max-length', '64', '--json'], { env }))
        .stdout,
    );
    assert.equal(other.cache, 'miss');
    assert.equal(other.manifest.limits.maxLength, 64);
    const before = (await readdir(join(dir, 'cache', 'artifacts'))).length;
    const off = JSON.parse(
      (await kiln(['compile', EMBEDDED_MODEL, '-o', join(dir, 'nocache.kiln'), '--no-cache', '--json'], { env }))
        .stdout,
    );
    assert.equal(off.cache, 'off');
    assert.equal((await readdir(join(dir, 'cache', 'artifacts'))).length, before);
  });

  test('the human summary names parameters, operators, files, time and the cache result', async () => {
    const result = await kiln(['compile', EMBEDDED_MODEL, '-o', join(dir, 'human.kiln')], { env });
    assert.equal(result.code, 0, result.stderr);
    for (const field of ['parameters  4.8 M', 'operators', 'fused in:', 'model.onnx', 'tokenizer.json', 'cache hit'])
      assert.ok(result.stdout.includes(field), `summary lacks "${field}":\n${result.stdout}`);
  });

  test('an existing folder that is not an artifact is never overwritten', async () => {
    const precious = join(dir, 'precious');
    await mkdir(precious);
    await writeFile(join(precious, 'notes.txt'), 'keep me');
    const result = await kiln(['compile', EMBEDDED_MODEL, '-o', precious], { env });
    assert.match(result.stderr, /KILN_ERR_OUTPUT_EXISTS/);
    assert.equal(await readFile(join(precious, 'notes.txt'), 'utf8'), 'keep me');
  });

  test("a killed compile's staging folder is ignored by lookups and by cache ls", async () => {
    const artifacts = join(dir, 'cache', 'artifacts');
    await mkdir(join(artifacts, '.kiln-tmp-deadbeef-123-abcd'), { recursive: true });
    await writeFile(join(artifacts, '.kiln-tmp-deadbeef-123-abcd', 'model.onnx'), 'half');
    const ls = await kiln(['cache', 'ls', '--json'], { env });
    const entries = ls.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { key: string; source: string; options: { maxLength: number } });
    assert.equal(entries.length, 2);
    assert.ok(entries.every((e) => /^[0-9a-f]{32}$/.test(e.key) && e.source === EMBEDDED_MODEL));
    assert.deepEqual(entries.map((e) => e.options.maxLength).sort(), [128, 64]);
  });
});

describe('kiln cache', () => {
  test('cache path prints KILN_CACHE_DIR; ls shows a table; clear empties it', async () => {
    assert.equal((await kiln(['cache', 'path'], { env })).stdout.trim(), join(dir, 'cache'));
    const ls = await kiln(['cache', 'ls'], { env });
    assert.match(ls.stdout, /^KEY\s+SOURCE\s+OPTIONS\s+SIZE\s+AGE/);
    assert.match(ls.stdout, /maxLength=128 maxBatch=32/);
    const clear = await kiln(['cache', 'clear'], { env });
    assert.match(clear.stdout, /removed 2 cache entries/);
    assert.match((await kiln(['cache', 'ls'], { env })).stdout, /is empty/);
    assert.equal(await pathKind(join(dir, 'cache', 'artifacts', '.kiln-tmp-deadbeef-123-abcd')), 'missing');
    // Artifacts written with -o are not part of the cache and survive.
    assert.equal(await pathKind(join(dir, 'again.kiln', 'manifest.json')), 'file');
  });

  test('--help on every command shows usage, options with defaults and examples', async () => {
    for (const command of [['compile'], ['run'], ['serve'], ['cache', 'ls'], ['cache', 'clear'], ['cache', 'path']]) {
      const result = await kiln([...command, '--help']);
      assert.equal(result.code, 0);
      assert.match(result.stdout, new RegExp(`^Usage: kiln ${command.join(' ')}`));
      assert.match(result.stdout, /Examples:\n {2}# .+\n {2}\$ kiln /);
    }
    const overview = await kiln(['--help']);
    for (const name of ['compile', 'run', 'serve', 'cache ls']) assert.ok(overview.stdout.includes(`  ${name}`));
  });
});
