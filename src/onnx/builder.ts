/**
 * A small ONNX graph builder: inputs, weights, nodes, outputs → ModelProto bytes. The Hugging
 * Face importer and the tests' fixture models are written with it.
 */
import type { Dim } from './graph.js';
import { encodeModel, onnx, type AttributeProto, type IModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from './proto.js';

export type ElementType = 'float' | 'int64' | 'int32' | 'bool';

const ELEMENT_CODES: Record<ElementType, number> = {
  float: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
  int32: onnx.TensorProto.DataType.INT32,
  bool: onnx.TensorProto.DataType.BOOL,
};

export type AttributeValue = number | string | number[] | { floats: number[] } | { float: number };

function valueInfo(name: string, type: ElementType, shape: Dim[]): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEMENT_CODES[type],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {})) },
      },
    },
  };
}

function attribute(name: string, value: AttributeValue): AttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number') return Number.isInteger(value) ? { name, type: T.INT, i: value } : { name, type: T.FLOAT, f: value };
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  if ('floats' in value) return { name, type: T.FLOATS, floats: value.floats };
  return { name, type: T.FLOAT, f: value.float };
}

export class GraphBuilder {
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private readonly initializers: TensorProto[] = [];
  private readonly nodes: NodeProto[] = [];
  private counter = 0;

  constructor(private readonly name: string) {}

  input(name: string, type: ElementType, shape: Dim[]): string {
    this.inputs.push(valueInfo(name, type, shape));
    return name;
  }

  output(name: string, type: ElementType, shape: Dim[]): string {
    this.outputs.push(valueInfo(name, type, shape));
    return name;
  }

  /** A weight tensor; returns its name. */
  weight(name: string, data: Float32Array | BigInt64Array | Int32Array, dims: number[]): string {
    const dataType = data instanceof Float32Array ? ELEMENT_CODES.float : data instanceof BigInt64Array ? ELEMENT_CODES.int64 : ELEMENT_CODES.int32;
    this.initializers.push({ name, dims, dataType, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
    return name;
  }

  /** Adds a node; returns its output names (generated when not given). */
  node(opType: string, inputs: string[], options: { outputs?: string[] | number; attrs?: Record<string, AttributeValue>; domain?: string; name?: string } = {}): string[] {
    const id = this.counter++;
    const outputs = Array.isArray(options.outputs) ? options.outputs : Array.from({ length: options.outputs ?? 1 }, (_, i) => `${opType.toLowerCase()}_${id}_${i}`);
    this.nodes.push({
      name: options.name ?? `/${opType}_${id}`,
      opType,
      domain: options.domain ?? '',
      input: inputs,
      output: outputs,
      attribute: Object.entries(options.attrs ?? {}).map(([k, v]) => attribute(k, v)),
    });
    return outputs;
  }

  /** Shorthand for a single-output node. */
  op(opType: string, inputs: string[], attrs?: Record<string, AttributeValue>, extra: { domain?: string; name?: string; output?: string } = {}): string {
    return this.node(opType, inputs, { attrs, domain: extra.domain, name: extra.name, outputs: extra.output ? [extra.output] : 1 })[0]!;
  }

  toModel(opsets: Record<string, number> = { '': 17 }): IModelProto {
    return {
      irVersion: 8,
      producerName: 'kiln',
      opsetImport: Object.entries(opsets).map(([domain, version]) => ({ domain, version })),
      graph: { name: this.name, input: this.inputs, output: this.outputs, initializer: this.initializers, node: this.nodes },
    };
  }

  toBytes(opsets?: Record<string, number>): Uint8Array {
    return encodeModel(this.toModel(opsets));
  }
}
