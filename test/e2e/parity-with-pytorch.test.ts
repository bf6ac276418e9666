/**
 * The compiled fp32 artifact must give PyTorch's logits: every SST-2 dev sentence through
 * `kiln run --file --json`, against models/sst2-distilbert-tiny/reference-logits.json.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { EMBEDDED_MODEL, kiln, REPO, SHARED_CACHE_ENV, tempDir } from '../fixtures/models.js';

interface Reference {
  sentences: string[];
  logits: number[][];
  /** PyTorch's predicted label per sentence. */
  labels: string[];
  accuracy: number;
  max_length: number;
}

const TOLERANCE = 1e-4;

test('kiln run --json logits match PyTorch within 1e-4 on all 872 SST-2 dev sentences, with the same accuracy', async () => {
  const reference = JSON.parse(await readFile(join(EMBEDDED_MODEL, 'reference-logits.json'), 'utf8')) as Reference;
  assert.equal(reference.sentences.length, 872);
  // Gold labels come from the data set (1 = positive); GLUE's sentences end with a space.
  const gold = (await readFile(join(REPO, 'data', 'sst2', 'dev.tsv'), 'utf8'))
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => {
      const [sentence, label] = line.split('\t');
      return { sentence: sentence!.trim(), label: label === '1' ? 'POSITIVE' : 'NEGATIVE' };
    });
  assert.deepEqual(
    gold.map((g) => g.sentence),
    reference.sentences,
  );
  const dir = await tempDir();
  const env = { KILN_CACHE_DIR: join(dir, 'cache') };
  const artifact = join(dir, 'sst2.kiln');
  const compiled = await kiln(
    ['compile', EMBEDDED_MODEL, '-o', artifact, '--max-length', String(reference.max_length)],
    { env: SHARED_CACHE_ENV },
  );
  assert.equal(compiled.code, 0, compiled.stderr);

  const input = join(dir, 'sentences.txt');
  await writeFile(input, `${reference.sentences.join('\n')}\n`);
  const run = await kiln(['run', artifact, '--file', input, '--json'], { env });
  assert.equal(run.code, 0, run.stderr);
  const rows = run.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { text: string; label: string; logits: number[] });
  assert.equal(rows.length, reference.sentences.length);

  let maxDelta = 0;
  let correct = 0;
  let agree = 0;
  rows.forEach((row, i) => {
    assert.equal(row.text, reference.sentences[i]);
    reference.logits[i]!.forEach((value, j) => {
      maxDelta = Math.max(maxDelta, Math.abs(value - row.logits[j]!));
    });
    if (row.label === gold[i]!.label) correct += 1;
    if (row.label === reference.labels[i]) agree += 1;
  });
  const accuracy = correct / rows.length;
  console.log(
    `parity: max |Δlogit| = ${maxDelta.toExponential(2)} over ${rows.length} sentences; ` +
      `accuracy ${(accuracy * 100).toFixed(2)} % (PyTorch ${(reference.accuracy * 100).toFixed(2)} %); ${agree}/${rows.length} labels agree with PyTorch`,
  );
  assert.ok(maxDelta <= TOLERANCE, `max |Δlogit| ${maxDelta} exceeds ${TOLERANCE}`);
  assert.equal(agree, rows.length);
  assert.equal(correct, Math.round(reference.accuracy * rows.length));
});
