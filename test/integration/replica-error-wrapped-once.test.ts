/**
 * An error inside a replica's worker reaches the caller wrapped once, with its code: the message
 * holds ONNX Runtime's own reason exactly once, and the code is the one the worker's error had.
 * The replicas are real worker threads running a real ONNX Runtime session; the graph takes float
 * `input_ids`, so the int64 token ids every text batch feeds make `session.run` throw.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { KilnError } from '../../src/core/errors.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { createSession } from '../../src/runtime/binding.js';
import { WorkerReplica, workerReplicas } from '../../src/runtime/replica.js';
import type { WireTensor } from '../../src/runtime/replica-protocol.js';
import { createServer } from '../../src/server/server.js';
import { TextClassifier } from '../../src/tasks/text-classification/model.js';
import { compileEmbedded, tempDir } from '../fixtures/models.js';

let dir: string;
/** A graph whose token inputs are float: int64 ids fail in ONNX Runtime when the batch runs, not at load. */
let floatIdsModel: string;
/** ONNX Runtime's own words for feeding it int64 ids, read from a session on this thread. */
let runReason: string;

const int64Ids = (): Record<string, WireTensor> => ({
  input_ids: { type: 'int64', data: BigInt64Array.from([101n, 2023n, 102n]), dims: [1, 3] },
  attention_mask: { type: 'int64', data: BigInt64Array.from([1n, 1n, 1n]), dims: [1, 3] },
});

const occurrences = (text: string, part: string): number => text.split(part).length - 1;

before(async () => {
  dir = await tempDir();
  const g = new GraphBuilder('float-ids');
  g.input('input_ids', 'float', ['batch', 'sequence']);
  g.input('attention_mask', 'float', ['batch', 'sequence']);
  g.op('Add', ['input_ids', 'attention_mask'], undefined, { output: 'logits' });
  g.output('logits', 'float', ['batch', 'sequence']);
  floatIdsModel = join(dir, 'float-ids.onnx');
  await writeFile(floatIdsModel, g.toBytes());
  const session = await createSession(floatIdsModel, { backend: 'cpu', optimization: 'disabled', intraOpThreads: 1 });
  try {
    await session.run(int64Ids());
    assert.fail('ONNX Runtime accepted int64 ids for a float input');
  } catch (err) {
    assert.ok(err instanceof KilnError && err.code === 'KILN_ERR_RUNTIME_RUN', String(err));
    runReason = (err as KilnError<'KILN_ERR_RUNTIME_RUN'>).params.reason;
  } finally {
    await session.release();
  }
  assert.match(runReason, /tensor\(int64\)/, 'the reason is ONNX Runtime’s, naming the dtype');
});

describe('an error in a replica worker is wrapped once and keeps its code', () => {
  test('WorkerReplica.run whose session.run throws → KILN_ERR_RUNTIME_RUN with the ONNX Runtime reason once; the replica stays alive', async (t) => {
    const replica = await WorkerReplica.start(0, { modelPath: floatIdsModel, backend: 'cpu', intraOpThreads: 1 });
    t.after(() => replica.close());
    await assert.rejects(replica.run(int64Ids()), (err: unknown) => {
      assert.ok(err instanceof KilnError, `a KilnError, got ${String(err)}`);
      assert.equal(err.code, 'KILN_ERR_RUNTIME_RUN');
      assert.equal(err.status, 500);
      assert.equal(err.message, `inference failed in ONNX Runtime: ${runReason}`);
      assert.equal(occurrences(err.message, runReason), 1, err.message);
      return true;
    });
    assert.equal(replica.alive, true, 'a failed run is not a crash');
  });

  test('WorkerReplica.start on a file ONNX Runtime cannot parse → KILN_ERR_RUNTIME_LOAD with its reason once', async () => {
    const notOnnx = join(dir, 'not-onnx.onnx');
    await writeFile(notOnnx, 'not a protobuf');
    let expected = '';
    await createSession(notOnnx, { backend: 'cpu', optimization: 'disabled' }).catch((err: Error) => {
      expected = err.message;
    });
    assert.match(expected, /^ONNX Runtime could not load/);
    await assert.rejects(
      WorkerReplica.start(0, { modelPath: notOnnx, backend: 'cpu', intraOpThreads: 1 }),
      (err: unknown) => {
        assert.ok(err instanceof KilnError, `a KilnError, got ${String(err)}`);
        assert.equal(err.code, 'KILN_ERR_RUNTIME_LOAD');
        assert.equal(err.message, expected);
        assert.equal(occurrences(err.message, 'ONNX Runtime could not load'), 1, err.message);
        return true;
      },
    );
  });

  describe('through the scheduler and the server', () => {
    let artifact: string;

    before(async () => {
      process.env.KILN_CACHE_DIR = join(dir, 'cache');
      artifact = (await compileEmbedded(join(dir, 'sst2.kiln'))).artifactDir;
    });

    test('classify() and POST /predict on replicas whose run fails → KILN_ERR_RUNTIME_RUN (500) with the reason once', async (t) => {
      const server = createServer({ port: 0 });
      t.after(() => server.close());
      const url = await server.listen();
      const model = await TextClassifier.load(artifact, {
        replicas: 1,
        replicaFactory: workerReplicas({ modelPath: floatIdsModel, backend: 'cpu', intraOpThreads: 1 }),
      });
      server.model.set(model);

      await assert.rejects(model.classify(['a warm , funny and moving film']), (err: unknown) => {
        assert.ok(err instanceof KilnError, `a KilnError, got ${String(err)}`);
        assert.equal(err.code, 'KILN_ERR_RUNTIME_RUN');
        assert.equal(err.message, `inference failed in ONNX Runtime: ${runReason}`);
        return true;
      });

      const res = await fetch(`${url}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text: 'a warm , funny and moving film' }),
      });
      assert.equal(res.status, 500);
      assert.equal(res.headers.get('kiln-error-code'), 'KILN_ERR_RUNTIME_RUN');
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.deepEqual(body, {
        error: { code: 'KILN_ERR_RUNTIME_RUN', message: `inference failed in ONNX Runtime: ${runReason}` },
      });
      assert.equal(occurrences(body.error.message, runReason), 1);
    });
  });
});
