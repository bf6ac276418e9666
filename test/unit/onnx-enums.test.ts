/**
 * proto.ts states TensorProto.DataType and AttributeProto.AttributeType as numbers, so that modules
 * can use them at import without loading the schema: they must be the schema's numbers.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import type { onnx as O } from 'onnx-proto';
import { AttributeType, DataType, onnx } from '../../src/onnx/proto.js';

const schema = (createRequire(import.meta.url)('onnx-proto') as { onnx: typeof O }).onnx;

test('DataType and AttributeType equal the enums of the onnx-proto schema, name for name', { timeout: 10_000 }, () => {
  assert.deepEqual({ ...DataType }, { ...schema.TensorProto.DataType });
  assert.deepEqual({ ...AttributeType }, { ...schema.AttributeProto.AttributeType });
});

test('onnx.* are the schema message types (ModelProto round-trips a graph)', { timeout: 10_000 }, () => {
  assert.equal(onnx.TensorProto, schema.TensorProto);
  assert.equal(onnx.AttributeProto, schema.AttributeProto);
  assert.equal(onnx.GraphProto, schema.GraphProto);
  const bytes = onnx.ModelProto.encode({ irVersion: 8, graph: { name: 'g' } }).finish();
  assert.equal(schema.ModelProto.decode(bytes).graph?.name, 'g');
});
