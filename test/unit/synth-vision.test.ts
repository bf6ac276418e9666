import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildResNet50, buildVitBase16, VISION_PRESETS, type VisionGraph } from '../../src/import/synth-vision.js';
import { graphInputs, graphOutputs } from '../../src/onnx/graph.js';
import { decodeModel, encodeModel } from '../../src/onnx/proto.js';

/** Elements of every weight the graph stores. */
const storedWeights = (built: VisionGraph): number =>
  built.builder.lazyWeights.reduce((n, t) => n + t.dims.reduce((a, b) => a * b, 1), 0);

const attribute = (built: VisionGraph, node: string, name: string): number[] | undefined => {
  const found = built.builder.toModel().graph!.node!.find((n) => n.name === node);
  assert.ok(found, `node ${node}`);
  return found.attribute?.find((a) => a.name === name)?.ints?.map(Number);
};

describe('buildResNet50', () => {
  const built = buildResNet50(1000, 0);

  test("buildResNet50(1000) has torchvision ResNet-50's 25,557,032 parameters (batch norm γ and β counted, as before folding)", () => {
    assert.equal(built.parameters, 25_557_032);
  });

  test('buildResNet50(1000) stores 25,530,472 weights: batch norm folded into conv weight and bias drops one of γ, β per channel (26,560)', () => {
    assert.equal(storedWeights(built), 25_557_032 - 26_560);
  });

  test('buildResNet50 is v1.5: the stride-2 of a downsampling bottleneck is on its 3×3 convolution, not the first 1×1', () => {
    for (const stage of [1, 2, 3]) {
      const prefix = `/resnet.encoder.stages.${stage}.layers.0`;
      assert.deepEqual(attribute(built, `${prefix}.layer.0/Conv`, 'strides'), [1, 1]);
      assert.deepEqual(attribute(built, `${prefix}.layer.1/Conv`, 'strides'), [2, 2]);
      assert.deepEqual(attribute(built, `${prefix}.layer.1/Conv`, 'kernel_shape'), [3, 3]);
      assert.deepEqual(attribute(built, `${prefix}.shortcut/Conv`, 'strides'), [2, 2]);
    }
    assert.deepEqual(attribute(built, '/resnet.encoder.stages.0.layers.0.layer.1/Conv', 'strides'), [1, 1]);
  });
});

describe('buildVitBase16', () => {
  test("buildVitBase16(1000) has google/vit-base-patch16-224's 86,567,656 parameters, all stored", () => {
    const built = buildVitBase16(1000, 0);
    assert.equal(built.parameters, 86_567_656);
    assert.equal(storedWeights(built), 86_567_656);
  });
});

describe('vision presets', () => {
  for (const [preset, build] of [
    ['resnet-50', buildResNet50],
    ['vit-base-patch16-224', buildVitBase16],
  ] as const) {
    test(`${preset}: input pixel_values float [batch, 3, 224, 224], output logits [batch, labels]`, () => {
      // Through bytes, as ONNX Runtime and kiln's readers see it.
      const graph = decodeModel(encodeModel(build(10, 0).builder.toModel()), `${preset}.onnx`).graph!;
      assert.deepEqual(graphInputs(graph), [{ name: 'pixel_values', type: 'float', shape: ['batch', 3, 224, 224] }]);
      assert.deepEqual(graphOutputs(graph), [{ name: 'logits', type: 'float', shape: ['batch', 10] }]);
    });

    test(`${preset}: weights are deterministic for a seed and differ between seeds`, async () => {
      const first = async (seed: number): Promise<Float32Array> => build(1000, seed).builder.lazyWeights[0]!.load();
      const [a, b, c] = await Promise.all([first(0), first(0), first(1)]);
      assert.deepEqual(a, b);
      assert.notDeepEqual(a, c);
    });
  }

  test('VISION_PRESETS hold the public config and preprocessor facts', () => {
    assert.deepEqual(VISION_PRESETS['resnet-50']!.config.architectures, ['ResNetForImageClassification']);
    assert.deepEqual(VISION_PRESETS['vit-base-patch16-224']!.config.architectures, ['ViTForImageClassification']);
    assert.deepEqual(
      { ...VISION_PRESETS['resnet-50']!.preprocessor, image_processor_type: undefined },
      {
        image_processor_type: undefined,
        do_resize: true,
        size: { shortest_edge: 224 },
        crop_pct: 0.875,
        resample: 3,
        do_rescale: true,
        rescale_factor: 1 / 255,
        do_normalize: true,
        image_mean: [0.485, 0.456, 0.406],
        image_std: [0.229, 0.224, 0.225],
      },
    );
    const vit = VISION_PRESETS['vit-base-patch16-224']!.preprocessor;
    assert.deepEqual(
      [vit.size, vit.image_mean, vit.image_std, vit.resample],
      [{ height: 224, width: 224 }, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5], 2],
    );
  });
});
