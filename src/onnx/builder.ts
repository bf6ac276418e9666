/**
 * A small ONNX graph builder: inputs, weights, nodes, outputs → ModelProto bytes. The Hugging
 * Face importer and the tests' fixture models are written with it.
 */
import type { Dim } from './graph.js';
import {
  type AttributeProto,
  DataType,
  encodeModel,
  type IModelProto,
  type NodeProto,
  onnx,
  type TensorProto,
  type ValueInfoProto,
} from './proto.js';

export type ElementType = 'float' | 'int64' | 'int32' | 'bool';

const ELEMENT_CODES: Record<ElementType, number> = {
  float: DataType.FLOAT,
  int64: DataType.INT64,
  int32: DataType.INT32,
  bool: DataType.BOOL,
};

export type AttributeValue = number | string | number[] | { floats: number[] } | { float: number };

function valueInfo(name: string, type: ElementType, shape: Dim[]): ValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEMENT_CODES[type],
        shape: {
          dim: shape.map((d) =>
            typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {},
          ),
        },
      },
    },
  };
}

function attribute(name: string, value: AttributeValue): AttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number')
    return Number.isInteger(value) ? { name, type: T.INT, i: value } : { name, type: T.FLOAT, f: value };
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  if ('floats' in value) return { name, type: T.FLOATS, floats: value.floats };
  return { name, type: T.FLOAT, f: value.float };
}

/** A float weight whose data is produced only when the model file is written (see writer.ts). */
export interface LazyTensor {
  name: string;
  dims: number[];
  load: () => Promise<Float32Array>;
}

export class GraphBuilder {
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private readonly initializers: TensorProto[] = [];
  private readonly nodes: NodeProto[] = [];
  /** Weights streamed into the file one at a time, so a model never sits in memory whole. */
  readonly lazyWeights: LazyTensor[] = [];
  private counter = 0;

  /** `prefix` starts every generated tensor and node name, so a fragment spliced into another graph cannot collide with its names. */
  constructor(
    private readonly name: string,
    private readonly prefix = '',
  ) {}

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
    const dataType =
      data instanceof Float32Array
        ? ELEMENT_CODES.float
        : data instanceof BigInt64Array
          ? ELEMENT_CODES.int64
          : ELEMENT_CODES.int32;
    this.initializers.push({
      name,
      dims,
      dataType,
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    return name;
  }

  /** A float weight loaded when the file is written; returns its name. */
  lazyWeight(name: string, dims: number[], load: () => Promise<Float32Array>): string {
    this.lazyWeights.push({ name, dims, load });
    return name;
  }

  /** A float constant (scalar when `dims` is []), stored as a small initializer. */
  constant(name: string, values: number[], dims: number[] = []): string {
    return this.weight(name, Float32Array.from(values), dims);
  }

  /** An int64 constant such as a shape or axes list. */
  ints(name: string, values: number[], dims: number[] = [values.length]): string {
    return this.weight(name, BigInt64Array.from(values.map(BigInt)), dims);
  }

  /** Adds a node; returns its output names (generated when not given). */
  node(
    opType: string,
    inputs: string[],
    options: {
      outputs?: string[] | number;
      attrs?: Record<string, AttributeValue>;
      domain?: string;
      name?: string;
    } = {},
  ): string[] {
    const id = this.counter++;
    const outputs = Array.isArray(options.outputs)
      ? options.outputs
      : Array.from({ length: options.outputs ?? 1 }, (_, i) => `${this.prefix}${opType.toLowerCase()}_${id}_${i}`);
    this.nodes.push({
      name: options.name ?? `/${this.prefix}${opType}_${id}`,
      opType,
      domain: options.domain ?? '',
      input: inputs,
      output: outputs,
      attribute: Object.entries(options.attrs ?? {}).map(([k, v]) => attribute(k, v)),
    });
    return outputs;
  }

  /** Shorthand for a single-output node. */
  op(
    opType: string,
    inputs: string[],
    attrs?: Record<string, AttributeValue>,
    extra: { domain?: string; name?: string; output?: string } = {},
  ): string {
    return this.node(opType, inputs, {
      attrs,
      domain: extra.domain,
      name: extra.name,
      outputs: extra.output ? [extra.output] : 1,
    })[0]!;
  }

  toModel(opsets: Record<string, number> = { '': 17 }): IModelProto {
    return {
      irVersion: 8,
      producerName: 'kiln',
      opsetImport: Object.entries(opsets).map(([domain, version]) => ({ domain, version })),
      graph: {
        name: this.name,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
        node: this.nodes,
      },
    };
  }

  /** The whole model in memory, lazy weights loaded. For small graphs (tests); big ones use writeModel. */
  async toBytesWithWeights(opsets?: Record<string, number>): Promise<Uint8Array> {
    const model = this.toModel(opsets);
    for (const lazy of this.lazyWeights) {
      const data = await lazy.load();
      model.graph!.initializer!.push({
        name: lazy.name,
        dims: lazy.dims,
        dataType: ELEMENT_CODES.float,
        rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      });
    }
    return encodeModel(model);
  }

  toBytes(opsets?: Record<string, number>): Uint8Array {
    if (this.lazyWeights.length > 0)
      throw new Error('GraphBuilder.toBytes: the graph has lazy weights; use writeModel or toBytesWithWeights');
    return encodeModel(this.toModel(opsets));
  }
}
