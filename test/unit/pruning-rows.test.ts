/**
 * The compile summary's prune row (cli/format.ts pruningRows): the saving as a percentage when
 * every MatMul's shape was counted, and no percentage when some were not (a saving computed
 * without the pruned products read "−0.0 %" on a DeBERTa classifier whose attention shapes the
 * pass could not follow).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pruningRows } from '../../src/cli/format.js';
import type { Manifest } from '../../src/model/artifact.js';
import type { PruneReport } from '../../src/model/reports.js';

const withPruning = (pruning: PruneReport): Manifest => ({ pruning }) as Manifest;
const products = ['/l.1/q/MatMul', '/l.1/o/MatMul', '/l.1/ffn.in/MatMul', '/l.1/ffn.out/MatMul'];

test('pruningRows: counted products give the saving at the compile length', { timeout: 5_000 }, () => {
  const rows = pruningRows(
    withPruning({
      pruned: true,
      nodes: 30,
      weightProducts: products,
      flops: { length: 128, before: 1000, after: 548 },
    }),
  );
  assert.deepEqual(rows, [
    ['pruned', 'last layer computes token 0 only (−45.2 % MatMul FLOPs at 128 tokens; 4 weight products on one row)'],
  ]);
});

test('pruningRows: uncounted products give no percentage, and say how many', { timeout: 5_000 }, () => {
  const rows = pruningRows(
    withPruning({
      pruned: true,
      nodes: 30,
      weightProducts: products,
      flops: { length: 128, before: 1000, after: 1000, uncounted: 7 },
    }),
  );
  assert.equal(rows.length, 1);
  assert.doesNotMatch(rows[0]![1], /%/);
  assert.match(rows[0]![1], /MatMul FLOPs not counted: 7 products of unknown shape; 4 weight products on one row/);
});

test('pruningRows: a pass that did not apply says why, and an older artifact has no row', { timeout: 5_000 }, () => {
  assert.deepEqual(pruningRows(withPruning({ pruned: false, reason: 'the outputs read every token' })), [
    ['pruned', 'no: the outputs read every token'],
  ]);
  assert.deepEqual(pruningRows({} as Manifest), []);
});
