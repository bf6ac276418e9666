/**
 * What a task gives the scheduler: how long a request is (for length buckets and the token
 * budget) and how a batch of requests becomes the graph's feeds. The scheduler knows nothing
 * else about tasks: text, images and embeddings differ only here and in what they do with
 * each request's output row.
 */
import type { InputTensor } from '../core/tensor.js';
import { buildFeeds } from '../model/feeds.js';
import type { EncodedText } from '../model/tokenizer.js';
import type { TensorInfo } from '../onnx/graph.js';

export interface Batcher<I> {
  /** Sequence length of a request; 1 for fixed-size inputs (an image), whose bucket list is [1]. */
  length(item: I): number;
  /** The feeds of one batch, every request padded to `paddedLength`. */
  feeds(items: readonly I[], paddedLength: number): Record<string, InputTensor>;
}

/** Token ids → input_ids, attention_mask (and token_type_ids), padded with `padId`. */
export function textBatcher(inputs: readonly TensorInfo[], padId: number): Batcher<EncodedText> {
  return {
    length: (item) => item.ids.length,
    feeds: (items, paddedLength) => buildFeeds(items, inputs, padId, paddedLength),
  };
}

/** Fixed-size float tensors (one image, CHW) stacked into one [n, ...shape] input. */
export function tensorBatcher(input: string, shape: readonly number[]): Batcher<Float32Array> {
  const size = shape.reduce((a, b) => a * b, 1);
  return {
    length: () => 1,
    feeds: (items) => {
      const data = new Float32Array(items.length * size);
      items.forEach((item, i) => {
        data.set(item, i * size);
      });
      return { [input]: { type: 'float32', data, dims: [items.length, ...shape] } };
    },
  };
}
