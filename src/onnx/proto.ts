/**
 * Reading and writing ONNX protobuf files. The schema comes from `onnx-proto` (protobufjs);
 * everything else in kiln sees these types through this module only.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { onnx as O } from 'onnx-proto';
import { KilnError } from '../core/errors.js';

// The schema is required on first use (onnx-proto is CommonJS): every kiln command imports this
// module through the command table, and building protobufjs's schema costs each ~0.13 s of CPU,
// while only those that read or write a graph need it.
const require = createRequire(import.meta.url);
let schema: typeof O | undefined;
const loadSchema = (): typeof O => (schema ??= (require('onnx-proto') as typeof import('onnx-proto')).onnx);

/** The message types of onnx.proto that kiln uses, loaded on first access. */
export const onnx = {
  get AttributeProto(): typeof O.AttributeProto {
    return loadSchema().AttributeProto;
  },
  get GraphProto(): typeof O.GraphProto {
    return loadSchema().GraphProto;
  },
  get ModelProto(): typeof O.ModelProto {
    return loadSchema().ModelProto;
  },
  get TensorProto(): typeof O.TensorProto {
    return loadSchema().TensorProto;
  },
};

/**
 * TensorProto.DataType as onnx.proto numbers it, for code that runs at import without loading the
 * schema (test/unit/onnx-enums.test.ts checks it against the schema).
 */
export const DataType: typeof O.TensorProto.DataType = {
  UNDEFINED: 0,
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  COMPLEX64: 14,
  COMPLEX128: 15,
  BFLOAT16: 16,
};

/** AttributeProto.AttributeType as onnx.proto numbers it (checked as DataType is). */
export const AttributeType: typeof O.AttributeProto.AttributeType = {
  UNDEFINED: 0,
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  SPARSE_TENSOR: 11,
  TYPE_PROTO: 13,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
  SPARSE_TENSORS: 12,
  TYPE_PROTOS: 14,
};
export type ModelProto = O.ModelProto;
export type IModelProto = O.IModelProto;
export type GraphProto = O.IGraphProto;
export type NodeProto = O.INodeProto;
export type TensorProto = O.ITensorProto;
export type ValueInfoProto = O.IValueInfoProto;
export type AttributeProto = O.IAttributeProto;

/** A protobuf int64 field: protobufjs gives a Long object, a number, or nothing. */
type Int64 = number | { toNumber(): number } | null | undefined;

export function int64(value: Int64): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'number' ? value : value.toNumber();
}

/** Decodes ONNX bytes; `path` is only used to name the file in errors. */
export function decodeModel(bytes: Uint8Array, path: string): ModelProto {
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // protobufjs reports reads past the end of the buffer as "index out of range". Random bytes
    // (a JSON file, say) do that too, so it only means truncation when the file starts like an
    // ONNX model: field 1 (ir_version, varint tag 0x08) with a plausible version.
    const looksLikeOnnx = bytes[0] === 0x08 && (bytes[1] ?? 0) >= 1 && (bytes[1] ?? 0) <= 20;
    if (message.includes('index out of range') && looksLikeOnnx) {
      throw new KilnError('KILN_ERR_ONNX_TRUNCATED', { path, bytes: bytes.length }, { cause: err });
    }
    throw new KilnError(
      'KILN_ERR_ONNX_NOT_ONNX',
      { path, reason: `protobuf decoding failed: ${message}` },
      { cause: err },
    );
  }
  if (!model.graph || (model.graph.node ?? []).length === 0) {
    throw new KilnError('KILN_ERR_ONNX_NOT_ONNX', { path, reason: 'it decodes, but holds no graph nodes' });
  }
  if (int64(model.irVersion) === 0) {
    throw new KilnError('KILN_ERR_ONNX_NOT_ONNX', { path, reason: 'it has no ir_version' });
  }
  return model;
}

export async function readModel(path: string): Promise<ModelProto> {
  return decodeModel(await readFile(path), path);
}

export function encodeModel(model: IModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}
