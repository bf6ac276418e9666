/**
 * Replicas run at a lower CPU priority than the main thread (Linux nice is per thread): the
 * worker thread and the intra-op threads ONNX Runtime starts for it, while the main thread
 * keeps its own. Read back from /proc, so a program that set nothing, or set the whole
 * process, fails.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { TextClassifier } from '../../src/tasks/text-classification/model.js';
import { compileEmbedded, tempDir } from '../fixtures/models.js';

const linux = process.platform === 'linux';
let artifact: string;

before(async () => {
  if (!linux) return;
  const dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
  artifact = (await compileEmbedded(join(dir, 'sst2.kiln'))).artifactDir;
});

/** Nice value of each thread of this process, by thread id. */
async function threadNice(): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const tid of await readdir('/proc/self/task')) {
    const stat = await readFile(`/proc/self/task/${tid}/stat`, 'utf8').catch(() => null);
    if (stat === null) continue;
    // After "(comm) " the fields start at the third (state); nice is the nineteenth.
    out.set(Number(tid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
  }
  return out;
}

describe('replica priority', { skip: linux ? false : 'per-thread nice is Linux only' }, () => {
  test('each replica thread and its intra-op threads run N lower; the main thread keeps its priority', async () => {
    const before = await threadNice();
    const base = before.get(process.pid)!;
    const model = await TextClassifier.load(artifact, { replicas: 2, threadsPerReplica: 2, replicaNice: 7 });
    try {
      const after = await threadNice();
      const lowered = [...after].filter(([tid, nice]) => !before.has(tid) && nice === Math.min(19, base + 7));
      // Two workers, each with at least one intra-op thread besides itself.
      assert.ok(
        lowered.length >= 4,
        `threads at nice ${base + 7}: ${lowered.length} (all: ${JSON.stringify([...after])})`,
      );
      assert.equal(after.get(process.pid), base, 'the main thread is not lowered');
      const [answer] = await model.classify(['a warm , funny and moving film']);
      assert.equal(answer!.label, 'POSITIVE', 'the lowered replicas still answer');
    } finally {
      await model.close();
    }
  });

  test('--replica-nice 0 leaves every thread at the process priority', async () => {
    const before = await threadNice();
    const base = before.get(process.pid)!;
    const model = await TextClassifier.load(artifact, { replicas: 1, replicaNice: 0 });
    try {
      const fresh = [...(await threadNice())].filter(([tid]) => !before.has(tid));
      assert.ok(fresh.length >= 1, 'the replica started a thread');
      assert.deepEqual(
        fresh.filter(([, nice]) => nice !== base),
        [],
      );
    } finally {
      await model.close();
    }
  });
});
