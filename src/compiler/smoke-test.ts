/**
 * One inference on the optimized graph before the artifact is written, so an artifact that
 * cannot run is never written: two rows in, one row of the expected width out for each.
 */
import { KilnError } from '../core/errors.js';
import type { FloatTensor, InputTensor } from '../core/tensor.js';
import { buildFeeds } from '../model/feeds.js';
import type { ImagePreprocessing } from '../model/image.js';
import type { TextTokenizer } from '../model/tokenizer.js';
import type { TensorInfo } from '../onnx/graph.js';
import { type Backend, createSession, storedGraphOptimization } from '../runtime/binding.js';
import { DEFAULT_MAX_LENGTH } from './compile-options.js';

/** A batch to test with, and what a wrong answer to it fails to be (for the error). */
export interface TestBatch {
  feeds: Record<string, InputTensor | FloatTensor>;
  rows: number;
  /** The end of "a test inference on … did not return …", given the expected width. */
  expected: (width: number) => string;
}

/** Two texts through the model's tokenizer; `per` names what each text gets (e.g. "logits per text (…)"). */
export function textBatch(tokenizer: TextTokenizer, inputs: TensorInfo[], per: string): TestBatch {
  const encoded = [
    tokenizer.encode('kiln compiles this sentence.', DEFAULT_MAX_LENGTH),
    tokenizer.encode('short', DEFAULT_MAX_LENGTH),
  ];
  return {
    feeds: buildFeeds(encoded, inputs, tokenizer.padId),
    rows: encoded.length,
    expected: (width) => `${encoded.length} texts did not return ${width} ${per}`,
  };
}

/** Two images of fixed noise at the compiled size. */
export function imageBatch(image: ImagePreprocessing): TestBatch {
  const size = 3 * image.height * image.width;
  const data = new Float32Array(2 * size);
  for (let i = 0; i < data.length; i += 1) data[i] = ((i * 7919) % 255) / 127.5 - 1;
  return {
    feeds: { [image.input]: { type: 'float32', data, dims: [2, 3, image.height, image.width] } },
    rows: 2,
    expected: (width) =>
      `2 images of ${image.height} × ${image.width} did not return ${width} logits per image (one per label)`,
  };
}

/**
 * Runs `batch` on the graph at `modelPath` and checks that the first output is [rows, width]
 * (or [rows, tokens, width]).
 * `shownPath` names the model in errors; a runtime failure becomes KILN_ERR_COMPILE_FAILED.
 */
export async function smokeTest(
  modelPath: string,
  shownPath: string,
  backend: Backend,
  batch: TestBatch,
  width: number,
): Promise<void> {
  const session = await createSession(modelPath, {
    backend,
    optimization: storedGraphOptimization(backend),
    intraOpThreads: 1,
  });
  try {
    const results = await session.run(batch.feeds);
    const output = results[session.outputNames[0] ?? ''];
    // [rows, width], or [rows, tokens, width] for a head that answers per token.
    if (
      (output?.dims.length !== 2 && output?.dims.length !== 3) ||
      output.dims[0] !== batch.rows ||
      output.dims.at(-1) !== width
    ) {
      throw new KilnError('KILN_ERR_MODEL_OUTPUTS', {
        path: shownPath,
        found: `${session.outputNames[0]} with shape [${output?.dims.join(', ')}]`,
        problem: `a test inference on ${batch.expected(width)}`,
      });
    }
  } catch (err) {
    if (err instanceof KilnError && err.code !== 'KILN_ERR_RUNTIME_RUN') throw err;
    throw new KilnError(
      'KILN_ERR_COMPILE_FAILED',
      { path: shownPath, step: 'running a test inference', reason: (err as Error).message },
      { cause: err },
    );
  } finally {
    await session.release();
  }
}
