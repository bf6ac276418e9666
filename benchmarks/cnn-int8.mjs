// Static int8 against fp32 on kiln synth resnet-50, same run: images/s through ONNX Runtime
// (graph optimization 'all', every core) at batch 8 and batch 1, and agreement of the logits on
// images disjoint from calibration. Targets (image classification issue): int8 ≥ 1.8× fp32
// throughput, top-1 agreement ≥ 98 %.
//
// Random weights make top-1 a weak witness: a random ResNet's logits share a large
// image-independent part, so fp32 predicts few distinct classes and raw agreement is easy. The
// run also prints the agreement and cosine of the image-specific logits (each logit minus its
// mean over the evaluation images), and top-1 agreement on images whose fp32 margin exceeds the
// noise int8 adds.
//   npm run bench:cnn-int8 -- [--calibration 32] [--images 128] [--seconds 10] [--variants]
// --variants also measures 8-bit weights (reduceRange: false), per-tensor weight scales and no
// bias correction.
import { readFile, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DIST, mib, scratch } from './lib.mjs';

const { synthesizeVision } = await import(`${DIST}/import/synth-vision.js`);
const { calibrate } = await import(`${DIST}/compiler/calibrate.js`);
const { calibrationTensors, quantizeStatic } = await import(`${DIST}/compiler/static-quantize.js`);
const { createSession, RUNTIME_VERSION } = await import(`${DIST}/runtime/binding.js`);
const { readModel, encodeModel } = await import(`${DIST}/onnx/proto.js`);

const { values: flags } = parseArgs({
  options: {
    calibration: { type: 'string' },
    images: { type: 'string' },
    seconds: { type: 'string' },
    variants: { type: 'boolean' },
  },
});
const positive = (name, fallback) => {
  const raw = flags[name] ?? String(fallback);
  if (!/^[1-9][0-9]*$/.test(raw)) {
    console.error(`--${name} must be a positive integer, got "${raw}"`);
    process.exit(1);
  }
  return Number(raw);
};
const CALIBRATION = positive('calibration', 32);
const IMAGES = positive('images', 128);
const SECONDS = positive('seconds', 10);
const SIZE = 224;
const PIXELS = 3 * SIZE * SIZE;
const cores = availableParallelism();
const note = (line) => process.stderr.write(`${line}\n`);

/**
 * Smooth random images: per channel a base level and six low-frequency waves, clipped to [0, 1],
 * then normalized with the preprocessor's mean and std. Seeds of calibration and evaluation differ.
 */
function images(count, seed, mean, std) {
  let state = seed >>> 0 || 1;
  const random = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  const data = new Float32Array(count * PIXELS);
  for (let n = 0; n < count; n += 1) {
    const waves = Array.from({ length: 6 }, () => ({
      fx: (random() * 8) / SIZE,
      fy: (random() * 8) / SIZE,
      phase: random() * 2 * Math.PI,
      amplitude: random(),
      mix: [random(), random(), random()],
    }));
    const base = [random(), random(), random()];
    for (let c = 0; c < 3; c += 1) {
      for (let y = 0; y < SIZE; y += 1) {
        for (let x = 0; x < SIZE; x += 1) {
          let v = base[c] - 0.5;
          for (const w of waves)
            v += 0.25 * w.amplitude * w.mix[c] * Math.cos(2 * Math.PI * (w.fx * x + w.fy * y) + w.phase);
          data[n * PIXELS + (c * SIZE + y) * SIZE + x] = (Math.min(1, Math.max(0, 0.5 + v)) - mean[c]) / std[c];
        }
      }
    }
  }
  return data;
}

const { dir, cleanup } = await scratch('kiln-cnn-int8-');
try {
  const loadAtStart = loadavg()[0];
  note('synthesizing resnet-50…');
  const source = join(dir, 'resnet-50');
  await synthesizeVision({ preset: 'resnet-50', out: source });
  const fp32Path = join(source, 'onnx', 'model.onnx');
  const processor = JSON.parse(await readFile(join(source, 'preprocessor_config.json'), 'utf8'));
  const fp32 = await readModel(fp32Path);

  note(`calibrating on ${CALIBRATION} images…`);
  const calibrationStarted = performance.now();
  function* calibrationBatches() {
    for (let i = 0; i < CALIBRATION; i += 8) {
      const count = Math.min(8, CALIBRATION - i);
      yield {
        data: images(count, 1_000_000 + i, processor.image_mean, processor.image_std),
        dims: [count, 3, SIZE, SIZE],
      };
    }
  }
  const calibration = await calibrate(fp32, calibrationTensors(fp32), calibrationBatches(), { intraOpThreads: cores });
  const calibrationSeconds = (performance.now() - calibrationStarted) / 1000;
  const variants = [{ name: 'int8', label: 'int8 (default: 7-bit per-channel weights, bias correction)', options: {} }];
  if (flags.variants) {
    variants.push({
      name: 'int8-8bit',
      label: 'int8, 8-bit weights (reduceRange: false)',
      options: { reduceRange: false },
    });
    variants.push({ name: 'int8-per-tensor', label: 'int8, per-tensor weight scales', options: { perChannel: false } });
    variants.push({
      name: 'int8-no-bias-correction',
      label: 'int8, no bias correction',
      options: { biasCorrection: false },
    });
  }
  for (const v of variants) {
    const { model, report } = quantizeStatic(fp32, calibration, v.options);
    v.path = join(dir, `${v.name}.onnx`);
    v.report = report;
    await writeFile(v.path, encodeModel(model));
  }

  const sessionOptions = { backend: 'cpu', optimization: 'all', intraOpThreads: cores };
  const models = [{ name: 'fp32', label: 'fp32', path: fp32Path }, ...variants];
  for (const m of models) m.session = await createSession(m.path, sessionOptions);

  note(`evaluating on ${IMAGES} other images…`);
  const evaluation = images(IMAGES, 7, processor.image_mean, processor.image_std);
  for (const m of models) {
    m.logits = new Float32Array(IMAGES * 1000);
    for (let i = 0; i < IMAGES; i += 8) {
      const count = Math.min(8, IMAGES - i);
      const out = await m.session.run({
        pixel_values: { data: evaluation.subarray(i * PIXELS, (i + count) * PIXELS), dims: [count, 3, SIZE, SIZE] },
      });
      m.logits.set(out.logits.data, i * 1000);
    }
  }

  // Interleaved blocks of about a second per model, so that load from other processes falls on
  // all of them alike; the median run time of each gives its throughput. The first run of a block
  // is not counted: the previous session's threads still spin for a while after its last run.
  for (const batch of [8, 1]) {
    note(`timing batch ${batch}, ${SECONDS} s per model…`);
    const feeds = { pixel_values: { data: evaluation.subarray(0, batch * PIXELS), dims: [batch, 3, SIZE, SIZE] } };
    for (const m of models) {
      await m.session.run(feeds);
      m.times = [];
    }
    const started = performance.now();
    while (performance.now() - started < SECONDS * 1000 * models.length) {
      for (const m of models) {
        const block = performance.now();
        await m.session.run(feeds);
        while (performance.now() - block < 1000) {
          const t = performance.now();
          await m.session.run(feeds);
          m.times.push(performance.now() - t);
        }
      }
    }
    for (const m of models) {
      const sorted = [...m.times].sort((a, b) => a - b);
      m[`batch${batch}`] = batch / (sorted[Math.floor(sorted.length / 2)] / 1000);
    }
  }
  for (const m of models) await m.session.release();

  const rows = (logits, i) => logits.subarray(i * 1000, (i + 1) * 1000);
  const argmax = (row) => row.reduce((best, v, k) => (v > row[best] ? k : best), 0);
  const cosine = (a, b) => {
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let k = 0; k < a.length; k += 1) {
      dot += a[k] * b[k];
      na += a[k] * a[k];
      nb += b[k] * b[k];
    }
    return dot / Math.sqrt(na * nb);
  };
  const centered = (logits) => {
    const mean = new Float64Array(1000);
    for (let i = 0; i < IMAGES; i += 1) for (let k = 0; k < 1000; k += 1) mean[k] += logits[i * 1000 + k] / IMAGES;
    return Float32Array.from(logits, (v, i) => v - mean[i % 1000]);
  };
  const reference = models[0].logits;
  const referenceCentered = centered(reference);
  const distinct = new Set(Array.from({ length: IMAGES }, (_, i) => argmax(rows(reference, i)))).size;
  for (const v of variants) {
    const c = centered(v.logits);
    let maxDelta = 0;
    let squared = 0;
    for (let i = 0; i < reference.length; i += 1) {
      const d = Math.abs(v.logits[i] - reference[i]);
      maxDelta = Math.max(maxDelta, d);
      squared += d * d;
    }
    const rmsDelta = Math.sqrt(squared / reference.length);
    let top1 = 0;
    let top1Centered = 0;
    let confident = 0;
    let confidentTop1 = 0;
    let cos = 0;
    let cosCentered = 0;
    for (let i = 0; i < IMAGES; i += 1) {
      const r = rows(reference, i);
      const q = rows(v.logits, i);
      const best = argmax(r);
      const same = best === argmax(q);
      top1 += same;
      top1Centered += argmax(rows(referenceCentered, i)) === argmax(rows(c, i));
      const runnerUp = Math.max(...r.filter((_, k) => k !== best));
      // A margin of 4 × the RMS logit change: int8 noise of that size rarely flips the ranking.
      if (r[best] - runnerUp > 4 * rmsDelta) {
        confident += 1;
        confidentTop1 += same;
      }
      cos += cosine(r, q) / IMAGES;
      cosCentered += cosine(rows(referenceCentered, i), rows(c, i)) / IMAGES;
    }
    Object.assign(v, {
      maxDelta,
      rmsDelta,
      top1: top1 / IMAGES,
      top1Centered: top1Centered / IMAGES,
      confident,
      confidentTop1,
      cos,
      cosCentered,
    });
  }

  const pct = (x) => `${(x * 100).toFixed(1)} %`;
  console.log(
    `cnn-int8 on resnet-50 (synthetic), ${cpus()[0]?.model.trim()}, ${cores} cores, onnxruntime-node ${RUNTIME_VERSION}, load ${loadAtStart.toFixed(1)} → ${loadavg()[0].toFixed(1)}`,
  );
  const int8 = variants[0];
  console.log(
    `  calibration: ${calibration.samples} images in ${calibration.batches} batches, ${calibrationSeconds.toFixed(1)} s; quantized ${JSON.stringify(int8.report.quantized)}, ${int8.report.foldedRelu} Relu folded, kept fp32 ${JSON.stringify(int8.report.keptFp32)}`,
  );
  console.log(`  weights: fp32 ${mib(int8.report.weightBytes.before)} → int8 ${mib(int8.report.weightBytes.after)}`);
  for (const batch of [8, 1]) {
    const ratio = int8[`batch${batch}`] / models[0][`batch${batch}`];
    console.log(
      `  batch ${batch}: fp32 ${models[0][`batch${batch}`].toFixed(1)} images/s, ` +
        variants
          .map(
            (v) =>
              `${v.name} ${v[`batch${batch}`].toFixed(1)} images/s (${(v[`batch${batch}`] / models[0][`batch${batch}`]).toFixed(2)}×)`,
          )
          .join(', ') +
        `: int8/fp32 = ${ratio.toFixed(2)}× (target ≥ 1.8×: ${ratio >= 1.8 ? 'PASS' : 'FAIL'})`,
    );
  }
  console.log(
    `  agreement with fp32 on ${IMAGES} images disjoint from calibration (fp32 predicts ${distinct} distinct classes):`,
  );
  for (const v of variants) {
    console.log(
      `    ${v.label}: top-1 ${pct(v.top1)} (target ≥ 98 %: ${v.top1 >= 0.98 ? 'PASS' : 'FAIL'}); max |Δlogit| ${v.maxDelta.toFixed(3)}, RMS ${v.rmsDelta.toFixed(3)}; ` +
        `cosine ${v.cos.toFixed(5)}; image-specific logits: cosine ${v.cosCentered.toFixed(4)}, top-1 ${pct(v.top1Centered)}; ` +
        `top-1 where the fp32 margin > 4 × RMS Δ: ${v.confidentTop1}/${v.confident}`,
    );
  }
} finally {
  await cleanup();
}
