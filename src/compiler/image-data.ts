/**
 * Sample images for compiling image models: calibration batches for static int8 (`--calibrate`)
 * and the check of the compiled model against its fp32 source (`--verify`), both decoded and
 * preprocessed exactly as the runtime will (model/image.ts).
 */

import { sha256 } from '../core/hash.js';
import type { FloatTensor } from '../core/tensor.js';
import { type ImagePreprocessing, preprocess } from '../model/image.js';
import { imagePaths, readImageFile } from '../model/image-files.js';

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
