/**
 * `kiln synth resnet-50` and `kiln synth vit-base-patch16-224` as a user runs them: a full-size
 * HF-layout folder whose graph ONNX Runtime runs on a batch of 2 images.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { createSession } from '../../src/runtime/binding.js';
import { errorCode, kiln, tempDir } from '../fixtures/models.js';

let dir: string;

before(async () => {
  dir = await tempDir('kiln-synth-vision-');
});

/** Two images of smooth, different patterns, normalized as the preprocessors do (values about ±2). */
function twoImages(): Float32Array {
  const data = new Float32Array(2 * 3 * 224 * 224);
  for (let i = 0; i < data.length; i += 1) {
    const x = i % 224;
    const y = Math.floor(i / 224) % 224;
    const channel = Math.floor(i / (224 * 224));
    data[i] = 1.5 * Math.sin((x * (channel + 1)) / 19) * Math.cos(y / (13 + channel));
  }
  return data;
}

const cases = [
  {
    preset: 'resnet-50',
    architecture: 'ResNetForImageClassification',
    modelType: 'resnet',
    parameters: '25,557,032',
    processor: { size: { shortest_edge: 224 }, image_mean: [0.485, 0.456, 0.406] },
  },
  {
    preset: 'vit-base-patch16-224',
    architecture: 'ViTForImageClassification',
    modelType: 'vit',
    parameters: '86,567,656',
    processor: { size: { height: 224, width: 224 }, image_mean: [0.5, 0.5, 0.5] },
  },
];

for (const c of cases) {
  test(`kiln synth ${c.preset} writes onnx/model.onnx, config.json with 1000 labels and the synthetic marker, preprocessor_config.json; ONNX Runtime gives logits [2, 1000]`, async () => {
    const out = join(dir, c.preset);
    const result = await kiln(['synth', c.preset, '-o', out]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`${c.parameters}, batch norm counted before folding`));

    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(config.architectures, [c.architecture]);
    assert.equal(config.model_type, c.modelType);
    const id2label = config.id2label as Record<string, string>;
    assert.equal(Object.keys(id2label).length, 1000);
    assert.equal(id2label['999'], 'LABEL_999');
    assert.deepEqual(config.kiln_synthetic, {
      preset: c.preset,
      seed: 0,
      note: (config.kiln_synthetic as { note: string }).note,
    });
    assert.match((config.kiln_synthetic as { note: string }).note, /random weights.*meaningless/);
    const processor = JSON.parse(await readFile(join(out, 'preprocessor_config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.deepEqual({ size: processor.size, image_mean: processor.image_mean }, c.processor);
    assert.match(await readFile(join(out, 'README.md'), 'utf8'), /synthetic/);

    const session = await createSession(join(out, 'onnx', 'model.onnx'), { backend: 'cpu', optimization: 'all' });
    try {
      const logits = (await session.run({ pixel_values: { data: twoImages(), dims: [2, 3, 224, 224] } })).logits!;
      assert.deepEqual(logits.dims, [2, 1000]);
      // Activations neither vanish nor explode through the depth: logits of a sane size, per image.
      for (const row of [logits.data.subarray(0, 1000), logits.data.subarray(1000)]) {
        const mean = row.reduce((a, b) => a + b, 0) / row.length;
        const std = Math.sqrt(row.reduce((a, b) => a + (b - mean) ** 2, 0) / row.length);
        assert.ok(row.every(Number.isFinite) && std > 0.05 && std < 20, `logit std ${std}`);
      }
    } finally {
      await session.release();
    }
  });
}

test('kiln synth --help lists the text and image presets', async () => {
  const help = await kiln(['synth', '--help']);
  assert.equal(help.code, 0);
  for (const preset of [
    'distilbert-base-uncased',
    'bert-base-uncased',
    'roberta-base',
    'all-minilm-l6',
    'bert-large-uncased',
    'resnet-50',
    'vit-base-patch16-224',
  ])
    assert.ok(help.stdout.includes(preset), preset);
});

test('kiln synth resnet-50 --weights safetensors → KILN_ERR_CLI_INVALID_FLAG (image presets write onnx only)', async () => {
  const result = await kiln(['synth', 'resnet-50', '--weights', 'safetensors', '-o', join(dir, 'never')]);
  assert.equal(result.code, 1);
  assert.equal(errorCode(result.stderr), 'KILN_ERR_CLI_INVALID_FLAG');
});

test('kiln synth with an unknown preset → KILN_ERR_SYNTH_UNKNOWN_PRESET listing the image presets too', async () => {
  const result = await kiln(['synth', 'resnet-51']);
  assert.equal(errorCode(result.stderr), 'KILN_ERR_SYNTH_UNKNOWN_PRESET');
  assert.match(result.stderr, /resnet-50, vit-base-patch16-224/);
});
