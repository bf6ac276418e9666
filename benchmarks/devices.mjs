// CPU int8 against each GPU path that answers here (WebGPU fp32/fp16, CUDA fp32/fp16), in one
// run, on a text model and an image model: throughput (texts/s or images/s, all inputs at once
// through the scheduler) and one-at-a-time latency. Prints the CPU model and each device; on a
// software GPU (Mesa's lavapipe: no /dev/dri render node and no /dev/nvidia0) it says so, and its
// figures are the CPU running compute shaders, not a GPU's.
//   node benchmarks/devices.mjs [--text distilbert-base-uncased|embedded|none] [--image resnet-50|none]
//     [--texts 16] [--images 8] [--latency 8] [--max-length 32] [--parity]
// Defaults fit a software GPU (short SST-2 sentences, 32 tokens): lavapipe runs DistilBERT-base
// and ResNet-50 at a few inputs per second. On a real GPU raise --texts and --images.
// --parity: the embedded model's logits on WebGPU against the CPU for all 872 SST-2 dev
// sentences (npm test checks 8), max |Δ| and the time it took.
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { DIST, ROOT, scratch } from './lib.mjs';

const { values: flags } = parseArgs({
  options: {
    text: { type: 'string', default: 'distilbert-base-uncased' },
    image: { type: 'string', default: 'resnet-50' },
    texts: { type: 'string', default: '16' },
    images: { type: 'string', default: '8' },
    latency: { type: 'string', default: '8' },
    'max-length': { type: 'string', default: '32' },
    parity: { type: 'boolean', default: false },
  },
});
const positive = (name) => {
  const raw = flags[name];
  if (!/^[1-9][0-9]*$/.test(raw)) {
    console.error(`--${name} must be a positive integer, got "${raw}"`);
    process.exit(1);
  }
  return Number(raw);
};
const TEXTS = positive('texts');
const IMAGES = positive('images');
const LATENCY = positive('latency');
const MAX_LENGTH = positive('max-length');
const MAX_BATCH = 32;

const { compile } = await import(join(DIST, 'compiler', 'compile.js'));
const { loadModel } = await import(join(DIST, 'api', 'open.js'));
const { probeDevice } = await import(join(DIST, 'runtime', 'binding.js'));
const { synthesize } = await import(join(DIST, 'import', 'synth.js'));
const { synthesizeVision } = await import(join(DIST, 'import', 'synth-vision.js'));

const software =
  !existsSync('/dev/nvidia0') &&
  !(existsSync('/dev/dri') && readdirSync('/dev/dri').some((f) => f.startsWith('renderD')));
const sentences = (await readFile(join(ROOT, 'data', 'sst2', 'dev.tsv'), 'utf8'))
  .trim()
  .split('\n')
  .slice(1)
  .map((l) => l.split('\t')[0].trim());

/** Smooth random RGB pictures (a base colour and a few low-frequency waves), as PNG bytes. */
async function pictures(count, seed, size = 256) {
  let state = seed >>> 0 || 1;
  const random = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  const out = [];
  for (let n = 0; n < count; n += 1) {
    const waves = Array.from({ length: 4 }, () => [random() / 16, random() / 16, random() * 6.28, random() * 90]);
    const base = [random() * 255, random() * 255, random() * 255];
    const raw = new Uint8Array(size * size * 3);
    for (let y = 0; y < size; y += 1)
      for (let x = 0; x < size; x += 1)
        for (let c = 0; c < 3; c += 1) {
          let v = base[c];
          for (const [fx, fy, phase, amplitude] of waves) v += amplitude * Math.cos(fx * x * (c + 1) + fy * y + phase);
          raw[(y * size + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
        }
    out.push(
      await sharp(raw, { raw: { width: size, height: size, channels: 3 } })
        .png()
        .toBuffer(),
    );
  }
  return out;
}

/** Warm-up (every batch shape once), then all inputs at once, then `LATENCY` inputs one at a time. */
async function measure(model, inputs) {
  await model.infer(inputs);
  await model.infer([inputs[0]]);
  const t = performance.now();
  await model.infer(inputs);
  const perS = inputs.length / ((performance.now() - t) / 1000);
  const lat = [];
  for (const input of inputs.slice(0, LATENCY)) {
    const s = performance.now();
    await model.infer([input]);
    lat.push(performance.now() - s);
  }
  lat.sort((x, y) => x - y);
  return { perS, p50: lat[Math.floor((lat.length - 1) / 2)], max: lat.at(-1) };
}

const { dir, cleanup } = await scratch();
process.env.KILN_CACHE_DIR = join(dir, 'cache');
try {
  console.log(`CPU: ${cpus()[0]?.model.trim()} (${cpus().length} cores)`);
  const gpus = [];
  for (const device of ['webgpu', 'cuda']) {
    const error = await probeDevice(device);
    console.log(
      `${device}: ${error ? `not available (${error.code})` : software && device === 'webgpu' ? 'available, SOFTWARE (lavapipe: its figures are this CPU running compute shaders, not a GPU)' : 'available'}`,
    );
    if (!error) gpus.push(device);
  }

  if (flags.parity) {
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

  const models = [];
  if (flags.text !== 'none') {
    let source = join(ROOT, 'models', 'sst2-distilbert-tiny');
    if (flags.text !== 'embedded') {
      source = join(dir, flags.text);
      await synthesize({ preset: flags.text, out: source });
    }
    // Short sentences: on a software GPU every token is shader work on the CPU.
    const short = sentences.filter((s) => s.split(' ').length <= 16).slice(0, TEXTS);
    models.push({
      name: `${flags.text}${flags.text === 'embedded' ? '' : ' (kiln synth: random weights)'}`,
      what: `${short.length} SST-2 sentences of ≤ 16 words, --max-length ${MAX_LENGTH}`,
      unit: 'texts/s',
      source,
      inputs: short,
      options: { maxLength: MAX_LENGTH },
    });
  }
  if (flags.image !== 'none') {
    const source = join(dir, flags.image);
    await synthesizeVision({ preset: flags.image, out: source });
    // Static int8 calibrates on sample images, disjoint from the measured ones.
    const calibration = join(dir, 'calibration');
    await mkdir(calibration);
    for (const [i, bytes] of (await pictures(8, 7)).entries()) await writeFile(join(calibration, `${i}.png`), bytes);
    models.push({
      name: `${flags.image} (kiln synth: random weights)`,
      what: `${IMAGES} synthetic 256×256 PNGs`,
      unit: 'images/s',
      source,
      inputs: await pictures(IMAGES, 1),
      options: {},
      int8: { calibrate: calibration },
    });
  }

  const paths = [
    { device: 'cpu', precision: 'int8' },
    ...gpus.flatMap((device) => [
      { device, precision: 'fp32' },
      { device, precision: 'fp16' },
    ]),
  ];
  for (const m of models) {
    console.log(`\nmodel: ${m.name}; ${m.what}; one-at-a-time latency over ${Math.min(LATENCY, m.inputs.length)}`);
    console.log(`path            ${m.unit.padStart(9)}   p50 ms   max ms   compile s`);
    for (const { device, precision } of paths) {
      const t0 = performance.now();
      const art = await compile({
        source: m.source,
        out: join(dir, `${m.unit === 'texts/s' ? 'text' : 'image'}-${device}-${precision}.kiln`),
        device,
        precision,
        maxBatch: MAX_BATCH,
        ...m.options,
        ...(precision === 'int8' ? m.int8 : {}),
      });
      const compileS = (performance.now() - t0) / 1000;
      const model = await loadModel({ model: art.artifactDir });
      try {
        const r = await measure(model, m.inputs);
        console.log(
          `${`${device} ${precision}`.padEnd(15)} ${r.perS.toFixed(2).padStart(9)} ${r.p50.toFixed(0).padStart(8)} ${r.max.toFixed(0).padStart(8)} ${compileS.toFixed(1).padStart(11)}${device === 'webgpu' && software ? '   (software GPU: CPU running shaders)' : ''}`,
        );
      } finally {
        await model.close();
      }
    }
  }
  if (software && gpus.includes('webgpu'))
    console.log(
      '\nThe webgpu lines ran on a software adapter (lavapipe): they show that each GPU path compiles and answers, not how fast a GPU is.',
    );
} finally {
  await cleanup();
}
