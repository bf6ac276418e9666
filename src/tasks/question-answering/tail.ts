/**
 * The graph tail compile appends to a question-answering model: its `start_logits` and
 * `end_logits` [batch, sequence] become one output, `span_logits` [batch, 2 × max length] (each
 * padded to the max length, starts then ends), because the runtime gives each request its row of
 * the graph's first output, and a row must have one width whatever the batch was padded to.
 */
import { KilnError } from '../../core/errors.js';
import { GraphBuilder } from '../../onnx/builder.js';
import { describeTensor, graphOutputs } from '../../onnx/graph.js';
import type { ModelProto } from '../../onnx/proto.js';

export const SPAN_OUTPUT = 'span_logits';
export const START_OUTPUT = 'start_logits';
export const END_OUTPUT = 'end_logits';

/** True when the graph answers start and end logits (Hugging Face's question-answering exports, kiln import). */
export function hasSpanOutputs(model: ModelProto): boolean {
  const names = graphOutputs(model.graph ?? {}).map((o) => o.name);
  return names.includes(START_OUTPUT) && names.includes(END_OUTPUT);
}

/** Checks the start and end logits are float [batch, sequence] (KILN_ERR_MODEL_OUTPUTS otherwise). */
export function checkSpanOutputs(model: ModelProto, path: string): void {
  const outputs = graphOutputs(model.graph ?? {});
  const found = outputs.map(describeTensor).join(', ') || 'none';
  for (const name of [START_OUTPUT, END_OUTPUT]) {
    const output = outputs.find((o) => o.name === name);
    const problem = !output
      ? `there is no "${name}" output; question answering reads "${START_OUTPUT}" and "${END_OUTPUT}" [batch, sequence]`
      : output.type !== 'float'
        ? `"${name}" has element type ${output.type}, not float`
        : output.shape && output.shape.length !== 2
          ? `"${name}" has rank ${output.shape.length}, not 2 ([batch, sequence])`
          : null;
    if (problem) throw new KilnError('KILN_ERR_MODEL_OUTPUTS', { path, found, problem });
  }
}

/** A copy of `model` whose only output is `span_logits` [batch, 2 × maxLength]. */
export function appendSpanTail(model: ModelProto, maxLength: number): ModelProto {
  const graph = model.graph ?? {};
  const g = new GraphBuilder('span', 'kiln_span/');
  const sequence = g.op('Gather', [g.op('Shape', [START_OUTPUT]), g.ints('kiln_span/one', [1], [])], { axis: 0 });
  const missing = g.op('Sub', [g.ints('kiln_span/max_length', [maxLength], []), sequence]);
  const pads = g.op(
    'Concat',
    [g.ints('kiln_span/zeros', [0, 0, 0]), g.op('Unsqueeze', [missing, g.ints('kiln_span/axis0', [0])])],
    {
      axis: 0,
    },
  );
  const padded = [START_OUTPUT, END_OUTPUT].map((name) =>
    g.op('Pad', [name, pads], { mode: 'constant' }, { name: `/span/pad_${name}` }),
  );
  g.op('Concat', padded, { axis: 1 }, { name: '/span/concat', output: SPAN_OUTPUT });
  g.output(SPAN_OUTPUT, 'float', ['batch', 2 * maxLength]);
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
