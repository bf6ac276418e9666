/** Token ids of several texts → the padded input tensors a text model takes. */
import type { IntTensor } from '../core/tensor.js';
import type { TensorInfo } from '../onnx/graph.js';
import type { EncodedText } from './tokenizer.js';

/**
 * Pads every sequence to `length` (at least the longest one) with `padId` and a zero mask, and
 * fills the tensors the graph declares (input_ids, attention_mask, token_type_ids).
 */
export function buildFeeds(
  texts: readonly EncodedText[],
  inputs: readonly TensorInfo[],
  padId: number,
  length?: number,
): Record<string, IntTensor> {
  const width = Math.max(length ?? 0, ...texts.map((t) => t.ids.length));
  const feeds: Record<string, IntTensor> = {};
  for (const input of inputs) {
    const is64 = input.type !== 'int32';
    const data = is64 ? new BigInt64Array(texts.length * width) : new Int32Array(texts.length * width);
    texts.forEach((text, row) => {
      const base = row * width;
      for (let col = 0; col < width; col += 1) {
        const inText = col < text.ids.length;
        const value =
          input.name === 'input_ids'
            ? inText
              ? text.ids[col]!
              : padId
            : input.name === 'attention_mask'
              ? inText
                ? 1
                : 0
              : inText
                ? (text.typeIds[col] ?? 0)
                : 0;
        if (is64) (data as BigInt64Array)[base + col] = BigInt(value);
        else (data as Int32Array)[base + col] = value;
      }
    });
    feeds[input.name] = { type: is64 ? 'int64' : 'int32', data, dims: [texts.length, width] };
  }
  return feeds;
}
