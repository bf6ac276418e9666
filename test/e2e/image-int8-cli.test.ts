/**
 * Static int8 for image models through `kiln compile` as a user runs it: calibrated on a folder
 * of sample images, verified against the fp32 source on other images, with the quantized
 * kernels in the artifact; and the flag errors that say what --calibrate is for.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { cnnFolder, pixels, png } from '../fixtures/image-models.js';
import { EMBEDDED_MODEL, errorCode, kiln, tempDir } from '../fixtures/models.js';

let dir = '';
let env: NodeJS.ProcessEnv = {};
let source = '';

/** `count` images of varied sizes (they need resizing) in a new folder. */
async function imageFolder(name: string, count: number, seed: number): Promise<string> {
  const folder = join(dir, name);
  await mkdir(folder, { recursive: true });
  for (let i = 0; i < count; i += 1) {
    const width = 18 + ((i * 7) % 13);
    const height = 17 + ((i * 5) % 11);
    await writeFile(
      join(folder, `img-${String(i).padStart(2, '0')}.png`),
      await png(pixels(width, height, seed + i), width, height),
    );
  }
  return folder;
}

before(async () => {
  dir = await tempDir();
  env = { ...process.env, KILN_CACHE_DIR: join(dir, 'cache') };
  source = await cnnFolder(dir);
});

test('kiln compile IMAGE_MODEL --precision int8 --calibrate DIR --verify DIR: QLinearConv in the artifact, agreement with fp32 printed and checked', async () => {
  const calibration = await imageFolder('calibration', 24, 100);
  const held = await imageFolder('held-out', 24, 500);
  const out = join(dir, 'cnn-int8.kiln');
  const result = await kiln(
    [
      'compile',
      source,
      '--precision',
      'int8',
      '--calibrate',
      calibration,
      '--verify',
      held,
      '--min-agreement',
      '0.9',
      '-o',
      out,
    ],
    { env },
  );
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /precision +int8, static \(calibrated on 24 images\): Conv 1/);
  const agreement = Number(/verify +24 rows of .*held-out: agreement ([\d.]+) %/.exec(result.stdout)?.[1]);
  console.log(`  int8 vs fp32 top-1 agreement on 24 held-out images: ${agreement} %`);
  assert.ok(agreement >= 90, `agreement ${agreement} %`);
  const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as {
    precision: string;
    staticQuantization: { calibration: { samples: number } };
    model: { operators: { optimized: Record<string, number> } };
  };
  assert.equal(manifest.precision, 'int8');
  assert.equal(manifest.staticQuantization.calibration.samples, 24);
  assert.ok(
    (manifest.model.operators.optimized['com.microsoft:QLinearConv'] ??
      manifest.model.operators.optimized.QLinearConv ??
      0) >= 1,
    JSON.stringify(manifest.model.operators.optimized),
  );
  assert.equal(manifest.model.operators.optimized.Conv ?? 0, 0, 'no float Conv left');
  // The int8 artifact runs: every image gets one of the three labels.
  const run = await kiln(['run', out, join(held, 'img-00.png'), '--json'], { env });
  assert.equal(run.code, 0, run.stderr);
  assert.ok(['cat', 'dog', 'bird'].includes((JSON.parse(run.stdout) as { label: string }).label));
});

test('--precision int8 on an image model without --calibrate, and --calibrate on a text model, are refused with the rule', async () => {
  const missing = await kiln(['compile', source, '--precision', 'int8', '-o', join(dir, 'x.kiln')], { env });
  assert.equal(missing.code, 1);
  assert.equal(errorCode(missing.stderr), 'KILN_ERR_CLI_INVALID_FLAG');
  assert.match(missing.stderr, /--calibrate must be given with --precision int8 for an image model/);
  const text = await kiln(
    ['compile', EMBEDDED_MODEL, '--precision', 'int8', '--calibrate', dir, '-o', join(dir, 'y.kiln')],
    { env },
  );
  assert.equal(text.code, 1);
  assert.equal(errorCode(text.stderr), 'KILN_ERR_CLI_INVALID_FLAG');
  assert.match(text.stderr, /--calibrate must be used with image models and --precision int8/);
});

test('--verify with a text data file on an image model names the first entry that is not an image file', async () => {
  const list = join(dir, 'dev.tsv');
  await writeFile(list, 'sentence\tlabel\na fine film\t1\n');
  const result = await kiln(['compile', source, '--verify', list, '-o', join(dir, 'z.kiln')], { env });
  assert.equal(result.code, 1);
  assert.equal(errorCode(result.stderr), 'KILN_ERR_INPUT_IMAGE');
  assert.match(result.stderr, /image 1 of .*dev\.tsv .*the file does not exist/);
});
