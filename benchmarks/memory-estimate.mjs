// The compile-time memory figure per replica against the real resident-memory increase of a
// process that loads N replicas and runs a max-size batch on each (the memory issue's check:
// within 25 % for 1, 2 and 4 replicas).
//   node benchmarks/memory-estimate.mjs [SOURCE] [--precision int8]
import { join } from 'node:path';
import { DIST, mib, nodeEval, ROOT, scratch } from './lib.mjs';

const source =
  process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : join(ROOT, 'models', 'sst2-distilbert-tiny');
const precision = process.argv.includes('int8') ? 'int8' : 'fp32';
const { dir, cleanup } = await scratch();
try {
  const env = { KILN_CACHE_DIR: join(dir, 'cache') };
  const artifact = join(dir, 'model.kiln');
  const compiled = await nodeEval(
    `import { compile } from '${DIST}/compiler/compile.js';
     const r = await compile({ source: '${source}', out: '${artifact}', precision: '${precision}' });
     console.log(JSON.stringify(r.manifest.memory));`,
    env,
  );
  console.log(
    `memory-estimate ${source} (${precision}): ${mib(compiled.processBytes ?? 0)} per process + ${mib(compiled.perReplicaBytes)} per replica (session measured at compile ${mib(compiled.measuredBytes)}, analytic ${mib(compiled.estimateBytes)}) at batch ${compiled.batch} × ${compiled.length}`,
  );
  let worst = 0;
  for (const replicas of [1, 2, 4]) {
    const r = await nodeEval(
      `import { TextClassifier } from '${DIST}/runtime/text-classifier.js';
       const before = process.memoryUsage().rss;
       const c = await TextClassifier.load('${artifact}', { replicas: ${replicas}, threadsPerReplica: 1, maxDelayMs: 50 });
       const m = c.manifest.limits;
       const long = 'word '.repeat(m.maxLength);
       // Enough max-length texts that every replica runs at least one full batch.
       await c.classify(Array.from({ length: m.maxBatch * ${replicas} * 2 }, () => long));
       const after = process.memoryUsage().rss;
       const per = c.stats().replicas.map((x) => x.batches);
       await c.close();
       console.log(JSON.stringify({ increase: after - before, per }));`,
      env,
    );
    const predicted = (compiled.processBytes ?? 0) + replicas * compiled.perReplicaBytes;
    const error = (predicted - r.increase) / r.increase;
    worst = Math.max(worst, Math.abs(error));
    console.log(
      `  ${replicas} replica(s): RSS +${mib(r.increase)}, predicted ${mib(predicted)}: ${(error * 100).toFixed(1)} % (batches per replica ${r.per.join('/')})`,
    );
  }
  console.log(`  worst |error| ${(worst * 100).toFixed(1)} % (target ≤ 25 %: ${worst <= 0.25 ? 'PASS' : 'FAIL'})`);
  process.exitCode = worst <= 0.25 ? 0 : 1;
} finally {
  await cleanup();
}
