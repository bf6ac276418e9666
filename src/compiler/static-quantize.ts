/**
 * Static int8 quantization of a float ONNX graph in QDQ form, for CNNs on ONNX Runtime's CPU
 * kernels. Activations are uint8 with one asymmetric scale per tensor, measured on calibration
 * batches (min/max); weights are int8, symmetric, one scale per output channel. The graph says
 * this with QuantizeLinear → DequantizeLinear pairs around float operators, and ONNX Runtime's
 * optimizer (QDQSelectorActionTransformer) replaces each group with an integer kernel:
 *
 *   DQ(x), DQ(w), DQ(b int32) → Conv → Q          ⇒ QLinearConv
 *   DQ(a), DQ(b) → Add → Q                        ⇒ QLinearAdd
 *   DQ → GlobalAveragePool / AveragePool → Q       ⇒ QLinearGlobalAveragePool / QLinearAveragePool
 *   DQ → MaxPool / Flatten / Reshape / … → Q       ⇒ the operator on uint8 (same scale in and out)
 *   DQ(a), DQ(w), DQ(c int32) → Gemm [→ Q]         ⇒ QGemm (float output without Q)
 *   DQ(a), DQ(w) → MatMul [→ Q]                    ⇒ QLinearMatMul, or MatMulIntegerToFloat
 *
 * Those rules want every DequantizeLinear to feed one node, the target's output to feed only its
 * QuantizeLinear, and biases as int32 with scale = input scale × weight scale; this module
 * writes exactly that. A Relu right after a quantized node is dropped: its output range starts
 * at 0, so the uint8 zero point is 0 and QuantizeLinear's clamp is the Relu. Biases are also
 * corrected for the mean shift that rounding the weights causes (see `biasCorrection`).
 */
import { KilnError } from '../core/errors.js';
import type { StaticQuantizeReport } from '../model/reports.js';
import { floatAttribute, intAttribute, isDefaultDomain, opsetImports, walkNodes } from '../onnx/graph.js';
import {
  type AttributeProto,
  AttributeType,
  DataType,
  type GraphProto,
  int64,
  type ModelProto,
  type NodeProto,
  onnx,
  type TensorProto,
} from '../onnx/proto.js';
import { GraphRewrite } from '../onnx/rewrite.js';
import { floatValues, hasFloatValues } from '../onnx/weights.js';
import { type CalibrateOptions, type CalibrationBatches, type CalibrationResult, calibrate } from './calibrate.js';
import { keepMatcher, type QuantizedWeight, quantizeWeight, roundHalfEven, uint8Params } from './quantize-common.js';

const T = DataType;
const A = AttributeType;

export interface StaticQuantizeOptions {
  /**
   * Quantize weights to 7 bits ([-63, 63]) instead of 8 ([-127, 127]): on AVX2 without VNNI,
   * MLAS's u8 × s8 kernels add pairs of products in int16 (VPMADDUBSW), which saturate for
   * 8-bit weights (255 · 127 · 2 > 32767); 7-bit ones cannot. uint8 weights would not saturate
   * either, but take MLAS's slower u8 × u8 kernels. What each choice costs in agreement with
   * fp32: benchmarks/README.md (`bench:cnn-int8 -- --variants`).
   * @defaultValue true
   */
  reduceRange?: boolean;
  /** One weight scale per output channel (`false`: one per tensor). @defaultValue true */
  perChannel?: boolean;
  /**
   * Subtract from each Conv and Gemm bias the mean output shift its rounded weights cause,
   * Σ (w_q − w) · E[x] with E[x] the calibration mean of each input channel (bias correction,
   * Nagel et al. 2019). Its effect: benchmarks/README.md (`bench:cnn-int8 -- --variants`).
   * @defaultValue true
   */
  biasCorrection?: boolean;
  /** Node names (exact) or name prefixes ending in `*` to keep in fp32. @defaultValue [] */
  keep?: string[];
}

type Kind = 'weighted' | 'binary' | 'pool' | 'shared';

/**
 * Operators whose integer form reads and writes uint8 with their own output scale. Add only
 * (residuals): QLinearMul exists, but products of two activations (GELU, attention) lose more.
 */
const BINARY = new Set(['Add']);
const POOLS = new Set(['GlobalAveragePool', 'AveragePool']);
/** Operators that move or select values: ONNX Runtime drops their Q/DQ when scales match, so the output shares the input's. */
const SHARED = new Set(['MaxPool', 'Flatten', 'Reshape', 'Transpose', 'Squeeze', 'Unsqueeze']);
/** Operators whose output is float when their first input is. */
const FLOAT_PRESERVING = new Set([
  ...BINARY,
  ...POOLS,
  ...SHARED,
  'Conv',
  'Gemm',
  'MatMul',
  'Relu',
  'Mul',
  'Sub',
  'Div',
  'Softmax',
  'LayerNormalization',
  'Erf',
  'Sigmoid',
  'Tanh',
  'Clip',
  'BatchNormalization',
  'Concat',
  'Slice',
  'Gather',
  'Expand',
  'Sqrt',
  'Pow',
  'LeakyRelu',
  'HardSigmoid',
  'ReduceMean',
]);

/**
 * The mean change of each output channel that rounding the weights causes, Σ (w_q − w) · E[x],
 * or null when the node or the means do not fit (MatMul has no bias to correct).
 */
function outputShift(
  node: NodeProto,
  weight: Float32Array,
  dims: readonly number[],
  q: QuantizedWeight,
  axis: number | null,
  means: Float64Array,
): Float64Array | null {
  const stride = axis === null ? weight.length : dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channels = axis === null ? 1 : dims[axis]!;
  const error = (i: number): number =>
    q.values[i]! * q.scales[axis === null ? 0 : Math.floor(i / stride) % channels]! - weight[i]!;
  if (node.opType === 'Conv') {
    const [outputs, perGroup, kh, kw] = dims as [number, number, number, number];
    const groups = intAttribute(node, 'group', 1);
    if (means.length !== perGroup * groups) return null;
    const shift = new Float64Array(outputs);
    for (let o = 0; o < outputs; o += 1) {
      const group = Math.floor(o / (outputs / groups));
      for (let c = 0; c < perGroup; c += 1) {
        let sum = 0;
        const start = (o * perGroup + c) * kh * kw;
        for (let i = start; i < start + kh * kw; i += 1) sum += error(i);
        shift[o] = shift[o]! + sum * means[group * perGroup + c]!;
      }
    }
    return shift;
  }
  if (node.opType !== 'Gemm') return null;
  const transposed = intAttribute(node, 'transB', 0) === 1;
  const [rows, cols] = dims as [number, number];
  const [outputs, inner] = transposed ? [rows, cols] : [cols, rows];
  if (means.length !== inner) return null;
  const shift = new Float64Array(outputs);
  for (let o = 0; o < outputs; o += 1) {
    for (let k = 0; k < inner; k += 1)
      shift[o] = shift[o]! + error(transposed ? o * inner + k : k * outputs + o) * means[k]!;
  }
  return shift;
}

/** What the rewrite will do, decided from the graph alone (no calibration yet). */
interface Plan {
  kinds: Map<NodeProto, Kind>;
  /** Relu nodes dropped, by the node whose output they read. */
  foldedRelu: Map<NodeProto, NodeProto>;
  /** Quantized activation tensors → the tensor whose range sets their scale (themselves, or the input of a SHARED op). */
  tensors: Map<string, string>;
  /** Weight tensor, its per-channel axis, and the bias of each weighted node. */
  weights: Map<NodeProto, { weight: TensorProto; axis: number; bias: TensorProto | null }>;
  perChannel: boolean;
}

function plan(model: ModelProto, options: StaticQuantizeOptions): Plan {
  const graph: GraphProto = model.graph ?? {};
  const opset = opsetImports(model)[''] ?? 1;
  // Per-axis DequantizeLinear arrived in opset 13; QuantizeLinear itself in 10 (below, nothing is quantized).
  const perChannel = (options.perChannel ?? true) && opset >= 13;
  const isKept = keepMatcher(options.keep ?? []);
  const nodes = graph.node ?? [];
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const graphOutputs = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  const producer = new Map<string, NodeProto>();
  const consumers = new Map<string, NodeProto[]>();
  for (const node of nodes) {
    for (const o of node.output ?? []) if (o) producer.set(o, node);
    for (const i of node.input ?? []) {
      if (!i) continue;
      const list = consumers.get(i);
      if (list) list.push(node);
      else consumers.set(i, [node]);
    }
  }
  // A tensor read inside an If/Loop body stays float: the body cannot be rewired from here.
  const readInSubgraph = new Set<string>();
  for (const node of nodes) {
    for (const a of node.attribute ?? [])
      for (const g of [a.g, ...(a.graphs ?? [])])
        if (g) for (const n of walkNodes(g)) for (const i of n.input ?? []) readInSubgraph.add(i);
  }

  const floats = new Set<string>();
  for (const v of graph.input ?? []) if (v.type?.tensorType?.elemType === T.FLOAT) floats.add(v.name ?? '');
  for (const t of graph.initializer ?? []) if (t.dataType === T.FLOAT) floats.add(t.name ?? '');

  const kinds = new Map<NodeProto, Kind>();
  const foldedRelu = new Map<NodeProto, NodeProto>();
  const weights = new Map<NodeProto, { weight: TensorProto; axis: number; bias: TensorProto | null }>();
  const isActivation = (name: string | undefined): name is string =>
    !!name && floats.has(name) && !initializers.has(name) && !readInSubgraph.has(name);
  const floatInitializer = (name: string | undefined, rank: number): TensorProto | null => {
    const t = name ? initializers.get(name) : undefined;
    return t && hasFloatValues(t) && (t.dims ?? []).length === rank ? t : null;
  };
  /** The node that writes a tensor; for the output of a folded Relu, the node before the Relu. */
  const producedBy = (name: string): NodeProto | undefined => producer.get(name);

  const weighted = (node: NodeProto): { weight: TensorProto; axis: number; bias: TensorProto | null } | null => {
    const [x, w, b] = node.input ?? [];
    if (!isActivation(x)) return null;
    if (node.opType === 'Conv') {
      const weight = floatInitializer(w, 4);
      if (!weight) return null;
      const bias = b ? floatInitializer(b, 1) : null;
      if (b && (!bias || int64(bias.dims![0]) !== int64(weight.dims![0]))) return null;
      return { weight, axis: 0, bias };
    }
    if (node.opType === 'MatMul') {
      const weight = floatInitializer(w, 2);
      return weight && (node.input ?? []).length === 2 ? { weight, axis: 1, bias: null } : null;
    }
    if (node.opType === 'Gemm') {
      const weight = floatInitializer(w, 2);
      if (!weight || intAttribute(node, 'transA', 0) !== 0 || floatAttribute(node, 'alpha', 1) !== 1) return null;
      const transB = intAttribute(node, 'transB', 0);
      const axis = transB ? 0 : 1;
      const bias = b ? floatInitializer(b, 1) : null;
      if (b && (!bias || floatAttribute(node, 'beta', 1) !== 1 || int64(bias.dims![0]) !== int64(weight.dims![axis])))
        return null;
      return { weight, axis, bias };
    }
    return null;
  };

  for (const node of opset >= 10 ? nodes : []) {
    const inputs = node.input ?? [];
    const output = node.output?.[0] ?? '';
    if (inputs[0] && floats.has(inputs[0]) && FLOAT_PRESERVING.has(node.opType ?? '') && isDefaultDomain(node))
      for (const o of node.output ?? []) floats.add(o);
    if (!isDefaultDomain(node) || isKept(node.name ?? '') || (node.output ?? []).length !== 1) continue;
    const op = node.opType ?? '';
    const w = weighted(node);
    if (w) {
      kinds.set(node, 'weighted');
      weights.set(node, w);
    } else if (BINARY.has(op) && inputs.length === 2 && isActivation(inputs[0]) && isActivation(inputs[1])) {
      kinds.set(node, 'binary');
    } else if (POOLS.has(op) && isActivation(inputs[0])) {
      kinds.set(node, 'pool');
    } else if (
      SHARED.has(op) &&
      isActivation(inputs[0]) &&
      producedBy(inputs[0]) &&
      kinds.has(producedBy(inputs[0])!)
    ) {
      kinds.set(node, 'shared');
    } else if (op === 'Relu' && isActivation(inputs[0])) {
      const source = producedBy(inputs[0]);
      const kind = source ? kinds.get(source) : undefined;
      const onlyReader = (consumers.get(inputs[0]) ?? []).length === 1 && !graphOutputs.has(inputs[0]);
      if (
        source &&
        kind &&
        kind !== 'shared' &&
        onlyReader &&
        !graphOutputs.has(output) &&
        !readInSubgraph.has(output)
      ) {
        foldedRelu.set(source, node);
        // The producer now writes the Relu's output (see rewrite); reads of it resolve to the producer.
        producer.set(output, source);
      }
    }
  }

  const effectiveOutput = (node: NodeProto): string => foldedRelu.get(node)?.output?.[0] ?? node.output![0]!;
  const tensors = new Map<string, string>();
  const consumersOf = (name: string): NodeProto[] => consumers.get(name) ?? [];
  for (const [node, kind] of kinds) {
    const inputs = node.input ?? [];
    const activationInputs = kind === 'binary' ? inputs.slice(0, 2) : inputs.slice(0, 1);
    for (const name of activationInputs) if (!tensors.has(name)) tensors.set(name, name);
    const out = effectiveOutput(node);
    if (graphOutputs.has(out) || readInSubgraph.has(out)) continue;
    // MatMul and Gemm may keep a float output (MatMulIntegerToFloat, QGemm); the others need their Q to become integer kernels.
    const needsQ =
      kind !== 'weighted' ||
      node.opType === 'Conv' ||
      foldedRelu.has(node) ||
      consumersOf(out).some((c) => kinds.has(c));
    if (needsQ) tensors.set(out, kind === 'shared' ? inputs[0]! : out);
  }
  // A SHARED op's input may itself share its scale; follow the chain to a calibrated tensor.
  for (const [name, source] of tensors) {
    let root = source;
    for (let guard = 0; tensors.get(root) !== root && guard < 1000; guard += 1) root = tensors.get(root)!;
    tensors.set(name, root);
  }
  return { kinds, foldedRelu, tensors, weights, perChannel };
}

/** Tensors whose ranges quantizeStatic needs (graph inputs included: calibrate measures them from the batches). */
export function calibrationTensors(model: ModelProto, options: StaticQuantizeOptions = {}): string[] {
  return [...new Set(plan(model, options).tensors.values())];
}

/**
 * Rewrites `model` with Q/DQ pairs from measured `ranges` (see the file comment). Returns a new
 * model; `model` is not modified (unchanged nodes and tensors are shared). Graph inputs and
 * outputs keep their names and float type.
 */
export function quantizeStatic(
  model: ModelProto,
  calibration: CalibrationResult,
  options: StaticQuantizeOptions = {},
): { model: ModelProto; report: StaticQuantizeReport } {
  const graph: GraphProto = model.graph ?? {};
  const p = plan(model, options);
  const reduceRange = options.reduceRange ?? true;
  const biasCorrection = options.biasCorrection ?? true;
  const graphInputNames = new Set((graph.input ?? []).map((v) => v.name ?? ''));

  const rewrite = new GraphRewrite(graph);
  const params = new Map<string, { scale: number; zeroPoint: number; scaleName: string; zeroPointName: string }>();
  const paramsOf = (tensor: string): { scale: number; zeroPoint: number; scaleName: string; zeroPointName: string } => {
    const root = p.tensors.get(tensor) ?? tensor;
    const known = params.get(root);
    if (known) return known;
    const range = calibration.ranges.get(root);
    if (!range || !Number.isFinite(range.min) || !Number.isFinite(range.max)) {
      throw new KilnError('KILN_ERR_CALIBRATION_INVALID', {
        problem: `no range was measured for tensor ${JSON.stringify(root)}`,
        fix: 'calibrate with calibrationTensors(model) of the same model and options',
      });
    }
    const { scale, zeroPoint } = uint8Params(range);
    const names = {
      scale,
      zeroPoint,
      scaleName: rewrite.initializer(`${root}_scale`, T.FLOAT, [], Float32Array.of(scale)),
      zeroPointName: rewrite.initializer(`${root}_zero_point`, T.UINT8, [], Uint8Array.of(zeroPoint)),
    };
    params.set(root, names);
    return names;
  };

  const quantizedTensor = new Map<string, string>();
  const out: NodeProto[] = [];
  const quantize = (tensor: string): void => {
    const q = paramsOf(tensor);
    const name = rewrite.name(`${tensor}_quantized`);
    out.push({
      name: rewrite.name(`${tensor}/QuantizeLinear`),
      opType: 'QuantizeLinear',
      domain: '',
      input: [tensor, q.scaleName, q.zeroPointName],
      output: [name],
    });
    quantizedTensor.set(tensor, name);
  };
  /** A DequantizeLinear of `tensor` for one reader (ONNX Runtime's groups want one reader per DQ). */
  const dequantize = (tensor: string, reader: string): string => {
    const q = paramsOf(tensor);
    const name = rewrite.name(`${tensor}_dequantized`);
    out.push({
      name: rewrite.name(`${reader}/${tensor}/DequantizeLinear`),
      opType: 'DequantizeLinear',
      domain: '',
      input: [quantizedTensor.get(tensor)!, q.scaleName, q.zeroPointName],
      output: [name],
    });
    return name;
  };

  const replaced = new Set<string>();
  const weightNodes = (node: NodeProto, inputScale: number): { weight: string; bias: string | null } => {
    const w = p.weights.get(node)!;
    const dims = (w.weight.dims ?? []).map(int64);
    const axis = p.perChannel ? w.axis : null;
    let q = quantizeWeight(floatValues(w.weight), dims, axis, reduceRange);
    // The bias is stored in int32 at scale input scale × weight scale: a channel whose weights are
    // tiny (batch norm folded with γ ≈ 0) beside a large bias would overflow it, so that channel's
    // weight scale is raised until the bias fits (its weights lose precision they hardly had).
    if (w.bias) {
      const limit = inputScale * 2147483647;
      const needed = Float32Array.from(floatValues(w.bias), (b) => (Math.abs(b) * 1.01) / limit);
      const floor = axis === null ? Float32Array.of(Math.max(0, ...needed)) : needed;
      if (floor.some((f, c) => f > q.scales[c]!))
        q = quantizeWeight(floatValues(w.weight), dims, axis, reduceRange, floor);
    }
    const base = w.weight.name ?? 'weight';
    const reader = node.name || node.output![0]!;
    const axisAttr: AttributeProto[] = axis === null ? [] : [{ name: 'axis', type: A.INT, i: axis }];
    const scaleDims = axis === null ? [] : [dims[axis]!];
    const names = {
      values: rewrite.initializer(`${base}_quantized`, T.INT8, dims, q.values),
      scale: rewrite.initializer(`${base}_scale`, T.FLOAT, scaleDims, q.scales),
      zeroPoint: rewrite.initializer(`${base}_zero_point`, T.INT8, scaleDims, new Int8Array(q.scales.length)),
      out: rewrite.name(`${base}_dequantized`),
    };
    out.push({
      name: rewrite.name(`${reader}/weight/DequantizeLinear`),
      opType: 'DequantizeLinear',
      domain: '',
      input: [names.values, names.scale, names.zeroPoint],
      output: [names.out],
      attribute: axisAttr,
    });
    replaced.add(base);
    const input = node.input![0]!;
    const means = biasCorrection ? calibration.channelMeans?.get(p.tensors.get(input) ?? input) : undefined;
    const shift = means ? outputShift(node, floatValues(w.weight), dims, q, axis, means) : null;
    if (!w.bias && !shift) return { weight: names.out, bias: null };
    // int32 bias with scale = input scale × weight scale: what QLinearConv and QGemm add in their accumulators.
    const bias = w.bias ? Float32Array.from(floatValues(w.bias)) : new Float32Array(shift!.length);
    if (shift) {
      for (let i = 0; i < bias.length; i += 1) bias[i] = bias[i]! - shift[i]!;
      report.biasCorrected += 1;
    }
    const biasScales = Float32Array.from(q.scales, (s) => s * inputScale);
    const biasValues = Int32Array.from(bias, (b, i) =>
      Math.max(-2147483647, Math.min(2147483647, roundHalfEven(b / biasScales[axis === null ? 0 : i]!))),
    );
    const biasBase = w.bias?.name ?? `${base}_bias`;
    const biasNames = {
      values: rewrite.initializer(`${biasBase}_quantized`, T.INT32, [bias.length], biasValues),
      scale: rewrite.initializer(`${biasBase}_scale`, T.FLOAT, scaleDims, biasScales),
      out: rewrite.name(`${biasBase}_dequantized`),
    };
    const biasAxis: AttributeProto[] = axis === null ? [] : [{ name: 'axis', type: A.INT, i: 0 }];
    out.push({
      name: rewrite.name(`${reader}/bias/DequantizeLinear`),
      opType: 'DequantizeLinear',
      domain: '',
      input: [biasNames.values, biasNames.scale],
      output: [biasNames.out],
      attribute: biasAxis,
    });
    replaced.add(biasBase);
    return { weight: names.out, bias: biasNames.out };
  };

  for (const input of graph.input ?? []) if (p.tensors.has(input.name ?? '')) quantize(input.name!);
  const folded = new Set(p.foldedRelu.values());
  const vanished = new Set<string>();
  const report: StaticQuantizeReport = {
    quantized: {},
    keptFp32: {},
    foldedRelu: folded.size,
    activations: 0,
    biasCorrected: 0,
    calibration: { batches: calibration.batches, samples: calibration.samples, method: 'minmax' },
    weights: { bits: reduceRange ? 7 : 8, perChannel: p.perChannel },
    weightBytes: { before: 0, after: 0 },
  };
  const count = (table: Record<string, number>, op: string): void => {
    table[op] = (table[op] ?? 0) + 1;
  };

  for (const node of graph.node ?? []) {
    if (folded.has(node)) continue;
    const kind = p.kinds.get(node);
    const reader = node.name || node.output?.[0] || 'node';
    const inputs = [...(node.input ?? [])];
    for (const [i, name] of inputs.entries())
      if (name && quantizedTensor.has(name)) inputs[i] = dequantize(name, reader);
    if (kind === 'weighted') {
      const { weight, bias } = weightNodes(node, paramsOf(node.input![0]!).scale);
      inputs[1] = weight;
      if (bias) inputs[2] = bias;
    }
    let outputs = node.output ?? [];
    const relu = p.foldedRelu.get(node);
    if (relu) {
      vanished.add(outputs[0]!);
      outputs = [relu.output![0]!];
    }
    out.push({ ...node, input: inputs, output: outputs });
    count(kind ? report.quantized : report.keptFp32, node.opType ?? '');
    for (const o of outputs) {
      if (p.tensors.has(o)) {
        quantize(o);
        report.activations += 1;
      }
    }
  }
  report.activations += [...quantizedTensor.keys()].filter((t) => graphInputNames.has(t)).length;

  const finished = rewrite.finish(out, replaced, vanished);
  report.weightBytes = finished.weightBytes;
  return { model: onnx.ModelProto.create({ ...model, graph: finished.graph }), report };
}

/**
 * Calibrates `model` on `batches` and quantizes it: {@link calibrationTensors}, {@link calibrate},
 * then {@link quantizeStatic}.
 */
export async function staticQuantize(
  model: ModelProto,
  options: StaticQuantizeOptions & CalibrateOptions & { calibration: CalibrationBatches },
): Promise<{ model: ModelProto; report: StaticQuantizeReport }> {
  const calibration = await calibrate(model, calibrationTensors(model, options), options.calibration, options);
  return quantizeStatic(model, calibration, options);
}

export type { StaticQuantizeReport };
