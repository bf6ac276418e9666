// int8 against fp32 on kiln synth distilbert-base-uncased, same run: throughput at batch 16 ×
// 32 tokens through kiln's runtime, artifact size with --quantize-embeddings, and the int8/fp32
// ratio of a bare GEMM (512×768×3072) on this CPU: the ceiling any int8 model can reach here.
// Targets (int8 issue): throughput ≥ 2.5×, size ≤ 0.3×.
//   node benchmarks/int8-speed.mjs
import { writeFile } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { DIST, mib, nodeEval, scratch } from './lib.mjs';

const { dir, cleanup } = await scratch();
try {
  const env = { KILN_CACHE_DIR: join(dir, 'cache') };
  const source = join(dir, 'dbase');
  process.stderr.write('synthesizing distilbert-base-uncased and compiling fp32, int8, int8 + embeddings…\n');
  const sizes = await nodeEval(
    `import { synthesize } from '${DIST}/import/synth.js';
     import { compile } from '${DIST}/compiler/compile.js';
     await synthesize({ preset: 'distilbert-base-uncased', out: '${source}', weights: 'onnx' });
     const out = {};
     for (const [name, o] of [['fp32', {}], ['int8', { precision: 'int8' }], ['int8e', { precision: 'int8', quantizeEmbeddings: true }]]) {
       const r = await compile({ source: '${source}', out: '${dir}/' + name + '.kiln', cache: false, maxBatch: 16, ...o });
       out[name] = r.manifest.files['model.onnx'].bytes;
     }
     console.log(JSON.stringify(out));`,
    env,
  );

  // 16 texts of exactly 30 words: 32 tokens each with [CLS] and [SEP].
  const texts = Array.from({ length: 16 }, (_, i) =>
    Array.from({ length: 30 }, (_, j) => ['good', 'film', 'story', 'actor', 'scene', 'plot'][(i + j) % 6]).join(' '),
  );
  const textsFile = join(dir, 'texts.json');
  await writeFile(textsFile, JSON.stringify(texts));
  const rate = (artifact) =>
    nodeEval(
      `import { readFile } from 'node:fs/promises';
       import { TextClassifier } from '${DIST}/runtime/text-classifier.js';
       const texts = JSON.parse(await readFile('${textsFile}', 'utf8'));
       const c = await TextClassifier.load('${artifact}', { maxBatch: 16, maxDelayMs: 0 });
       if (c.tokenCount(texts[0]) !== 32) throw new Error('expected 32 tokens, got ' + c.tokenCount(texts[0]));
       // One batch of 16 per replica at a time: submit replicas × 16 texts per round.
       const round = Array.from({ length: c.layout.replicas }, () => texts).flat();
       for (let i = 0; i < 2; i += 1) await c.classify(round);
       let n = 0; const t = performance.now();
       while (performance.now() - t < 8000) { await c.classify(round); n += round.length; }
       const perSecond = n / ((performance.now() - t) / 1000);
       await c.close();
       console.log(JSON.stringify({ perSecond, layout: c.layout }));`,
      env,
    );
  const gemm = await nodeEval(
    `import { writeFile } from 'node:fs/promises';
     import { GraphBuilder } from '${DIST}/onnx/builder.js';
     import { createSession } from '${DIST}/runtime/binding.js';
     const M = 512, K = 768, N = 3072;
     const time = async (path) => {
       const s = await createSession(path, { backend: 'cpu', optimization: 'all', intraOpThreads: ${availableParallelism()} });
       const feeds = { A: { type: 'float32', data: Float32Array.from({ length: M * K }, (_, i) => Math.sin(i)), dims: [M, K] } };
       for (let i = 0; i < 3; i += 1) await s.run(feeds);
       let best = Infinity;
       for (let i = 0; i < 20; i += 1) { const t = performance.now(); await s.run(feeds); best = Math.min(best, performance.now() - t); }
       await s.release();
       return (2 * M * K * N) / (best / 1000) / 1e9;
     };
     const f = new GraphBuilder('fp32'); f.input('A', 'float', [M, K]);
     f.op('MatMul', ['A', f.weight('W', Float32Array.from({ length: K * N }, (_, i) => ((i % 251) - 125) / 1000), [K, N])], undefined, { output: 'Y' }); f.output('Y', 'float', [M, N]);
     await writeFile('${dir}/gemm-fp32.onnx', f.toBytes({ '': 17 }));
     const q = new GraphBuilder('int8'); q.input('A', 'float', [M, K]);
     q.weight('Wq', new Int32Array(0), [0]);
     const model = q.toModel({ '': 17, 'com.microsoft': 1 });
     model.graph.initializer = [
       { name: 'Wq', dims: [K, N], dataType: 3, rawData: new Uint8Array(Int8Array.from({ length: K * N }, (_, i) => (i % 127) - 63).buffer) },
       { name: 'Ws', dims: [N], dataType: 1, rawData: new Uint8Array(new Float32Array(N).fill(0.01).buffer) },
       { name: 'Wz', dims: [N], dataType: 3, rawData: new Uint8Array(N) },
     ];
     model.graph.node = [{ opType: 'DynamicQuantizeMatMul', domain: 'com.microsoft', input: ['A', 'Wq', 'Ws', 'Wz'], output: ['Y'], name: 'q' }];
     model.graph.output = f.toModel().graph.output;
     const { encodeModel } = await import('${DIST}/onnx/proto.js');
     await writeFile('${dir}/gemm-int8.onnx', encodeModel(model));
     console.log(JSON.stringify({ fp32: await time('${dir}/gemm-fp32.onnx'), int8: await time('${dir}/gemm-int8.onnx') }));`,
    env,
  );
  process.stderr.write('measuring throughput, 8 s each…\n');
  const fp32 = await rate(join(dir, 'fp32.kiln'));
  const int8 = await rate(join(dir, 'int8.kiln'));
  const speedup = int8.perSecond / fp32.perSecond;
  const size = sizes.int8e / sizes.fp32;
  console.log(
    `int8-speed on distilbert-base-uncased (synthetic), ${cpus()[0]?.model.trim()}, ${availableParallelism()} cores, layout ${fp32.layout.replicas}×${fp32.layout.threadsPerReplica}, batch 16 × 32 tokens`,
  );
  console.log(
    `  fp32 ${fp32.perSecond.toFixed(1)} texts/s, int8 ${int8.perSecond.toFixed(1)} texts/s: int8/fp32 = ${speedup.toFixed(2)}× (target ≥ 2.5×: ${speedup >= 2.5 ? 'PASS' : 'FAIL'})`,
  );
  console.log(
    `  bare GEMM 512×768×3072 on this CPU: fp32 ${gemm.fp32.toFixed(0)} GFLOP/s, int8 ${gemm.int8.toFixed(0)} GOP/s: ceiling ${(gemm.int8 / gemm.fp32).toFixed(2)}×`,
  );
  console.log(
    `  model.onnx fp32 ${mib(sizes.fp32)}, int8 ${mib(sizes.int8)}, int8 + embeddings ${mib(sizes.int8e)}: ${size.toFixed(3)}× (target ≤ 0.3×: ${size <= 0.3 ? 'PASS' : 'FAIL'})`,
  );
} finally {
  await cleanup();
}
