import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { graphInputs, graphOutputs, operatorCounts, parameterCount, walkNodes } from '../../src/onnx/graph.js';
import { decodeModel, encodeModel, onnx } from '../../src/onnx/proto.js';
import { EMBEDDED_MODEL, tinyClassifier } from '../fixtures/models.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('decodeModel on damaged or foreign bytes', () => {
  const full = tinyClassifier();

  const cuts: [string, number][] = [
    ['half', Math.floor(full.length / 2)],
    ['first 10 bytes', 10],
    ['first 100 bytes', 100],
    ['inside the graph header', 700],
    ['last byte missing', full.length - 1],
    ['last 10 bytes missing', full.length - 10],
  ];
  for (const [what, length] of cuts) {
    test(`decodeModel(tinyClassifier cut to ${what}) throws KILN_ERR_ONNX_TRUNCATED naming the byte count`, () => {
      assert.throws(() => decodeModel(full.subarray(0, length), 'cut.onnx'), {
        name: 'KilnError',
        code: 'KILN_ERR_ONNX_TRUNCATED',
        message: new RegExp(`^"cut\\.onnx" is truncated: .* after ${length} bytes`),
      });
    });
  }

  const notOnnx: [string, Uint8Array][] = [
    ['an English sentence', text('The quick brown fox jumps over the lazy dog.\n')],
    ['"hello world"', text('hello world')],
    ['the embedded model README', readFileSync(join(EMBEDDED_MODEL, 'README.md'))],
    ['the embedded model config.json', readFileSync(join(EMBEDDED_MODEL, 'config.json'))],
    ['no bytes at all', new Uint8Array(0)],
  ];
  for (const [what, bytes] of notOnnx) {
    test(`decodeModel(${what}) throws KILN_ERR_ONNX_NOT_ONNX`, () => {
      assert.throws(() => decodeModel(bytes, 'x.onnx'), {
        name: 'KilnError',
        code: 'KILN_ERR_ONNX_NOT_ONNX',
        message: /^"x\.onnx" is not an ONNX model/,
      });
    });
  }

  // Regression: a JSON object starts with "{" (0x7b = field 15, wire type 3, "start group");
  // protobufjs skips the group to the end of the buffer and reports "index out of range", which
  // decodeModel once took for truncation.
  const jsonBytes: [string, Uint8Array][] = [
    ['a small JSON object', text('{"a":1,"b":[1,2]}')],
    ['the embedded model tokenizer_config.json', readFileSync(join(EMBEDDED_MODEL, 'tokenizer_config.json'))],
  ];
  for (const [what, bytes] of jsonBytes) {
    test(`decodeModel(${what}) throws KILN_ERR_ONNX_NOT_ONNX, not truncated`, () => {
      assert.throws(() => decodeModel(bytes, 'x.onnx'), { name: 'KilnError', code: 'KILN_ERR_ONNX_NOT_ONNX' });
    });
  }

  test('decodeModel(a ModelProto with ir_version but no nodes) throws KILN_ERR_ONNX_NOT_ONNX', () => {
    const bytes = encodeModel({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph: { name: 'empty' } });
    assert.throws(() => decodeModel(bytes, 'empty.onnx'), {
      code: 'KILN_ERR_ONNX_NOT_ONNX',
      message: /holds no graph nodes/,
    });
  });

  test('decodeModel(a graph with nodes but no ir_version) throws KILN_ERR_ONNX_NOT_ONNX', () => {
    const g = new GraphBuilder('no-ir');
    g.input('x', 'float', [1]);
    g.op('Relu', ['x'], undefined, { output: 'y' });
    g.output('y', 'float', [1]);
    const bytes = encodeModel({ ...g.toModel(), irVersion: 0 });
    assert.throws(() => decodeModel(bytes, 'noir.onnx'), { code: 'KILN_ERR_ONNX_NOT_ONNX', message: /no ir_version/ });
  });

  test('decodeModel keeps the protobuf error as cause', () => {
    try {
      decodeModel(full.subarray(0, 100), 'cut.onnx');
      assert.fail('decodeModel accepted a truncated model');
    } catch (err) {
      assert.ok((err as Error).cause instanceof Error);
      assert.match(((err as Error).cause as Error).message, /index out of range/);
    }
  });
});

describe('graph views of a decoded tinyClassifier', () => {
  const cases: {
    name: string;
    options: { vocab?: number; hidden?: number; classes?: number };
    vocab: number;
    hidden: number;
    classes: number;
  }[] = [
    { name: 'defaults', options: {}, vocab: 30522, hidden: 8, classes: 2 },
    {
      name: 'vocab 100, hidden 4, 3 classes',
      options: { vocab: 100, hidden: 4, classes: 3 },
      vocab: 100,
      hidden: 4,
      classes: 3,
    },
  ];
  for (const c of cases) {
    test(`operatorCounts/graphInputs/graphOutputs/parameterCount of decodeModel(tinyClassifier ${c.name})`, () => {
      const model = decodeModel(tinyClassifier(c.options), 'tiny.onnx');
      const graph = model.graph!;

      const counts = operatorCounts(graph);
      assert.deepEqual(counts, { ReduceSum: 2, Add: 1, Cast: 1, Div: 1, Gather: 1, MatMul: 1, Mul: 1, Unsqueeze: 1 });
      // Sorted by count, then by name.
      assert.deepEqual(Object.keys(counts), [
        'ReduceSum',
        'Add',
        'Cast',
        'Div',
        'Gather',
        'MatMul',
        'Mul',
        'Unsqueeze',
      ]);

      assert.deepEqual(graphInputs(graph), [
        { name: 'input_ids', type: 'int64', shape: ['batch', 'sequence'] },
        { name: 'attention_mask', type: 'int64', shape: ['batch', 'sequence'] },
      ]);
      assert.deepEqual(graphOutputs(graph), [{ name: 'logits', type: 'float', shape: ['batch', c.classes] }]);

      // Embedding table + classifier weight + bias + two one-element axis constants.
      // The two int64 axis constants are graph constants, not parameters.
      assert.equal(parameterCount(graph), c.vocab * c.hidden + c.hidden * c.classes + c.classes);
    });
  }

  test('graphInputs of decodeModel(tinyClassifier) leaves out initializers listed as inputs', () => {
    const model = onnx.ModelProto.decode(tinyClassifier({ vocab: 10 }));
    // Older exporters list every weight as a graph input too.
    model.graph!.input!.push({
      name: 'embeddings',
      type: {
        tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimValue: 10 }, { dimValue: 8 }] } },
      },
    });
    const decoded = decodeModel(encodeModel(model), 'tiny.onnx');
    assert.deepEqual(
      graphInputs(decoded.graph!).map((i) => i.name),
      ['input_ids', 'attention_mask'],
    );
  });
});

describe('walkNodes', () => {
  test('walkNodes(decodeModel(graph with If)) yields the nodes of the then and else subgraphs', () => {
    const thenBranch = new GraphBuilder('then');
    thenBranch.op('Relu', ['x'], undefined, { name: '/then/Relu', output: 'then_out' });
    thenBranch.output('then_out', 'float', [1]);
    const elseBranch = new GraphBuilder('else');
    const neg = elseBranch.op('Neg', ['x'], undefined, { name: '/else/Neg' });
    elseBranch.op('Abs', [neg], undefined, { name: '/else/Abs', output: 'else_out' });
    elseBranch.output('else_out', 'float', [1]);

    const g = new GraphBuilder('with-if');
    g.input('x', 'float', [1]);
    g.input('cond', 'bool', []);
    g.node('If', ['cond'], { name: '/If', outputs: ['y'] });
    g.output('y', 'float', [1]);
    const model = g.toModel();
    const GRAPH = onnx.AttributeProto.AttributeType.GRAPH;
    model.graph!.node![0]!.attribute = [
      { name: 'then_branch', type: GRAPH, g: thenBranch.toModel().graph },
      { name: 'else_branch', type: GRAPH, g: elseBranch.toModel().graph },
    ];

    const decoded = decodeModel(encodeModel(model), 'if.onnx');
    const names = [...walkNodes(decoded.graph!)].map((n) => `${n.opType} ${n.name}`);
    assert.deepEqual(names, ['If /If', 'Relu /then/Relu', 'Neg /else/Neg', 'Abs /else/Abs']);
    assert.deepEqual(operatorCounts(decoded.graph!), { Abs: 1, If: 1, Neg: 1, Relu: 1 });
  });

  test('walkNodes(graph with a Loop body in attribute graphs) yields the body nodes', () => {
    const body = new GraphBuilder('body');
    body.op('Identity', ['v'], undefined, { name: '/body/Identity', output: 'v_out' });
    const g = new GraphBuilder('with-graphs');
    g.node('Loop', [], { name: '/Loop', outputs: ['y'] });
    const model = g.toModel();
    model.graph!.node![0]!.attribute = [
      { name: 'bodies', type: onnx.AttributeProto.AttributeType.GRAPHS, graphs: [body.toModel().graph!] },
    ];
    const decoded = decodeModel(encodeModel(model), 'loop.onnx');
    assert.deepEqual(
      [...walkNodes(decoded.graph!)].map((n) => n.name),
      ['/Loop', '/body/Identity'],
    );
  });
});
