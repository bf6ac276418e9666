/**
 * Token classification, question answering and zero-shot classification through the CLI as a
 * user runs it, on tiny random-weight BERT checkpoints compiled once: `kiln compile --verify`
 * prints the verify figures (the one CLI compile; the others are in process), `kiln run` answers
 * an NER text with `--redact`, a question and its context, a text with candidate labels;
 * `kiln batch` writes one JSON line per row of a 3-row file, in order; `kiln bench` names each
 * task's unit. Answers are checked for content: entities whose offsets slice the text, an answer
 * that is its context's text at start–end, labels sorted by score.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { compile } from '../../src/compiler/compile.js';
import { readArtifact } from '../../src/model/artifact.js';
import { readDataset } from '../../src/model/dataset.js';
import { kiln, REPO, tempDir } from '../fixtures/models.js';
import { randomWeights, tinyBertConfig, writeCheckpoint } from '../fixtures/random-checkpoint.js';

const DATA = join(REPO, 'test', 'fixtures', 'verify');
const NER = tinyBertConfig(['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC'], {
  architectures: ['BertForTokenClassification'],
});
const QA = { ...tinyBertConfig([]), architectures: ['BertForQuestionAnswering'] };
const NLI = tinyBertConfig(['contradiction', 'entailment', 'neutral']);
const TEXT = 'the man went to paris with his friend';
const QUESTION = 'what is the movie about';
const CONTEXT = 'a great movie about war and music from the time of the match';
const CANDIDATES = ['sports', 'politics', 'cooking', 'music'];

let dir: string;
let env: NodeJS.ProcessEnv;
const artifacts = { ner: '', qa: '', nli: '' };
let compileOutput = '';

before(async () => {
  dir = await tempDir();
  env = { KILN_CACHE_DIR: join(dir, 'cache') };
  process.env.KILN_CACHE_DIR = env.KILN_CACHE_DIR;
  const source = async (name: string, config: Record<string, unknown>, seed: number) =>
    writeCheckpoint(join(dir, name), config, randomWeights(config, seed));
  const ner = await source('ner', NER, 41);
  artifacts.ner = join(dir, 'ner.kiln');
  const compiled = await kiln(
    [
      'compile',
      ner,
      '--precision',
      'int8',
      '--max-length',
      '32',
      '--verify',
      join(DATA, 'ner.jsonl'),
      '-o',
      artifacts.ner,
    ],
    { env },
  );
  assert.equal(compiled.code, 0, compiled.stderr);
  compileOutput = compiled.stdout + compiled.stderr;
  for (const [name, config, seed] of [
    ['qa', QA, 42],
    ['nli', NLI, 43],
  ] as const) {
    const out = join(dir, `${name}.kiln`);
    await compile({ source: await source(name, config, seed), out, maxLength: 32, precision: 'int8' });
    artifacts[name] = out;
  }
});

/** `kiln run --json`'s one answer line. */
async function runJson(args: string[]): Promise<Record<string, unknown>> {
  const result = await kiln(['run', ...args, '--json'], { env });
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stdout.trim().split('\n');
  assert.equal(lines.length, 1, result.stdout);
  return JSON.parse(lines[0]!) as Record<string, unknown>;
}

/** `kiln batch` on a fixture file: its output lines, parsed. */
async function batch(artifact: string, file: string, extra: string[] = []): Promise<Array<Record<string, unknown>>> {
  const out = join(dir, `${file}.out.jsonl`);
  const result = await kiln(['batch', artifact, join(DATA, file), '-o', out, '--replicas', '1', ...extra], { env });
  assert.equal(result.code, 0, result.stderr);
  return (await readFile(out, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** `kiln bench`'s throughput output on a fixture file. */
async function bench(artifact: string, file: string): Promise<string> {
  const args = ['bench', artifact, '--data', join(DATA, file), '--mode', 'throughput', '--batches', '2'];
  const result = await kiln([...args, '--warmup', '0', '--replicas', '1'], { env });
  assert.equal(result.code, 0, result.stderr);
  return result.stdout;
}

type Entity = { entity: string; word: string; start: number; end: number; score: number };

/** Entities of `none` are tokens; each slices the text, in order, with a score in (0, 1]. */
function checkEntities(text: string, entities: Entity[]): void {
  let after = 0;
  for (const e of entities) {
    assert.equal(text.slice(e.start, e.end), e.word, JSON.stringify(e));
    assert.ok(e.start >= after && e.score > 0 && e.score <= 1, JSON.stringify(e));
    assert.notEqual(e.entity, 'O', 'O is ignored by default');
    after = e.end;
  }
}

/** The text with each entity word (one token per word here) replaced by its tag without B-/I-. */
function redacted(text: string, entities: Entity[]): string {
  let at = 0;
  return text
    .split(' ')
    .map((word) => {
      const start = text.indexOf(word, at);
      at = start + word.length;
      const e = entities.find((x) => x.start === start);
      return e ? `[${e.entity.replace(/^[BI]-/, '')}]` : word;
    })
    .join(' ');
}

describe('token classification', { timeout: 60_000 }, () => {
  test('compile --verify prints token agreement in the summary and records it', async () => {
    assert.match(compileOutput, /verify\s+3 rows of .*ner\.jsonl: agreement \d+\.\d\d % of 23 tokens, max \|Δscore\|/);
    const { manifest } = await readArtifact(artifacts.ner);
    assert.equal(manifest.verify?.unit, 'tokens');
    assert.equal(manifest.verify?.units, 23);
  });

  test('kiln run --redact: entities slice the text, and the redacted text replaces them', async () => {
    const answer = await runJson([artifacts.ner, TEXT, '--redact']);
    const entities = answer.entities as Entity[];
    assert.ok(entities.length > 0, 'random weights label some tokens other than O');
    checkEntities(TEXT, entities);
    assert.equal(answer.redacted, redacted(TEXT, entities));
  });

  test('kiln batch --redact: one line per row, in order, each with its entities', async () => {
    const texts = (await readDataset(join(DATA, 'ner.jsonl'))).examples.map((e) => e.text);
    const lines = await batch(artifacts.ner, 'ner.jsonl', ['--redact']);
    assert.deepEqual(
      lines.map((l) => l.line),
      [1, 2, 3],
    );
    lines.forEach((l, i) => {
      checkEntities(texts[i]!, l.entities as Entity[]);
      assert.equal(l.redacted, redacted(texts[i]!, l.entities as Entity[]));
    });
  });

  test('kiln bench counts texts/s', async () => {
    assert.match(await bench(artifacts.ner, 'ner.jsonl'), /3 texts from .*[\s\S]*texts\/s/);
  });
});

describe('question answering', { timeout: 60_000 }, () => {
  type Answer = { answer: string; score: number; start: number; end: number };
  const checkAnswer = (context: string, a: Answer) => {
    assert.ok(a.answer.length > 0 && a.score > 0 && a.score <= 1, JSON.stringify(a));
    assert.equal(context.slice(a.start, a.end), a.answer);
  };

  test('kiln run --pair: the answer is the context at start–end', async () => {
    const answer = await runJson([artifacts.qa, '--pair', QUESTION, CONTEXT]);
    assert.equal(answer.text, QUESTION);
    checkAnswer(CONTEXT, answer as unknown as Answer);
  });

  test('kiln batch: one answer per question, in order, each from its own context', async () => {
    const contexts = (await readDataset(join(DATA, 'qa.jsonl'))).examples.map((e) => e.pair!);
    const lines = await batch(artifacts.qa, 'qa.jsonl');
    assert.deepEqual(
      lines.map((l) => l.line),
      [1, 2, 3],
    );
    lines.forEach((l, i) => {
      checkAnswer(contexts[i]!, l as unknown as Answer);
    });
  });

  test('kiln bench counts questions/s', async () => {
    assert.match(await bench(artifacts.qa, 'qa.jsonl'), /questions\/s/);
  });
});

describe('zero-shot classification', { timeout: 60_000 }, () => {
  const checkRanked = (labels: string[], scores: number[], candidates: string[]) => {
    assert.deepEqual([...labels].sort(), [...candidates].sort());
    for (let i = 1; i < scores.length; i += 1) assert.ok(scores[i - 1]! >= scores[i]!, `sorted: ${scores}`);
    assert.ok(Math.abs(scores.reduce((a, b) => a + b, 0) - 1) < 1e-5, 'single-label scores share 1');
  };

  test('kiln run --pair TEXT LABELS: every label once, sorted by score', async () => {
    const answer = await runJson([artifacts.nli, '--pair', 'the match went to extra time', CANDIDATES.join(',')]);
    assert.equal(answer.sequence, 'the match went to extra time');
    checkRanked(answer.labels as string[], answer.scores as number[], CANDIDATES);
  });

  test('kiln batch: one line per row, in order, its top label first', async () => {
    const lines = await batch(artifacts.nli, 'zero-shot.tsv');
    assert.deepEqual(
      lines.map((l) => l.line),
      [2, 3, 4],
    );
    for (const l of lines) {
      const ranked = l.labels as Array<{ label: string; score: number }>;
      checkRanked(
        ranked.map((r) => r.label),
        ranked.map((r) => r.score),
        ['sports', 'politics', 'cooking'],
      );
      assert.equal(l.label, ranked[0]!.label);
    }
  });

  test('kiln bench counts pairs/s', async () => {
    assert.match(await bench(artifacts.nli, 'zero-shot.tsv'), /pairs\/s/);
  });
});
