/**
 * The operator check knows the operators of DeBERTa-v2/v3 and ModernBERT ONNX exports as
 * torch.onnx / Optimum write them (opset 14, Optimum's default, and 17): DeBERTa's relative
 * buckets (Sign, Abs, Log, Ceil, Where), its c2p/p2c gathers (GatherElements, Clip, Expand,
 * Tile for repeat), ModernBERT's rotary tables (Cos, Sin, Split or Slice, Neg) and window
 * mask (Abs, LessOrEqual, Where). The graphs kiln builds are checked in the integration tests.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findUnsupportedOps } from '../../src/compiler/op-check.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { decodeModel, encodeModel } from '../../src/onnx/proto.js';

const COMMON = ['Add', 'Cast', 'Concat', 'ConstantOfShape', 'Div', 'Equal', 'Erf', 'Expand', 'Gather', 'MatMul', 'Mul'];
const EXPORT_OPS: Record<string, string[]> = {
  'DeBERTa-v2': [
    ...COMMON,
    ...['Abs', 'And', 'Ceil', 'Clip', 'GatherElements', 'Greater', 'Less', 'LessOrEqual', 'Log', 'Neg', 'Not'],
    ...['Pow', 'Range', 'ReduceMean', 'Reshape', 'Shape', 'Sign', 'Slice', 'Softmax', 'Sqrt', 'Squeeze', 'Sub'],
    ...['Tanh', 'Tile', 'Transpose', 'Unsqueeze', 'Where', 'Conv'],
  ],
  ModernBERT: [
    ...COMMON,
    ...['Abs', 'Cos', 'LessOrEqual', 'Neg', 'Not', 'Range', 'ReduceMean', 'ReduceSum', 'Reshape', 'Shape', 'Sin'],
    ...['Slice', 'Softmax', 'Split', 'Sqrt', 'Sub', 'Transpose', 'Unsqueeze', 'Where', 'Pow'],
  ],
};

for (const [family, ops] of Object.entries(EXPORT_OPS)) {
  for (const opset of [14, 17]) {
    test(`findUnsupportedOps(a ${family} export's operators at opset ${opset}, cpu) is empty`, () => {
      const g = new GraphBuilder(family);
      const x = g.input('x', 'float', [2]);
      for (const op of ops) g.op(op, [x], undefined, { name: `/${op}` });
      g.output(x, 'float', [2]);
      const model = decodeModel(encodeModel(g.toModel({ '': opset })), `${family}.onnx`);
      assert.deepEqual(findUnsupportedOps(model, 'cpu'), []);
      // A wrong table would fail here too: an operator ONNX Runtime lacks is reported.
      const bad = new GraphBuilder('bad');
      bad.op('NotAnOnnxOp', [bad.input('x', 'float', [2])]);
      const refused = findUnsupportedOps(decodeModel(encodeModel(bad.toModel({ '': opset })), 'bad.onnx'), 'cpu');
      assert.deepEqual(
        refused.map((u) => u.opType),
        ['NotAnOnnxOp'],
      );
    });
  }
}
