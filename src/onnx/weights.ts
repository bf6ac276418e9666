/**
 * Weight data as ONNX stores it: an initializer's float values and its size in bytes, typed
 * arrays as the raw bytes of a new initializer, and a Linear layer's weight turned for MatMul.
 */
import { tensorElementCount } from './graph.js';
import { DataType, onnx, type TensorProto } from './proto.js';

const T = DataType;

/** Bytes per element by ONNX data type; float8 (17–20) and int4 (21, 22) types included for completeness. */
const ELEMENT_BYTES: Record<number, number> = {
  [T.FLOAT]: 4,
  [T.UINT8]: 1,
  [T.INT8]: 1,
  [T.UINT16]: 2,
  [T.INT16]: 2,
  [T.INT32]: 4,
  [T.INT64]: 8,
  [T.BOOL]: 1,
  [T.FLOAT16]: 2,
  [T.DOUBLE]: 8,
  [T.UINT32]: 4,
  [T.UINT64]: 8,
  [T.COMPLEX64]: 8,
  [T.COMPLEX128]: 16,
  [T.BFLOAT16]: 2,
  17: 1,
  18: 1,
  19: 1,
  20: 1,
  21: 0.5,
  22: 0.5,
};

/** Bytes of a tensor's data as stored (wherever it is stored: raw, typed fields or an external file). */
export function tensorBytes(t: TensorProto): number {
  if (t.dataType === T.STRING) return (t.stringData ?? []).reduce((n, s) => n + s.length, 0);
  return Math.ceil(tensorElementCount(t) * (ELEMENT_BYTES[t.dataType ?? 0] ?? 0));
}

/** Whether a float initializer's values are in the model (not in an external file) and complete. */
export function hasFloatValues(t: TensorProto): boolean {
  if (t.dataType !== T.FLOAT || t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) return false;
  const count = tensorElementCount(t);
  return t.rawData && t.rawData.length > 0 ? t.rawData.length === count * 4 : (t.floatData ?? []).length === count;
}

/** A float initializer's values (call after hasFloatValues). */
export function floatValues(t: TensorProto): Float32Array {
  const raw = t.rawData;
  if (raw && raw.length > 0) {
    // protobufjs hands out views into the file's buffer at any offset; Float32Array needs 4-byte
    // alignment, so an unaligned one is copied (new Uint8Array copies; Buffer#slice would not).
    return raw.byteOffset % 4 === 0
      ? new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4)
      : new Float32Array(new Uint8Array(raw).buffer);
  }
  return Float32Array.from(t.floatData ?? []);
}

/** The bytes of a typed array, for a new initializer's `rawData`. */
export function rawBytes(values: ArrayBufferView): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** A row-major [rows, cols] matrix as [cols, rows]: PyTorch's nn.Linear stores [out, in], MatMul reads [in, out]. */
export function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r += 1) {
    for (let c = 0; c < cols; c += 1) out[c * rows + r] = data[r * cols + c]!;
  }
  return out;
}
