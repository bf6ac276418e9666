/** `kiln bench` as a user runs it: every mode, JSON, HTML report, cost and the baseline comparison. */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { BenchResult } from '../../src/bench/result.js';
import { EMBEDDED_MODEL, errorCode, kiln, SHARED_CACHE_ENV, tempDir } from '../fixtures/models.js';

test('kiln bench runs latency, throughput and concurrency, and writes JSON and a self-contained HTML report', async () => {
  const dir = await tempDir();
  const env = SHARED_CACHE_ENV; // bench of a source; compiling it is tested elsewhere
  const data = join(dir, 'texts.jsonl');
  await writeFile(
    data,
    ['a wonderful film', 'dull and far too long', 'the cast is great but the story is thin']
      .map((text) => JSON.stringify({ text }))
      .join('\n'),
  );
  const result = await kiln(
    [
      'bench',
      EMBEDDED_MODEL,
      '--data',
      data,
      '--requests',
      '12',
      '--batches',
      '1,2',
      '--concurrency',
      '1,3',
      '--duration-s',
      '1',
      '--warmup',
      '2',
      '--replicas',
      '1',
      '--price-per-hour',
      '0.5',
      '--compare',
      'baseline',
      '--json',
      join(dir, 'bench.json'),
      '--report',
      join(dir, 'bench.html'),
    ],
    { env },
  );
  assert.equal(result.code, 0, result.stderr);
  for (const line of [
    'latency, one request at a time (12 requests)',
    'throughput, offline',
    'concurrency, closed loop',
    'best:',
    'cost: $',
    'kiln is',
  ]) {
    assert.ok(result.stdout.includes(line), `stdout lacks "${line}":\n${result.stdout}`);
  }
  const json = JSON.parse(await readFile(join(dir, 'bench.json'), 'utf8')) as BenchResult;
  assert.equal(json.data.texts, 3);
  assert.equal(json.latency?.count, 12);
  assert.ok(json.latency!.p50Ms <= json.latency!.p99Ms && json.latency!.p99Ms <= json.latency!.maxMs);
  assert.deepEqual(
    json.throughput?.map((p) => p.batch),
    [1, 2],
  );
  assert.deepEqual(
    json.concurrency?.map((p) => p.clients),
    [1, 3],
  );
  assert.ok(json.concurrency!.every((p) => p.requestsPerSecond > 0 && p.latency.count > 0));
  const best = Math.max(
    json.latency ? 1000 / json.latency.avgMs : 0,
    ...json.throughput!.map((p) => p.textsPerSecond),
    ...json.concurrency!.map((p) => p.requestsPerSecond),
  );
  assert.ok(Math.abs(json.best!.textsPerSecond - best) < 1e-9, 'best is the highest rate measured');
  // Cost per million = price per hour / (texts per hour) × 10^6.
  assert.ok(Math.abs(json.cost!.perMillion - (0.5 / (best * 3600)) * 1e6) < 1e-9);
  assert.ok(json.compare!.baselineTextsPerSecond > 0);
  assert.ok(Math.abs(json.compare!.speedup - best / json.compare!.baselineTextsPerSecond) < 1e-9);

  const html = await readFile(join(dir, 'bench.html'), 'utf8');
  assert.match(html, /^<!doctype html>/);
  assert.equal((html.match(/<svg /g) ?? []).length >= 4, true, 'charts and histograms are inline SVG');
  assert.doesNotMatch(html, /<script|https?:\/\//, 'the page loads nothing from anywhere');
});

test('--compare seed is still accepted as --compare baseline, and the JSON keeps seedTextsPerSecond beside it', async () => {
  const dir = await tempDir();
  const data = join(dir, 'texts.txt');
  await writeFile(data, 'a wonderful film\ndull and far too long\n');
  const result = await kiln(
    [
      'bench',
      EMBEDDED_MODEL,
      '--data',
      data,
      '--mode',
      'latency',
      '--requests',
      '4',
      '--warmup',
      '1',
      '--replicas',
      '1',
      '--compare',
      'seed',
      '--json',
      join(dir, 'bench.json'),
    ],
    { env: SHARED_CACHE_ENV },
  );
  assert.equal(result.code, 0, result.stderr);
  assert.match(
    result.stdout,
    /^baseline \(padded to 128, batch 1, one replica\): [\d.]+ texts\/s; kiln is [\d.]+× faster$/m,
  );
  const json = JSON.parse(await readFile(join(dir, 'bench.json'), 'utf8')) as BenchResult;
  assert.ok(json.compare!.baselineTextsPerSecond > 0);
  assert.equal(json.compare!.seedTextsPerSecond, json.compare!.baselineTextsPerSecond);
  assert.ok(Math.abs(json.compare!.speedup - json.best!.textsPerSecond / json.compare!.baselineTextsPerSecond) < 1e-9);
});

test('kiln bench --help names the baseline and never a seed', async () => {
  const result = await kiln(['bench', '--help']);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /--compare baseline/);
  assert.doesNotMatch(result.stdout, /seed/i);
});

test('kiln bench with a data file lacking a text column → KILN_ERR_DATA_NO_TEXT_COLUMN', async () => {
  const dir = await tempDir();
  const data = join(dir, 'bad.tsv');
  await writeFile(data, 'review\tstars\ngreat\t5\n');
  const result = await kiln(['bench', EMBEDDED_MODEL, '--data', data], { env: SHARED_CACHE_ENV });
  assert.equal(errorCode(result.stderr), 'KILN_ERR_DATA_NO_TEXT_COLUMN');
  assert.match(result.stderr, /\["review","stars"\]/);
});
