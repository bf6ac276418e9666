// Shared helpers for benchmarks: paths into the built kiln, temporary folders, child processes.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const DIST = join(ROOT, 'dist', 'src');
export const CLI = join(DIST, 'cli', 'main.js');

export async function scratch(prefix = 'kiln-bench-') {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

let evals = 0;

/** Runs CODE (an ES module, written to a temporary file) and returns its parsed last stdout line. */
export async function nodeEval(code, env = {}) {
  const file = join(tmpdir(), `kiln-bench-eval-${process.pid}-${evals++}.mjs`);
  await writeFile(file, code);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [file], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child.on('exit', () => void rm(file, { force: true }));
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.on('exit', (status) =>
      status === 0
        ? resolvePromise(JSON.parse(out.trim().split('\n').at(-1)))
        : reject(new Error(`child exited ${status}: ${out}`)),
    );
  });
}

export const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

/** The first `limit` SST-2 dev sentences (all without a limit). */
export async function sst2Sentences(limit) {
  const [header, ...rows] = (await readFile(join(ROOT, 'data', 'sst2', 'dev.tsv'), 'utf8'))
    .split('\n')
    .filter((l) => l.trim() !== '');
  const column = header.split('\t').indexOf('sentence');
  return rows.slice(0, limit).map((row) => row.split('\t')[column].trim());
}

/** The CPU's model and its SIMD flags (lscpu): hosts of one machine kind differ (AVX2 only, or AVX-512 VNNI). */
export function cpuInfo() {
  try {
    const lscpu = execFileSync('lscpu', { encoding: 'utf8' });
    const field = (name) => lscpu.match(new RegExp(`^${name}:\\s*(.*)$`, 'm'))?.[1]?.trim() ?? 'unknown';
    const flagList = field('Flags').split(/\s+/);
    const simd = flagList.filter((f) => /^(avx|fma|f16c|amx|sse4)/.test(f) || f === 'avx512_vnni' || f === 'avx_vnni');
    return { model: field('Model name'), simd: simd.join(' '), flags: field('Flags') };
  } catch {
    return { model: 'unknown (no lscpu)', simd: '', flags: '' };
  }
}

/** `kiln synth PRESET` compiled int8 in a scratch folder (a few minutes for a base-sized model): its artifact folder. */
export async function synthesizedInt8(preset) {
  const { dir } = await scratch('kiln-synth-int8-');
  const { synthesize } = await import(`${DIST}/import/synth.js`);
  const { compile } = await import(`${DIST}/compiler/compile.js`);
  process.stderr.write(`synthesizing ${preset} and compiling it int8 (a few minutes)…\n`);
  const source = join(dir, 'synthetic');
  await synthesize({ preset, out: source });
  process.env.KILN_CACHE_DIR ??= join(dir, 'cache');
  return (await compile({ source, out: join(dir, 'int8.kiln'), precision: 'int8' })).artifactDir;
}
