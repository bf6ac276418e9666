// Peak memory of `kiln import` on a base-size checkpoint, as a ratio of the checkpoint's size.
// Target (import issue): peak RSS < 2.5 × checkpoint size. Baseline measured in the same run: a
// process that loads the same kiln modules and does no work.
//   node benchmarks/import-memory.mjs [preset]   (default bert-base-uncased)
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DIST, mib, nodeEval, scratch } from './lib.mjs';

const preset = process.argv[2] ?? 'bert-base-uncased';
const { dir, cleanup } = await scratch();
try {
  const checkpoint = join(dir, preset);
  process.stderr.write(`synthesizing ${preset} (safetensors)…\n`);
  await nodeEval(
    `import { synthesize } from '${DIST}/import/synth.js'; await synthesize({ preset: '${preset}', out: '${checkpoint}' }); console.log('{}');`,
  );
  const bytes = (await stat(join(checkpoint, 'model.safetensors'))).size;

  const baseline = await nodeEval(
    `import '${DIST}/import/import.js'; console.log(JSON.stringify({ maxRss: process.resourceUsage().maxRSS * 1024 }));`,
  );
  process.stderr.write('importing…\n');
  const run = await nodeEval(
    `import { importCheckpoint } from '${DIST}/import/import.js';
     const t = performance.now();
     await importCheckpoint({ dir: '${checkpoint}', out: '${join(dir, 'out')}' });
     console.log(JSON.stringify({ maxRss: process.resourceUsage().maxRSS * 1024, ms: performance.now() - t }));`,
  );
  const ratio = run.maxRss / bytes;
  const workRatio = (run.maxRss - baseline.maxRss) / bytes;
  console.log(
    `import-memory ${preset}: checkpoint ${mib(bytes)}, peak RSS ${mib(run.maxRss)} (idle kiln process ${mib(baseline.maxRss)}), ${(run.ms / 1000).toFixed(1)} s`,
  );
  console.log(
    `  peak / checkpoint = ${ratio.toFixed(2)}×  (target < 2.5×: ${ratio < 2.5 ? 'PASS' : 'FAIL'}); above the idle process: ${workRatio.toFixed(2)}×`,
  );
  process.exitCode = ratio < 2.5 ? 0 : 1;
} finally {
  await cleanup();
}
