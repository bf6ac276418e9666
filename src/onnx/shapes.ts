/**
 * Symbolic shapes of a graph's tensors, for the operators transformer encoders are written with.
 * A dimension is a number, a symbol (a graph input's named dimension, or `<input>:<axis>` when it
 * has no name) or null (unknown); small integer tensors (shape vectors, indices) also get their
 * values the same way, so `Reshape(x, Concat(Shape(h)[0], Shape(h)[1], 4, 32))` is known to be
 * `[batch, sequence, 4, 32]`. Rewriting passes use these to prove a rewrite keeps every shape
 * (compiler/prune.ts). An operator not listed here gives its outputs unknown shapes, and a pass
 * then leaves that part of the graph alone.
 */
import { attribute, type Dim, graphInputs, intAttribute, isDefaultDomain, opsetImports } from './graph.js';
import { type GraphProto, int64, type ModelProto, type NodeProto, onnx, type TensorProto } from './proto.js';

/** Integer tensors with at most this many elements have their values tracked. */
const MAX_VALUE_ELEMENTS = 64;

export interface ShapeFacts {
  /** The tensor's dims, or null when its rank is not known. */
  shape(name: string): Dim[] | null;
  /** A small integer tensor's elements in row-major order, or null. */
  value(name: string): Dim[] | null;
}

const UNARY = new Set([
  'Abs',
  'Cast',
  'Ceil',
  'Celu',
  'Cos',
  'Dropout',
  'Elu',
  'Erf',
  'Exp',
  'Floor',
  'Gelu',
  'HardSigmoid',
  'Identity',
  'IsNaN',
  'LayerNormalization',
  'LeakyRelu',
  'Log',
  'LogSoftmax',
  'Neg',
  'Not',
  'Reciprocal',
  'Relu',
  'Round',
  'Sigmoid',
  'Sign',
  'Sin',
  'Softmax',
  'Softplus',
  'Sqrt',
  'Tanh',
  'CumSum',
  'Clip',
]);

/** Element-wise operators with multidirectional (numpy) broadcasting. */
export const BROADCASTING = new Set([
  'Add',
  'And',
  'Div',
  'Equal',
  'Greater',
  'GreaterOrEqual',
  'Less',
  'LessOrEqual',
  'Max',
  'Mean',
  'Min',
  'Mod',
  'Mul',
  'Or',
  'Pow',
  'PRelu',
  'Sub',
  'Sum',
  'Where',
  'Xor',
]);

/** Element-wise operators that keep their first input's shape. */
export const UNARY_OPS: ReadonlySet<string> = UNARY;

/** Two dims that broadcast together; null when the result cannot be told. */
function broadcastDim(a: Dim, b: Dim): Dim {
  if (a === 1) return b;
  if (b === 1) return a;
  if (a === b) return a;
  // A known size other than 1 wins whatever the other is (it is 1 or the same size).
  if (typeof a === 'number') return a;
  if (typeof b === 'number') return b;
  return null;
}

export function broadcastShapes(shapes: ReadonlyArray<Dim[] | null>): Dim[] | null {
  if (shapes.some((s) => s === null)) return null;
  const rank = Math.max(...shapes.map((s) => s!.length));
  const out: Dim[] = [];
  for (let axis = 0; axis < rank; axis += 1) {
    let dim: Dim = 1;
    for (const s of shapes) {
      const i = axis - (rank - s!.length);
      if (i >= 0) dim = broadcastDim(dim, s![i]!);
    }
    out.push(dim);
  }
  return out;
}

const normalize = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis);

/** An integer initializer's or Constant's values (int64 or int32), when small. */
export function integerValues(t: TensorProto): number[] | null {
  const T = onnx.TensorProto.DataType;
  const count = (t.dims ?? []).reduce<number>((n, d) => n * int64(d), 1);
  if (count > MAX_VALUE_ELEMENTS) return null;
  const raw = t.rawData;
  if (t.dataType === T.INT64) {
    if (raw && raw.length > 0) {
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      return Array.from({ length: count }, (_, i) => Number(view.getBigInt64(i * 8, true)));
    }
    return (t.int64Data ?? []).map((v) => int64(v));
  }
  if (t.dataType === T.INT32) {
    if (raw && raw.length > 0) {
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      return Array.from({ length: count }, (_, i) => view.getInt32(i * 4, true));
    }
    return [...(t.int32Data ?? [])];
  }
  return null;
}

function constantTensor(node: NodeProto): { dims: number[]; values: number[] | null } | null {
  const value = attribute(node, 'value');
  if (value?.t) return { dims: (value.t.dims ?? []).map((d) => int64(d)), values: integerValues(value.t) };
  const int = attribute(node, 'value_int');
  if (int) return { dims: [], values: [int64(int.i)] };
  const ints = attribute(node, 'value_ints');
  if (ints) return { dims: [(ints.ints ?? []).length], values: (ints.ints ?? []).map((v) => int64(v)) };
  if (attribute(node, 'value_float')) return { dims: [], values: null };
  const floats = attribute(node, 'value_floats');
  if (floats) return { dims: [(floats.floats ?? []).length], values: null };
  return null;
}

const ints = (node: NodeProto, name: string): number[] | null => {
  const a = attribute(node, name);
  return a ? (a.ints ?? []).map((v) => int64(v)) : null;
};

const product = (dims: Dim[]): number | null =>
  dims.every((d) => typeof d === 'number') ? (dims as number[]).reduce((a, b) => a * b, 1) : null;

export function inferShapes(model: ModelProto): ShapeFacts {
  const graph: GraphProto = model.graph ?? {};
  const opset = opsetImports(model)[''] ?? 1;
  const shapes = new Map<string, Dim[] | null>();
  const values = new Map<string, Dim[] | null>();
  for (const t of graph.initializer ?? []) {
    shapes.set(
      t.name ?? '',
      (t.dims ?? []).map((d) => int64(d)),
    );
    values.set(t.name ?? '', integerValues(t));
  }
  for (const input of graphInputs(graph)) {
    if (shapes.has(input.name)) continue;
    shapes.set(input.name, input.shape?.map((d, axis) => d ?? `${input.name}:${axis}`) ?? null);
  }

  const shapesOf = (name: string | undefined): Dim[] | null => (name ? (shapes.get(name) ?? null) : null);
  const valuesOf = (name: string | undefined): Dim[] | null => (name ? (values.get(name) ?? null) : null);
  const numbers = (name: string | undefined): number[] | null => {
    const v = valuesOf(name);
    return v?.every((d) => typeof d === 'number') ? (v as number[]) : null;
  };
  /** Axes from the attribute (older opsets) or the optional input at `index`. */
  const axesOf = (node: NodeProto, index: number): number[] | null | undefined => {
    const fromAttribute = ints(node, 'axes');
    if (fromAttribute) return fromAttribute;
    const input = node.input?.[index];
    if (!input) return undefined;
    return numbers(input);
  };

  for (const node of graph.node ?? []) {
    const out = node.output ?? [];
    const set = (shape: Dim[] | null, value: Dim[] | null = null): void => {
      if (out[0]) {
        shapes.set(out[0], shape);
        values.set(out[0], value);
      }
    };
    for (const name of out) shapes.set(name, null);
    if (!isDefaultDomain(node)) continue;
    const inputs = node.input ?? [];
    const x = shapesOf(inputs[0]);
    const op = node.opType ?? '';

    if (op === 'Constant') {
      const c = constantTensor(node);
      set(c ? c.dims : null, c?.values ?? null);
    } else if (UNARY.has(op)) {
      const keepsValue = op === 'Cast' || op === 'Identity';
      set(x, keepsValue ? valuesOf(inputs[0]) : null);
    } else if (BROADCASTING.has(op)) {
      const shape = broadcastShapes(inputs.map(shapesOf));
      set(shape, arithmetic(op, inputs.map(valuesOf), shape));
    } else if (op === 'Shape') {
      if (!x) set(null);
      else {
        const start = normalize(intAttribute(node, 'start', 0), x.length);
        const endAttribute = attribute(node, 'end');
        const end = endAttribute ? normalize(int64(endAttribute.i), x.length) : x.length;
        const dims = x.slice(Math.max(0, start), Math.min(x.length, end));
        set([dims.length], dims);
      }
    } else if (op === 'Gather') {
      const indices = shapesOf(inputs[1]);
      if (!x || !indices) set(null);
      else {
        const axis = normalize(intAttribute(node, 'axis', 0), x.length);
        const shape = [...x.slice(0, axis), ...indices, ...x.slice(axis + 1)];
        const data = valuesOf(inputs[0]);
        const picks = numbers(inputs[1]);
        const picked =
          data && picks && x.length === 1 ? picks.map((i) => data[i < 0 ? i + data.length : i] ?? null) : null;
        set(shape, picked);
      }
    } else if (op === 'GatherElements') {
      set(shapesOf(inputs[1]));
    } else if (op === 'Split') {
      split(node, x, opset, numbers).forEach((shape, i) => {
        if (out[i]) shapes.set(out[i], shape);
      });
    } else if (op === 'Unsqueeze') {
      const axes = axesOf(node, 1);
      if (!x || !axes) set(null);
      else {
        const rank = x.length + axes.length;
        const inserted = new Set(axes.map((a) => normalize(a, rank)));
        const shape: Dim[] = [];
        let from = 0;
        for (let i = 0; i < rank; i += 1) shape.push(inserted.has(i) ? 1 : x[from++]!);
        set(shape, valuesOf(inputs[0]));
      }
    } else if (op === 'Squeeze') {
      const axes = axesOf(node, 1);
      if (!x) set(null);
      else if (axes) {
        const removed = new Set(axes.map((a) => normalize(a, x.length)));
        set(
          x.filter((_, i) => !removed.has(i)),
          valuesOf(inputs[0]),
        );
      } else set(x.every((d) => d !== null) ? x.filter((d) => d !== 1) : null, valuesOf(inputs[0]));
    } else if (op === 'Concat') {
      const all = inputs.map(shapesOf);
      if (all.some((s) => s === null) || all.length === 0) set(null);
      else {
        const rank = all[0]!.length;
        const axis = normalize(intAttribute(node, 'axis', 0), rank);
        const shape = all[0]!.map((d, i) => (i === axis ? null : (d ?? all.find((s) => s![i] !== null)?.[i] ?? null)));
        const sizes = all.map((s) => s![axis]!);
        shape[axis] = sizes.every((d) => typeof d === 'number') ? (sizes as number[]).reduce((a, b) => a + b, 0) : null;
        const parts = inputs.map(valuesOf);
        set(shape, rank === 1 && parts.every((p) => p !== null) ? parts.flatMap((p) => p!) : null);
      }
    } else if (op === 'Reshape') {
      set(reshaped(x, valuesOf(inputs[1]), shapesOf(inputs[1]), intAttribute(node, 'allowzero', 0) === 1));
    } else if (op === 'Transpose') {
      if (!x) set(null);
      else {
        const perm = ints(node, 'perm') ?? x.map((_, i) => x.length - 1 - i);
        set(perm.map((p) => x[p] ?? null));
      }
    } else if (op === 'MatMul') {
      const b = shapesOf(inputs[1]);
      if (!x || !b || x.length < 2 || b.length < 2) set(null);
      else {
        const batch = broadcastShapes([x.slice(0, -2), b.slice(0, -2)]);
        set(batch ? [...batch, x[x.length - 2]!, b[b.length - 1]!] : null);
      }
    } else if (op === 'Gemm') {
      const b = shapesOf(inputs[1]);
      if (!x || !b || x.length !== 2 || b.length !== 2) set(null);
      else {
        const rows = intAttribute(node, 'transA', 0) ? x[1]! : x[0]!;
        const cols = intAttribute(node, 'transB', 0) ? b[0]! : b[1]!;
        set([rows, cols]);
      }
    } else if (op.startsWith('Reduce')) {
      // ReduceSum takes axes as an input from opset 13, the others from 18.
      const fromInput = op === 'ReduceSum' ? opset >= 13 : opset >= 18;
      const axes = fromInput ? (inputs[1] ? numbers(inputs[1]) : []) : (ints(node, 'axes') ?? []);
      if (!x || axes === null) set(null);
      else {
        const reduced = new Set(axes.length === 0 ? x.map((_, i) => i) : axes.map((a) => normalize(a, x.length)));
        const keep = intAttribute(node, 'keepdims', 1) === 1;
        set(keep ? x.map((d, i) => (reduced.has(i) ? 1 : d)) : x.filter((_, i) => !reduced.has(i)));
      }
    } else if (op === 'Range') {
      const [start, limit, delta] = [valuesOf(inputs[0])?.[0], valuesOf(inputs[1])?.[0], valuesOf(inputs[2])?.[0]];
      if (start === 0 && delta === 1 && limit !== undefined) set([limit]);
      else if (typeof start === 'number' && typeof limit === 'number' && typeof delta === 'number' && delta !== 0)
        set([Math.max(0, Math.ceil((limit - start) / delta))]);
      else set([null]);
    } else if (op === 'Slice') {
      const shape = sliced(node, x, opset, numbers, valuesOf);
      const data = valuesOf(inputs[0]);
      const [start, end] = [numbers(inputs[1])?.[0], numbers(inputs[2])?.[0]];
      // A piece of a shape vector (Shape(x)[0:1]) keeps its values: axis 0, step 1.
      const [axes, steps] = [inputs[3] ? numbers(inputs[3]) : [0], inputs[4] ? numbers(inputs[4]) : [1]];
      const piece =
        data &&
        x?.length === 1 &&
        opset >= 10 &&
        axes?.length === 1 &&
        (axes[0] === 0 || axes[0] === -1) &&
        steps?.length === 1 &&
        steps[0] === 1 &&
        start !== undefined &&
        start >= 0 &&
        end !== undefined
          ? data.slice(start, end)
          : null;
      set(shape, piece);
    } else if (op === 'Conv') {
      set(convolved(node, x, shapesOf(inputs[1])));
    } else if (op === 'Expand') {
      const target = valuesOf(inputs[1]);
      set(x && target ? broadcastShapes([x, target]) : null);
    } else if (op === 'ConstantOfShape') {
      set(valuesOf(inputs[0]));
    } else {
      set(null);
    }
  }
  return { shape: shapesOf, value: valuesOf };
}

/** Add, Sub, Mul and Div on known integer values (shape arithmetic), else null. */
function arithmetic(op: string, inputs: Array<Dim[] | null>, shape: Dim[] | null): Dim[] | null {
  if (!['Add', 'Sub', 'Mul', 'Div'].includes(op) || inputs.length !== 2 || !shape || shape.length > 1) return null;
  const [a, b] = inputs;
  if (!a || !b) return null;
  const length = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < length; i += 1) {
    const l = a.length === 1 ? a[0] : a[i];
    const r = b.length === 1 ? b[0] : b[i];
    if (typeof l !== 'number' || typeof r !== 'number') out.push(null);
    else if (op === 'Add') out.push(l + r);
    else if (op === 'Sub') out.push(l - r);
    else if (op === 'Mul') out.push(l * r);
    else out.push(r === 0 ? null : Math.trunc(l / r));
  }
  return out;
}

function reshaped(x: Dim[] | null, target: Dim[] | null, targetShape: Dim[] | null, allowZero: boolean): Dim[] | null {
  if (!target) {
    const rank = targetShape?.[0];
    return typeof rank === 'number' ? Array.from({ length: rank }, () => null) : null;
  }
  const shape = target.map((d, i) => (d === 0 && !allowZero ? (x?.[i] ?? null) : d === -1 ? null : d));
  const inferred = target.indexOf(-1);
  if (inferred >= 0 && x)
    shape[inferred] = quotient(
      x,
      shape.filter((_, i) => i !== inferred),
    );
  return shape;
}

/** prod(numerator) / prod(denominator) when the symbols cancel and the numbers divide, else null. */
function quotient(numerator: Dim[], denominator: Dim[]): Dim {
  if (numerator.includes(null) || denominator.includes(null)) return null;
  const symbols = (dims: Dim[]): string =>
    dims
      .filter((d) => typeof d === 'string')
      .sort()
      .join('\u0000');
  if (symbols(numerator) !== symbols(denominator)) return null;
  const n = product(numerator.filter((d) => typeof d === 'number'));
  const d = product(denominator.filter((d) => typeof d === 'number'));
  return n !== null && d !== null && d !== 0 && n % d === 0 ? n / d : null;
}

/** Conv's output: [batch, filters, spatial dims from the kernel, strides, pads and dilations]. */
function convolved(node: NodeProto, x: Dim[] | null, w: Dim[] | null): Dim[] | null {
  if (!x || !w || x.length < 3 || w.length !== x.length) return null;
  const spatial = x.length - 2;
  const kernel = ints(node, 'kernel_shape') ?? w.slice(2);
  const strides = ints(node, 'strides') ?? Array(spatial).fill(1);
  const dilations = ints(node, 'dilations') ?? Array(spatial).fill(1);
  const pads = ints(node, 'pads') ?? Array(2 * spatial).fill(0);
  const autoPad = attribute(node, 'auto_pad')?.s;
  if (autoPad && autoPad.length > 0 && new TextDecoder().decode(autoPad) !== 'NOTSET') return null;
  const dims = x.slice(2).map((d, i) => {
    const k = kernel[i];
    if (typeof d !== 'number' || typeof k !== 'number') return null;
    const span = dilations[i]! * (k - 1) + 1;
    return Math.floor((d + pads[i]! + pads[i + spatial]! - span) / strides[i]!) + 1;
  });
  return [x[0]!, w[0]!, ...dims];
}

/** Each output's shape: `x` with the split axis cut into the given sizes, or equal parts. */
function split(
  node: NodeProto,
  x: Dim[] | null,
  opset: number,
  numbers: (name: string | undefined) => number[] | null,
): Array<Dim[] | null> {
  const count = (node.output ?? []).length;
  if (!x) return Array(count).fill(null);
  const axis = normalize(intAttribute(node, 'axis', 0), x.length);
  const given =
    opset >= 13 ? (node.input?.[1] ? numbers(node.input[1]) : undefined) : (ints(node, 'split') ?? undefined);
  const dim = x[axis];
  let sizes: Dim[];
  if (given === null) sizes = Array(count).fill(null);
  else if (given) sizes = given;
  else sizes = Array(count).fill(typeof dim === 'number' && dim % count === 0 ? dim / count : null);
  return sizes.map((size) => x.map((d, i) => (i === axis ? size : d)));
}

function sliced(
  node: NodeProto,
  x: Dim[] | null,
  opset: number,
  numbers: (name: string | undefined) => number[] | null,
  valuesOf: (name: string | undefined) => Dim[] | null,
): Dim[] | null {
  if (!x) return null;
  const inputs = node.input ?? [];
  const fromInputs = opset >= 10;
  const starts = fromInputs ? numbers(inputs[1]) : ints(node, 'starts');
  const endValues = fromInputs ? valuesOf(inputs[2]) : ints(node, 'ends');
  const axes = fromInputs ? (inputs[3] ? numbers(inputs[3]) : null) : ints(node, 'axes');
  const steps = fromInputs && inputs[4] ? numbers(inputs[4]) : null;
  if (!starts || !endValues || (fromInputs && inputs[3] && !axes) || (inputs[4] && !steps)) return null;
  const shape = [...x];
  starts.forEach((start, i) => {
    const axis = normalize(axes?.[i] ?? i, x.length);
    const end = endValues[i] ?? null;
    const step = steps?.[i] ?? 1;
    const dim = x[axis] ?? null;
    if (start === 0 && step === 1 && typeof end === 'number' && end >= 2 ** 31 - 1) return;
    if (start === 0 && step === 1 && typeof end === 'number' && end > 0) {
      // The end is clamped to the dim; a first row is one row of any non-empty dim.
      shape[axis] = typeof dim === 'number' ? Math.min(dim, end) : end === 1 ? 1 : null;
      return;
    }
    if (start === 0 && step === 1 && typeof end === 'string') {
      // Slicing a table to a length (positions[:, :sequence]) that a valid input never exceeds.
      shape[axis] = end;
      return;
    }
    shape[axis] = null;
  });
  return shape;
}
