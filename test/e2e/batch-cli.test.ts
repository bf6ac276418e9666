/**
 * `kiln batch`: one output line per input row in input order, error rows that do not stop the
 * job, resuming after SIGKILL at random points with nothing lost or repeated, and shards that
 * cover a file exactly once.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { watch } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { before, test } from 'node:test';
import { CLI, EMBEDDED_MODEL, kiln, REPO, SHARED_CACHE_ENV, tempDir } from '../fixtures/models.js';

let dir: string;
let env: NodeJS.ProcessEnv;
let artifact: string;
let input: string;
let rows: number;

before(async () => {
  dir = await tempDir();
  env = { KILN_CACHE_DIR: join(dir, 'cache') };
  artifact = join(dir, 'sst2.kiln');
  // Only the artifact is used: the run's shared cache compiles the embedded model once.
  assert.equal((await kiln(['compile', EMBEDDED_MODEL, '-o', artifact], { env: SHARED_CACHE_ENV })).code, 0);
  // 878 JSONL rows with ids: the dev set, and three bad rows among them.
  const sentences = (await readFile(join(REPO, 'data', 'sst2', 'dev.tsv'), 'utf8'))
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split('\t')[0]!.trim());
  // The first three sentences again at the end: the same text must get the same answer anywhere.
  const lines = [...sentences, ...sentences.slice(0, 3)].map((text, i) => JSON.stringify({ id: `r${i}`, text }));
  lines.splice(10, 0, '{"id": "bad-json", ');
  lines.splice(500, 0, JSON.stringify({ id: 'empty', text: '   ' }));
  lines.splice(800, 0, JSON.stringify({ id: 'no-text', body: 'x' }));
  input = join(dir, 'input.jsonl');
  await writeFile(input, `${lines.join('\n')}\n`);
  rows = lines.length;
});

const sizeOf = async (path: string): Promise<number> => (await stat(path).catch(() => ({ size: 0 }))).size;

/**
 * Resolves once `path` holds `size` bytes or `exited` settles, checking the size whenever its
 * folder changes (a check after every turn of the event loop would spin a core the job needs).
 */
function whenGrown(path: string, size: number, exited: Promise<unknown>): Promise<void> {
  return new Promise((resolvePromise) => {
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      watcher.close();
      resolvePromise();
    };
    const check = (): void => {
      void sizeOf(path).then((n) => {
        if (n >= size) finish();
      });
    };
    const watcher = watch(dirname(path), check);
    void exited.then(finish);
    check();
  });
}

type Out = { line: number; id?: string; label?: string; score?: number; error?: { code: string } };
const readOut = async (path: string): Promise<Out[]> =>
  (await readFile(path, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Out);

test('one line per input row, in input order; bad rows get coded error lines and the job goes on', async () => {
  const out = join(dir, 'all.jsonl');
  const result = await kiln(['batch', artifact, input, '-o', out, '--window', '500'], { env });
  assert.equal(result.code, 0, result.stderr);
  const lines = await readOut(out);
  assert.equal(lines.length, rows);
  assert.deepEqual(
    lines.map((l) => l.line),
    Array.from({ length: rows }, (_, i) => i + 1),
  );
  const errors = lines.filter((l) => l.error);
  assert.deepEqual(
    errors.map((l) => l.line),
    [11, 501, 801],
  );
  assert.ok(errors.every((l) => l.error!.code === 'KILN_ERR_DATA_INVALID'));
  assert.equal(lines[0]!.id, 'r0');
  assert.match(
    result.stderr,
    new RegExp(`${rows} rows in .*; 3 errors; labels (POSITIVE|NEGATIVE) \\d+, (POSITIVE|NEGATIVE) \\d+`),
  );
  // The same sentence gets the same answer wherever it sits in the file.
  const first = lines.filter((l) => l.id === 'r0' || l.id === 'r872');
  assert.equal(first.length, 2);
  assert.equal(new Set(first.map((l) => `${l.label}:${l.score}`)).size, 1);
});

test('killed with SIGKILL at random points, the same command resumes: no row lost, none repeated', async () => {
  const reference = await readOut(join(dir, 'all.jsonl'));
  const out = join(dir, 'resumed.jsonl');
  for (let attempt = 0; attempt < 4; attempt += 1) {
    const child = spawn(process.execPath, [CLI, 'batch', artifact, input, '-o', out, '--window', '97'], {
      cwd: REPO,
      env: { ...process.env, ...env },
    });
    // Kill once the output has grown by a random amount since this attempt began (or the job ended).
    const start = await sizeOf(out);
    const target = start + 1000 + Math.floor(Math.random() * 8000);
    const exited = once(child, 'exit');
    await whenGrown(out, target, exited);
    child.kill('SIGKILL');
    await exited;
  }
  const final = await kiln(['batch', artifact, input, '-o', out, '--window', '97'], { env });
  assert.equal(final.code, 0, final.stderr);
  const lines = await readOut(out);
  assert.deepEqual(
    lines.map((l) => l.line),
    reference.map((l) => l.line),
    'every row exactly once, in order',
  );
  assert.deepEqual(
    lines.map((l) => l.label ?? l.error?.code),
    reference.map((l) => l.label ?? l.error?.code),
  );
  assert.match(final.stderr, /from an earlier run/);
});

test('--shard I/N: three shards together cover the file exactly once', async () => {
  const seen: number[] = [];
  for (const shard of ['0/3', '1/3', '2/3']) {
    const out = join(dir, `shard-${shard.replace('/', '-')}.jsonl`);
    const result = await kiln(['batch', artifact, input, '-o', out, '--shard', shard], { env });
    assert.equal(result.code, 0, result.stderr);
    const lines = await readOut(out);
    assert.ok(Math.abs(lines.length - rows / 3) <= 1, `shard ${shard} has ${lines.length} rows`);
    seen.push(...lines.map((l) => l.line));
  }
  assert.deepEqual(
    seen.sort((a, b) => a - b),
    Array.from({ length: rows }, (_, i) => i + 1),
  );
  const bad = await kiln(['batch', artifact, input, '--shard', '3/3'], { env });
  assert.match(bad.stderr, /KILN_ERR_CLI_INVALID_FLAG: --shard must be I\/N with 0 ≤ I < N/);
});

test('an output that kiln batch did not write is refused with KILN_ERR_BATCH_OUTPUT_INVALID', async () => {
  const out = join(dir, 'foreign.jsonl');
  await writeFile(out, '{"line": 5}\n{"line": 3}\n');
  const result = await kiln(['batch', artifact, input, '-o', out], { env });
  assert.match(result.stderr, /KILN_ERR_BATCH_OUTPUT_INVALID: cannot continue .*not in input order/);
});
