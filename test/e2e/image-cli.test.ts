/** The CLI on an image model as a user runs it: compile a Hugging Face-layout folder, run on image files, batch over a list of paths, bench. */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { cnnFolder, pixels, png } from '../fixtures/image-models.js';
import { errorCode, kiln, tempDir } from '../fixtures/models.js';

let dir = '';
let artifact = '';
let env: NodeJS.ProcessEnv = {};
const images: string[] = [];

before(async () => {
  dir = await tempDir();
  env = { ...process.env, KILN_CACHE_DIR: join(dir, 'cache') };
  for (let i = 0; i < 4; i += 1) {
    const path = join(dir, `img-${i}.png`);
    await writeFile(path, await png(pixels(24 + i, 20, i + 1), 24 + i, 20));
    images.push(path);
  }
  artifact = join(dir, 'cnn.kiln');
  const compiled = await kiln(['compile', await cnnFolder(dir), '-o', artifact], { env });
  assert.equal(compiled.code, 0, compiled.stderr);
  assert.match(compiled.stdout, /task +image-classification, labels cat, dog, bird/);
});

describe('kiln CLI on an image classifier', () => {
  test('kiln run ARTIFACT a.png b.png --json prints one line per image with top-k labels', async () => {
    const run = await kiln(['run', artifact, images[0]!, images[1]!, '--json'], { env });
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            image: string;
            label: string;
            labels: Array<{ label: string; score: number }>;
            logits: number[];
          },
      );
    assert.deepEqual(
      lines.map((l) => l.image),
      [images[0], images[1]],
    );
    for (const l of lines) {
      assert.equal(l.labels.length, 3);
      assert.equal(l.labels[0]!.label, l.label);
      assert.ok(Math.abs(l.labels.reduce((s, x) => s + x.score, 0) - 1) < 1e-5);
    }
  });

  test('kiln run ARTIFACT missing.png → KILN_ERR_INPUT_IMAGE, exit 1', async () => {
    const run = await kiln(['run', artifact, join(dir, 'missing.png')], { env });
    assert.equal(run.code, 1);
    assert.equal(errorCode(run.stderr), 'KILN_ERR_INPUT_IMAGE');
  });

  test('kiln batch ARTIFACT list.txt classifies each image named in the list, an unreadable one as an error row', async () => {
    const list = join(dir, 'list.txt');
    await writeFile(list, `${images.map((p) => p.slice(dir.length + 1)).join('\n')}\nnot-there.png\n`);
    const out = join(dir, 'out.jsonl');
    const batch = await kiln(['batch', artifact, list, '-o', out], { env });
    assert.equal(batch.code, 0, batch.stderr);
    const rows = (await readFile(out, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { line: number; label?: string; error?: { code: string } });
    assert.equal(rows.length, 5);
    assert.ok(rows.slice(0, 4).every((r) => typeof r.label === 'string'));
    assert.equal(rows[4]!.error?.code, 'KILN_ERR_INPUT_IMAGE');
  });

  test('kiln bench ARTIFACT --data FOLDER --mode throughput prints images/s', async () => {
    const bench = await kiln(
      ['bench', artifact, '--data', dir, '--mode', 'throughput', '--batches', '1,4', '--warmup', '1'],
      { env },
    );
    assert.equal(bench.code, 0, bench.stderr);
    assert.match(bench.stdout, /4 images from/);
    assert.match(bench.stdout, /best: [\d.]+ images\/s/);
  });
});
