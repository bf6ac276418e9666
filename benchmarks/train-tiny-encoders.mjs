// int8 --verify on SST-2 for trained DeBERTa-v3-style and ModernBERT classifiers (the encoders
// issue): no trained checkpoint of either can be downloaded here, so tiny ones are trained from
// scratch on SST-2's train split with PyTorch (train-tiny-encoders.py: Debian's python3-torch,
// one thread, float32, Hugging Face parameter names), tokenized with the embedded model's WordPiece
// vocabulary, saved as safetensors with that tokenizer, then compiled int8 with --verify on the
// 872 dev sentences. 0.3 epochs (about 2 CPU minutes each) reach about 80 %; KEEP_DIR keeps the
// trained folders for `kiln compile KEEP_DIR/deberta-v3 --int8 --verify data/sst2/dev.tsv`.
//   node train-tiny-encoders.mjs PATH/TO/sst2/train.tsv [EPOCHS] [KEEP_DIR]
import { spawn } from 'node:child_process';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DIST, ROOT, scratch } from './lib.mjs';

const { TextTokenizer } = await import(`${DIST}/model/tokenizer.js`);
const { compile } = await import(`${DIST}/compiler/compile.js`);

const [trainPath, epochs = '0.3', keep] = process.argv.slice(2);
if (!trainPath) {
  console.error('usage: node train-tiny-encoders.mjs PATH/TO/sst2/train.tsv [EPOCHS] [KEEP_DIR]');
  process.exit(2);
}
const PYTHON = '/usr/bin/python3'; // Debian's, with python3-torch
const SOURCE = join(ROOT, 'models', 'sst2-distilbert-tiny');
const DEV = join(ROOT, 'data', 'sst2', 'dev.tsv');
const MAX_LENGTH = 64;

const tokenizer = new TextTokenizer(
  JSON.parse(await readFile(join(SOURCE, 'tokenizer.json'), 'utf8')),
  JSON.parse(await readFile(join(SOURCE, 'tokenizer_config.json'), 'utf8')),
  join(SOURCE, 'tokenizer.json'),
);
async function tokenized(path) {
  const rows = (await readFile(path, 'utf8'))
    .split('\n')
    .slice(1)
    .filter((line) => line.trim() !== '')
    .map((line) => line.split('\t'));
  return {
    ids: rows.map(([text]) => tokenizer.encode(text, MAX_LENGTH).ids),
    labels: rows.map(([, label]) => Number(label)),
  };
}

function run(command, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.on('exit', (status) =>
      status === 0
        ? resolve(JSON.parse(out.trim().split('\n').at(-1)))
        : reject(new Error(`${command} exited ${status}`)),
    );
  });
}

const { dir, cleanup } = await scratch('kiln-train-tiny-');
process.env.KILN_CACHE_DIR = join(dir, 'cache');
try {
  const data = join(dir, 'sst2-ids.json');
  await writeFile(data, JSON.stringify({ train: await tokenized(trainPath), dev: await tokenized(DEV) }));
  for (const family of ['deberta-v3', 'modernbert']) {
    const folder = join(keep ?? dir, family);
    const trained = await run(PYTHON, [
      join(ROOT, 'benchmarks', 'train-tiny-encoders.py'),
      data,
      family,
      folder,
      epochs,
    ]);
    for (const file of ['tokenizer.json', 'tokenizer_config.json', 'vocab.txt'])
      await cp(join(SOURCE, file), join(folder, file));
    const { manifest } = await compile({
      source: folder,
      out: join(dir, `${family}.kiln`),
      precision: 'int8',
      verify: DEV,
    });
    const v = manifest.verify;
    const pct = (x) => `${(100 * x).toFixed(2)} %`;
    console.log(
      `${family} (${manifest.model.parameters} parameters, ${trained.epochs} epochs in ${trained.cpuSeconds} CPU s; ` +
        `PyTorch dev ${pct(trained.devAccuracy)}): fp32 ${pct(v.accuracy.reference)}, int8 ${pct(v.accuracy.compiled)} ` +
        `(drop ${v.accuracy.drop.toFixed(2)} pt, limit ${v.limits.maxAccuracyDrop}), agreement ${pct(v.agreement)}, ` +
        `max |Δlogit| ${v.maxAbsLogitDelta.toFixed(4)} on ${v.rows} SST-2 dev sentences: --verify passed`,
    );
  }
} finally {
  await cleanup();
}
