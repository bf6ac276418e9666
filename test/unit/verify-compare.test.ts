/**
 * The `compare` of each task's `compile --verify` hooks on hand-made answers, table-driven: what
 * counts as agreeing, the gold matches (plain equality after trimming; a zero-shot label in any
 * case), and the score deltas taken only where both answered alike.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Answers } from '../../src/tasks/question-answering/model.js';
import { answerVerify } from '../../src/tasks/question-answering/verify.js';
import type { TokenAnswer } from '../../src/tasks/token-classification/model.js';
import { tokenVerify } from '../../src/tasks/token-classification/verify.js';
import type { ZeroShotAnswer } from '../../src/tasks/zero-shot-classification/model.js';
import { zeroShotVerify } from '../../src/tasks/zero-shot-classification/verify.js';

/** Where the compared row is, for the errors that name it. */
const ROW = { path: 'rows.tsv', line: 4 };

const tokens = (labels: Array<[string, number]>): TokenAnswer => ({
  text: 'ada met bob',
  entities: labels.map(([entity, score], index) => ({
    entity,
    score,
    index: index + 1,
    word: ['ada', 'met', 'bob'][index]!,
    start: index * 4,
    end: index * 4 + 3,
  })),
  windows: 1,
  tokens: 5,
  truncated: false,
});

test('tokenVerify.compare counts tokens, shows the first that differs, and deltas only for agreeing ones', () => {
  const row = tokenVerify.compare(
    tokens([
      ['B-PER', 0.9],
      ['O', 0.8],
      ['B-PER', 0.7],
    ]),
    tokens([
      ['B-PER', 0.85],
      ['B-LOC', 0.5],
      ['B-PER', 0.7],
    ]),
    {},
    ROW,
  );
  assert.deepEqual(
    { units: row.units, agreeing: row.agreeing, reference: row.reference, compiled: row.compiled },
    { units: 3, agreeing: 2, reference: '"met" O', compiled: '"met" B-LOC' },
  );
  assert.equal(row.scoreDeltas.length, 2);
  assert.ok(Math.abs(row.scoreDeltas[0]! - 0.05) < 1e-12 && row.scoreDeltas[1] === 0);
  assert.equal(row.correct, undefined);
});

const answers = (answer: string, score: number): Answers => ({
  answers: [{ answer, score, start: 0, end: answer.length }],
  windows: 1,
  tokens: 9,
  truncated: false,
});

test('answerVerify.compare: exact match after trimming, against the source and against any gold answer', () => {
  const cases: Array<{ ref: string; out: string; gold?: string[]; agree: number; correct?: [boolean, boolean] }> = [
    { ref: 'war and music', out: 'war and music', agree: 1 },
    { ref: 'war and music', out: 'war and music ', agree: 1 },
    { ref: 'war and music', out: 'War and music', agree: 0 },
    { ref: 'war', out: 'war and music', gold: [' war and music', 'music'], agree: 0, correct: [false, true] },
    { ref: 'music', out: 'music', gold: ['Music'], agree: 1, correct: [false, false] },
  ];
  for (const c of cases) {
    const row = answerVerify.compare(answers(c.ref, 0.5), answers(c.out, 0.25), c.gold ? { answers: c.gold } : {}, ROW);
    const where = JSON.stringify(c);
    assert.equal(row.units, 1, where);
    assert.equal(row.agreeing, c.agree, where);
    assert.deepEqual(row.scoreDeltas, c.agree ? [0.25] : [], where);
    assert.deepEqual(row.correct && [row.correct.reference, row.correct.compiled], c.correct, where);
  }
});

const ranked = (labels: string[], scores: number[]): ZeroShotAnswer => ({
  sequence: 'the match went to extra time',
  labels,
  scores,
  tokens: 30,
  truncated: false,
});

test('zeroShotVerify.compare: top label agreement, gold label in any case, deltas per label whatever the order', () => {
  const row = zeroShotVerify.compare(
    ranked(['sports', 'politics', 'cooking'], [0.5, 0.3, 0.2]),
    ranked(['politics', 'sports', 'cooking'], [0.45, 0.4, 0.15]),
    { label: 'Sports' },
    ROW,
  );
  assert.equal(row.agreeing, 0);
  assert.deepEqual([row.reference, row.compiled, row.gold], ['sports', 'politics', 'Sports']);
  assert.deepEqual(row.correct, { reference: true, compiled: false });
  assert.deepEqual(
    row.scoreDeltas.map((d) => Number(d.toFixed(6))),
    [0.1, 0.15, 0.05],
  );
  assert.equal(
    zeroShotVerify.compare(ranked(['a', 'b'], [0.6, 0.4]), ranked(['a', 'b'], [0.7, 0.3]), {}, ROW).agreeing,
    1,
  );
});

test('zeroShotVerify.compare refuses a gold label that is none of the candidates (KILN_ERR_DATA_INVALID), a number unless it names one', () => {
  const stars = ranked(['1', '2', '3'], [0.5, 0.3, 0.2]);
  // A TSV cell "2" is read as the number 2: it names the candidate "2".
  assert.deepEqual(zeroShotVerify.compare(stars, stars, { label: 2 }, ROW).correct, {
    reference: false,
    compiled: false,
  });
  const topics = ranked(['sports', 'politics'], [0.6, 0.4]);
  const cases: Array<[string | number, RegExp]> = [
    [
      'sport',
      /"rows\.tsv" line 4: the gold label "sport" is none of the row's candidate labels \("sports", "politics"\)/,
    ],
    [1, /the gold label 1 \(a number: class ids are not read\) is none of the row's candidate labels/],
    [' ', /the gold label " " is none/],
  ];
  for (const [label, message] of cases)
    assert.throws(() => zeroShotVerify.compare(topics, topics, { label }, ROW), {
      code: 'KILN_ERR_DATA_INVALID',
      message,
    });
});
