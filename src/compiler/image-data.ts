/**
 * Sample images for compiling image models: calibration batches for static int8 (`--calibrate`)
 * and the check of the compiled model against its fp32 source (`--verify`), both decoded and
 * preprocessed exactly as the runtime will (model/image.ts).
 */

import { sha256 } from '../core/hash.js';
import type { FloatTensor } from '../core/tensor.js';
import { type ImagePreprocessing, preprocess } from '../model/image.js';
import { imagePaths, readImageFile } from '../model/image-files.js';
import type { VerifyReport } from '../model/reports.js';
import { type Backend, createSession } from '../runtime/binding.js';

/** Images per calibration or verify batch: enough to keep ONNX Runtime busy, little memory. */
const BATCH = 8;

/** The images of a folder or list file, and one hash of their contents (for the compile cache key). */
export async function sampleImages(path: string): Promise<{ paths: string[]; sha256: string }> {
  const paths = await imagePaths(path);
  const hashes: string[] = [];
  // Read as images (a coded error naming the entry when one is missing or too big), hashed for the cache key.
  for (const [i, p] of paths.entries()) hashes.push(sha256(await readImageFile(p, `image ${i + 1} of ${path}`)));
  return { paths, sha256: sha256(hashes.join('\n')) };
}

/** Preprocessed images as [n, 3, H, W] batches, read lazily. */
export async function* imageBatches(
  paths: readonly string[],
  spec: ImagePreprocessing,
  origin: string,
): AsyncGenerator<FloatTensor> {
  const size = 3 * spec.height * spec.width;
  for (let start = 0; start < paths.length; start += BATCH) {
    const chunk = paths.slice(start, start + BATCH);
    const data = new Float32Array(chunk.length * size);
    for (const [i, path] of chunk.entries()) {
      const where = `image ${start + i + 1} of ${origin}`;
      data.set(await preprocess(await readImageFile(path, where), spec, where), i * size);
    }
    yield { data, dims: [chunk.length, 3, spec.height, spec.width] };
  }
}

/**
 * Runs the fp32 source and the compiled graph on every image and compares their top-1 labels
 * and scores. Images carry no gold labels here, so the measure is agreement with the source.
 */
export async function verifyImages(options: {
  path: string;
  paths: readonly string[];
  spec: ImagePreprocessing;
  labels: readonly string[];
  referencePath: string;
  compiledPath: string;
  backend: Backend;
  minAgreement: number;
  maxAccuracyDrop: number;
}): Promise<VerifyReport> {
  const reference = await createSession(options.referencePath, { backend: options.backend, optimization: 'disabled' });
  const compiled = await createSession(options.compiledPath, { backend: options.backend, optimization: 'disabled' });
  const classes = options.labels.length;
  let rows = 0;
  let same = 0;
  let maxDelta = 0;
  let sumDelta = 0;
  const flipped: VerifyReport['flipped'] = [];
  let flippedCount = 0;
  const top = (values: Float32Array, row: number): number => {
    let best = 0;
    for (let c = 1; c < classes; c += 1) if (values[row * classes + c]! > values[row * classes + best]!) best = c;
    return best;
  };
  try {
    for await (const batch of imageBatches(options.paths, options.spec, options.path)) {
      const feed = { [options.spec.input]: { type: 'float32' as const, ...batch } };
      const ref = (await reference.run(feed))[reference.outputNames[0]!]!.data;
      const out = (await compiled.run(feed))[compiled.outputNames[0]!]!.data;
      const n = batch.dims[0]!;
      for (let r = 0; r < n; r += 1) {
        for (let c = 0; c < classes; c += 1) {
          const delta = Math.abs(ref[r * classes + c]! - out[r * classes + c]!);
          maxDelta = Math.max(maxDelta, delta);
          sumDelta += delta;
        }
        const a = top(ref, r);
        const b = top(out, r);
        if (a === b) same += 1;
        else {
          flippedCount += 1;
          if (flipped.length < 10)
            flipped.push({
              line: rows + r + 1,
              text: options.paths[rows + r]!,
              reference: options.labels[a] ?? String(a),
              compiled: options.labels[b] ?? String(b),
            });
        }
      }
      rows += n;
    }
  } finally {
    await reference.release();
    await compiled.release();
  }
  return {
    data: options.path,
    rows,
    agreement: rows === 0 ? 1 : same / rows,
    maxAbsLogitDelta: maxDelta,
    meanAbsLogitDelta: rows === 0 ? 0 : sumDelta / (rows * classes),
    flipped,
    flippedCount,
    limits: { maxAccuracyDrop: options.maxAccuracyDrop, minAgreement: options.minAgreement },
  };
}
