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
