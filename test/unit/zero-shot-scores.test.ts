/**
 * zeroShotScores, nliLabels, hypotheses and parseLabels on hand-made logits and labels: the
 * pipeline's rules (softmax across labels, or per label entailment against contradiction; a
 * lone label judged on its own; labels matched by prefix, case-insensitive).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseLabels } from '../../src/tasks/zero-shot-classification/model.js';
import { hypotheses, nliLabels, ranked, zeroShotScores } from '../../src/tasks/zero-shot-classification/scores.js';

const NLI = { contradiction: 0, entailment: 2 };
const e = Math.E;

test('zeroShotScores: single-label softmax across entailment logits; multi-label entailment vs contradiction', () => {
  const rows = [
    [0, 5, 1],
    [0, -3, 0],
  ];
  const cases: Array<{ name: string; rows: number[][]; multi: boolean; expected: number[] }> = [
    // Entailment logits 1 and 0: e/(e+1) and 1/(e+1); the neutral logits play no part.
    { name: 'single-label', rows, multi: false, expected: [e / (e + 1), 1 / (e + 1)] },
    // Per row: softmax([contradiction, entailment])[1].
    { name: 'multi-label', rows, multi: true, expected: [e / (1 + e), 0.5] },
    { name: 'one label is judged as multi-label', rows: [[2, 9, 0]], multi: false, expected: [1 / (1 + e * e)] },
  ];
  for (const c of cases) {
    const actual = zeroShotScores(c.rows, NLI, c.multi);
    for (const [i, v] of c.expected.entries())
      assert.ok(Math.abs(actual[i]! - v) < 1e-12, `${c.name}: ${actual} vs ${c.expected}`);
  }
});

test('nliLabels matches entailment and contradiction by prefix, any case; null without both', () => {
  const cases: Array<[string[], ReturnType<typeof nliLabels>]> = [
    [['CONTRADICTION', 'NEUTRAL', 'ENTAILMENT'], { entailment: 2, contradiction: 0 }],
    [['entailment', 'neutral', 'contradiction'], { entailment: 0, contradiction: 2 }],
    [['Entails', 'Contradicts'], { entailment: 0, contradiction: 1 }],
    [['entailment', 'not_entailment'], null],
    [['LABEL_0', 'LABEL_1', 'LABEL_2'], null],
  ];
  for (const [labels, expected] of cases) assert.deepEqual(nliLabels(labels), expected, labels.join());
});

test('hypotheses put each label where {} is; ranked sorts best first, ties in request order', () => {
  assert.deepEqual(hypotheses(['sports', 'art'], 'This example is {}.'), [
    'This example is sports.',
    'This example is art.',
  ]);
  assert.deepEqual(ranked(['a', 'b', 'c'], [0.2, 0.5, 0.2]), { labels: ['b', 'a', 'c'], scores: [0.5, 0.2, 0.2] });
});

test('parseLabels reads comma-separated labels (trimmed, empty ones dropped) and JSON lists', () => {
  assert.deepEqual(parseLabels(' sports , politics,,art ', 'x'), ['sports', 'politics', 'art']);
  assert.deepEqual(parseLabels('["a, b", "c"]', 'x'), ['a, b', 'c']);
  assert.deepEqual(parseLabels('[draft], final', 'x'), ['[draft]', 'final']);
  assert.throws(() => parseLabels(' , ', '"candidate_labels"'), { code: 'KILN_ERR_INPUT_CANDIDATE_LABELS' });
});
