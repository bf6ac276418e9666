// CPU int8 against each GPU path that answers here (WebGPU fp32/fp16, CUDA fp32/fp16), on one
// model: throughput (texts/s, all texts at once through the scheduler) and one-at-a-time latency.
// Prints the CPU model and each device; on a software GPU (Mesa's lavapipe: no /dev/dri render
// node and no /dev/nvidia0) it says so, and its figures are the CPU's, not a GPU's.
//   node benchmarks/devices.mjs [--model distilbert-base-uncased|embedded] [--texts 64] [--parity]
// --parity: the embedded model's logits on WebGPU against the CPU for all 872 SST-2 dev
// sentences (npm test checks 8), max |Δ| and the time it took.
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { DIST, ROOT, scratch } from './lib.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const modelName = arg('model', 'distilbert-base-uncased');
const count = Number(arg('texts', '64'));
const { compile } = await import(join(DIST, 'compiler', 'compile.js'));
const { loadModel } = await import(join(DIST, 'api', 'open.js'));
const { probeDevice } = await import(join(DIST, 'runtime', 'binding.js'));
const { synthesize } = await import(join(DIST, 'import', 'synth.js'));

const software =
  !existsSync('/dev/nvidia0') &&
  !(existsSync('/dev/dri') && readdirSync('/dev/dri').some((f) => f.startsWith('renderD')));
const sentences = (await readFile(join(ROOT, 'data', 'sst2', 'dev.tsv'), 'utf8'))
  .trim()
  .split('\n')
  .slice(1)
  .map((l) => l.split('\t')[0].trim());
const { dir, cleanup } = await scratch();
process.env.KILN_CACHE_DIR = join(dir, 'cache');
try {
  console.log(`CPU: ${cpus()[0]?.model.trim()} (${cpus().length} cores)`);
  const gpus = [];
  for (const device of ['webgpu', 'cuda']) {
    const error = await probeDevice(device);
    console.log(
      `${device}: ${error ? `not available (${error.code})` : software && device === 'webgpu' ? 'available, SOFTWARE (lavapipe: figures are the CPU running shaders, not a GPU)' : 'available'}`,
    );
    if (!error) gpus.push(device);
  }

  if (process.argv.includes('--parity')) {
    const embedded = join(ROOT, 'models', 'sst2-distilbert-tiny');
    const cpuArt = await compile({ source: embedded, out: join(dir, 'p-cpu.kiln') });
    const gpuArt = await compile({ source: embedded, out: join(dir, 'p-gpu.kiln'), device: 'webgpu' });
    const cpu = await loadModel({ model: cpuArt.artifactDir });
    const gpu = await loadModel({ model: gpuArt.artifactDir });
    let t = performance.now();
    const a = await cpu.infer(sentences);
    const cpuS = (performance.now() - t) / 1000;
    t = performance.now();
    const b = await gpu.infer(sentences);
    const gpuS = (performance.now() - t) / 1000;
    await Promise.all([cpu.close(), gpu.close()]);
    let max = 0;
    for (const [i, r] of a.entries())
      for (const [j, v] of r.logits.entries()) max = Math.max(max, Math.abs(v - b[i].logits[j]));
    console.log(
      `parity: ${sentences.length} sentences, max |Δlogit| webgpu vs cpu ${max.toExponential(2)} (limit 1e-3: ${max <= 1e-3 ? 'ok' : 'FAILED'}); cpu ${cpuS.toFixed(1)} s, webgpu ${gpuS.toFixed(1)} s`,
    );
  }

  let source = join(ROOT, 'models', 'sst2-distilbert-tiny');
  if (modelName !== 'embedded') {
    source = join(dir, modelName);
    await synthesize({ preset: modelName, out: source });
  }
  const texts = sentences.slice(0, count);
  const paths = [
    { device: 'cpu', precision: 'int8' },
    ...gpus.flatMap((d) => [
      { device: d, precision: 'fp32' },
      { device: d, precision: 'fp16' },
    ]),
  ];
  console.log(
    `model: ${modelName}${modelName === 'embedded' ? '' : ' (kiln synth: random weights)'}; ${texts.length} SST-2 texts`,
  );
  console.log('path             texts/s   p50 ms   p99 ms   compile s');
  for (const { device, precision } of paths) {
    const t0 = performance.now();
    const art = await compile({
      source,
      out: join(dir, `${device}-${precision}.kiln`),
      device,
      precision,
      maxBatch: 32,
    });
    const compileS = (performance.now() - t0) / 1000;
    const model = await loadModel({ model: art.artifactDir });
    try {
      await model.infer(texts.slice(0, 8));
      await model.infer(texts);
      const t = performance.now();
      await model.infer(texts);
      const perS = texts.length / ((performance.now() - t) / 1000);
      const lat = [];
      for (const text of texts.slice(0, 16)) {
        const s = performance.now();
        await model.infer([text]);
        lat.push(performance.now() - s);
      }
      lat.sort((x, y) => x - y);
      const p = (q) => lat[Math.min(lat.length - 1, Math.floor((q / 100) * lat.length))];
      console.log(
        `${`${device} ${precision}`.padEnd(15)} ${perS.toFixed(1).padStart(8)} ${p(50).toFixed(1).padStart(8)} ${p(99).toFixed(1).padStart(8)} ${compileS.toFixed(1).padStart(11)}${device === 'webgpu' && software ? '   (software GPU)' : ''}`,
      );
    } finally {
      await model.close();
    }
  }
} finally {
  await cleanup();
}
