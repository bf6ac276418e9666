/**
 * Int8 dynamic quantization of a float ONNX graph, written for ONNX Runtime's CPU kernels.
 * Weights become 8-bit initializers with one scale per output channel; activations are
 * quantized at run time by com.microsoft DynamicQuantizeMatMul (u8 activations × s8 or u8
 * weights in MLAS, float output with the bias added in the GEMM's output stage).
 */
import type { QuantizeReport } from '../model/reports.js';
import {
  floatAttribute,
  intAttribute,
  isDefaultDomain,
  opsetImports,
  tensorElementCount,
  walkNodes,
} from '../onnx/graph.js';
import {
  DataType,
  type GraphProto,
  int64,
  type ModelProto,
  type NodeProto,
  onnx,
  type TensorProto,
} from '../onnx/proto.js';
import { GraphRewrite } from '../onnx/rewrite.js';
import { floatValues, hasFloatValues, transpose } from '../onnx/weights.js';
import { keepMatcher, quantizeWeight, roundHalfEven, uint8Params } from './quantize-common.js';

export interface QuantizeOptions {
  /**
   * Weight element type: `int8` is symmetric per column (zero point 0, u8×s8 GEMM); `uint8` is
   * asymmetric per column (a zero point per column, u8×u8 GEMM). @defaultValue 'int8'
   */
  weightType?: 'int8' | 'uint8';
  /**
   * Quantize int8 weights to 7 bits ([-63, 63]): on AVX2 without VNNI, MLAS multiplies u8 × s8
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

const T = DataType;
const MS_DOMAIN = 'com.microsoft';
/** Rows above which a Gather table counts as a word-embedding table (vocabularies; not positions). */
const EMBEDDING_MIN_ROWS = 1000;

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
  if (options.weightType !== 'uint8')
    return { ...quantizeWeight(data, [K, N], 1, options.reduceRange !== false), zeroPoints: new Int8Array(N) };
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
  const zeroPoints = new Uint8Array(N);
  for (let n = 0; n < N; n += 1) {
    const { scale, zeroPoint } = uint8Params({ min: min[n]!, max: max[n]! });
    scales[n] = scale;
    zeroPoints[n] = zeroPoint;
  }
  const values = new Uint8Array(K * N);
  for (let k = 0; k < K; k += 1) {
    const row = k * N;
    for (let n = 0; n < N; n += 1) {
      const q = roundHalfEven(data[row + n]! / scales[n]!) + zeroPoints[n]!;
      values[row + n] = q < 0 ? 0 : Math.min(q, 255);
    }
  }
  return { values, scales, zeroPoints };
}

const FLOAT_TYPES = new Set<number>([T.FLOAT, T.FLOAT16, T.BFLOAT16, T.DOUBLE]);
const isFloatWeight = (t: TensorProto): boolean => (t.dims ?? []).length > 0 && FLOAT_TYPES.has(t.dataType ?? 0);

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

  const rewrite = new GraphRewrite(graph);

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
    const transB = intAttribute(node, 'transB', 0);
    if (
      intAttribute(node, 'transA', 0) !== 0 ||
      floatAttribute(node, 'alpha', 1) !== 1 ||
      (transB !== 0 && transB !== 1)
    )
      return null;
    const N = transB ? rows : cols;
    const c = inputs[2];
    if (c && (floatAttribute(node, 'beta', 1) !== 1 || !floatBias(c, N))) return null;
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
  const quantizeMatrix = (c: GemmCandidate): { values: string; scale: string; zeroPoint: string } => {
    const source = c.weight.name ?? '';
    const key = `${source}\u0000${c.transposed}`;
    const known = quantizedWeights.get(key);
    if (known) return known;
    const data = floatValues(c.weight);
    const q = quantizeColumns(c.transposed ? transpose(data, c.N, c.K) : data, c.K, c.N, { weightType, reduceRange });
    const q8 = weightType === 'uint8' ? T.UINT8 : T.INT8;
    const names = {
      values: rewrite.initializer(`${source}_quantized`, q8, [c.K, c.N], q.values),
      scale: rewrite.initializer(`${source}_scale`, T.FLOAT, [c.N], q.scales),
      zeroPoint: rewrite.initializer(`${source}_zero_point`, q8, [c.N], q.zeroPoints),
    };
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
        intAttribute(node, 'axis', 0) === 0 &&
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
    // Symmetric per row, 127 levels: a Gather feeds no integer GEMM, so there is no saturation to avoid.
    const q = quantizeWeight(floatValues(t), [rows, cols], 0, false);
    const names = {
      values: rewrite.initializer(`${source}_quantized`, T.INT8, [rows, cols], q.values),
      scale: rewrite.initializer(`${source}_scale`, T.FLOAT, [rows], q.scales),
      axes: defaultOpset >= 13 ? rewrite.initializer(`${source}_scale_axes`, T.INT64, [1], BigInt64Array.of(-1n)) : '',
    };
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
        rewrite.name(`${output}_${s}`),
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
    const q = quantizeMatrix(candidate);
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
  const { graph: newGraph, dropped, weightBytes } = rewrite.finish(out, replacedWeights, vanishedValues);
  const floatElements = (graph.initializer ?? []).filter(isFloatWeight).reduce((n, t) => n + tensorElementCount(t), 0);
  const quantizedElements = (graph.initializer ?? [])
    .filter((t) => dropped.has(t.name ?? '') && isFloatWeight(t))
    .reduce((n, t) => n + tensorElementCount(t), 0);
  report.weightBytes = weightBytes;
  report.quantizedFraction = floatElements === 0 ? 0 : quantizedElements / floatElements;

  const opsetImport = [...(model.opsetImport ?? [])];
  if (report.quantized.length > 0 && !opsetImport.some((o) => o.domain === MS_DOMAIN))
    opsetImport.push({ domain: MS_DOMAIN, version: 1 });
  return { model: onnx.ModelProto.create({ ...model, opsetImport, graph: newGraph }), report };
}

export type { QuantizeReport };
