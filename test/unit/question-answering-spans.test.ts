/**
 * windowSpans and windowStarts on hand-made logits: the pipeline's span rules (context tokens
 * only, [CLS] kept in the softmax for "no answer", start ≤ end < start + max_answer_len, start ×
 * end probabilities) and the windows a long context is read in.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultStride, windowSpans, windowStarts } from '../../src/tasks/question-answering/spans.js';

/** Layout [CLS] q q [SEP] c c c [SEP]: context at 4..6. */
const base = { contextFrom: 4, contextTo: 7, cls: 0 };
const BIG = 20;

test('windowSpans picks the best valid span (table)', () => {
  const cases: Array<{
    name: string;
    start: number[];
    end: number[];
    maxAnswerLen?: number;
    expected: [number, number];
  }> = [
    { name: 'the clear best', start: [0, 0, 0, 0, BIG, 0, 0, 0], end: [0, 0, 0, 0, 0, BIG, 0, 0], expected: [4, 5] },
    {
      name: 'question tokens never start an answer, however large their logit',
      start: [0, BIG * 2, 0, 0, 0, BIG, 0, 0],
      end: [0, 0, 0, 0, 0, BIG, 0, 0],
      expected: [5, 5],
    },
    {
      name: 'the end never precedes the start',
      start: [0, 0, 0, 0, 0, 0, BIG, 0],
      end: [0, 0, 0, 0, BIG, 0, 1, 0],
      expected: [6, 6],
    },
    {
      name: 'max_answer_len 2 cuts the 3-token span',
      start: [0, 0, 0, 0, BIG, 0, 0, 0],
      end: [0, 0, 0, 0, 0, 1, BIG, 0],
      maxAnswerLen: 2,
      expected: [4, 5],
    },
    {
      name: 'the final [SEP] is no end',
      start: [0, 0, 0, 0, BIG, 0, 0, 0],
      end: [0, 0, 0, 0, 1, 0, 0, BIG * 2],
      expected: [4, 4],
    },
  ];
  for (const c of cases) {
    const { spans } = windowSpans(
      { ...base, start: c.start, end: c.end },
      { topK: 1, maxAnswerLen: c.maxAnswerLen ?? 15 },
    );
    assert.deepEqual([spans[0]!.start, spans[0]!.end], c.expected, c.name);
  }
});

test('windowSpans scores are softmax(start) × softmax(end) over the context and [CLS]; [CLS] scores "no answer"', () => {
  // Logits 0 at [CLS] and the three context tokens: each probability 1/4.
  const zeros = [0, 9, 9, 9, 0, 0, 0, 9];
  const { spans, nullScore } = windowSpans({ ...base, start: zeros, end: zeros }, { topK: 10, maxAnswerLen: 15 });
  assert.equal(spans.length, 6, 'three one-token spans, two two-token, one three-token');
  for (const span of spans) assert.ok(Math.abs(span.score - 1 / 16) < 1e-15);
  assert.ok(Math.abs(nullScore! - 1 / 16) < 1e-15);
  assert.deepEqual(
    spans.map((s) => [s.start, s.end]),
    [
      [4, 4],
      [4, 5],
      [4, 6],
      [5, 5],
      [5, 6],
      [6, 6],
    ],
    'ties in position order',
  );
  const noCls = windowSpans({ ...base, cls: null, start: zeros, end: zeros }, { topK: 1, maxAnswerLen: 15 });
  assert.equal(noCls.nullScore, null);
  assert.ok(Math.abs(noCls.spans[0]!.score - 1 / 9) < 1e-15, 'without [CLS] the context shares all');
});

test('windowStarts steps room − stride until a window reaches the end; defaultStride is min(128, room / 2)', () => {
  const cases: Array<[number, number, number, number[]]> = [
    [10, 16, 4, [0]],
    [16, 16, 4, [0]],
    [17, 16, 4, [0, 12]],
    [40, 16, 4, [0, 12, 24]],
    [30, 10, 0, [0, 10, 20]],
  ];
  for (const [tokens, room, stride, expected] of cases)
    assert.deepEqual(windowStarts(tokens, room, stride), expected, `${tokens} tokens, room ${room}, stride ${stride}`);
  assert.equal(defaultStride(500), 128);
  assert.equal(defaultStride(9), 4);
});
