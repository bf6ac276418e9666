/**
 * fp16 for GPU devices: the MatMul and Gemm nodes (nearly all the arithmetic of an encoder) take
 * fp16 inputs and weights and compute in fp16; their outputs are cast back to fp32, so
 * everything between them stays fp32: bias adds, residual sums, LayerNorm (mean and variance over
 * the hidden size), Softmax (exponentials of attention scores) and GELU, the parts whose range
 * or accumulated rounding fp16 handles badly. Embedding tables are stored in fp16 and their
 * lookups cast to fp32. The graph's inputs and outputs keep their types, so the runtime feeds and
 * reads it as it does an fp32 graph.
 */

import type { Fp16Report } from '../model/artifact.js';
import { encodeF16 } from '../model/float16.js';
import { DataType, type GraphProto, type ModelProto, type NodeProto, type TensorProto } from '../onnx/proto.js';
import { GraphRewrite } from '../onnx/rewrite.js';
import { floatValues, hasFloatValues } from '../onnx/weights.js';

const FLOAT = DataType.FLOAT;
const FLOAT16 = DataType.FLOAT16;

/** The nodes converted: every input fp16 (weights stored so, activations cast), the output cast back. */
const FP16_OPS = new Set(['MatMul', 'Gemm']);

export const FP16_KEPT_FP32 =
  'LayerNormalization, Softmax, GELU/Erf, bias and residual adds, and the graph inputs and outputs';

export function convertToFp16(model: ModelProto): { model: ModelProto; report: Fp16Report } {
  const graph = model.graph ?? {};
  const rewrite = new GraphRewrite(graph);
  const initializers = new Map<string, TensorProto>();
  for (const t of graph.initializer ?? []) if (hasFloatValues(t)) initializers.set(t.name ?? '', t);
  const fp16Weights = new Map<string, string>();
  const castsIn = new Map<string, string>();
  const replaced = new Set<string>();
  const out: NodeProto[] = [];
  let matmuls = 0;
  let gathers = 0;

  /** The fp16 copy of a float initializer (made once, however many nodes read it). */
  const weight16 = (name: string): string => {
    let converted = fp16Weights.get(name);
    if (!converted) {
      const t = initializers.get(name)!;
      converted = rewrite.initializer(`${name}_fp16`, FLOAT16, (t.dims ?? []).map(Number), encodeF16(floatValues(t)));
      fp16Weights.set(name, converted);
      replaced.add(name);
    }
    return converted;
  };
  /** An fp16 view of a float activation: one Cast per activation, shared by the nodes that read it. */
  const cast16 = (name: string): string => {
    let cast = castsIn.get(name);
    if (!cast) {
      cast = rewrite.name(`${name}_fp16`);
      out.push(castNode(rewrite.name(`${name}_Cast_fp16`), name, cast, FLOAT16));
      castsIn.set(name, cast);
    }
    return cast;
  };

  for (const node of graph.node ?? []) {
    const op = node.domain ? '' : (node.opType ?? '');
    if (FP16_OPS.has(op) && (node.output ?? []).length === 1) {
      const inputs = (node.input ?? []).map((name) =>
        name === '' ? '' : initializers.has(name) ? weight16(name) : cast16(name),
      );
      const result = node.output![0]!;
      const result16 = rewrite.name(`${result}_fp16`);
      out.push({ ...node, input: inputs, output: [result16] });
      out.push(castNode(rewrite.name(`${node.name ?? result}_Cast_fp32`), result16, result, FLOAT));
      matmuls += 1;
      continue;
    }
    // An embedding lookup: the table in fp16, each looked-up row back to fp32.
    const table = node.input?.[0];
    if (op === 'Gather' && table && initializers.has(table) && (initializers.get(table)!.dims ?? []).length === 2) {
      const result = node.output![0]!;
      const result16 = rewrite.name(`${result}_fp16`);
      out.push({ ...node, input: [weight16(table), ...(node.input ?? []).slice(1)], output: [result16] });
      out.push(castNode(rewrite.name(`${node.name ?? result}_Cast_fp32`), result16, result, FLOAT));
      gathers += 1;
      continue;
    }
    out.push(node);
  }
  // An initializer still read as fp32 somewhere (a tied weight, a subgraph) stays, beside its fp16 copy.
  const { graph: converted } = rewrite.finish(out, replaced);
  return {
    model: { ...model, graph: converted as GraphProto } as ModelProto,
    report: {
      matmuls,
      gathers,
      weightBytes: rewrite.added.reduce((n, t) => n + (t.rawData?.length ?? 0), 0),
      keptFp32: FP16_KEPT_FP32,
    },
  };
}

function castNode(name: string, input: string, output: string, to: number): NodeProto {
  return { name, opType: 'Cast', input: [input], output: [output], attribute: [{ name: 'to', type: 2, i: to }] };
}
