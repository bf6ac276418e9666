/** Checks that a graph is a text model the tokenizer can feed and (for classifiers) the labels can name. */
import { KilnError } from '../core/errors.js';
import { describeTensor, type TensorInfo } from '../onnx/graph.js';

const TEXT_INPUTS = ['input_ids', 'attention_mask', 'token_type_ids'] as const;
const REQUIRED_INPUTS = ['input_ids', 'attention_mask'];
const INTEGER_TYPES = new Set(['int64', 'int32']);

/** The graph's inputs are ones the tokenizer fills: input_ids and attention_mask (token_type_ids optional), integer, rank 2. */
export function checkTextInputs(path: string, inputs: TensorInfo[]): void {
  const found = inputs.map(describeTensor).join(', ') || 'none';
  const fail = (problem: string): never => {
    throw new KilnError('KILN_ERR_MODEL_INPUTS', { path, found, problem });
  };
  for (const input of inputs) {
    if (!(TEXT_INPUTS as readonly string[]).includes(input.name))
      fail(`the tokenizer produces no input named "${input.name}"`);
    if (!INTEGER_TYPES.has(input.type)) fail(`"${input.name}" has element type ${input.type}, not int64 or int32`);
    if (input.shape && input.shape.length !== 2) fail(`"${input.name}" has rank ${input.shape.length}, not 2`);
  }
  for (const name of REQUIRED_INPUTS) {
    if (!inputs.some((i) => i.name === name)) fail(`"${name}" is missing`);
  }
}

/** The first output is float logits [batch, classes] with one class per label. */
export function checkLogits(path: string, outputs: TensorInfo[], labels: string[]): void {
  const outFound = outputs.map(describeTensor).join(', ') || 'none';
  const logits = outputs[0];
  const failOut: (problem: string) => never = (problem) => {
    throw new KilnError('KILN_ERR_MODEL_OUTPUTS', { path, found: outFound, problem });
  };
  if (!logits) failOut('there is no output');
  if (logits.type !== 'float') failOut(`"${logits.name}" has element type ${logits.type}, not float`);
  if (logits.shape && logits.shape.length !== 2) failOut(`"${logits.name}" has rank ${logits.shape.length}, not 2`);
  const classes = logits.shape?.[1];
  if (typeof classes === 'number' && classes !== labels.length) {
    failOut(
      `"${logits.name}" has ${classes} classes while config.json's id2label names ${labels.length} (${labels.join(', ')})`,
    );
  }
}
