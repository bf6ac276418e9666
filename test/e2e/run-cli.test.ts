/**
 * `kiln run` as a user runs it: labels, latencies, summary, truncation warning, JSON lines; and
 * `kiln bench --data` on a file of text pairs, on the same artifact.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import type { BenchResult } from '../../src/bench/result.js';
import { EMBEDDED_MODEL, kiln, SHARED_CACHE_ENV, tempDir } from '../fixtures/models.js';

let env: NodeJS.ProcessEnv;
let artifact: string;
let dir: string;

before(async () => {
  dir = await tempDir();
  env = { KILN_CACHE_DIR: join(dir, 'cache') };
  artifact = join(dir, 'sst2.kiln');
  const compiled = await kiln(['compile', EMBEDDED_MODEL, '-o', artifact], { env: SHARED_CACHE_ENV });
  assert.equal(compiled.code, 0, compiled.stderr);
});

test('kiln run prints label, score and latency per text, then count, avg, p50 and p99', async () => {
  const texts = [
    'I absolutely loved this movie, it was fantastic!',
    'The service was terrible and the food was cold.',
    'Best purchase I have ever made',
  ];
  const result = await kiln(['run', artifact, ...texts], { env });
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stdout.trim().split('\n');
  assert.equal(lines.length, texts.length + 1);
  texts.forEach((text, i) => {
    assert.match(
      lines[i]!,
      new RegExp(`^(POSITIVE|NEGATIVE)  0\\.\\d{4} +\\d+\\.\\d+ ms  ${text.replace(/[.!,]/g, '\\$&')}$`),
    );
  });
  assert.match(lines[0]!, /^POSITIVE/);
  assert.match(lines[1]!, /^NEGATIVE/);
  assert.match(lines[3]!, /^3 texts {2}avg \d+\.\d+ ms {2}p50 \d+\.\d+ ms {2}p99 \d+\.\d+ ms$/);
});

test('kiln run --json prints only JSON lines with text, label, score, logits and latencyMs', async () => {
  const result = await kiln(['run', artifact, 'good', 'bad', '--json'], { env });
  const rows = result.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(rows.length, 2);
  for (const row of rows) {
    assert.deepEqual(Object.keys(row), ['text', 'label', 'score', 'logits', 'latencyMs']);
    const logits = row.logits as number[];
    assert.equal(logits.length, 2);
    // score is the softmax probability of the arg-max label.
    const p = 1 / (1 + Math.exp(-Math.abs(logits[1]! - logits[0]!)));
    assert.ok(Math.abs((row.score as number) - p) < 1e-9);
    assert.equal(row.label, logits[1]! > logits[0]! ? 'POSITIVE' : 'NEGATIVE');
  }
});

test('texts longer than max length are truncated with one warning on stderr', async () => {
  const long = 'this film is a wonderful and moving experience '.repeat(40);
  const result = await kiln(['run', artifact, long, long, 'short one', '--json'], { env });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout.trim().split('\n').length, 3);
  assert.equal(result.stderr.match(/warning: .*truncated/g)?.length, 1, result.stderr);
  assert.match(result.stderr, /TEXT argument 1 is longer than the artifact's max length \(128 tokens\)/);
});

test('kiln run accepts a SOURCE and compiles it through the cache on the way', async () => {
  const first = await kiln(['run', EMBEDDED_MODEL, 'what a great film', '--json'], {
    env: { KILN_CACHE_DIR: join(await tempDir(), 'cache') },
  });
  assert.equal(first.code, 0, first.stderr);
  assert.equal((JSON.parse(first.stdout) as { label: string }).label, 'POSITIVE');
});

test('kiln run --pair reads TEXT arguments two at a time: one JSON line per pair, with text and text_pair', async () => {
  const result = await kiln(['run', artifact, '--pair', 'a fine film', 'I loved it', 'dull', 'slow', '--json'], {
    env,
  });
  assert.equal(result.code, 0, result.stderr);
  const rows = result.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    rows.map((r) => [r.text, r.text_pair]),
    [
      ['a fine film', 'I loved it'],
      ['dull', 'slow'],
    ],
  );
  // A pair is one input, not its first text: the logits differ from the first text alone.
  const alone = await kiln(['run', artifact, 'a fine film', '--json'], { env });
  assert.notDeepEqual((JSON.parse(alone.stdout) as { logits: number[] }).logits, rows[0]!.logits);
});

test('kiln run --pair with an odd number of TEXT arguments → KILN_ERR_INPUT_PAIR_INCOMPLETE', async () => {
  const result = await kiln(['run', artifact, '--pair', 'a', 'b', 'c'], { env });
  assert.equal(result.code, 1);
  assert.match(result.stderr, /KILN_ERR_INPUT_PAIR_INCOMPLETE/);
  assert.match(result.stderr, /TEXT argument 3/);
});

test('kiln bench --data on a text + text_pair file reads pairs: their count, pairs/s, and the mean tokens of [CLS] A [SEP] B [SEP]', async () => {
  const pairs = [
    ['a fine film', 'I loved it'],
    ['the plot is thin', 'the actors are great but the story is not'],
    ['dull', 'slow and far too long'],
  ];
  const data = join(dir, 'pairs.tsv');
  await writeFile(data, `text\ttext_pair\n${pairs.map((p) => p.join('\t')).join('\n')}\n`);
  const json = join(dir, 'bench-pairs.json');
  const result = await kiln(
    [
      'bench',
      artifact,
      '--data',
      data,
      '--mode',
      'latency',
      '--requests',
      '3',
      '--warmup',
      '0',
      '--replicas',
      '1',
      '--json',
      json,
    ],
    { env },
  );
  assert.equal(result.code, 0, result.stderr);
  // Token counts from the tokenizer run here: each pair is its two texts, [CLS] and two [SEP]s.
  const tokenizer = new Tokenizer(
    JSON.parse(await readFile(join(EMBEDDED_MODEL, 'tokenizer.json'), 'utf8')) as object,
    {},
  );
  const count = (text: string) => tokenizer.encode(text, { add_special_tokens: false }).ids.length;
  const meanPair = pairs.reduce((n, [a, b]) => n + count(a!) + count(b!) + 3, 0) / pairs.length;
  const meanFirst = pairs.reduce((n, [a]) => n + count(a!) + 2, 0) / pairs.length;
  assert.match(
    result.stdout,
    new RegExp(`3 pairs from ${data.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(mean ${meanPair.toFixed(1)} tokens\\)`),
  );
  assert.match(result.stdout, /^best: \d+\.\d pairs\/s \(latency loop\)$/m);
  const bench = JSON.parse(await readFile(json, 'utf8')) as BenchResult;
  assert.equal(bench.data.texts, 3);
  assert.ok(Math.abs(bench.data.meanTokens - meanPair) < 1e-9, `${bench.data.meanTokens} vs ${meanPair}`);
  assert.ok(bench.data.meanTokens > meanFirst + 3, 'the second texts were encoded too');
});
