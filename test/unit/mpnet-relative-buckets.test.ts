/**
 * MPNet's relative position buckets: kiln's table (mpnetBucket, computed in float64 at import)
 * against the float32 ONNX operators a PyTorch/Optimum export of MPNetEncoder.relative_position_bucket
 * runs (Neg, Less, Abs, Log, Div, Min, Where, Cast), which the operator check must also accept.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { findUnsupportedOps } from '../../src/compiler/op-check.js';
import { MPNET_BUCKETS, mpnetBucket } from '../../src/import/arch/mpnet.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { decodeModel } from '../../src/onnx/proto.js';
import { createSession } from '../../src/runtime/binding.js';
import { tempDir } from '../fixtures/models.js';
import { mpnetRelativeBucket } from '../fixtures/reference-encoder.js';

/** relative_position_bucket(key − query) in float32 operators, as the exporter writes it. */
function exportedBucketGraph(): Uint8Array {
  const g = new GraphBuilder('mpnet-buckets');
  const relative = g.input('relative', 'int64', ['n']);
  const i64 = (name: string, v: number) => g.ints(name, [v], []);
  const f32 = (name: string, v: number) => g.constant(name, [v]);
  const n = g.op('Neg', [relative]);
  const upper = g.op('Mul', [g.op('Cast', [g.op('Less', [n, i64('zero', 0)])], { to: 7 }), i64('half', 16)]);
  const distance = g.op('Abs', [n]);
  const small = g.op('Less', [distance, i64('exact', 8)]);
  const logRatio = g.op('Div', [
    g.op('Log', [g.op('Div', [g.op('Cast', [distance], { to: 1 }), f32('exact_f', 8)])]),
    f32('log_range', Math.log(128 / 8)),
  ]);
  const wide = g.op('Add', [i64('exact_i', 8), g.op('Cast', [g.op('Mul', [logRatio, f32('span', 8)])], { to: 7 })]);
  const bucket = g.op('Add', [upper, g.op('Where', [small, distance, g.op('Min', [wide, i64('last', 15)])])]);
  g.op('Cast', [bucket], { to: 1 }, { output: 'bucket' });
  g.output('bucket', 'float', ['n']);
  return g.toBytes({ '': 17 });
}

test('mpnetBucket equals the exported float32 bucketing and the reference for every distance of a 514-position model', async () => {
  const bytes = exportedBucketGraph();
  assert.deepEqual(findUnsupportedOps(decodeModel(bytes, 'buckets.onnx'), 'cpu'), [], 'the operator check knows them');
  const path = join(await tempDir(), 'buckets.onnx');
  await writeFile(path, bytes);
  const session = await createSession(path, { backend: 'cpu', optimization: 'disabled' });
  try {
    const span = 514;
    const relatives = Array.from({ length: 2 * span - 1 }, (_, k) => k - (span - 1));
    const out = await session.run({
      relative: { type: 'int64', data: BigInt64Array.from(relatives.map(BigInt)), dims: [relatives.length] },
    });
    const exported = Array.from(out.bucket!.data);
    // mpnetBucket takes query − key (n), the reference and the export key − query.
    const kiln = relatives.map((r) => mpnetBucket(-r));
    assert.deepEqual(kiln, exported);
    assert.deepEqual(kiln, relatives.map(mpnetRelativeBucket));
    // Every bucket is used at this span but 16 (a key after the query at distance 0 cannot be).
    assert.deepEqual(
      [...new Set(kiln)].sort((a, b) => a - b),
      Array.from({ length: MPNET_BUCKETS }, (_, b) => b).filter((b) => b !== 16),
    );
    assert.deepEqual(
      [mpnetBucket(0), mpnetBucket(7), mpnetBucket(8), mpnetBucket(16), mpnetBucket(-1)],
      [0, 7, 8, 10, 17],
    );
  } finally {
    await session.release();
  }
});
