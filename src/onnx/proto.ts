/**
 * Reading and writing ONNX protobuf files. The schema comes from `onnx-proto` (protobufjs);
 * everything else in kiln sees these types through this module only.
 */
import { readFile } from 'node:fs/promises';
import type { onnx as O } from 'onnx-proto';
import onnxProto from 'onnx-proto';
import { KilnError } from '../core/errors.js';

export const onnx = onnxProto.onnx;
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
