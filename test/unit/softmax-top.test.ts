import assert from 'node:assert/strict';
import { test } from 'node:test';
import { argmax, softmax, softmaxTop } from '../../src/core/stats.js';

const cases: Array<[string, number[]]> = [
  ['two classes', [-1.25, 2.5]],
  ['a tie (the first wins)', [3, 1, 3]],
  ['large logits (exp would overflow without the max subtracted)', [1000, 1001, 998]],
  ['one class', [-7]],
];

for (const [name, logits] of cases) {
  test(`softmaxTop(${name}) is softmax's largest probability, at argmax`, () => {
    const full = softmax(logits);
    const top = softmaxTop(logits);
    assert.equal(top.index, argmax(logits));
    assert.equal(top.index, full.indexOf(Math.max(...full)));
    assert.ok(Math.abs(top.probability - full[top.index]!) < 1e-12, `${top.probability} vs ${full[top.index]}`);
    assert.ok(Number.isFinite(top.probability) && top.probability > 0 && top.probability <= 1);
  });
}

test('argmax(Float32Array) reads typed arrays and returns the first largest index', () => {
  assert.equal(argmax(Float32Array.from([0.5, 2, -1, 2])), 1);
  assert.equal(argmax([]), 0);
});
