// The prune pass's speedup (compiler/prune.ts): kiln synth distilbert-base-uncased compiled with
// and without it, both int8 (and fp32 with --fp32), one ONNX Runtime session each on one thread,
// batch 16 × 128 tokens, timed in alternating rounds so that both see the same machine.
// Prints the CPU, the FLOPs the compile summary reports, each median and the ratio, and checks
// that the two artifacts answer the same batch alike.
//   node benchmarks/prune.mjs [--fp32] [--rounds N]
import { readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DIST, nodeEval, scratch } from './lib.mjs';

const { values } = parseArgs({
  options: { fp32: { type: 'boolean', default: false }, rounds: { type: 'string', default: '15' } },
});
const precision = values.fp32 ? 'fp32' : 'int8';
const rounds = Number(values.rounds);

const flags = async () => {
  const info = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const line = info.split('\n').find((l) => l.startsWith('flags')) ?? '';
  return (
    ['avx512_vnni', 'avx512f', 'avx_vnni', 'avx2'].filter((f) => line.split(/\s+/).includes(f)).join(' ') ||
    'none of avx2/avx512'
  );
};

const { dir, cleanup } = await scratch();
try {
  const env = { KILN_CACHE_DIR: join(dir, 'cache') };
  const source = join(dir, 'dbase');
  process.stderr.write(`synthesizing distilbert-base-uncased, compiling ${precision} with and without pruning…\n`);
  const compiled = await nodeEval(
    `import { synthesize } from '${DIST}/import/synth.js';
     import { compile } from '${DIST}/compiler/compile.js';
     await synthesize({ preset: 'distilbert-base-uncased', out: '${source}', weights: 'onnx' });
     const out = {};
     for (const prune of [true, false]) {
       const r = await compile({ source: '${source}', out: '${dir}/' + prune + '.kiln', cache: false, maxBatch: 16, maxLength: 128, precision: '${precision}', prune });
       out[prune ? 'pruned' : 'full'] = { dir: r.artifactDir, pruning: r.manifest.pruning };
     }
     console.log(JSON.stringify(out));`,
    env,
  );
  process.stderr.write(`timing ${rounds} alternating rounds of batch 16 × 128 tokens…\n`);
  const timed = await nodeEval(
    `import { createSession } from '${DIST}/runtime/binding.js';
     const B = 16, S = 128;
     const ids = new BigInt64Array(B * S), mask = new BigInt64Array(B * S).fill(1n);
     for (let i = 0; i < B * S; i += 1) ids[i] = BigInt(i % S === 0 ? 101 : 1000 + ((i * 7919) % 20000));
     const feeds = { input_ids: { type: 'int64', data: ids, dims: [B, S] }, attention_mask: { type: 'int64', data: mask, dims: [B, S] } };
     const dirs = ${JSON.stringify({ pruned: compiled.pruned.dir, full: compiled.full.dir })};
     const sessions = {};
     for (const name of ['pruned', 'full'])
       sessions[name] = await createSession(dirs[name] + '/model.onnx', { backend: 'cpu', optimization: 'disabled', intraOpThreads: 1 });
     const logits = {};
     for (const name of ['pruned', 'full']) for (let i = 0; i < 2; i += 1) logits[name] = (await sessions[name].run(feeds)).logits.data;
     let delta = 0;
     for (let i = 0; i < logits.full.length; i += 1) delta = Math.max(delta, Math.abs(logits.full[i] - logits.pruned[i]));
     const times = { pruned: [], full: [] };
     for (let r = 0; r < ${rounds}; r += 1)
       for (const name of r % 2 ? ['pruned', 'full'] : ['full', 'pruned']) {
         const t = performance.now();
         await sessions[name].run(feeds);
         times[name].push(performance.now() - t);
       }
     const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
     console.log(JSON.stringify({ pruned: median(times.pruned), full: median(times.full), delta }));`,
    env,
  );
  const p = compiled.pruned.pruning;
  const saved = p.pruned ? (1 - p.flops.after / p.flops.before) * 100 : 0;
  console.log(`cpu: ${cpus()[0]?.model.trim()} (${cpus().length} cores; ${await flags()})`);
  console.log(
    `model: kiln synth distilbert-base-uncased, ${precision}, batch 16 × 128 tokens, 1 thread, ${rounds} rounds each`,
  );
  console.log(
    `compile summary: ${p.pruned ? `pruned, −${saved.toFixed(1)} % MatMul FLOPs` : `not pruned (${p.reason})`}`,
  );
  console.log(`unpruned median ${timed.full.toFixed(1)} ms, pruned median ${timed.pruned.toFixed(1)} ms`);
  console.log(
    `speedup ${(timed.full / timed.pruned).toFixed(3)}× (max |Δlogit| between them ${timed.delta.toExponential(2)})`,
  );
} finally {
  await cleanup();
}
