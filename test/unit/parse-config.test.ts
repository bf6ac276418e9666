import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseConfig, resolveSource } from '../../src/model/source.js';
import { sourceFolder, TWO_LABELS, tempDir, tinyClassifier } from '../fixtures/models.js';

describe('parseConfig', () => {
  test('parseConfig orders labels by id, not by the order of the JSON keys', () => {
    const raw = JSON.parse('{"id2label": {"2": "neutral", "0": "negative", "1": "positive"}}') as unknown;
    assert.deepEqual(parseConfig(raw, 'config.json').labels, ['negative', 'positive', 'neutral']);
  });

  test('parseConfig reads model_type, architectures and max_position_embeddings', () => {
    const config = parseConfig(
      { ...TWO_LABELS, model_type: 'distilbert', architectures: ['DistilBertForSequenceClassification', 7] },
      'config.json',
    );
    assert.deepEqual(config, {
      labels: ['NEGATIVE', 'POSITIVE'],
      maxPositions: 512,
      modelType: 'distilbert',
      architectures: ['DistilBertForSequenceClassification'],
      synthetic: null,
      vocabSize: null,
      encoderShape: null,
    });
  });

  test("parseConfig reports kiln synth's marker as synthetic", () => {
    assert.equal(parseConfig({ ...TWO_LABELS, kiln_synthetic: { note: 'random' } }, 'config.json').synthetic, 'random');
  });

  const invalid: [string, unknown, RegExp][] = [
    [
      'non-contiguous ids',
      { id2label: { 0: 'a', 2: 'b' } },
      /"id2label" must map the ids 0\.\.1 to label names, got "2": "b"/,
    ],
    ['ids not starting at 0', { id2label: { 1: 'a', 2: 'b' } }, /must map the ids 0\.\.1/],
    ['a duplicate id ("0" and "00")', { id2label: { 0: 'a', '00': 'b' } }, /must map the ids 0\.\.1/],
    ['a negative id', { id2label: { 0: 'a', '-1': 'b' } }, /got "-1": "b"/],
    ['a fractional id', { id2label: { 0: 'a', 0.5: 'b' } }, /got "0\.5": "b"/],
    ['a non-string label', { id2label: { 0: 'a', 1: 2 } }, /got "1": 2/],
    ['an empty-string id (once read as 0)', { id2label: { '': 'a', 1: 'b' } }, /got "": "a"/],
    ['an exponent id (once read as 1)', { id2label: { 0: 'a', '1e0': 'b' } }, /got "1e0": "b"/],
    ['a null label', { id2label: { 0: null } }, /got "0": null/],
    ['missing id2label', { label2id: { a: 0 } }, /no "id2label" map/],
    ['an empty id2label', { id2label: {} }, /no "id2label" map/],
    ['id2label as a string', { id2label: 'a,b' }, /no "id2label" map/],
    ['an array', [{ id2label: { 0: 'a' } }], /not a JSON object/],
    ['a string', 'config', /not a JSON object/],
    ['null', null, /not a JSON object/],
  ];
  for (const [what, raw, problem] of invalid) {
    test(`parseConfig(${what}) throws KILN_ERR_CONFIG_INVALID`, () => {
      assert.throws(() => parseConfig(raw, '/m/config.json'), {
        name: 'KilnError',
        code: 'KILN_ERR_CONFIG_INVALID',
        message: problem,
      });
      assert.throws(() => parseConfig(raw, '/m/config.json'), { message: /^"\/m\/config\.json" is not usable: / });
    });
  }

  const positions: [string, Record<string, unknown>, number | null][] = [
    ['roberta, 514 positions, pad 1', { model_type: 'roberta', max_position_embeddings: 514, pad_token_id: 1 }, 512],
    ['roberta without pad_token_id (pad 1 assumed)', { model_type: 'roberta', max_position_embeddings: 514 }, 512],
    [
      'xlm-roberta, 514 positions, pad 1',
      { model_type: 'xlm-roberta', max_position_embeddings: 514, pad_token_id: 1 },
      512,
    ],
    [
      'camembert, 514 positions, pad 1',
      { model_type: 'camembert', max_position_embeddings: 514, pad_token_id: 1 },
      512,
    ],
    ['roberta with pad 0', { model_type: 'roberta', max_position_embeddings: 514, pad_token_id: 0 }, 513],
    ['bert, 512 positions, pad 0', { model_type: 'bert', max_position_embeddings: 512, pad_token_id: 0 }, 512],
    ['no max_position_embeddings', { model_type: 'roberta' }, null],
  ];
  for (const [what, extra, expected] of positions) {
    test(`parseConfig(${what}).maxPositions is ${expected}`, () => {
      assert.equal(parseConfig({ id2label: { 0: 'a' }, ...extra }, 'config.json').maxPositions, expected);
    });
  }
});

describe('resolveSource', () => {
  test('resolveSource(a missing path) throws KILN_ERR_SOURCE_NOT_FOUND naming the path as given', async () => {
    const dir = await tempDir();
    const missing = join(dir, 'nope');
    await assert.rejects(resolveSource(missing), {
      name: 'KilnError',
      code: 'KILN_ERR_SOURCE_NOT_FOUND',
      status: 404,
      message: new RegExp(`^no model at "${missing}"`),
    });
  });

  test('resolveSource(a complete folder) finds graph, config, tokenizer and companions', async () => {
    const dir = await sourceFolder(await tempDir(), 'my-model');
    const source = await resolveSource(dir);
    assert.deepEqual(source, {
      kind: 'hf-folder',
      path: dir,
      name: 'my-model',
      onnxPath: join(dir, 'onnx', 'model.onnx'),
      weightFiles: [],
      configPath: join(dir, 'config.json'),
      tokenizerPath: join(dir, 'tokenizer.json'),
      extraFiles: [join(dir, 'tokenizer_config.json')],
      from: 'folder',
      given: dir,
    });
  });

  test('resolveSource(a folder with model.onnx at its root) finds it', async () => {
    const dir = await sourceFolder(await tempDir(), 'flat', { onnxPath: 'model.onnx' });
    assert.equal((await resolveSource(dir)).onnxPath, join(dir, 'model.onnx'));
  });

  const missingFile: [string, Parameters<typeof sourceFolder>[2], string][] = [
    ['without tokenizer.json', { tokenizer: false }, 'tokenizer.json'],
    ['without config.json', { config: null }, 'config.json'],
    [
      'without any .onnx or weights',
      { onnx: null },
      'onnx/model.onnx, model.onnx, model.safetensors or model.safetensors.index.json',
    ],
  ];
  for (const [what, options, file] of missingFile) {
    test(`resolveSource(a folder ${what}) throws KILN_ERR_SOURCE_MISSING_FILE naming ${file}`, async () => {
      const dir = await sourceFolder(await tempDir(), 'incomplete', options);
      await assert.rejects(resolveSource(dir), (err: unknown) => {
        assert.equal((err as { code?: string }).code, 'KILN_ERR_SOURCE_MISSING_FILE');
        assert.equal((err as { params: { file: string } }).params.file, file);
        assert.ok((err as Error).message.includes(` has no ${file}, `), (err as Error).message);
        return true;
      });
    });
  }

  test('resolveSource(a .txt file) throws KILN_ERR_SOURCE_UNRECOGNIZED', async () => {
    const file = join(await tempDir(), 'notes.txt');
    await writeFile(file, 'not a model');
    await assert.rejects(resolveSource(file), { code: 'KILN_ERR_SOURCE_UNRECOGNIZED' });
  });

  const bare: [string, boolean, string][] = [
    ['no config.json', false, 'config.json'],
    ['a config.json but no tokenizer.json', true, 'tokenizer.json'],
  ];
  for (const [what, withConfig, missing] of bare) {
    test(`resolveSource(a bare .onnx with ${what} beside it) throws KILN_ERR_SOURCE_NEEDS_FOLDER naming ${missing}`, async () => {
      const dir = await tempDir();
      await writeFile(join(dir, 'classifier.onnx'), tinyClassifier({ vocab: 10 }));
      if (withConfig) await writeFile(join(dir, 'config.json'), JSON.stringify(TWO_LABELS));
      await assert.rejects(resolveSource(join(dir, 'classifier.onnx')), {
        code: 'KILN_ERR_SOURCE_NEEDS_FOLDER',
        message: new RegExp(`is a bare ONNX file, but no ${missing.replace('.', '\\.')} was found beside it`),
      });
    });
  }

  test('resolveSource(<dir>/onnx/model.onnx) finds config one level up and names the source after <dir>', async () => {
    const dir = await sourceFolder(await tempDir(), 'sst2-model');
    const onnxPath = join(dir, 'onnx', 'model.onnx');
    const source = await resolveSource(onnxPath);
    assert.deepEqual(source, {
      kind: 'onnx-file',
      path: onnxPath,
      name: 'sst2-model',
      onnxPath,
      weightFiles: [],
      configPath: join(dir, 'config.json'),
      tokenizerPath: join(dir, 'tokenizer.json'),
      extraFiles: [join(dir, 'tokenizer_config.json')],
      from: 'file',
      given: onnxPath,
    });
  });

  test('resolveSource(<dir>/classifier.onnx with companions) names the source after the file', async () => {
    const dir = await sourceFolder(await tempDir(), 'holder', { onnx: null });
    await writeFile(join(dir, 'classifier.onnx'), tinyClassifier({ vocab: 10 }));
    const source = await resolveSource(join(dir, 'classifier.onnx'));
    assert.equal(source.kind, 'onnx-file');
    assert.equal(source.name, 'classifier');
    assert.equal(source.configPath, join(dir, 'config.json'));
  });

  test('resolveSource(<dir>/onnx/model.onnx without a config one level up) throws KILN_ERR_SOURCE_NEEDS_FOLDER', async () => {
    const dir = join(await tempDir(), 'lonely');
    await mkdir(join(dir, 'onnx'), { recursive: true });
    await writeFile(join(dir, 'onnx', 'model.onnx'), tinyClassifier({ vocab: 10 }));
    await assert.rejects(resolveSource(join(dir, 'onnx', 'model.onnx')), {
      code: 'KILN_ERR_SOURCE_NEEDS_FOLDER',
      params: { path: join(dir, 'onnx', 'model.onnx'), missing: 'config.json' },
    });
  });
});
