/**
 * What a pass that rewrites a graph needs besides its own logic (the int8 quantizers are two):
 * names no tensor or node of the graph uses yet, the initializers it adds, and the finished graph
 * without the weights it replaced once nothing reads them.
 */
import { walkNodes } from './graph.js';
import type { GraphProto, NodeProto, TensorProto } from './proto.js';
import { rawBytes, tensorBytes } from './weights.js';

export class GraphRewrite {
  /** Initializers the pass added, in the order it added them. */
  readonly added: TensorProto[] = [];
  private readonly taken: Set<string>;

  constructor(private readonly graph: GraphProto) {
    this.taken = new Set([
      ...(graph.initializer ?? []).map((t) => t.name ?? ''),
      ...(graph.input ?? []).map((v) => v.name ?? ''),
      ...(graph.valueInfo ?? []).map((v) => v.name ?? ''),
    ]);
    for (const node of walkNodes(graph))
      for (const name of [...(node.output ?? []), node.name ?? '']) this.taken.add(name);
  }

  /** `base`, else `base_1`, `base_2`, …: the first name nothing in the graph uses, now taken. */
  name(base: string): string {
    let name = base;
    for (let i = 1; this.taken.has(name); i += 1) name = `${base}_${i}`;
    this.taken.add(name);
    return name;
  }

  /** Adds an initializer named after `base` (made unique); returns its name. */
  initializer(base: string, dataType: number, dims: number[], values: ArrayBufferView): string {
    const name = this.name(base);
    this.added.push({ name, dataType, dims, rawData: rawBytes(values) });
    return name;
  }

  /**
   * The graph with `nodes` as its nodes and the added initializers. Of the `replaced` weights,
   * those that no node (subgraphs included) and no graph output reads any more are dropped from
   * the initializers, from the inputs (old exporters list weights there too) and from valueInfo,
   * as are the `vanished` values. `weightBytes`: all initializers' data, before and after.
   */
  finish(
    nodes: NodeProto[],
    replaced: Iterable<string>,
    vanished: Iterable<string> = [],
  ): { graph: GraphProto; dropped: Set<string>; weightBytes: { before: number; after: number } } {
    const graph = this.graph;
    const stillRead = new Set<string>((graph.output ?? []).map((o) => o.name ?? ''));
    for (const node of walkNodes({ node: nodes })) for (const name of node.input ?? []) stillRead.add(name);
    const dropped = new Set([...replaced].filter((name) => !stillRead.has(name)));
    const gone = new Set([...vanished, ...dropped]);
    const initializer = [...(graph.initializer ?? []).filter((t) => !dropped.has(t.name ?? '')), ...this.added];
    const bytes = (tensors: readonly TensorProto[]): number => tensors.reduce((n, t) => n + tensorBytes(t), 0);
    return {
      graph: {
        ...graph,
        node: nodes,
        initializer,
        input: (graph.input ?? []).filter((v) => !dropped.has(v.name ?? '')),
        valueInfo: (graph.valueInfo ?? []).filter((v) => !gone.has(v.name ?? '')),
      },
      dropped,
      weightBytes: { before: bytes(graph.initializer ?? []), after: bytes(initializer) },
    };
  }
}
