// `kiln batch` memory on a 1,000,000-row file stays flat: samples the process's resident memory
// every second for --seconds (default 40) and compares the last samples with the first ones
// after warm-up. Streaming means the file's size does not matter, only the window.
//   node benchmarks/batch-memory.mjs [--seconds 40]
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI, mib, ROOT, scratch } from './lib.mjs';

const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 40;
const { dir, cleanup } = await scratch();
try {
  const sentences = (await readFile(join(ROOT, 'data', 'sst2', 'dev.tsv'), 'utf8'))
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split('\t')[0].trim());
  const input = join(dir, 'million.tsv');
  const out = createWriteStream(input);
  out.write('sentence\tlabel\n');
  for (let i = 0; i < 1_000_000; i += 1)
    if (!out.write(`${sentences[i % sentences.length]}\t${i % 2}\n`)) await new Promise((r) => out.once('drain', r));
  await new Promise((r) => out.end(r));
  const child = spawn(
    process.execPath,
    [CLI, 'batch', join(ROOT, 'models', 'sst2-distilbert-tiny'), input, '-o', join(dir, 'out.jsonl')],
    { env: { ...process.env, KILN_CACHE_DIR: join(dir, 'cache') }, stdio: 'ignore' },
  );
  const samples = [];
  for (let s = 0; s < seconds; s += 1) {
    await new Promise((r) => setTimeout(r, 1000));
    const status = await readFile(`/proc/${child.pid}/status`, 'utf8').catch(() => '');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    if (kb > 0) samples.push(kb * 1024);
  }
  child.kill('SIGKILL');
  const rows = (await readFile(join(dir, 'out.jsonl'), 'utf8')).split('\n').length - 1;
  const early = samples.slice(5, 10);
  const late = samples.slice(-5);
  const avg = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const growth = avg(late) / avg(early) - 1;
  console.log(
    `batch-memory: 1,000,000-row input; ${rows} rows done in ${seconds} s; RSS ${mib(avg(early))} after warm-up, ${mib(avg(late))} at the end: ${(growth * 100).toFixed(1)} % (flat if within ±10 %: ${Math.abs(growth) <= 0.1 ? 'PASS' : 'FAIL'})`,
  );
} finally {
  await cleanup();
}
