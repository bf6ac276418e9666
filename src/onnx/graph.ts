/** Read-only views of an ONNX graph: operator counts, parameters, inputs and outputs, node attributes. */
import {
  type AttributeProto,
  DataType,
  type GraphProto,
  int64,
  type ModelProto,
  type NodeProto,
  onnx,
  type TensorProto,
  type ValueInfoProto,
} from './proto.js';

/** A tensor dimension: a fixed size, a symbolic name, or unknown. */
export type Dim = number | string | null;

export interface TensorInfo {
  name: string;
  /** ONNX element type in lower case, e.g. `int64`, `float`. */
  type: string;
  shape: Dim[] | null;
}

export interface OpUse {
  domain: string;
  opType: string;
  count: number;
  /** Names of the nodes using it (for error messages), in graph order. */
  nodes: string[];
}

const ELEMENT_TYPES: Record<number, string> = Object.fromEntries(
  Object.entries(DataType)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [v as number, k.toLowerCase()]),
);

export function elementTypeName(code: number | null | undefined): string {
  return ELEMENT_TYPES[code ?? 0] ?? `type#${code}`;
}

/** Every node of the graph and of the subgraphs inside its attributes (If, Loop, Scan). */
export function* walkNodes(graph: GraphProto): Generator<NodeProto> {
  for (const node of graph.node ?? []) {
    yield node;
    for (const attr of node.attribute ?? []) {
      if (attr.g) yield* walkNodes(attr.g);
      for (const g of attr.graphs ?? []) yield* walkNodes(g);
    }
  }
}

/** Whether a node is a standard ONNX operator (the default domain, written "" or "ai.onnx"). */
export function isDefaultDomain(node: NodeProto): boolean {
  return !node.domain || node.domain === 'ai.onnx';
}

export function attribute(node: NodeProto, name: string): AttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}

/** An int attribute's value, or `fallback` (the operator's default) when the node does not set it. */
export function intAttribute(node: NodeProto, name: string, fallback: number): number {
  const a = attribute(node, name);
  return a ? int64(a.i) : fallback;
}

/** A float attribute's value, or `fallback` (the operator's default) when the node does not set it. */
export function floatAttribute(node: NodeProto, name: string, fallback: number): number {
  const a = attribute(node, name);
  return a ? (a.f ?? 0) : fallback;
}

/** Operator uses keyed `domain:opType` (default domain written as ""), in first-seen order. */
export function operatorUses(graph: GraphProto): OpUse[] {
  const uses = new Map<string, OpUse>();
  let index = 0;
  for (const node of walkNodes(graph)) {
    const domain = node.domain === 'ai.onnx' ? '' : (node.domain ?? '');
    const opType = node.opType ?? '';
    const key = `${domain}:${opType}`;
    let use = uses.get(key);
    if (!use) {
      use = { domain, opType, count: 0, nodes: [] };
      uses.set(key, use);
    }
    use.count += 1;
    use.nodes.push(node.name || `#${index}`);
    index += 1;
  }
  return [...uses.values()];
}

/** `{ "MatMul": 32, "com.microsoft:FusedGemm": 1 }`, sorted by count then name. */
export function operatorCounts(graph: GraphProto): Record<string, number> {
  const entries = operatorUses(graph).map((u) => [u.domain ? `${u.domain}:${u.opType}` : u.opType, u.count] as const);
  entries.sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return Object.fromEntries(entries);
}

export function tensorElementCount(tensor: TensorProto): number {
  return (tensor.dims ?? []).reduce<number>((n, d) => n * int64(d), 1);
}

const WEIGHT_TYPES = new Set<number>([
  DataType.FLOAT,
  DataType.FLOAT16,
  DataType.BFLOAT16,
  DataType.DOUBLE,
  DataType.INT8,
  DataType.UINT8,
]);

/**
 * Number of weights stored in initializers (the model's parameters, embeddings included).
 * Scalars and integer tensors are constants of the graph (shapes, axes, scales), not parameters.
 */
export function parameterCount(graph: GraphProto): number {
  let total = 0;
  for (const t of graph.initializer ?? []) {
    if ((t.dims ?? []).length > 0 && WEIGHT_TYPES.has(t.dataType ?? 0)) total += tensorElementCount(t);
  }
  return total;
}

/** The first initializer that keeps its data outside the file, if any. */
export function externalTensor(graph: GraphProto): string | null {
  for (const t of graph.initializer ?? []) {
    if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) return t.name ?? '?';
  }
  return null;
}

function dimOf(d: {
  dimParam?: string | null;
  dimValue?: number | { toNumber(): number } | null;
  value?: string;
}): Dim {
  // protobufjs names the member of the oneof that is set; unset members read as defaults.
  const which = d.value ?? (d.dimParam ? 'dimParam' : undefined);
  if (which === 'dimParam') return d.dimParam ?? null;
  if (which === 'dimValue') return int64(d.dimValue);
  return null;
}

function tensorInfo(value: ValueInfoProto): TensorInfo {
  const tensorType = value.type?.tensorType;
  const dims = tensorType?.shape?.dim;
  return {
    name: value.name ?? '',
    type: elementTypeName(tensorType?.elemType),
    shape: dims ? dims.map(dimOf) : null,
  };
}

/** Graph inputs that are real inputs (older exporters also list initializers as inputs). */
export function graphInputs(graph: GraphProto): TensorInfo[] {
  const weights = new Set((graph.initializer ?? []).map((t) => t.name));
  return (graph.input ?? []).filter((v) => !weights.has(v.name)).map(tensorInfo);
}

export function graphOutputs(graph: GraphProto): TensorInfo[] {
  return (graph.output ?? []).map(tensorInfo);
}

/** Opset versions by domain ("" for the default ONNX domain). */
export function opsetImports(model: ModelProto): Record<string, number> {
  const out: Record<string, number> = {};
  for (const o of model.opsetImport ?? []) {
    const domain = o.domain === 'ai.onnx' ? '' : (o.domain ?? '');
    out[domain] = int64(o.version);
  }
  return out;
}

export function describeTensor(t: TensorInfo): string {
  const shape = t.shape ? `[${t.shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]` : '[?]';
  return `${t.name} (${t.type} ${shape})`;
}
