/** Tensors as kiln passes them between the tokenizer, the scheduler and the runtime. */

export interface IntTensor {
  type: 'int64' | 'int32';
  data: BigInt64Array | Int32Array;
  dims: readonly number[];
}

export interface FloatTensor {
  data: Float32Array;
  dims: readonly number[];
}

/** A graph input: token ids and masks (integers) or pixel values (float32). */
export type InputTensor = IntTensor | (FloatTensor & { type: 'float32' });
