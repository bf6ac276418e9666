/**
 * The default layout is adaptive: replicas of one core each carry the load, and a wide replica
 * (one session on every core) answers a request that finds them idle. Pinned layouts (flags,
 * `wide: false`) have none, and where memory holds the replicas but not one more session, the
 * layout goes without it instead of refusing to load.
 */
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { readArtifact } from '../../src/model/artifact.js';
import { TextClassifier } from '../../src/tasks/text-classification/model.js';
import { compileEmbedded, tempDir } from '../fixtures/models.js';

const cores = availableParallelism();
let artifact: string;

before(async () => {
  const dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
  // Only the artifact is used: the run's shared cache compiles the embedded model once.
  artifact = (await compileEmbedded(join(dir, 'sst2.kiln'))).artifactDir;
});

const TEXTS = Array.from({ length: 48 }, (_, i) =>
  i % 2 ? `a warm , funny and moving film , part ${i}` : `dull , lifeless and far too long , part ${i}`,
);

describe('adaptive layout', { skip: cores < 2 ? 'a wide replica needs 2 or more cores' : false }, () => {
  test('default layout: one-core replicas plus a wide one; a lone request goes wide, a burst to the replicas, answers as a fixed layout gives', async () => {
    const model = await TextClassifier.load(artifact);
    const fixed = await TextClassifier.load(artifact, { replicas: 1, threadsPerReplica: 1 });
    try {
      assert.deepEqual(
        { replicas: model.layout.replicas, threads: model.layout.threadsPerReplica, wide: model.layout.wideThreads },
        { replicas: cores, threads: 1, wide: cores },
      );
      const [lone] = await model.classify([TEXTS[1]!]);
      let stats = model.stats();
      assert.equal(stats.wide?.items, 1, 'the lone request ran on the wide replica');
      assert.deepEqual(
        stats.replicas.map((r) => r.items),
        stats.replicas.map(() => 0),
      );
      const burst = await model.classify(TEXTS);
      stats = model.stats();
      const onReplicas = stats.replicas.reduce((n, r) => n + r.items, 0);
      assert.ok(onReplicas >= TEXTS.length - cores, `${onReplicas} of ${TEXTS.length} texts ran on the replicas`);
      const expected = await fixed.classify([TEXTS[1]!, ...TEXTS]);
      [lone!, ...burst].forEach((answer, i) => {
        assert.equal(answer.label, expected[i]!.label);
        assert.ok(Math.abs(answer.score - expected[i]!.score) < 1e-5, `score of text ${i}`);
      });
    } finally {
      await Promise.all([model.close(), fixed.close()]);
    }
  });

  test('a pinned layout (--replicas, --threads-per-replica) or wide: false has no wide replica', async () => {
    for (const options of [{ replicas: cores }, { threadsPerReplica: 1 }, { wide: false }]) {
      const model = await TextClassifier.load(artifact, options);
      try {
        assert.equal(model.layout.wideThreads, 0, JSON.stringify(options));
        assert.equal(model.stats().wide, null);
      } finally {
        await model.close();
      }
    }
  });

  test('memory for the replicas but not one session more: the default layout loads without the wide replica', async () => {
    const { manifest } = await readArtifact(artifact, { verify: false });
    const memory = manifest.memory!;
    // The 90 % the memory check allows holds the replicas and half a session more.
    const available = ((memory.processBytes ?? 0) + (cores + 0.5) * memory.perReplicaBytes) / 0.9;
    process.env.KILN_MEMORY_AVAILABLE = String(Math.floor(available));
    try {
      const model = await TextClassifier.load(artifact);
      try {
        assert.equal(model.layout.replicas, cores);
        assert.equal(model.layout.wideThreads, 0);
      } finally {
        await model.close();
      }
    } finally {
      delete process.env.KILN_MEMORY_AVAILABLE;
    }
  });
});
