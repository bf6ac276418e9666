import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkLogits, checkTextInputs } from '../../src/compiler/io-check.js';
import type { Dim, TensorInfo } from '../../src/onnx/graph.js';

const t = (name: string, type: string, shape: Dim[] | null): TensorInfo => ({ name, type, shape });
const ids = t('input_ids', 'int64', ['batch', 'sequence']);
const mask = t('attention_mask', 'int64', ['batch', 'sequence']);
const types = t('token_type_ids', 'int64', ['batch', 'sequence']);
const logits = t('logits', 'float', ['batch', 2]);
const LABELS = ['NEGATIVE', 'POSITIVE'];

interface Case {
  name: string;
  inputs: TensorInfo[];
  outputs?: TensorInfo[];
  labels?: string[];
  /** Expected error code and a fragment of the problem it names; absent: passes. */
  fails?: { code: 'KILN_ERR_MODEL_INPUTS' | 'KILN_ERR_MODEL_OUTPUTS'; problem: RegExp };
}

const cases: Case[] = [
  { name: 'input_ids + attention_mask', inputs: [ids, mask] },
  { name: 'input_ids + attention_mask + token_type_ids', inputs: [ids, mask, types] },
  { name: 'inputs in another order', inputs: [mask, types, ids] },
  {
    name: 'int32 inputs',
    inputs: [t('input_ids', 'int32', ['batch', 'sequence']), t('attention_mask', 'int32', ['batch', 'sequence'])],
  },
  { name: 'fixed input dims', inputs: [t('input_ids', 'int64', [1, 128]), t('attention_mask', 'int64', [1, 128])] },
  { name: 'float [batch, 2] logits for two labels', inputs: [ids, mask], outputs: [logits] },
  { name: 'symbolic class dim', inputs: [ids, mask], outputs: [t('logits', 'float', ['batch', 'num_labels'])] },
  { name: 'unknown output shape', inputs: [ids, mask], outputs: [t('logits', 'float', null)] },
  {
    name: '3 labels and 3 classes',
    inputs: [ids, mask],
    outputs: [t('logits', 'float', ['batch', 3])],
    labels: ['a', 'b', 'c'],
  },
  {
    name: 'extra outputs after the logits',
    inputs: [ids, mask],
    outputs: [logits, t('hidden', 'float', ['batch', 'sequence', 8])],
  },

  {
    name: 'missing attention_mask',
    inputs: [ids],
    fails: { code: 'KILN_ERR_MODEL_INPUTS', problem: /"attention_mask" is missing/ },
  },
  {
    name: 'missing input_ids',
    inputs: [mask, types],
    fails: { code: 'KILN_ERR_MODEL_INPUTS', problem: /"input_ids" is missing/ },
  },
  {
    name: 'no inputs',
    inputs: [],
    fails: { code: 'KILN_ERR_MODEL_INPUTS', problem: /takes inputs none, but "input_ids" is missing/ },
  },
  {
    name: 'unknown input name',
    inputs: [ids, mask, t('position_ids', 'int64', ['batch', 'sequence'])],
    fails: { code: 'KILN_ERR_MODEL_INPUTS', problem: /the tokenizer produces no input named "position_ids"/ },
  },
  {
    name: 'float input',
    inputs: [ids, t('attention_mask', 'float', ['batch', 'sequence'])],
    fails: { code: 'KILN_ERR_MODEL_INPUTS', problem: /"attention_mask" has element type float, not int64 or int32/ },
  },
  {
    name: 'rank-3 input',
    inputs: [t('input_ids', 'int64', ['batch', 'sequence', 1]), mask],
    fails: { code: 'KILN_ERR_MODEL_INPUTS', problem: /"input_ids" has rank 3, not 2/ },
  },
  {
    name: '3 classes vs 2 labels',
    inputs: [ids, mask],
    outputs: [t('logits', 'float', ['batch', 3])],
    fails: {
      code: 'KILN_ERR_MODEL_OUTPUTS',
      problem: /"logits" has 3 classes while config\.json's id2label names 2 \(NEGATIVE, POSITIVE\)/,
    },
  },
  {
    name: 'int output',
    inputs: [ids, mask],
    outputs: [t('logits', 'int64', ['batch', 2])],
    fails: { code: 'KILN_ERR_MODEL_OUTPUTS', problem: /"logits" has element type int64, not float/ },
  },
  {
    name: 'no output',
    inputs: [ids, mask],
    outputs: [],
    fails: { code: 'KILN_ERR_MODEL_OUTPUTS', problem: /has outputs none, but there is no output/ },
  },
  {
    name: 'rank-3 output',
    inputs: [ids, mask],
    outputs: [t('logits', 'float', ['batch', 'sequence', 2])],
    fails: { code: 'KILN_ERR_MODEL_OUTPUTS', problem: /"logits" has rank 3, not 2/ },
  },
];

/** Cases with the default logits check the inputs; the others keep valid inputs and check the outputs. */
const checkOf = (c: Case): { name: 'checkTextInputs' | 'checkLogits'; call: () => void } =>
  c.outputs === undefined && c.labels === undefined
    ? { name: 'checkTextInputs', call: () => checkTextInputs('model.onnx', c.inputs) }
    : { name: 'checkLogits', call: () => checkLogits('model.onnx', c.outputs ?? [logits], c.labels ?? LABELS) };

describe('checkTextInputs and checkLogits', () => {
  for (const c of cases) {
    const { name, call } = checkOf(c);
    if (!c.fails) {
      test(`${name} accepts ${c.name}`, () => {
        assert.doesNotThrow(call);
      });
    } else {
      test(`${name} rejects ${c.name} with ${c.fails.code}`, () => {
        assert.throws(call, { name: 'KilnError', code: c.fails!.code, status: 422, message: c.fails!.problem });
      });
    }
  }

  test('checkTextInputs names every input it found in the error', () => {
    assert.throws(() => checkTextInputs('m.onnx', [ids]), {
      message: /^"m\.onnx" takes inputs input_ids \(int64 \[batch, sequence\]\), but "attention_mask" is missing/,
    });
  });
});
