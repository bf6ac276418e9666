/**
 * Embeddings: appends pooling (and L2 normalization) to an encoder whose output is
 * last_hidden_state, so the compiled graph answers one vector per text, named `embedding`.
 * Pooling runs inside ONNX Runtime with the rest of the batch: no per-row work on the main thread.
 * The formulas are sentence-transformers': mean = Σ(h·mask) / max(Σ mask, 1e-9); normalize =
 * v / max(‖v‖₂, 1e-12) (torch.nn.functional.normalize).
 */
import { KilnError } from '../../core/errors.js';
import type { EmbeddingHead, Pooling } from '../../model/artifact.js';
import { GraphBuilder } from '../../onnx/builder.js';
import { graphInputs, graphOutputs } from '../../onnx/graph.js';
import type { ModelProto } from '../../onnx/proto.js';

export const EMBEDDING_OUTPUT = 'embedding';
/** Output names an encoder's token states go by (Hugging Face exports and kiln import). */
export const HIDDEN_OUTPUTS = ['last_hidden_state', 'token_embeddings', 'hidden_states'];

/** The encoder output pooling reads: a rank-3 float output with one of the known names. */
export function findHiddenOutput(model: ModelProto): { name: string; hidden: number | null } | null {
  const outputs = graphOutputs(model.graph ?? {});
  const found = HIDDEN_OUTPUTS.map((n) => outputs.find((o) => o.name === n)).find((o) => o !== undefined);
  if (found?.type !== 'float' || (found.shape && found.shape.length !== 3)) return null;
  const last = found.shape?.[2];
  return { name: found.name, hidden: typeof last === 'number' ? last : null };
}

/**
 * Returns a copy of `model` whose only output is `embedding` [batch, hidden]. `path` names the
 * model in errors. The default-domain opset decides how reduce axes are passed (input from 18).
 */
export function appendPooling(
  model: ModelProto,
  options: { pooling: Pooling; normalize: boolean; hiddenOutput: string; hidden: number },
  path: string,
): ModelProto {
  const graph = model.graph ?? {};
  const inputs = graphInputs(graph);
  const mask = inputs.find((i) => i.name === 'attention_mask');
  if (!mask && options.pooling !== 'cls') {
    throw new KilnError('KILN_ERR_MODEL_INPUTS', {
      path,
      found: inputs.map((i) => i.name).join(', ') || '(none)',
      problem: `${options.pooling} pooling needs the attention_mask input to skip padding; use --pooling cls, or export the model with attention_mask`,
    });
  }
  const opset = model.opsetImport?.find((o) => (o.domain ?? '') === '')?.version;
  const version = typeof opset === 'number' ? opset : Number(opset ?? 17);
  const g = new GraphBuilder('pooling', 'kiln_pooling/');
  const hidden = options.hiddenOutput;
  // Reduce ops take axes as an attribute before opset 18 (ReduceSum: before 13), as an input after.
  const axesConstants = new Map<string, string>();
  const axesInput = (axes: number[]): string => {
    const name = `kiln_pooling/axes_${axes.join('_').replace('-', 'm')}`;
    if (!axesConstants.has(name)) axesConstants.set(name, g.ints(name, axes));
    return axesConstants.get(name)!;
  };
  const reduce = (op: string, x: string, axes: number[], keepdims: number): string => {
    const asInput = version >= 18 || (op === 'ReduceSum' && version >= 13);
    return asInput ? g.op(op, [x, axesInput(axes)], { keepdims }) : g.op(op, [x], { axes, keepdims });
  };

  let pooled: string;
  if (options.pooling === 'cls') {
    pooled = g.op(
      'Gather',
      [hidden, g.ints('kiln_pooling/first', [0], [])],
      { axis: 1 },
      { name: '/pooling/first_token' },
    );
  } else {
    const maskF = g.op('Cast', [mask!.name], { to: 1 });
    const mask3 = g.op('Reshape', [maskF, g.ints('kiln_pooling/column', [0, -1, 1])]);
    if (options.pooling === 'mean') {
      const summed = reduce('ReduceSum', g.op('Mul', [hidden, mask3]), [1], 0);
      const count = g.op('Max', [reduce('ReduceSum', mask3, [1], 0), g.constant('kiln_pooling/min_count', [1e-9])]);
      pooled = g.op('Div', [summed, count], undefined, { name: '/pooling/mean' });
    } else {
      // Padding gets a large negative value so it never wins the max.
      const fill = g.op('Mul', [
        g.op('Sub', [g.constant('kiln_pooling/one', [1]), mask3]),
        g.constant('kiln_pooling/neg', [-1e9]),
      ]);
      pooled = reduce('ReduceMax', g.op('Add', [hidden, fill]), [1], 0);
    }
  }
  if (options.normalize) {
    const norm = g.op('Max', [reduce('ReduceL2', pooled, [-1], 1), g.constant('kiln_pooling/min_norm', [1e-12])]);
    g.op('Div', [pooled, norm], undefined, { name: '/pooling/normalize', output: EMBEDDING_OUTPUT });
  } else {
    g.op('Identity', [pooled], undefined, { name: '/pooling/output', output: EMBEDDING_OUTPUT });
  }
  g.output(EMBEDDING_OUTPUT, 'float', ['batch', options.hidden]);

  const fragment = g.toModel().graph!;
  return {
    ...model,
    graph: {
      ...graph,
      node: [...(graph.node ?? []), ...(fragment.node ?? [])],
      initializer: [...(graph.initializer ?? []), ...(fragment.initializer ?? [])],
      output: fragment.output,
    },
  } as ModelProto;
}

/** The manifest's record of the pooling compile appended. */
export function embeddingHead(options: {
  pooling: Pooling;
  normalize: boolean;
  hiddenOutput: string;
  hidden: number;
  prompts?: Record<string, string>;
}): EmbeddingHead {
  return {
    dimension: options.hidden,
    pooling: options.pooling,
    normalize: options.normalize,
    hiddenOutput: options.hiddenOutput,
    ...(options.prompts ? { prompts: options.prompts } : {}),
  };
}
