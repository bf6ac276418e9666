import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildFeeds } from '../../src/model/feeds.js';
import type { EncodedText } from '../../src/model/tokenizer.js';
import type { TensorInfo } from '../../src/onnx/graph.js';
import { topLabel } from '../../src/tasks/text-classification/model.js';

const enc = (ids: number[], typeIds?: number[]): EncodedText => ({
  ids,
  typeIds: typeIds ?? ids.map(() => 0),
  truncated: false,
});
const input = (name: string, type = 'int64'): TensorInfo => ({ name, type, shape: ['batch', 'sequence'] });

const SHORT = enc([101, 7, 102]);
const LONG = enc([101, 7, 8, 9, 102], [0, 0, 0, 1, 1]);

describe('buildFeeds', () => {
  test('buildFeeds(two texts of different lengths) pads to [2, longest] with padId and a zero mask', () => {
    const feeds = buildFeeds([SHORT, LONG], [input('input_ids'), input('attention_mask')], 5);
    assert.deepEqual(Object.keys(feeds).sort(), ['attention_mask', 'input_ids']);
    assert.deepEqual(feeds.input_ids!.dims, [2, 5]);
    assert.equal(feeds.input_ids!.type, 'int64');
    assert.ok(feeds.input_ids!.data instanceof BigInt64Array);
    assert.deepEqual(Array.from(feeds.input_ids!.data, Number), [101, 7, 102, 5, 5, 101, 7, 8, 9, 102]);
    assert.deepEqual(feeds.attention_mask!.dims, [2, 5]);
    assert.deepEqual(Array.from(feeds.attention_mask!.data, Number), [1, 1, 1, 0, 0, 1, 1, 1, 1, 1]);
  });

  test('buildFeeds(int32 inputs) gives Int32Array tensors', () => {
    const feeds = buildFeeds([SHORT, LONG], [input('input_ids', 'int32'), input('attention_mask', 'int32')], 0);
    for (const name of ['input_ids', 'attention_mask']) {
      assert.equal(feeds[name]!.type, 'int32');
      assert.ok(feeds[name]!.data instanceof Int32Array, name);
    }
    assert.deepEqual(Array.from(feeds.input_ids!.data as Int32Array), [101, 7, 102, 0, 0, 101, 7, 8, 9, 102]);
  });

  test('buildFeeds(mixed int64 and int32 inputs) types each tensor as its input declares', () => {
    const feeds = buildFeeds([SHORT], [input('input_ids', 'int32'), input('attention_mask', 'int64')], 0);
    assert.ok(feeds.input_ids!.data instanceof Int32Array);
    assert.ok(feeds.attention_mask!.data instanceof BigInt64Array);
  });

  test('buildFeeds fills token_type_ids from typeIds and zero on padding', () => {
    const feeds = buildFeeds([LONG, SHORT], [input('input_ids'), input('attention_mask'), input('token_type_ids')], 0);
    assert.deepEqual(feeds.token_type_ids!.dims, [2, 5]);
    assert.deepEqual(Array.from(feeds.token_type_ids!.data, Number), [0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
  });

  const lengths: [number | undefined, number][] = [
    [undefined, 5],
    [8, 8],
    // A length shorter than the longest text never cuts it.
    [2, 5],
  ];
  for (const [length, width] of lengths) {
    test(`buildFeeds(…, length ${length}) is ${width} wide`, () => {
      const feeds = buildFeeds([SHORT, LONG], [input('input_ids'), input('attention_mask')], 3, length);
      assert.deepEqual(feeds.input_ids!.dims, [2, width]);
      const ids = Array.from(feeds.input_ids!.data, Number);
      const mask = Array.from(feeds.attention_mask!.data, Number);
      assert.equal(ids.length, 2 * width);
      assert.deepEqual(ids.slice(0, width), [101, 7, 102, ...Array<number>(width - 3).fill(3)]);
      assert.deepEqual(ids.slice(width), [101, 7, 8, 9, 102, ...Array<number>(width - 5).fill(3)]);
      assert.deepEqual(mask.slice(width), [1, 1, 1, 1, 1, ...Array<number>(width - 5).fill(0)]);
    });
  }

  test('buildFeeds feeds only the inputs the graph declares', () => {
    const feeds = buildFeeds([SHORT], [input('input_ids'), input('attention_mask')], 0);
    assert.equal(feeds.token_type_ids, undefined);
  });
});

function softmax64(logits: number[]): number[] {
  const max = Math.max(...logits);
  const exps = logits.map((x) => Math.exp(x - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

describe('topLabel', () => {
  const cases: [string, number[], string[]][] = [
    ['two labels', [-1.25, 0.75], ['NEGATIVE', 'POSITIVE']],
    ['first wins', [2.5, -0.5], ['NEGATIVE', 'POSITIVE']],
    ['three labels', [0.1, 3.2, -4], ['a', 'b', 'c']],
    ['five labels, small gaps', [0.01, 0.02, 0.015, -0.3, 0.019], ['a', 'b', 'c', 'd', 'e']],
    ['all negative', [-30, -31, -29.5], ['a', 'b', 'c']],
  ];
  for (const [what, logits, labels] of cases) {
    test(`topLabel(${what}) returns the argmax and its float64 softmax probability`, () => {
      const probs = softmax64(logits);
      const best = probs.indexOf(Math.max(...probs));
      const result = topLabel(logits, labels);
      assert.equal(result.label, labels[best]);
      assert.ok(Math.abs(result.score - probs[best]!) < 1e-12, `${result.score} vs ${probs[best]}`);
    });
  }

  test('topLabel(1000, 999) does not overflow: score ≈ 0.731', () => {
    const result = topLabel([1000, 999], ['a', 'b']);
    assert.equal(result.label, 'a');
    assert.ok(Math.abs(result.score - 1 / (1 + Math.exp(-1))) < 1e-12, String(result.score));
  });

  test('topLabel(-1000, -999) does not underflow: score ≈ 0.731', () => {
    const result = topLabel([-1000, -999], ['a', 'b']);
    assert.equal(result.label, 'b');
    assert.ok(Math.abs(result.score - 1 / (1 + Math.exp(-1))) < 1e-12, String(result.score));
  });

  const ties: [number[], string, number][] = [
    [[1, 1], 'a', 0.5],
    [[0, 2, 2], 'b', Math.exp(2) / (1 + 2 * Math.exp(2))],
    [[3, 3, 3, 3], 'a', 0.25],
  ];
  for (const [logits, label, score] of ties) {
    test(`topLabel(${logits.join(', ')}) picks the first of the tied labels`, () => {
      const result = topLabel(logits, ['a', 'b', 'c', 'd']);
      assert.equal(result.label, label);
      assert.ok(Math.abs(result.score - score) < 1e-12);
    });
  }

  test('topLabel with fewer labels than logits names the class by index', () => {
    assert.equal(topLabel([0, 5], ['only']).label, '1');
  });
});
