/**
 * runWithin: a request whose queued inputs the scheduler drops at the deadline, a moment before
 * the HTTP timer fires, answers the same 504 code as one the timer caught.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KilnError } from '../../src/core/errors.js';
import { runWithin } from '../../src/server/limits.js';

test('runWithin(work rejecting KILN_ERR_DEADLINE_EXCEEDED before the timer) → KILN_ERR_HTTP_TIMEOUT with the limit', async () => {
  await assert.rejects(
    runWithin(60_000, 0, async () => {
      throw new KilnError('KILN_ERR_DEADLINE_EXCEEDED', { waitedMs: 5 });
    }),
    (err: unknown) => err instanceof KilnError && err.code === 'KILN_ERR_HTTP_TIMEOUT' && /60000/.test(err.message),
  );
});

test('runWithin(work rejecting another error) passes it through unchanged', async () => {
  const original = new KilnError('KILN_ERR_QUEUE_FULL', { depth: 1, maxQueue: 1 });
  await assert.rejects(
    runWithin(60_000, 0, async () => {
      throw original;
    }),
    (err: unknown) => err === original,
  );
});

test('runWithin(work that outlasts the limit) → KILN_ERR_HTTP_TIMEOUT', async () => {
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  await assert.rejects(
    runWithin(10, 0, () => held),
    (err: unknown) => err instanceof KilnError && err.code === 'KILN_ERR_HTTP_TIMEOUT',
  );
  release();
});
