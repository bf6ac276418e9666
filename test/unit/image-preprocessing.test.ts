import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import {
  completePreprocessing,
  type ImagePreprocessing,
  parseImageSize,
  preprocess,
  preprocessingFromConfig,
  resizeGeometry,
} from '../../src/model/image.js';

describe('preprocessingFromConfig', () => {
  const cases: Array<[string, object, Partial<ImagePreprocessing>]> = [
    [
      'ResNet/ConvNeXt: shortest_edge 224 + crop_pct 0.875 → edge 256, crop 224',
      {
        size: { shortest_edge: 224 },
        crop_pct: 0.875,
        resample: 3,
        image_mean: [0.485, 0.456, 0.406],
        image_std: [0.229, 0.224, 0.225],
      },
      {
        height: 224,
        width: 224,
        resize: 'shortest-edge',
        shortestEdge: 256,
        resample: 'cubic',
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
      },
    ],
    [
      'ConvNeXt at 384: warped to size × size',
      { size: { shortest_edge: 384 }, crop_pct: 0.875 },
      { height: 384, width: 384, resize: 'exact', mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
    ],
    [
      'ViT: size {height, width}, resample 2',
      { size: { height: 224, width: 224 }, resample: 2, rescale_factor: 0.00392156862745098 },
      { height: 224, width: 224, resize: 'exact', resample: 'linear', rescale: 0.00392156862745098 },
    ],
    [
      'CLIP: shortest_edge + crop_size',
      { size: { shortest_edge: 224 }, crop_size: { height: 224, width: 224 }, do_center_crop: true },
      { height: 224, width: 224, resize: 'shortest-edge', shortestEdge: 224 },
    ],
    [
      'do_normalize false, do_rescale false',
      { size: 32, do_normalize: false, do_rescale: false },
      { height: 32, width: 32, resize: 'exact', rescale: 1, mean: [0, 0, 0], std: [1, 1, 1] },
    ],
  ];
  for (const [what, config, expected] of cases) {
    test(`preprocessingFromConfig(${what})`, () => {
      const got = preprocessingFromConfig(config, 'preprocessor_config.json');
      for (const [k, v] of Object.entries(expected)) assert.deepEqual(got[k as keyof ImagePreprocessing], v, k);
    });
  }
  test('preprocessingFromConfig(image_mean of 2 numbers) → KILN_ERR_CONFIG_INVALID', () => {
    assert.throws(() => preprocessingFromConfig({ image_mean: [0.5, 0.5] }, 'p.json'), {
      code: 'KILN_ERR_CONFIG_INVALID',
    });
  });
});

describe('resizeGeometry', () => {
  const cases: Array<
    [
      string,
      number,
      number,
      Pick<ImagePreprocessing, 'height' | 'width' | 'resize' | 'shortestEdge'>,
      ReturnType<typeof resizeGeometry>,
    ]
  > = [
    [
      'shortest-edge 256 of 640 × 480, crop 224',
      640,
      480,
      { height: 224, width: 224, resize: 'shortest-edge', shortestEdge: 256 },
      { resizeTo: { width: 341, height: 256 }, crop: { left: 58, top: 16, width: 224, height: 224 } },
    ],
    [
      'fit-height-pad of a 400 × 40 line into 48 × 192 (capped)',
      400,
      40,
      { height: 48, width: 192, resize: 'fit-height-pad' },
      { resizeTo: { width: 192, height: 48 }, crop: null },
    ],
    [
      'fit-height-pad of a 100 × 40 line (ceil(48 × 2.5) = 120)',
      100,
      40,
      { height: 48, width: 192, resize: 'fit-height-pad' },
      { resizeTo: { width: 120, height: 48 }, crop: null },
    ],
    ['none with a wrong size', 10, 10, { height: 16, width: 16, resize: 'none' }, null],
  ];
  for (const [what, w, h, spec, expected] of cases)
    test(`resizeGeometry(${what})`, () => assert.deepEqual(resizeGeometry(w, h, spec), expected));
});

describe('preprocess', () => {
  const spec = completePreprocessing(
    'x',
    2,
    4,
    { resize: 'fit-height-pad', mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], channels: 'bgr' },
    'logits',
  );
  test('preprocess(a 2 × 2 PNG into 2 × 4, fit-height-pad, BGR): exact values, zeros on the right', async () => {
    const raw = Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]);
    const bytes = await sharp(raw, { raw: { width: 2, height: 2, channels: 3 } })
      .png()
      .toBuffer();
    const t = await preprocess(bytes, spec, 'test');
    // Plane 0 is blue (BGR): pixel 3 (blue) and 4 (white) are 1, the others -1; columns 2-3 are padding (0).
    assert.deepEqual(Array.from(t.subarray(0, 8)), [-1, -1, 0, 0, 1, 1, 0, 0]);
    assert.deepEqual(Array.from(t.subarray(16, 24)), [1, -1, 0, 0, -1, 1, 0, 0]);
  });
  test('preprocess(an SVG) → KILN_ERR_INPUT_IMAGE: only JPEG, PNG and WebP are decoded', async () => {
    await assert.rejects(
      preprocess(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="2" height="2"/>'), spec, 'svg'),
      { code: 'KILN_ERR_INPUT_IMAGE' },
    );
  });
  test('preprocess(truncated PNG bytes) → KILN_ERR_INPUT_IMAGE', async () => {
    const bytes = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } })
      .png()
      .toBuffer();
    await assert.rejects(preprocess(bytes.subarray(0, 30), spec, 'cut'), { code: 'KILN_ERR_INPUT_IMAGE' });
  });
  test('preprocess(a 1 × 400,001 PNG, shortest edge to 256: 102 M pixels tall) → KILN_ERR_INPUT_IMAGE, not an uncoded throw (sharp refuses the geometry synchronously)', async () => {
    const tall = completePreprocessing('x', 224, 224, { resize: 'shortest-edge', shortestEdge: 256 }, 'logits');
    const bytes = await sharp({ create: { width: 1, height: 400_001, channels: 3, background: '#808080' } })
      .png()
      .toBuffer();
    await assert.rejects(preprocess(bytes, tall, 'tall'), { code: 'KILN_ERR_INPUT_IMAGE' });
  });
  test('parseImageSize("48x192", "224", "0x5")', () => {
    assert.deepEqual(parseImageSize('48x192'), { height: 48, width: 192 });
    assert.deepEqual(parseImageSize('224'), { height: 224, width: 224 });
    assert.equal(parseImageSize('0x5'), null);
  });
});
