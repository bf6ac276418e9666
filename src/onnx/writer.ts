/**
 * Writes an ONNX model whose big weights are streamed: the graph's small parts are encoded with
 * protobufjs, then each lazy weight is loaded, framed as a TensorProto and appended, one at a
 * time. Protobuf readers merge repeated fields wherever they appear, so initializers may follow
 * the rest of the graph. Peak memory is about one tensor, not the model.
 */
import { writeFileAtomically } from '../core/fs.js';
import type { GraphBuilder } from './builder.js';
import { encodeModel, onnx } from './proto.js';

function varint(value: number): Uint8Array {
  const bytes: number[] = [];
  let v = value;
  while (v >= 0x80) {
    bytes.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  bytes.push(v);
  return Uint8Array.from(bytes);
}

/** Field tag for a length-delimited field (wire type 2). */
const lengthDelimited = (field: number): Uint8Array => varint((field << 3) | 2);

// Field numbers from onnx.proto.
const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;
const TENSOR_RAW_DATA = 9;

export type WriteProgress = (written: number, total: number, tensor: string) => void;

export async function writeModel(
  path: string,
  builder: GraphBuilder,
  opsets: Record<string, number>,
  onTensor?: WriteProgress,
): Promise<void> {
  const model = builder.toModel(opsets);
  const graph = model.graph!;
  const modelWithoutGraph = encodeModel({ ...model, graph: null });
  const graphBytes = onnx.GraphProto.encode(graph).finish();

  // Sizes first: the graph field's length prefix must be known before its bytes.
  const headers = builder.lazyWeights.map((t) =>
    onnx.TensorProto.encode({ name: t.name, dims: t.dims, dataType: onnx.TensorProto.DataType.FLOAT }).finish(),
  );
  const tensorLengths = builder.lazyWeights.map((t, i) => {
    const dataBytes = t.dims.reduce((a, b) => a * b, 1) * 4;
    return headers[i]!.length + lengthDelimited(TENSOR_RAW_DATA).length + varint(dataBytes).length + dataBytes;
  });
  const graphLength =
    graphBytes.length +
    tensorLengths.reduce((sum, n) => sum + lengthDelimited(GRAPH_INITIALIZER).length + varint(n).length + n, 0);

  await writeFileAtomically(path, async (write) => {
    await write(modelWithoutGraph);
    await write(lengthDelimited(MODEL_GRAPH));
    await write(varint(graphLength));
    await write(graphBytes);
    for (const [i, tensor] of builder.lazyWeights.entries()) {
      const data = await tensor.load();
      const expected = tensor.dims.reduce((a, b) => a * b, 1);
      if (data.length !== expected)
        throw new Error(
          `writeModel: tensor ${tensor.name} has ${data.length} values, its dims [${tensor.dims.join(', ')}] need ${expected}`,
        );
      await write(lengthDelimited(GRAPH_INITIALIZER));
      await write(varint(tensorLengths[i]!));
      await write(headers[i]!);
      await write(lengthDelimited(TENSOR_RAW_DATA));
      await write(varint(data.byteLength));
      await write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      onTensor?.(i + 1, builder.lazyWeights.length, tensor.name);
    }
  });
}
