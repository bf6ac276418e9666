// Shared helpers for benchmarks: paths into the built kiln, temporary folders, child processes.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
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
