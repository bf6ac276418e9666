/**
 * A folder with only config.json, model.safetensors and tokenizer.json: `kiln compile` imports
 * it on the way and matches PyTorch; `kiln import` writes a folder that compiles the same.
 */
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { EMBEDDED_MODEL, errorCode, kiln, tempDir } from '../fixtures/models.js';

let dir: string;
let env: NodeJS.ProcessEnv;
let checkpoint: string;
let reference: { sentences: string[]; logits: number[][] };

before(async () => {
  dir = await tempDir();
  env = { KILN_CACHE_DIR: join(dir, 'cache') };
  checkpoint = join(dir, 'checkpoint-only');
  for (const file of ['config.json', 'model.safetensors', 'tokenizer.json'])
    await cp(join(EMBEDDED_MODEL, file), join(checkpoint, file));
  reference = JSON.parse(await readFile(join(EMBEDDED_MODEL, 'reference-logits.json'), 'utf8'));
  await writeFile(join(dir, 'sentences.txt'), `${reference.sentences.join('\n')}\n`);
});

async function maxDeltaOver872(artifact: string): Promise<number> {
  const run = await kiln(['run', artifact, '--file', join(dir, 'sentences.txt'), '--json'], { env });
  assert.equal(run.code, 0, run.stderr);
  const rows = run.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { logits: number[] });
  assert.equal(rows.length, 872);
  let max = 0;
  rows.forEach((row, i) => {
    row.logits.forEach((v, j) => {
      max = Math.max(max, Math.abs(v - reference.logits[i]![j]!));
    });
  });
  return max;
}

test('kiln compile on a safetensors-only folder imports it and matches PyTorch within 1e-4 on 872 sentences', async () => {
  const compiled = await kiln(['compile', checkpoint, '-o', join(dir, 'from-checkpoint.kiln'), '--json'], { env });
  assert.equal(compiled.code, 0, compiled.stderr);
  const result = JSON.parse(compiled.stdout) as {
    cache: string;
    manifest: { source: { kind: string }; model: { parameters: number; fusions: { layerNorm: number; gelu: number } } };
  };
  assert.equal(result.manifest.source.kind, 'hf-checkpoint');
  assert.equal(result.manifest.model.parameters, 4_782_466);
  assert.equal(result.manifest.model.fusions.gelu, 4, "each layer's GELU is fused into one kernel");
  assert.equal(result.manifest.model.fusions.layerNorm, 9);
  const delta = await maxDeltaOver872(join(dir, 'from-checkpoint.kiln'));
  console.log(`imported checkpoint: max |Δlogit| vs PyTorch = ${delta.toExponential(2)} over 872 sentences`);
  assert.ok(delta <= 1e-4);
  // The import went through the cache: compiling again is a hit.
  assert.equal(
    JSON.parse((await kiln(['compile', checkpoint, '-o', join(dir, 'again.kiln'), '--json'], { env })).stdout).cache,
    'hit',
  );
});

test('kiln import writes an HF-layout folder with onnx/model.onnx that compiles to the same logits', async () => {
  const out = join(dir, 'imported');
  const imported = await kiln(['import', checkpoint, '-o', out], { env });
  assert.equal(imported.code, 0, imported.stderr);
  assert.match(imported.stdout, /DistilBertForSequenceClassification: 4 layers, hidden 128, 4 heads, FFN 512, gelu/);
  const compiled = await kiln(['compile', out, '-o', join(dir, 'from-import.kiln')], { env });
  assert.equal(compiled.code, 0, compiled.stderr);
  assert.ok((await maxDeltaOver872(join(dir, 'from-import.kiln'))) <= 1e-4);
});

test('kiln import of a truncated checkpoint → KILN_ERR_WEIGHTS_TRUNCATED, and nothing is written', async () => {
  const broken = join(dir, 'broken');
  await cp(checkpoint, broken, { recursive: true });
  const bytes = await readFile(join(broken, 'model.safetensors'));
  await writeFile(join(broken, 'model.safetensors'), bytes.subarray(0, bytes.length - 1000));
  const result = await kiln(['import', broken, '-o', join(dir, 'broken-onnx')], { env });
  assert.equal(errorCode(result.stderr), 'KILN_ERR_WEIGHTS_TRUNCATED');
  assert.equal(
    (await kiln(['compile', broken], { env, cwd: dir })).stderr.includes('KILN_ERR_WEIGHTS_TRUNCATED'),
    true,
  );
});
