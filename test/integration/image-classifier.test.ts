/**
 * An image classifier end to end in one process: a tiny ResNet-shaped CNN with known weights
 * compiled from a Hugging Face-layout folder (preprocessor_config.json with crop_pct), its logits
 * against a float64 reference on images that need no resize, top-1 on resized ones, and the
 * server's /predict (base64 JSON and raw image/png) and KServe v2 (BYTES and FP32) routes.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { compile } from '../../src/compiler/compile.js';
import { createServer, type KilnServer } from '../../src/server/server.js';
import { ImageClassifier } from '../../src/tasks/image-classification/model.js';
import { loadModel } from '../../src/tasks/registry.js';
import { CNN, CNN_PREPROCESSOR, cnnFolder, cnnReference, pixels, png } from '../fixtures/image-models.js';
import { tempDir } from '../fixtures/models.js';

let artifact: string;
let classifier: ImageClassifier;

/** The CHW tensor the preprocessor_config.json asks for, from HWC pixels of the model's size. */
function normalized(raw: Uint8Array, size: number): Float64Array {
  const out = new Float64Array(3 * size * size);
  for (let c = 0; c < 3; c += 1) {
    for (let i = 0; i < size * size; i += 1)
      out[c * size * size + i] =
        (raw[i * 3 + c]! / 255 - CNN_PREPROCESSOR.image_mean[c]!) / CNN_PREPROCESSOR.image_std[c]!;
  }
  return out;
}

before(async () => {
  const dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
  const result = await compile({ source: await cnnFolder(dir), out: join(dir, 'cnn.kiln') });
  artifact = result.artifactDir;
  const model = await loadModel(artifact, { replicas: 1 });
  assert.equal(model.task, 'image-classification');
  classifier = model as ImageClassifier;
});

after(() => classifier?.close());

describe('ImageClassifier on a compiled ResNet-shaped CNN', () => {
  test('compile writes the preprocessing from preprocessor_config.json (crop_pct → shortest edge 18, center 16)', async () => {
    const m = classifier.manifest;
    assert.equal(m.task, 'image-classification');
    assert.deepEqual(m.labels, [...CNN.labels]);
    assert.equal(m.tokenizer, undefined);
    assert.deepEqual(
      { ...m.image, mean: undefined, std: undefined },
      {
        input: 'pixel_values',
        height: 16,
        width: 16,
        channels: 'rgb',
        resize: 'shortest-edge',
        shortestEdge: 18,
        resample: 'linear',
        rescale: 1 / 255,
        mean: undefined,
        std: undefined,
        outputs: 'logits',
      },
    );
  });

  test('classify(images of exactly 16 × 16) matches a float64 reference within 1e-3', async () => {
    let worst = 0;
    for (let seed = 1; seed <= 6; seed += 1) {
      const raw = pixels(CNN.size, CNN.size, seed);
      const reference = cnnReference(normalized(raw, CNN.size));
      const tensor = Float32Array.from(normalized(raw, CNN.size));
      const [fromTensor] = await classifier.classifyTensors([tensor]);
      for (let k = 0; k < CNN.classes; k += 1)
        worst = Math.max(worst, Math.abs(fromTensor!.logits[k]! - reference[k]!));
    }
    assert.ok(worst <= 1e-3, `max |Δlogit| ${worst}`);
  });

  test('classify(PNG of 18 × 18): the center 16 × 16 crop, no resampling, logits within 1e-3 of the reference', async () => {
    // 18 is the shortest edge the spec resizes to, so the image is only cropped (rows/cols 1..16).
    let worst = 0;
    const labels = new Set<string>();
    for (let seed = 1; seed <= 8; seed += 1) {
      const raw = pixels(18, 18, seed);
      const crop = new Uint8Array(16 * 16 * 3);
      for (let y = 0; y < 16; y += 1)
        crop.set(raw.subarray(((y + 1) * 18 + 1) * 3, ((y + 1) * 18 + 17) * 3), y * 16 * 3);
      const reference = cnnReference(normalized(crop, 16));
      const [prediction] = await classifier.classify([await png(raw, 18, 18)]);
      for (let k = 0; k < CNN.classes; k += 1)
        worst = Math.max(worst, Math.abs(prediction!.logits[k]! - reference[k]!));
      labels.add(prediction!.label);
      assert.equal(prediction!.labels.length, CNN.classes);
      assert.equal(prediction!.labels[0]!.label, prediction!.label);
    }
    process.stdout.write(`# no-resize max |Δlogit| ${worst.toExponential(2)}, labels seen ${[...labels].join(', ')}\n`);
    assert.ok(labels.size >= 2, 'the fixture images should not all get one label');
    assert.ok(worst <= 1e-3, `max |Δlogit| ${worst}`);
  });

  test('classify(larger PNGs that need resizing) agrees on top-1 with sharp resize + crop done in the test', async () => {
    let agree = 0;
    const n = 8;
    for (let seed = 1; seed <= n; seed += 1) {
      const [w, h] = [40 + seed * 3, 30 + seed * 2];
      const raw = pixels(w, h, seed + 100);
      const encoded = await png(raw, w, h);
      // Reference path: resize shortest edge to 18 (long edge truncated), center crop 16, by hand-chosen sharp calls.
      const rw = Math.floor((18 * w) / h);
      const { data } = await sharp(encoded)
        .resize(rw, 18, { fit: 'fill', kernel: 'linear', fastShrinkOnLoad: false })
        .extract({ left: Math.floor((rw - 16) / 2), top: 1, width: 16, height: 16 })
        .raw()
        .toBuffer({ resolveWithObject: true });
      const reference = cnnReference(normalized(data, 16));
      const best = reference.indexOf(Math.max(...reference));
      const [prediction] = await classifier.classify([encoded]);
      if (prediction!.label === CNN.labels[best]) agree += 1;
    }
    assert.equal(agree, n);
  });

  test('classify(bytes that are not an image) → KILN_ERR_INPUT_IMAGE naming the input', async () => {
    await assert.rejects(
      classifier.classify([new TextEncoder().encode('not an image')], () => 'upload 3'),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'KILN_ERR_INPUT_IMAGE');
        assert.match(err.message, /^upload 3 is not a usable image: .*JPEG, PNG, WEBP/);
        return true;
      },
    );
  });

  test('infer(a text) → KILN_ERR_INPUT_KIND', async () => {
    await assert.rejects(classifier.infer(['a cat']), { code: 'KILN_ERR_INPUT_KIND' });
  });
});

describe('kiln serve routes for an image model', () => {
  let server: KilnServer;
  let url: string;
  before(async () => {
    server = createServer({ port: 0 });
    url = await server.listen();
    server.model.set(await ImageClassifier.load(artifact, { replicas: 1 }));
  });
  after(() => server?.close());

  const post = (path: string, body: BodyInit, type = 'application/json') =>
    fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': type }, body });

  test('POST /predict {"image": base64} and a raw image/png body give the same answer as classify()', async () => {
    const encoded = await png(pixels(18, 18, 3), 18, 18);
    const [expected] = await classifier.classify([encoded]);
    const json = await post('/predict', JSON.stringify({ image: encoded.toString('base64') }));
    assert.equal(json.status, 200);
    const body = (await json.json()) as {
      label: string;
      score: number;
      labels: Array<{ label: string; score: number }>;
    };
    assert.equal(body.label, expected!.label);
    assert.ok(Math.abs(body.score - expected!.score) < 1e-6);
    assert.equal(body.labels.length, CNN.classes);
    const raw = await post('/predict', new Uint8Array(encoded), 'image/png');
    assert.equal(raw.status, 200);
    assert.deepEqual(await raw.json(), body);
    const many = await post(
      '/predict',
      JSON.stringify({ images: [encoded.toString('base64'), encoded.toString('base64')] }),
    );
    assert.equal(((await many.json()) as { predictions: unknown[] }).predictions.length, 2);
  });

  test('SageMaker POST /invocations with an application/x-image or image/png body answers as /predict; a JSON body is 400 KILN_ERR_HTTP_WRONG_TASK', async () => {
    const encoded = await png(pixels(18, 18, 5), 18, 18);
    const [expected] = await classifier.classify([encoded]);
    for (const type of ['application/x-image', 'image/png']) {
      const res = await post('/invocations', new Uint8Array(encoded), type);
      assert.equal(res.status, 200, type);
      const body = (await res.json()) as { label: string; score: number; labels: unknown[] };
      assert.equal(body.label, expected!.label);
      assert.ok(Math.abs(body.score - expected!.score) < 1e-6);
    }
    const json = await post('/invocations', JSON.stringify({ inputs: 'a cat' }));
    assert.equal(json.status, 400);
    assert.equal(((await json.json()) as { error: { code: string } }).error.code, 'KILN_ERR_HTTP_WRONG_TASK');
  });

  test('an image/* body is read only by /predict and /invocations: another route refuses it (415) without reading 20 MiB', async () => {
    const res = await post('/v1/embeddings', new Uint8Array(2 * 2 ** 20), 'image/png');
    assert.equal(res.status, 415);
  });

  test('POST /predict with a broken image → 400 KILN_ERR_INPUT_IMAGE; with text → 400 KILN_ERR_INPUT_KIND', async () => {
    const broken = await post('/predict', new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]), 'image/png');
    assert.equal(broken.status, 400);
    assert.equal(((await broken.json()) as { error: { code: string } }).error.code, 'KILN_ERR_INPUT_IMAGE');
    const text = await post('/predict', JSON.stringify({ text: 'a cat' }));
    assert.equal(text.status, 400);
    assert.equal(((await text.json()) as { error: { code: string } }).error.code, 'KILN_ERR_INPUT_KIND');
  });

  test('KServe v2 infer with BYTES (base64 images) and FP32 [n, 3, 16, 16] tensors', async () => {
    const raws = [pixels(16, 16, 21), pixels(16, 16, 22)];
    const encoded = await Promise.all(raws.map((r) => png(r, 16, 16)));
    const tensors = raws.map((r) => Array.from(normalized(r, 16)));
    const bytes = await post(
      `/v2/models/tiny-resnet/infer`,
      JSON.stringify({
        inputs: [{ name: 'image', datatype: 'BYTES', shape: [2], data: encoded.map((e) => e.toString('base64')) }],
      }),
    );
    assert.equal(bytes.status, 200, await bytes.clone().text());
    const fp32 = await post(
      `/v2/models/tiny-resnet/infer`,
      JSON.stringify({
        inputs: [{ name: 'pixel_values', datatype: 'FP32', shape: [2, 3, 16, 16], data: tensors.flat() }],
      }),
    );
    assert.equal(fp32.status, 200, await fp32.clone().text());
    type V2 = { outputs: Array<{ name: string; shape: number[]; data: Array<string | number> }> };
    const fromFp32 = (await fp32.json()) as V2;
    const logits = fromFp32.outputs.find((o) => o.name === 'logits')!;
    assert.deepEqual(logits.shape, [2, CNN.classes]);
    tensors.forEach((t, r) => {
      const reference = cnnReference(t);
      for (let k = 0; k < CNN.classes; k += 1)
        assert.ok(Math.abs((logits.data[r * CNN.classes + k] as number) - reference[k]!) <= 1e-3);
    });
    // A 16 × 16 PNG is resized to 18 first (shortest edge), so BYTES agrees on labels, not logits.
    assert.equal(((await bytes.json()) as V2).outputs.find((o) => o.name === 'label')!.data.length, 2);
    const meta = (await (await fetch(`${url}/v2/models/tiny-resnet`)).json()) as {
      inputs: Array<{ name: string; datatype: string }>;
    };
    assert.deepEqual(
      meta.inputs.map((i) => i.datatype),
      ['BYTES', 'FP32'],
    );
  });
});
