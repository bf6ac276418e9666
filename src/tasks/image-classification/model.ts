/**
 * A loaded image-classification artifact: images decoded and preprocessed by sharp (in libuv's
 * thread pool, off the event loop), fixed-size tensors batched by the scheduler, scores and
 * top-k labels on the way back.
 */
import { KilnError } from '../../core/errors.js';
import { softmax } from '../../core/stats.js';
import type { Manifest } from '../../model/artifact.js';
import { IMAGE_FORMATS, type ImagePreprocessing, MAX_IMAGE_PIXELS, preprocess } from '../../model/image.js';
import { tensorBatcher } from '../../runtime/batcher.js';
import type { Scheduler } from '../../runtime/scheduler.js';
import {
  type Layout,
  type ModelInput,
  type ModelOptions,
  startScheduler,
  TaskModel,
} from '../../runtime/task-model.js';

/** Labels reported per image beside the top one. */
export const DEFAULT_TOP_K = 5;

export interface ImagePrediction {
  label: string;
  /** Softmax probability of `label`, in [0, 1] (the graph's own score when it ends in Softmax). */
  score: number;
  /** The `topK` most likely labels, best first. */
  labels: Array<{ label: string; score: number }>;
  /** The graph's output row, one value per label in the manifest's order. */
  logits: number[];
}

export class ImageClassifier extends TaskModel<Float32Array, ImagePrediction> {
  private constructor(dir: string, manifest: Manifest, scheduler: Scheduler<Float32Array>, layout: Layout) {
    super(dir, manifest, scheduler, layout);
  }

  get task(): 'image-classification' {
    return 'image-classification';
  }

  static async open(dir: string, manifest: Manifest, options: ModelOptions): Promise<ImageClassifier> {
    const spec = manifest.image;
    if (!spec)
      throw new KilnError('KILN_ERR_ARTIFACT_INVALID', {
        path: dir,
        problem: `its task is ${manifest.task} but the manifest has no "image" preprocessing`,
      });
    const { scheduler, layout } = await startScheduler(
      dir,
      manifest,
      options,
      tensorBatcher(spec.input, [3, spec.height, spec.width]),
      true,
    );
    return new ImageClassifier(dir, manifest, scheduler, layout);
  }

  /** How image bytes become the input tensor. */
  get preprocessing(): ImagePreprocessing {
    return this.manifest.image!;
  }

  /**
   * Classifies encoded images (JPEG, PNG, WebP); each is queued on its own as soon as it is
   * decoded. `describe(i)` names image i in errors.
   */
  async classify(
    images: readonly Uint8Array[],
    describe: (index: number) => string = (i) => `image ${i} (counting from 0)`,
    options: { deadline?: number; topK?: number } = {},
  ): Promise<ImagePrediction[]> {
    // Decode all first: one bad image fails the request before any of it is queued.
    const tensors = await Promise.all(images.map((bytes, i) => preprocess(bytes, this.preprocessing, describe(i))));
    return this.classifyTensors(tensors, options);
  }

  /** Classifies preprocessed tensors ([3, height, width] each, KServe FP32 rows). */
  async classifyTensors(
    rows: readonly Float32Array[],
    options: { deadline?: number; topK?: number } = {},
  ): Promise<ImagePrediction[]> {
    const size = 3 * this.preprocessing.height * this.preprocessing.width;
    rows.forEach((row, i) => {
      if (row.length !== size) {
        throw new KilnError('KILN_ERR_INPUT_IMAGE', {
          where: `tensor row ${i}`,
          problem: `it has ${row.length} values, not 3 × ${this.preprocessing.height} × ${this.preprocessing.width} = ${size}`,
          formats: IMAGE_FORMATS.join(', ').toUpperCase(),
          megapixels: MAX_IMAGE_PIXELS / 1e6,
        });
      }
    });
    const request = {};
    const outputs = await Promise.all(
      rows.map((row) => this.scheduler.submit(row, { deadline: options.deadline, request })),
    );
    return outputs.map((logits) =>
      rank(logits, this.labels, this.preprocessing.outputs === 'probabilities', options.topK ?? DEFAULT_TOP_K),
    );
  }

  async infer(
    inputs: readonly ModelInput[],
    describe: (index: number) => string = (i) => `input ${i} (counting from 0)`,
    options: { deadline?: number } = {},
  ): Promise<ImagePrediction[]> {
    return this.classify(
      inputs.map((input, i) => {
        if (input instanceof Uint8Array) return input;
        throw new KilnError('KILN_ERR_INPUT_KIND', {
          where: describe(i),
          expected: 'image bytes (JPEG, PNG or WebP)',
          got: typeof input === 'string' ? 'a text' : 'a text pair',
          task: this.task,
        });
      }),
      describe,
      options,
    );
  }

  inputSize(): number {
    return 1;
  }
}

/** Every label's score in label order: softmax of the logits, or the graph's own probabilities. */
export function scoresOf(logits: readonly number[], probabilities: boolean): number[] {
  return probabilities ? [...logits] : softmax(logits);
}

/** Scores (softmax of the logits, or the graph's own probabilities) and the top `k` labels. */
export function rank(
  logits: readonly number[],
  labels: readonly string[],
  probabilities: boolean,
  k: number,
): ImagePrediction {
  const scores = scoresOf(logits, probabilities);
  const order = scores.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
  const top = order.slice(0, Math.max(1, k)).map((i) => ({ label: labels[i] ?? String(i), score: scores[i]! }));
  return { label: top[0]!.label, score: top[0]!.score, labels: top, logits: [...logits] };
}
