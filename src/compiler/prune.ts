/**
 * Skips work the answer does not need. A classification, ranking or CLS-pooled embedding head
 * reads one token of the last hidden state (`Gather(h, 0, axis=1)`), so the last layer's query
 * projection, attention output, residuals, layer norms and feed-forward need computing for that
 * token only; its keys and values still cover every token. The pass proves this on the graph
 * rather than matching one exporter's pattern: walking back from the outputs, a tensor is needed
 * at index 0 of an axis only when every reader needs just that, and an operator computes its
 * output's first row from its inputs' first rows only when that is what it does (`rowRule` says
 * which: element-wise and broadcasting operators, MatMul and Gemm, Softmax, LayerNormalization
 * and reductions over other axes, Transpose, Split and GatherElements off their axis, a Reshape
 * that keeps the leading axes; shapes.ts proves the shapes). Such operators then run on one-row
 * slices; everything else is left as it was. A head that reads every token (token
 * classification, question answering, mean pooling) gives no such tensor, and the graph is
 * returned unchanged.
 */
import type { PruneReport } from '../model/reports.js';
import { type Dim, intAttribute, isDefaultDomain, opsetImports } from '../onnx/graph.js';
import type { ModelProto, NodeProto } from '../onnx/proto.js';
import { GraphRewrite } from '../onnx/rewrite.js';
import { BROADCASTING, inferShapes, type ShapeFacts, UNARY_OPS } from '../onnx/shapes.js';

const INT64 = 7;
/** Past any dim: a Slice end that means "to the end". */
const TO_END = 2n ** 62n;

/** An axis whose first index is all that is read, or 'full'. */
type Need = number | 'full';

/** How an operator computes its output's first row along an axis: each input's axis, or 'full' when read whole. */
type InputAxes = Need[];

export interface PruneOptions {
  /** Sequence length the FLOP counts are given at (the compile's max length). */
  length: number;
}

export interface PruneResult {
  model: ModelProto;
  report: PruneReport;
}

export function pruneToFirstToken(model: ModelProto, options: PruneOptions): PruneResult {
  const graph = model.graph ?? {};
  const nodes = graph.node ?? [];
  const unchanged = (reason: string): PruneResult => ({ model, report: { pruned: false, reason } });
  if (nodes.some((n) => (n.attribute ?? []).some((a) => a.g || (a.graphs ?? []).length > 0)))
    return unchanged('the graph has subgraphs (If, Loop, Scan)');

  const facts = inferShapes(model);
  const opset = opsetImports(model)[''] ?? 1;

  // Backward: what each tensor's readers need of it.
  const requests = new Map<string, Need[]>();
  const request = (name: string, need: Need): void => {
    if (!name) return;
    const list = requests.get(name) ?? [];
    list.push(need);
    requests.set(name, list);
  };
  for (const o of graph.output ?? []) request(o.name ?? '', 'full');
  const needOf = (name: string): Need | null => {
    const list = requests.get(name);
    if (!list) return null;
    const first = list[0]!;
    return list.every((n) => n === first) ? first : 'full';
  };

  /** Nodes computed on first rows: index → the output's axis and each input's. */
  const sliced = new Map<number, { axis: number; inputs: InputAxes }>();
  let terminals = 0;
  for (let i = nodes.length - 1; i >= 0; i -= 1) {
    const node = nodes[i]!;
    const outputs = node.output ?? [];
    const inputs = node.input ?? [];
    const firstRead = firstRowRead(node, facts, opset);
    if (firstRead) {
      terminals += 1;
      inputs.forEach((name, k) => {
        request(name, k === 0 ? firstRead.axis : 'full');
      });
      continue;
    }
    const need = outputNeed(node, needOf);
    if (typeof need === 'number' && dimOf(facts, outputs[0]!, need) !== 1) {
      const axes = rowRule(node, need, facts, opset);
      if (axes) {
        sliced.set(i, { axis: need, inputs: axes });
        inputs.forEach((name, k) => {
          request(name, axes[k] ?? 'full');
        });
        continue;
      }
    }
    for (const name of inputs) request(name, 'full');
  }
  if (terminals === 0) return unchanged('the outputs read every token');
  const weightsRead = [...sliced.keys()].filter((i) => isWeightProduct(nodes[i]!, facts));
  if (weightsRead.length === 0) return unchanged('no layer computes only the tokens the outputs read');

  // Forward: the new node list, with slices where a first row is taken from a whole tensor.
  const rewrite = new GraphRewrite(graph);
  const out: NodeProto[] = [];
  const renamed = new Map<string, string>();
  const slices = new Map<string, string>();
  const axisConstants = new Map<string, string>();
  const ints = (base: string, values: bigint[]): string => {
    const key = `${base}:${values.join(',')}`;
    let name = axisConstants.get(key);
    if (!name) {
      name = rewrite.initializer(base, INT64, [values.length], BigInt64Array.from(values));
      axisConstants.set(key, name);
    }
    return name;
  };
  /** `name`'s first row along `axis`: the sliced node's output, the tensor itself when that dim is 1, or a Slice. */
  const firstRow = (name: string, axis: number): string => {
    const own = renamed.get(name);
    if (own && needOf(name) === axis) return own;
    if (dimOf(facts, name, axis) === 1) return name;
    const key = `${name}@${axis}`;
    let slice = slices.get(key);
    if (!slice) {
      slice = rewrite.name(`${name}/first_row`);
      out.push({
        opType: 'Slice',
        name: rewrite.name(`${name}/first_row/Slice`),
        input: [name, ints('prune/zero', [0n]), ints('prune/one', [1n]), ints(`prune/axis_${axis}`, [BigInt(axis)])],
        output: [slice],
      });
      slices.set(key, slice);
    }
    return slice;
  };

  nodes.forEach((node, i) => {
    const plan = sliced.get(i);
    if (!plan) {
      // A reader of first rows that is not computed on them (the head's Gather) reads the
      // computed first row where there is one, else the whole tensor as before.
      const input = (node.input ?? []).map((name) => renamed.get(name) ?? name);
      out.push({ ...node, input });
      return;
    }
    const input = (node.input ?? []).map((name, k) => {
      const axis = plan.inputs[k];
      if (!name || axis === undefined || axis === 'full') return name;
      return firstRow(name, axis);
    });
    if (node.opType === 'Reshape') input[1] = withOne(input[1]!, plan.axis, out, rewrite, ints);
    const output = node.output!.map((o) => {
      if (!o) return o;
      const name = rewrite.name(`${o}/first_row`);
      renamed.set(o, name);
      return name;
    });
    out.push({ ...node, input, output });
  });

  const { graph: prunedGraph } = rewrite.finish(out, [], renamed.keys());
  const pruned: ModelProto = { ...model, graph: prunedGraph } as ModelProto;
  const before = productFlops(model, facts, options.length);
  const after = productFlops(pruned, inferShapes(pruned), options.length);
  return {
    model: pruned,
    report: {
      pruned: true,
      nodes: sliced.size,
      weightProducts: weightsRead.sort((a, b) => a - b).map((k) => nodes[k]!.name || `#${k}`),
      flops: {
        length: options.length,
        before: before.total,
        after: after.total,
        ...(before.uncounted + after.uncounted > 0 && { uncounted: Math.max(before.uncounted, after.uncounted) }),
      },
    },
  };
}

/**
 * The axis whose first row is all that `node`'s outputs are read at: its first output's, with
 * any other output unread, or, for a Split, the same axis on every output that is read.
 */
function outputNeed(node: NodeProto, needOf: (name: string) => Need | null): Need | null {
  const [first, ...others] = (node.output ?? []).map((o) => (o ? needOf(o) : null));
  if (node.opType !== 'Split') return others.every((n) => n === null) ? (first ?? null) : 'full';
  const read = [first ?? null, ...others].filter((n) => n !== null);
  return read.length > 0 && read.every((n) => n === read[0]) ? read[0]! : read.length > 0 ? 'full' : null;
}

function dimOf(facts: ShapeFacts, name: string, axis: number): Dim | undefined {
  return facts.shape(name)?.[axis];
}

/**
 * A node that reads only index 0 along one axis of its first input: `Gather(x, 0, axis)` with
 * a constant index 0 (scalar or [0]), or `Slice(x, [0], [1], [axis])`.
 */
function firstRowRead(node: NodeProto, facts: ShapeFacts, opset: number): { axis: number } | null {
  if (!isDefaultDomain(node)) return null;
  const inputs = node.input ?? [];
  // Token states are [batch, tokens, features]: a first row of a lower rank (a shape vector,
  // a logit) or along the last axis (a feature) is not a token.
  const rank = facts.shape(inputs[0] ?? '')?.length;
  if (rank === undefined || rank < 3) return null;
  const axisOf = (axis: number): number | null => {
    const a = axis < 0 ? axis + rank : axis;
    return a >= 0 && a < rank - 1 ? a : null;
  };
  if (node.opType === 'Gather') {
    const index = facts.value(inputs[1] ?? '');
    const indexShape = facts.shape(inputs[1] ?? '');
    if (index?.length !== 1 || index[0] !== 0 || !indexShape || indexShape.length > 1) return null;
    const axis = axisOf(intAttribute(node, 'axis', 0));
    return axis === null ? null : { axis };
  }
  if (node.opType === 'Slice' && opset >= 10) {
    const [starts, ends, axes, steps] = [1, 2, 3, 4].map((k) => (inputs[k] ? facts.value(inputs[k]!) : null));
    if (starts?.length !== 1 || starts[0] !== 0 || ends?.length !== 1 || ends[0] !== 1) return null;
    if (steps && steps[0] !== 1) return null;
    const given = axes ? axes[0] : 0;
    const axis = typeof given === 'number' ? axisOf(given) : null;
    return axis === null ? null : { axis };
  }
  return null;
}

/**
 * Which first rows of its inputs give `node`'s output's first row along `axis`, or null when the
 * operator mixes rows along that axis (or the shapes cannot show that it does not).
 */
function rowRule(node: NodeProto, axis: number, facts: ShapeFacts, opset: number): InputAxes | null {
  if (!isDefaultDomain(node)) return null;
  const inputs = node.input ?? [];
  const op = node.opType ?? '';
  const output = facts.shape(node.output?.[0] ?? '');
  const ranks = inputs.map((name) => (name ? facts.shape(name)?.length : undefined));
  if (!output || axis >= output.length) return null;
  const rank = output.length;
  const normalize = (a: number, r: number): number => (a < 0 ? a + r : a);

  if (BROADCASTING.has(op)) {
    if (ranks.some((r) => r === undefined)) return null;
    return ranks.map((r) => (axis - (rank - r!) >= 0 ? axis - (rank - r!) : 'full'));
  }
  if (op === 'Softmax' || op === 'LogSoftmax') {
    const along = normalize(intAttribute(node, 'axis', opset >= 13 ? -1 : 1), rank);
    // Before opset 13 the input is flattened to 2-D at the axis, so only axes before it are rows.
    return (opset >= 13 ? axis !== along : axis < along) ? [axis] : null;
  }
  if (op === 'LayerNormalization') {
    return axis < normalize(intAttribute(node, 'axis', -1), rank) ? [axis, 'full', 'full'] : null;
  }
  if (UNARY_OPS.has(op)) {
    if (op === 'CumSum' || op === 'Dropout') return null;
    return inputs.map((_, k) => (k === 0 ? axis : 'full'));
  }
  if (op.startsWith('Reduce')) {
    const fromInput = op === 'ReduceSum' ? opset >= 13 : opset >= 18;
    const axesValue = fromInput ? (inputs[1] ? facts.value(inputs[1]) : []) : readInts(node, 'axes');
    const inRank = ranks[0];
    if (!axesValue || inRank === undefined || axesValue.length === 0) return null;
    if (!axesValue.every((a) => typeof a === 'number')) return null;
    const reduced = new Set((axesValue as number[]).map((a) => normalize(a, inRank)));
    const kept = [...Array(inRank).keys()].filter((a) => !reduced.has(a));
    const inAxis = intAttribute(node, 'keepdims', 1) === 1 ? axis : kept[axis];
    if (inAxis === undefined || reduced.has(inAxis)) return null;
    return inputs.map((_, k) => (k === 0 ? inAxis : 'full'));
  }
  if (op === 'GatherElements') {
    // out[..., i, ...] = data[..., i, ...] on every axis but the gathered one: row 0 of each.
    return axis !== normalize(intAttribute(node, 'axis', 0), rank) ? [axis, axis] : null;
  }
  if (op === 'Split') {
    // Split takes its parts along its axis; the other axes pass through (the sizes input is read whole).
    return axis !== normalize(intAttribute(node, 'axis', 0), rank) ? [axis, 'full'] : null;
  }
  if (op === 'Transpose') {
    const perm = readInts(node, 'perm') ?? [...Array(rank).keys()].reverse();
    return [perm[axis]!];
  }
  if (op === 'MatMul') {
    const [ra, rb] = ranks;
    if (ra === undefined || rb === undefined || ra < 2 || rb < 2) return null;
    if (axis === rank - 1) return ['full', rb - 1];
    if (axis === rank - 2) return [ra - 2, 'full'];
    const onA = axis - (rank - ra);
    const onB = axis - (rank - rb);
    return [onA >= 0 ? onA : 'full', onB >= 0 ? onB : 'full'];
  }
  if (op === 'Gemm') {
    if (axis !== 0 || ranks[0] !== 2) return null;
    const onA = intAttribute(node, 'transA', 0) ? 1 : 0;
    const c: Need = ranks[2] === 2 ? 0 : 'full';
    return [onA, 'full', ...(inputs.length > 2 ? [c] : [])];
  }
  if (op === 'Reshape') {
    // The leading axes up to `axis` stay as they are (equal dims, none unknown): each first
    // row of the input is one of the output, and the new shape is the old with 1 at `axis`.
    const x = facts.shape(inputs[0] ?? '');
    if (!x || axis >= x.length) return null;
    for (let k = 0; k <= axis; k += 1) if (x[k] === null || x[k] !== output[k]) return null;
    if (!facts.value(inputs[1] ?? '')) return null;
    return [axis, 'full'];
  }
  return null;
}

function readInts(node: NodeProto, name: string): number[] | null {
  const a = (node.attribute ?? []).find((x) => x.name === name);
  return a ? (a.ints ?? []).map((v) => Number(v)) : null;
}

/** `shape` (a 1-D int64 tensor) with element `axis` set to 1, as nodes appended to `out`. */
function withOne(
  shape: string,
  axis: number,
  out: NodeProto[],
  rewrite: GraphRewrite,
  ints: (base: string, values: bigint[]) => string,
): string {
  const part = (starts: bigint, ends: bigint): string => {
    const name = rewrite.name(`${shape}/part`);
    out.push({
      opType: 'Slice',
      name: rewrite.name(`${shape}/part/Slice`),
      input: [shape, ints('prune/start', [starts]), ints('prune/end', [ends]), ints('prune/axis_0', [0n])],
      output: [name],
    });
    return name;
  };
  const name = rewrite.name(`${shape}/first_row`);
  out.push({
    opType: 'Concat',
    name: rewrite.name(`${shape}/first_row/Concat`),
    input: [part(0n, BigInt(axis)), ints('prune/one', [1n]), part(BigInt(axis + 1), TO_END)],
    output: [name],
    attribute: [{ name: 'axis', type: 2, i: 0 }],
  });
  return name;
}

/** A MatMul or Gemm by a constant matrix: the work a pruned row saves. */
function isWeightProduct(node: NodeProto, facts: ShapeFacts): boolean {
  if (node.opType !== 'MatMul' && node.opType !== 'Gemm') return false;
  const weight = facts.shape(node.input?.[1] ?? '');
  return weight?.length === 2 && weight.every((d) => typeof d === 'number') && facts.value(node.input![1]!) === null;
}

/**
 * Multiply-add FLOPs of every MatMul and Gemm for one sequence of `length` tokens (a graph
 * input's first dim is the batch, its other named dims the length); nodes of unknown shape are
 * left out and counted apart, since a saving computed without them can read −0 %.
 */
function productFlops(model: ModelProto, facts: ShapeFacts, length: number): { total: number; uncounted: number } {
  const graph = model.graph ?? {};
  const batchSymbols = new Set<Dim>();
  for (const input of graph.input ?? []) {
    const first = facts.shape(input.name ?? '')?.[0];
    if (typeof first === 'string') batchSymbols.add(first);
  }
  const size = (d: Dim): number | null =>
    typeof d === 'number' ? d : d === null ? null : batchSymbols.has(d) ? 1 : length;
  let total = 0;
  let uncounted = 0;
  for (const node of graph.node ?? []) {
    if (node.opType !== 'MatMul' && node.opType !== 'Gemm') continue;
    const y = facts.shape(node.output?.[0] ?? '');
    const a = facts.shape(node.input?.[0] ?? '');
    const inner = node.opType === 'Gemm' && intAttribute(node, 'transA', 0) ? a?.[0] : a?.[a.length - 1];
    const dims = y ? [...y, inner ?? null].map(size) : [null];
    if (dims.some((d) => d === null)) uncounted += 1;
    else total += 2 * (dims as number[]).reduce((p, d) => p * d, 1);
  }
  return { total, uncounted };
}
