/** appendPooling: the graph fragment compile adds to an encoder for embeddings, at the opsets that change how reduce axes are passed. */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { decodeModel } from '../../src/onnx/proto.js';
import { createSession } from '../../src/runtime/binding.js';
import { appendPooling } from '../../src/tasks/feature-extraction/pooling.js';
import { tempDir } from '../fixtures/models.js';

/** An "encoder" whose token states are its input, so pooling is checked on known numbers. */
function identityEncoder(opset: number) {
  const g = new GraphBuilder('encoder');
  g.input('attention_mask', 'int64', ['batch', 'sequence']);
  const states = g.input('states', 'float', ['batch', 'sequence', 2]);
  g.op('Identity', [states], undefined, { output: 'last_hidden_state' });
  g.output('last_hidden_state', 'float', ['batch', 'sequence', 2]);
  return decodeModel(g.toBytes({ '': opset }), 'test');
}

describe('appendPooling', () => {
  for (const opset of [11, 13, 17, 18]) {
    test(`appendPooling(opset ${opset}, mean + normalize and max) gives the pooled rows with padding skipped, each initializer once`, async () => {
      const dir = await tempDir();
      // Row 0: two real tokens [1, 2], [3, 4] and one padded token [100, 100]; row 1: one real token.
      const states = Float32Array.from([1, 2, 3, 4, 100, 100, 5, -6, 100, 100, 100, 100]);
      const mask = BigInt64Array.from([1n, 1n, 0n, 1n, 0n, 0n]);
      const expected: Record<string, number[]> = {
        mean: [2, 3, 5, -6].map((v, i) => v / (i < 2 ? Math.hypot(2, 3) : Math.hypot(5, -6))),
        max: [3, 4, 5, -6],
      };
      for (const [pooling, normalize] of [
        ['mean', true],
        ['max', false],
      ] as const) {
        const pooled = appendPooling(
          identityEncoder(opset),
          { pooling, normalize, hiddenOutput: 'last_hidden_state', hidden: 2 },
          'test',
        );
        const names = (pooled.graph?.initializer ?? []).map((t) => t.name);
        assert.equal(new Set(names).size, names.length, `duplicate initializers: ${names.join(', ')}`);
        const path = join(dir, `${pooling}-${opset}.onnx`);
        const { encodeModel } = await import('../../src/onnx/proto.js');
        await writeFile(path, encodeModel(pooled));
        const session = await createSession(path, { backend: 'cpu', optimization: 'disabled' });
        try {
          const out = await session.run({
            states: { data: states, dims: [2, 3, 2] },
            attention_mask: { type: 'int64', data: mask, dims: [2, 3] },
          });
          const got = Array.from(out.embedding!.data);
          got.forEach((v, i) => {
            assert.ok(
              Math.abs(v - expected[pooling]![i]!) < 1e-6,
              `${pooling} opset ${opset}: ${got} vs ${expected[pooling]}`,
            );
          });
        } finally {
          await session.release();
        }
      }
    });
  }
});
