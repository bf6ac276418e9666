/**
 * The embedded sentiment model's encoder as a sentence embedder, through the CLI as a user runs
 * it: `kiln compile --task feature-extraction` imports the checkpoint without its head, `kiln run`
 * prints vectors that put paraphrases closer than unrelated sentences, and `kiln batch
 * --format npy` writes one float32 matrix whose rows are the JSON Lines vectors.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { EMBEDDED_MODEL, errorCode, kiln, SHARED_CACHE_ENV, tempDir } from '../fixtures/models.js';

/** [anchor, paraphrase, unrelated]: the paraphrase must be the nearer one. */
const TRIPLETS = [
  [
    'The movie was wonderful and I loved it.',
    'I really loved this film, it was wonderful.',
    'The train to Boston leaves at six in the morning.',
  ],
  [
    'The food at this restaurant was terrible.',
    'This restaurant served awful food.',
    'Quantum computers use qubits to store information.',
  ],
  [
    'She plays the piano every evening after dinner.',
    'Every night after dinner she practices piano.',
    'The stock market fell sharply on Monday.',
  ],
  [
    'A boring, tedious and far too long picture.',
    'The film was dull, slow and much too long.',
    'My cat sleeps on the windowsill all afternoon.',
  ],
];

const dot = (a: number[], b: number[]): number => a.reduce((s, v, i) => s + v * b[i]!, 0);

let dir: string;
let env: NodeJS.ProcessEnv;
let artifact: string;

before(async () => {
  dir = await tempDir();
  env = { KILN_CACHE_DIR: join(dir, 'cache') };
  artifact = join(dir, 'encoder.kiln');
  const compiled = await kiln(['compile', EMBEDDED_MODEL, '--task', 'feature-extraction', '-o', artifact], { env });
  assert.equal(compiled.code, 0, compiled.stderr);
  assert.match(compiled.stdout, /feature-extraction: 128-dimensional vectors, mean pooling, L2-normalized/);
});

test('kiln run on the sentiment encoder puts each paraphrase closer than an unrelated sentence (cosine)', async () => {
  const file = join(dir, 'triplets.txt');
  await writeFile(file, `${TRIPLETS.flat().join('\n')}\n`);
  const run = await kiln(['run', artifact, '-f', file, '--json'], { env });
  assert.equal(run.code, 0, run.stderr);
  const vectors = run.stdout
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { embedding: number[] }).embedding);
  assert.equal(vectors.length, TRIPLETS.length * 3);
  for (const v of vectors) assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-5, 'unit vectors: cosine is the dot product');
  TRIPLETS.forEach((t, i) => {
    const [anchor, paraphrase, unrelated] = vectors.slice(i * 3, i * 3 + 3) as [number[], number[], number[]];
    const near = dot(anchor, paraphrase);
    const far = dot(anchor, unrelated);
    console.log(`  cos(paraphrase) ${near.toFixed(3)} vs cos(unrelated) ${far.toFixed(3)}: ${t[0]}`);
    assert.ok(near > far, `"${t[1]}" (${near}) should be nearer "${t[0]}" than "${t[2]}" (${far})`);
  });
});

test('kiln batch --format npy writes a float32 [rows, 128] matrix equal to the JSON Lines vectors, NaN for a failed row', async () => {
  const input = join(dir, 'texts.jsonl');
  await writeFile(
    input,
    `${['a good film', 'the market fell', '   ', 'I loved it'].map((text) => JSON.stringify({ text })).join('\n')}\n`,
  );
  const out = join(dir, 'vectors.jsonl');
  const batch = await kiln(['batch', artifact, input, '-o', out, '--format', 'npy'], { env });
  assert.equal(batch.code, 0, batch.stderr);
  assert.match(batch.stderr, /wrote .*vectors\.npy: float32 \[4, 128\]; NaN rows for failed lines 3/);
  const lines = (await readFile(out, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { line: number; embedding?: number[]; error?: { code: string } });
  assert.deepEqual(
    lines.map((l) => l.line),
    [1, 2, 3, 4],
  );
  assert.equal(lines[2]!.error?.code, 'KILN_ERR_DATA_INVALID', 'an empty text is an error line; the job goes on');
  const npy = await readFile(join(dir, 'vectors.npy'));
  assert.deepEqual([...npy.subarray(0, 8)], [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  const headerLength = npy.readUInt16LE(8);
  const header = npy.subarray(10, 10 + headerLength).toString('latin1');
  assert.match(header, /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(4, 128\), \} *\n$/);
  assert.equal((10 + headerLength) % 64, 0, 'data aligned to 64 bytes');
  const data = npy.subarray(10 + headerLength);
  assert.equal(data.length, 4 * 128 * 4);
  const row = (r: number): number[] => Array.from({ length: 128 }, (_, c) => data.readFloatLE((r * 128 + c) * 4));
  for (const r of [0, 1, 3])
    row(r).forEach((v, c) => {
      assert.ok(Math.abs(v - lines[r]!.embedding![c]!) < 1e-6);
    });
  assert.ok(row(2).every(Number.isNaN));
});

test('kiln batch --format npy on a classifier is refused with the flag named', async () => {
  const input = join(dir, 'one.txt');
  await writeFile(input, 'fine\n');
  // The classifier through the run's shared cache: its compile is not what the test checks.
  const result = await kiln(['batch', EMBEDDED_MODEL, input, '-o', join(dir, 'x.jsonl'), '--format', 'npy'], {
    env: SHARED_CACHE_ENV,
  });
  assert.equal(result.code, 1);
  assert.equal(errorCode(result.stderr), 'KILN_ERR_CLI_INVALID_FLAG');
  assert.match(result.stderr, /--format must be npy only for embedding models \(this one is text-classification\)/);
});
