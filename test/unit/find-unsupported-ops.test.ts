import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { findUnsupportedOps, unsupportedOpsError } from '../../src/compiler/op-check.js';
import { KilnError } from '../../src/core/errors.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { decodeModel, encodeModel, type IModelProto, type ModelProto, onnx } from '../../src/onnx/proto.js';
import { tinyClassifier } from '../fixtures/models.js';

/** A chain x → op → op → … → y, one node per entry of `ops`, decoded as compile reads it. */
function chain(
  ops: { opType: string; domain?: string; name?: string }[],
  opsets: Record<string, number> = { '': 17 },
  edit?: (m: IModelProto) => void,
): ModelProto {
  const g = new GraphBuilder('chain');
  let value = g.input('x', 'float', [2, 2]);
  for (const op of ops) value = g.op(op.opType, [value], undefined, { domain: op.domain, name: op.name });
  g.output(value, 'float', [2, 2]);
  const model = g.toModel(opsets);
  edit?.(model);
  return decodeModel(encodeModel(model), 'chain.onnx');
}

describe('findUnsupportedOps', () => {
  test('findUnsupportedOps(tinyClassifier, cpu) is empty', () => {
    assert.deepEqual(findUnsupportedOps(decodeModel(tinyClassifier(), 'tiny.onnx'), 'cpu'), []);
  });

  test('findUnsupportedOps lists a custom-domain node with its domain, count and node name', () => {
    const model = chain([{ opType: 'Relu' }, { opType: 'FancyGelu', domain: 'ai.custom', name: '/enc/fancy_0' }], {
      '': 17,
      'ai.custom': 1,
    });
    const found = findUnsupportedOps(model, 'cpu');
    assert.equal(found.length, 1);
    assert.deepEqual(
      { domain: found[0]!.domain, opType: found[0]!.opType, count: found[0]!.count, nodes: found[0]!.nodes },
      { domain: 'ai.custom', opType: 'FancyGelu', count: 1, nodes: ['/enc/fancy_0'] },
    );
    assert.match(found[0]!.reason, /domain "ai\.custom" is unknown to the cpu backend/);
  });

  test('findUnsupportedOps counts 7 uses of one unknown op and keeps the first 5 node names', () => {
    const ops = Array.from({ length: 7 }, (_, i) => ({ opType: 'Frobnicate', name: `/layer.${i}/frob` }));
    const found = findUnsupportedOps(chain(ops), 'cpu');
    assert.equal(found.length, 1);
    assert.equal(found[0]!.count, 7);
    assert.deepEqual(found[0]!.nodes, [
      '/layer.0/frob',
      '/layer.1/frob',
      '/layer.2/frob',
      '/layer.3/frob',
      '/layer.4/frob',
    ]);
    assert.match(found[0]!.reason, /no cpu kernel for this operator/);
    const message = unsupportedOpsError(found, 'cpu').message;
    assert.match(message, /"\/layer\.4\/frob", and 2 more\)/);
    assert.doesNotMatch(message, /layer\.5/);
  });

  // Trilu is registered from opset 14 only; Hardmax has 1-10, 11-12 and 13+.
  const opsetCases: { op: string; opset: number; listed: boolean; range?: string }[] = [
    { op: 'Trilu', opset: 7, listed: true, range: '(14+)' },
    { op: 'Trilu', opset: 13, listed: true, range: '(14+)' },
    { op: 'Trilu', opset: 14, listed: false },
    { op: 'Trilu', opset: 21, listed: false },
    { op: 'Hardmax', opset: 1, listed: false },
    { op: 'Hardmax', opset: 12, listed: false },
  ];
  for (const c of opsetCases) {
    test(`findUnsupportedOps(${c.op} at opset ${c.opset}) ${c.listed ? 'lists it with the implemented range' : 'is empty'}`, () => {
      const found = findUnsupportedOps(chain([{ opType: c.op, name: `/${c.op}` }], { '': c.opset }), 'cpu');
      if (!c.listed) {
        assert.deepEqual(found, []);
        return;
      }
      assert.equal(found.length, 1);
      assert.equal(found[0]!.opType, c.op);
      assert.equal(found[0]!.reason, `opset ${c.opset} is outside the versions the cpu backend implements ${c.range}`);
    });
  }

  test('findUnsupportedOps never lists Constant (ONNX Runtime folds it at load)', () => {
    const g = new GraphBuilder('const');
    const tensor = { name: 'c', dims: [1], dataType: onnx.TensorProto.DataType.FLOAT, floatData: [1] };
    g.node('Constant', [], { name: '/Constant', outputs: ['c'] });
    g.op('Add', ['c', 'c'], undefined, { output: 'y' });
    g.output('y', 'float', [1]);
    const model = g.toModel({ '': 17 });
    model.graph!.node![0]!.attribute = [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: tensor }];
    assert.deepEqual(findUnsupportedOps(decodeModel(encodeModel(model), 'const.onnx'), 'cpu'), []);
  });

  test('findUnsupportedOps checks the nodes inside an If subgraph', () => {
    const then = new GraphBuilder('then');
    then.op('Frobnicate', ['x'], undefined, { name: '/then/frob', output: 'a' });
    then.output('a', 'float', [1]);
    const otherwise = new GraphBuilder('else');
    otherwise.op('Relu', ['x'], undefined, { name: '/else/relu', output: 'b' });
    otherwise.output('b', 'float', [1]);
    const g = new GraphBuilder('if');
    g.input('x', 'float', [1]);
    g.input('cond', 'bool', []);
    g.node('If', ['cond'], { name: '/If', outputs: ['y'] });
    g.output('y', 'float', [1]);
    const model = g.toModel({ '': 17 });
    const GRAPH = onnx.AttributeProto.AttributeType.GRAPH;
    model.graph!.node![0]!.attribute = [
      { name: 'then_branch', type: GRAPH, g: then.toModel().graph },
      { name: 'else_branch', type: GRAPH, g: otherwise.toModel().graph },
    ];
    const found = findUnsupportedOps(decodeModel(encodeModel(model), 'if.onnx'), 'cpu');
    assert.deepEqual(
      found.map((u) => [u.opType, u.nodes]),
      [['Frobnicate', ['/then/frob']]],
    );
  });

  test('findUnsupportedOps does not list a node whose op is a model-local function, but checks the function body', () => {
    const model = chain([{ opType: 'MyBlock', domain: 'local', name: '/block' }], { '': 17, local: 1 }, (m) => {
      m.functions = [
        {
          name: 'MyBlock',
          domain: 'local',
          input: ['x'],
          output: ['y'],
          opsetImport: [{ domain: '', version: 17 }],
          node: [
            { opType: 'Relu', domain: '', input: ['x'], output: ['r'], name: '/fn/relu' },
            { opType: 'Frobnicate', domain: '', input: ['r'], output: ['y'], name: '/fn/frob' },
          ],
        },
      ];
    });
    const found = findUnsupportedOps(model, 'cpu');
    assert.deepEqual(
      found.map((u) => `${u.domain}:${u.opType}`),
      [':Frobnicate'],
    );
  });

  test('findUnsupportedOps treats domain "ai.onnx" as the default domain', () => {
    assert.deepEqual(findUnsupportedOps(chain([{ opType: 'Relu', domain: 'ai.onnx' }]), 'cpu'), []);
  });
});

describe('unsupportedOpsError', () => {
  test('unsupportedOpsError names op type, domain, nodes and count with code KILN_ERR_OP_UNSUPPORTED', () => {
    const model = chain(
      [
        { opType: 'FancyGelu', domain: 'ai.custom', name: '/enc/fancy_0' },
        { opType: 'FancyGelu', domain: 'ai.custom', name: '/enc/fancy_1' },
        { opType: 'Frobnicate', name: '/frob' },
      ],
      { '': 17, 'ai.custom': 1 },
    );
    const err = unsupportedOpsError(findUnsupportedOps(model, 'cpu'), 'cpu');
    assert.ok(err instanceof KilnError);
    assert.equal(err.code, 'KILN_ERR_OP_UNSUPPORTED');
    assert.equal(err.status, 422);
    assert.match(err.message, /^2 operator type\(s\) are not supported by the cpu backend:/);
    assert.ok(
      err.message.includes('FancyGelu (domain "ai.custom", 2 nodes: "/enc/fancy_0", "/enc/fancy_1")'),
      err.message,
    );
    // The default domain is spelled out.
    assert.ok(err.message.includes('Frobnicate (domain "ai.onnx", 1 node: "/frob")'), err.message);
    assert.doesNotMatch(err.message, /more\)/);
  });
});
