/** decodeBase64: the base64 image fields of /predict and KServe. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeBase64 } from '../../src/tasks/route.js';

test('decodeBase64 decodes with line breaks and refuses other characters', () => {
  assert.deepEqual(Array.from(decodeBase64('AAEC\nAw==')!), [0, 1, 2, 3]);
  assert.equal(decodeBase64('AAEC!'), null);
  assert.equal(decodeBase64(42), null);
});

// A pattern with \s inside the character runs backtracked quadratically: 60,000 spaces blocked the
// event loop for 8 s, so this input would hang the test for minutes (the timeout guards the hang).
test('decodeBase64(300,000 spaces and a "!") answers null without backtracking', { timeout: 60_000 }, () => {
  assert.equal(decodeBase64(`${' '.repeat(300_000)}!`), null);
});
