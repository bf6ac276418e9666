/**
 * `kiln compile --precision int8 --verify` on the embedded model, `kiln inspect`, and the verify
 * limits failing compile with their codes when the compiled model disagrees.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { pathKind } from '../../src/core/fs.js';
import type { Manifest } from '../../src/model/artifact.js';
import { EMBEDDED_MODEL, errorCode, kiln, REPO, SHARED_CACHE_ENV, tempDir } from '../fixtures/models.js';

let dir: string;
let env: NodeJS.ProcessEnv;
before(async () => {
  dir = await tempDir();
  env = { KILN_CACHE_DIR: join(dir, 'cache') };
});

test('int8 with --verify on SST-2 dev: accuracy drop ≤ 0.5 pt and agreement ≥ 98 %, stored in the manifest and shown by inspect', async () => {
  const out = join(dir, 'int8.kiln');
  const compiled = await kiln(
    [
      'compile',
      EMBEDDED_MODEL,
      '--precision',
      'int8',
      '--verify',
      join(REPO, 'data', 'sst2', 'dev.tsv'),
      '-o',
      out,
      '--json',
    ],
    { env },
  );
  assert.equal(compiled.code, 0, compiled.stderr);
  const m = (JSON.parse(compiled.stdout) as { manifest: Manifest }).manifest;
  assert.equal(m.precision, 'int8');
  assert.ok(m.quantization!.quantized.length >= 24, 'every encoder MatMul is quantized');
  assert.ok((m.model.operators.optimized['com.microsoft:DynamicQuantizeMatMul'] ?? 0) >= 24);
  const v = m.verify!;
  assert.equal(v.rows, 872);
  console.log(
    `int8 verify: accuracy ${(v.accuracy!.reference * 100).toFixed(2)} % → ${(v.accuracy!.compiled * 100).toFixed(2)} %, agreement ${(v.agreement * 100).toFixed(2)} %, max |Δlogit| ${v.maxAbsLogitDelta.toExponential(2)}`,
  );
  assert.ok(
    Math.abs(v.accuracy!.reference - 0.8038990825688074) < 1e-12,
    "the reference is the fp32 source: PyTorch's accuracy",
  );
  assert.ok(v.accuracy!.drop <= 0.5);
  assert.ok(v.agreement >= 0.98);
  // Flipped rows are real flips: the count matches agreement, and each lists two different labels.
  assert.equal(v.flippedCount, Math.round((1 - v.agreement) * 872));
  for (const f of v.flipped) assert.notEqual(f.reference, f.compiled);

  const inspect = await kiln(['inspect', out], { env });
  for (const text of [
    'precision   int8',
    'DynamicQuantizeMatMul',
    'verify:',
    'agreement',
    'operators (source → optimized)',
  ])
    assert.ok(inspect.stdout.includes(text), `inspect lacks ${text}`);
  assert.deepEqual(JSON.parse((await kiln(['inspect', out, '--json'], { env })).stdout).verify, v);
});

test('--quantize-embeddings shrinks the artifact: the word embeddings are most of this model', async () => {
  const fp32 = JSON.parse(
    (await kiln(['compile', EMBEDDED_MODEL, '-o', join(dir, 'fp32.kiln'), '--json'], { env: SHARED_CACHE_ENV })).stdout,
  ) as { manifest: Manifest };
  const small = JSON.parse(
    (
      await kiln(
        [
          'compile',
          EMBEDDED_MODEL,
          '--precision',
          'int8',
          '--quantize-embeddings',
          '-o',
          join(dir, 'small.kiln'),
          '--json',
        ],
        { env },
      )
    ).stdout,
  ) as { manifest: Manifest };
  const ratio = small.manifest.files['model.onnx']!.bytes / fp32.manifest.files['model.onnx']!.bytes;
  console.log(`int8 + embeddings / fp32 model size = ${ratio.toFixed(3)}`);
  assert.ok(ratio < 0.3, `ratio ${ratio}`);
  assert.ok(small.manifest.quantization!.quantizedFraction > 0.95);
});

test('without labels, disagreement below --min-agreement fails compile with KILN_ERR_VERIFY_AGREEMENT and writes nothing', async () => {
  // The dev sentences without their labels: int8 flips one of them (see the first test).
  const sentences = (await readFile(join(REPO, 'data', 'sst2', 'dev.tsv'), 'utf8'))
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split('\t')[0]!.trim());
  const data = join(dir, 'unlabelled.jsonl');
  await writeFile(data, sentences.map((text) => JSON.stringify({ text })).join('\n'));
  const out = join(dir, 'refused.kiln');
  const result = await kiln(
    ['compile', EMBEDDED_MODEL, '--precision', 'int8', '--verify', data, '--min-agreement', '1', '-o', out],
    { env },
  );
  assert.equal(errorCode(result.stderr), 'KILN_ERR_VERIFY_AGREEMENT', result.stderr);
  assert.match(
    result.stderr,
    /agrees with the fp32 source on 99\.\d+ % of the rows \(limit 100\.00 %; \d+ rows flipped\).*--precision fp32/,
  );
  assert.equal(await pathKind(out), 'missing');
});

test('labels that are neither names nor ids → KILN_ERR_DATA_INVALID naming the line', async () => {
  const data = join(dir, 'bad-labels.tsv');
  await writeFile(data, 'sentence\tlabel\ngood film\tPOSITIVE\nbad film\tmeh\n');
  const result = await kiln(['compile', EMBEDDED_MODEL, '--verify', data, '-o', join(dir, 'x.kiln')], { env });
  assert.equal(errorCode(result.stderr), 'KILN_ERR_DATA_INVALID');
  assert.match(result.stderr, /line 3: label "meh" is neither a label name \(NEGATIVE, POSITIVE\) nor an id in 0\.\.1/);
});
