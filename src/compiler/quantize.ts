/**
 * Int8 dynamic quantization of a float ONNX graph, written for ONNX Runtime's CPU kernels.
 * Weights become 8-bit initializers with one scale per output channel; activations are
 * quantized at run time by com.microsoft DynamicQuantizeMatMul (u8 activations × s8 or u8
 * weights in MLAS, float output with the bias added in the GEMM's output stage).
 */
import type { QuantizeReport } from '../model/reports.js';
import { opsetImports, tensorElementCount, walkNodes } from '../onnx/graph.js';
import {
  type AttributeProto,
  type GraphProto,
  int64,
  type ModelProto,
  type NodeProto,
  onnx,
  type TensorProto,
} from '../onnx/proto.js';

export interface QuantizeOptions {
  /**
   * Weight element type: `int8` is symmetric per column (zero point 0, u8×s8 GEMM); `uint8` is
   * asymmetric per column (a zero point per column, u8×u8 GEMM). @defaultValue 'int8'
   */
  weightType?: 'int8' | 'uint8';
  /**
   * Quantize int8 weights to 7 bits ([-64, 63]): on AVX2 without VNNI, MLAS multiplies u8 × s8
   * pairs with VPMADDUBSW, whose int16 sums saturate for 8-bit weights (255·127·2 > 32767).
   * Ignored for uint8. @defaultValue true
   */
  reduceRange?: boolean;
  /**
   * Also store the word-embedding table (a Gather on axis 0 whose data is a 2-D float initializer
   * with at least 1000 rows, used only by such Gathers) in int8 with one scale per row.
   * @defaultValue false
   */
  quantizeEmbeddings?: boolean;
  /** Node names (exact) or name prefixes ending in `*` to keep in fp32. @defaultValue [] */
  keep?: string[];
  /** Keep MatMuls whose weight has fewer elements than this in fp32 (tiny heads gain nothing). @defaultValue 0 */
  minElements?: number;
}

export interface QuantizedColumns {
  /** Row-major [K, N], like the float weight. */
  values: Int8Array | Uint8Array;
  /** One per column: w ≈ (q - zeroPoint) · scale. */
  scales: Float32Array;
  zeroPoints: Int8Array | Uint8Array;
}

const T = onnx.TensorProto.DataType;
const MS_DOMAIN = 'com.microsoft';
/** Rows above which a Gather table counts as a word-embedding table (vocabularies; not positions). */
const EMBEDDING_MIN_ROWS = 1000;

/** Rounds half to even, as numpy (ONNX Runtime's Python quantizer) and MLAS do. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Quantizes a row-major float matrix [K, N] per column (per output channel of a MatMul weight).
 * int8: symmetric, scale = max|w| / (reduceRange ? 63 : 127), zero point 0. uint8: the column's
 * range widened to include 0, scale = (max - min) / 255, zero point = round(-min / scale).
 * All-zero columns get scale 1. Every value dequantizes to within scale / 2 of the original.
 */
export function quantizeColumns(
  data: Float32Array,
  K: number,
  N: number,
  options: Pick<QuantizeOptions, 'weightType' | 'reduceRange'> = {},
): QuantizedColumns {
  if (data.length !== K * N)
    throw new RangeError(`quantizeColumns: data has ${data.length} elements, expected K·N = ${K}·${N} = ${K * N}`);
  const unsigned = options.weightType === 'uint8';
  const min = new Float64Array(N);
  const max = new Float64Array(N);
  for (let k = 0; k < K; k += 1) {
    const row = k * N;
    for (let n = 0; n < N; n += 1) {
      const w = data[row + n]!;
      if (w < min[n]!) min[n] = w;
      if (w > max[n]!) max[n] = w;
    }
  }
  const scales = new Float32Array(N);
  const zeroPoints = unsigned ? new Uint8Array(N) : new Int8Array(N);
  const qmax = unsigned ? 255 : options.reduceRange === false ? 127 : 63;
  for (let n = 0; n < N; n += 1) {
    if (unsigned) {
      const range = max[n]! - min[n]!;
      scales[n] = range === 0 ? 1 : range / 255;
      zeroPoints[n] = Math.min(255, Math.max(0, roundHalfEven(-min[n]! / scales[n]!)));
    } else {
      const absMax = Math.max(max[n]!, -min[n]!);
      scales[n] = absMax === 0 ? 1 : absMax / qmax;
    }
  }
  // Divide by the stored float32 scale, so the bound holds for what ONNX Runtime computes with.
  const values = unsigned ? new Uint8Array(K * N) : new Int8Array(K * N);
  const lo = unsigned ? 0 : -qmax;
  for (let k = 0; k < K; k += 1) {
    const row = k * N;
    for (let n = 0; n < N; n += 1) {
      const q = roundHalfEven(data[row + n]! / scales[n]!) + zeroPoints[n]!;
      values[row + n] = q < lo ? lo : Math.min(q, qmax);
    }
  }
  return { values, scales, zeroPoints };
}

/** Symmetric int8 per row (127 levels: a Gather feeds no integer GEMM, so no saturation to avoid). */
function quantizeRows(data: Float32Array, rows: number, cols: number): { values: Int8Array; scales: Float32Array } {
  const values = new Int8Array(rows * cols);
  const scales = new Float32Array(rows);
  for (let r = 0; r < rows; r += 1) {
    const start = r * cols;
    let absMax = 0;
    for (let c = 0; c < cols; c += 1) absMax = Math.max(absMax, Math.abs(data[start + c]!));
    scales[r] = absMax === 0 ? 1 : absMax / 127;
    const scale = scales[r]!;
    for (let c = 0; c < cols; c += 1)
      values[start + c] = Math.min(127, Math.max(-127, roundHalfEven(data[start + c]! / scale)));
  }
  return { values, scales };
}

/** Bytes per element by ONNX data type; float8 and int4 types included for completeness. */
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
const FLOAT_TYPES = new Set<number>([T.FLOAT, T.FLOAT16, T.BFLOAT16, T.DOUBLE]);

/** Bytes of a tensor's data as stored (wherever it is stored: raw, typed fields or an external file). */
export function tensorBytes(t: TensorProto): number {
  if (t.dataType === T.STRING) return (t.stringData ?? []).reduce((n, s) => n + s.length, 0);
  return Math.ceil(tensorElementCount(t) * (ELEMENT_BYTES[t.dataType ?? 0] ?? 0));
}

const isFloatWeight = (t: TensorProto): boolean => (t.dims ?? []).length > 0 && FLOAT_TYPES.has(t.dataType ?? 0);

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

const bytesOf = (a: Int8Array | Uint8Array | Float32Array | BigInt64Array): Uint8Array =>
  new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

const isDefaultDomain = (node: NodeProto): boolean => !node.domain || node.domain === 'ai.onnx';

function attr(node: NodeProto, name: string): AttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}

function intAttr(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a ? int64(a.i) : fallback;
}

function floatAttr(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a ? (a.f ?? 0) : fallback;
}

function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r += 1) {
    for (let c = 0; c < cols; c += 1) out[c * rows + r] = data[r * cols + c]!;
  }
  return out;
}

function keepMatcher(patterns: readonly string[]): (name: string) => boolean {
  const exact = new Set(patterns.filter((p) => !p.endsWith('*')));
  const prefixes = patterns.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
  return (name) => exact.has(name) || prefixes.some((p) => name.startsWith(p));
}

/** A MatMul or Gemm that DynamicQuantizeMatMul can compute: its constant weight, as [K, N]. */
interface GemmCandidate {
  weight: TensorProto;
  K: number;
  N: number;
  /** Gemm with transB = 1 stores the weight [N, K]. */
  transposed: boolean;
  /** Gemm's C input, already a bias. */
  bias: string | null;
}

/**
 * Rewrites `model`'s MatMul and Gemm nodes with constant float weights as com.microsoft
 * DynamicQuantizeMatMul with per-column 8-bit weights (see {@link QuantizeOptions}), folding a
 * following bias Add into the node. Returns a new model; `model` is not modified (the result
 * shares unchanged nodes and tensors with it). Node names, graph inputs and outputs keep their
 * names; weights replaced by 8-bit copies are dropped once nothing else reads them.
 */
export function quantizeModel(
  model: ModelProto,
  options: QuantizeOptions = {},
): { model: ModelProto; report: QuantizeReport } {
  const graph: GraphProto = model.graph ?? {};
  const weightType = options.weightType ?? 'int8';
  const reduceRange = options.reduceRange ?? true;
  const minElements = options.minElements ?? 0;
  const isKept = keepMatcher(options.keep ?? []);
  const defaultOpset = opsetImports(model)[''] ?? 1;

  const nodes = graph.node ?? [];
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  /** Readers of each tensor name: top-level nodes, nodes in subgraphs (outer-scope reads), graph outputs. */
  const uses = new Map<string, number>();
  const consumers = new Map<string, NodeProto[]>();
  for (const node of walkNodes(graph)) {
    for (const name of node.input ?? []) if (name) uses.set(name, (uses.get(name) ?? 0) + 1);
  }
  for (const node of nodes) {
    for (const name of node.input ?? []) {
      if (!name) continue;
      const readers = consumers.get(name);
      if (readers) readers.push(node);
      else consumers.set(name, [node]);
    }
  }
  for (const o of graph.output ?? []) uses.set(o.name ?? '', (uses.get(o.name ?? '') ?? 0) + 1);

  const taken = new Set<string>([
    ...initializers.keys(),
    ...(graph.input ?? []).map((v) => v.name ?? ''),
    ...(graph.valueInfo ?? []).map((v) => v.name ?? ''),
  ]);
  for (const node of walkNodes(graph)) for (const name of node.output ?? []) taken.add(name);
  const uniqueName = (base: string): string => {
    let name = base;
    for (let i = 1; taken.has(name); i += 1) name = `${base}_${i}`;
    taken.add(name);
    return name;
  };

  const floatBias = (name: string | undefined, N: number): boolean => {
    const t = name ? initializers.get(name) : undefined;
    return !!t && hasFloatValues(t) && (t.dims ?? []).length === 1 && int64(t.dims![0]) === N;
  };

  const gemmCandidate = (node: NodeProto): GemmCandidate | null => {
    if (!isDefaultDomain(node)) return null;
    const inputs = node.input ?? [];
    const weight = initializers.get(inputs[1] ?? '');
    if (!weight || !hasFloatValues(weight) || (weight.dims ?? []).length !== 2) return null;
    const [rows, cols] = (weight.dims ?? []).map(int64) as [number, number];
    if (node.opType === 'MatMul' && inputs.length === 2)
      return { weight, K: rows, N: cols, transposed: false, bias: null };
    if (node.opType !== 'Gemm') return null;
    const transB = intAttr(node, 'transB', 0);
    if (intAttr(node, 'transA', 0) !== 0 || floatAttr(node, 'alpha', 1) !== 1 || (transB !== 0 && transB !== 1))
      return null;
    const N = transB ? rows : cols;
    const c = inputs[2];
    if (c && (floatAttr(node, 'beta', 1) !== 1 || !floatBias(c, N))) return null;
    return { weight, K: transB ? cols : rows, N, transposed: transB === 1, bias: c || null };
  };

  /** The Add that only adds a constant [N] bias to `node`'s output, with the bias name. */
  const biasAdd = (node: NodeProto, N: number): { add: NodeProto; bias: string } | null => {
    const output = node.output?.[0] ?? '';
    const readers = consumers.get(output) ?? [];
    const add = readers[0];
    if (
      readers.length !== 1 ||
      uses.get(output) !== 1 ||
      !add ||
      add.opType !== 'Add' ||
      !isDefaultDomain(add) ||
      (add.input ?? []).length !== 2
    )
      return null;
    const bias = add.input![0] === output ? add.input![1] : add.input![0];
    return bias && bias !== output && floatBias(bias, N) ? { add, bias } : null;
  };

  const quantizedWeights = new Map<string, { values: string; scale: string; zeroPoint: string }>();
  const newInitializers: TensorProto[] = [];
  const quantizeWeight = (c: GemmCandidate): { values: string; scale: string; zeroPoint: string } => {
    const source = c.weight.name ?? '';
    const key = `${source}\u0000${c.transposed}`;
    const known = quantizedWeights.get(key);
    if (known) return known;
    const data = floatValues(c.weight);
    const q = quantizeColumns(c.transposed ? transpose(data, c.N, c.K) : data, c.K, c.N, { weightType, reduceRange });
    const q8 = weightType === 'uint8' ? T.UINT8 : T.INT8;
    const names = {
      values: uniqueName(`${source}_quantized`),
      scale: uniqueName(`${source}_scale`),
      zeroPoint: uniqueName(`${source}_zero_point`),
    };
    newInitializers.push(
      { name: names.values, dataType: q8, dims: [c.K, c.N], rawData: bytesOf(q.values) },
      { name: names.scale, dataType: T.FLOAT, dims: [c.N], rawData: bytesOf(q.scales) },
      { name: names.zeroPoint, dataType: q8, dims: [c.N], rawData: bytesOf(q.zeroPoints) },
    );
    quantizedWeights.set(key, names);
    return names;
  };

  /** Tables that are word embeddings: 2-D float, ≥ 1000 rows, read only by axis-0 Gathers as data. */
  const embeddingTables = new Set<string>();
  if (options.quantizeEmbeddings && defaultOpset >= 11) {
    const gatherReads = new Map<string, number>();
    for (const node of nodes) {
      const table = node.input?.[0] ?? '';
      if (
        node.opType === 'Gather' &&
        isDefaultDomain(node) &&
        intAttr(node, 'axis', 0) === 0 &&
        initializers.has(table)
      )
        gatherReads.set(table, (gatherReads.get(table) ?? 0) + 1);
    }
    for (const [name, reads] of gatherReads) {
      const t = initializers.get(name)!;
      const dims = (t.dims ?? []).map(int64);
      // A table also read elsewhere (an LM head tied to it) would be stored twice.
      const onlyGathers = uses.get(name) === reads;
      if (hasFloatValues(t) && dims.length === 2 && dims[0]! >= EMBEDDING_MIN_ROWS && onlyGathers)
        embeddingTables.add(name);
    }
  }
  const quantizedTables = new Map<string, { values: string; scale: string; axes: string }>();
  const quantizeTable = (t: TensorProto): { values: string; scale: string; axes: string } => {
    const source = t.name ?? '';
    const known = quantizedTables.get(source);
    if (known) return known;
    const [rows, cols] = (t.dims ?? []).map(int64) as [number, number];
    const q = quantizeRows(floatValues(t), rows, cols);
    const names = {
      values: uniqueName(`${source}_quantized`),
      scale: uniqueName(`${source}_scale`),
      axes: defaultOpset >= 13 ? uniqueName(`${source}_scale_axes`) : '',
    };
    newInitializers.push(
      { name: names.values, dataType: T.INT8, dims: [rows, cols], rawData: bytesOf(q.values) },
      { name: names.scale, dataType: T.FLOAT, dims: [rows], rawData: bytesOf(q.scales) },
    );
    if (names.axes)
      newInitializers.push({
        name: names.axes,
        dataType: T.INT64,
        dims: [1],
        rawData: bytesOf(BigInt64Array.from([-1n])),
      });
    quantizedTables.set(source, names);
    return names;
  };

  const report: QuantizeReport = {
    quantized: [],
    kept: [],
    embeddings: [],
    weightBytes: { before: 0, after: 0 },
    quantizedFraction: 0,
  };
  const removedNodes = new Set<NodeProto>();
  const vanishedValues = new Set<string>();
  const replacedWeights = new Set<string>();
  const out: NodeProto[] = [];

  for (const node of nodes) {
    if (removedNodes.has(node)) continue;
    const name = node.name ?? '';
    const table =
      node.opType === 'Gather' && embeddingTables.has(node.input?.[0] ?? '')
        ? initializers.get(node.input![0]!)!
        : null;
    if (table) {
      if (isKept(name)) {
        report.kept.push(name);
        out.push(node);
        continue;
      }
      const q = quantizeTable(table);
      const ids = node.input![1]!;
      const output = node.output![0]!;
      const base = name || output;
      const [gathered, asFloat, rowScales, rowScales1] = ['quantized', 'float', 'scale', 'scale_unsqueezed'].map((s) =>
        uniqueName(`${output}_${s}`),
      ) as [string, string, string, string];
      const unsqueeze: NodeProto = q.axes
        ? {
            name: `${base}/scale_unsqueeze`,
            opType: 'Unsqueeze',
            domain: '',
            input: [rowScales, q.axes],
            output: [rowScales1],
          }
        : {
            name: `${base}/scale_unsqueeze`,
            opType: 'Unsqueeze',
            domain: '',
            input: [rowScales],
            output: [rowScales1],
            attribute: [{ name: 'axes', type: onnx.AttributeProto.AttributeType.INTS, ints: [-1] }],
          };
      out.push(
        { ...node, input: [q.values, ids], output: [gathered] },
        {
          name: `${base}/cast`,
          opType: 'Cast',
          domain: '',
          input: [gathered],
          output: [asFloat],
          attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: T.FLOAT }],
        },
        {
          name: `${base}/scale_gather`,
          opType: 'Gather',
          domain: '',
          input: [q.scale, ids],
          output: [rowScales],
          attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }],
        },
        unsqueeze,
        { name: `${base}/dequantize`, opType: 'Mul', domain: '', input: [asFloat, rowScales1], output: [output] },
      );
      replacedWeights.add(table.name ?? '');
      if (!report.embeddings.includes(table.name ?? '')) report.embeddings.push(table.name ?? '');
      continue;
    }

    const candidate = node.opType === 'MatMul' || node.opType === 'Gemm' ? gemmCandidate(node) : null;
    if (!candidate) {
      out.push(node);
      continue;
    }
    if (isKept(name) || candidate.K * candidate.N < minElements) {
      report.kept.push(name);
      out.push(node);
      continue;
    }
    const q = quantizeWeight(candidate);
    let bias = candidate.bias;
    let output = node.output![0]!;
    if (!bias) {
      const folded = biasAdd(node, candidate.N);
      if (folded) {
        removedNodes.add(folded.add);
        vanishedValues.add(output);
        bias = folded.bias;
        output = folded.add.output![0]!;
      }
    }
    out.push({
      name: node.name,
      opType: 'DynamicQuantizeMatMul',
      domain: MS_DOMAIN,
      input: [node.input![0]!, q.values, q.scale, q.zeroPoint, ...(bias ? [bias] : [])],
      output: [output],
    });
    replacedWeights.add(candidate.weight.name ?? '');
    report.quantized.push(name);
  }

  // Weights that only the rewritten nodes read are gone; a tied weight read elsewhere stays.
  const stillRead = new Set<string>((graph.output ?? []).map((o) => o.name ?? ''));
  const scan: GraphProto = { node: out };
  for (const node of walkNodes(scan)) for (const name of node.input ?? []) stillRead.add(name);
  const dropped = new Set([...replacedWeights].filter((name) => !stillRead.has(name)));
  for (const name of dropped) vanishedValues.add(name);

  const finalInitializers = [
    ...(graph.initializer ?? []).filter((t) => !dropped.has(t.name ?? '')),
    ...newInitializers,
  ];
  const floatElements = (graph.initializer ?? []).filter(isFloatWeight).reduce((n, t) => n + tensorElementCount(t), 0);
  const quantizedElements = (graph.initializer ?? [])
    .filter((t) => dropped.has(t.name ?? '') && isFloatWeight(t))
    .reduce((n, t) => n + tensorElementCount(t), 0);
  report.weightBytes = {
    before: (graph.initializer ?? []).reduce((n, t) => n + tensorBytes(t), 0),
    after: finalInitializers.reduce((n, t) => n + tensorBytes(t), 0),
  };
  report.quantizedFraction = floatElements === 0 ? 0 : quantizedElements / floatElements;

  const opsetImport = [...(model.opsetImport ?? [])];
  if (report.quantized.length > 0 && !opsetImport.some((o) => o.domain === MS_DOMAIN))
    opsetImport.push({ domain: MS_DOMAIN, version: 1 });
  const newGraph: GraphProto = {
    ...graph,
    node: out,
    initializer: finalInitializers,
    // Old exporters list initializers as inputs too; a dropped weight is no longer an input.
    input: (graph.input ?? []).filter((v) => !dropped.has(v.name ?? '')),
    valueInfo: (graph.valueInfo ?? []).filter((v) => !vanishedValues.has(v.name ?? '')),
  };
  return { model: onnx.ModelProto.create({ ...model, opsetImport, graph: newGraph }), report };
}

export type { QuantizeReport };
