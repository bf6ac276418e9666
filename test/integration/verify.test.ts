/** verifyArtifact catches a deliberately broken compiled model, and lists real flips. */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { compile } from '../../src/compiler/compile.js';
import { enforceLimits, labelIndex, verifyArtifact } from '../../src/compiler/verify.js';
import { readDataset } from '../../src/model/dataset.js';
import { TextTokenizer } from '../../src/model/tokenizer.js';
import { graphInputs } from '../../src/onnx/graph.js';
import { decodeModel, encodeModel } from '../../src/onnx/proto.js';
import { TextClassifier } from '../../src/tasks/text-classification/model.js';
import { EMBEDDED_MODEL, REPO, tempDir } from '../fixtures/models.js';

test('labelIndex reads label names (any case) and ids, and nothing else', () => {
  const labels = ['NEGATIVE', 'POSITIVE'];
  const cases: Array<[string | number | undefined, number | null]> = [
    ['POSITIVE', 1],
    ['negative', 0],
    [1, 1],
    ['0', 0],
    [2, null],
    ['2', null],
    ['meh', null],
    [undefined, null],
    [-1, null],
  ];
  for (const [label, expected] of cases) assert.equal(labelIndex(label, labels), expected, String(label));
});

test('verifyArtifact: a compiled model with a zeroed classifier weight loses accuracy, and compile limits reject it', async () => {
  const dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
  const source = EMBEDDED_MODEL;
  const { artifactDir } = await compile({ source, out: join(dir, 'good.kiln') });

  // Labels = the good model's own predictions, so the reference scores 100 %.
  const sentences = (await readFile(join(REPO, 'data', 'sst2', 'dev.tsv'), 'utf8'))
    .trim()
    .split('\n')
    .slice(1, 61)
    .map((l) => l.split('\t')[0]!.trim());
  const good = await TextClassifier.load(artifactDir, { replicas: 1 });
  const predicted = (await good.classify(sentences)).map((p) => p.label);
  await good.close();
  assert.ok(new Set(predicted).size === 2, 'the model predicts both labels on these sentences');
  const data = join(dir, 'data.tsv');
  await writeFile(data, `sentence\tlabel\n${sentences.map((s, i) => `${s}\t${predicted[i]}`).join('\n')}\n`);

  // Break the compiled graph: zero the classifier weight (logits become the bias alone).
  const model = decodeModel(await readFile(join(artifactDir, 'model.onnx')), 'model.onnx');
  const weight = model.graph!.initializer!.find((t) => t.name === 'classifier.weight')!;
  weight.rawData = new Uint8Array(weight.rawData!.length);
  const broken = join(dir, 'broken.onnx');
  await writeFile(broken, encodeModel(model));

  const tokenizer = new TextTokenizer(
    JSON.parse(await readFile(join(EMBEDDED_MODEL, 'tokenizer.json'), 'utf8')),
    JSON.parse(await readFile(join(EMBEDDED_MODEL, 'tokenizer_config.json'), 'utf8')),
    'tokenizer.json',
  );
  const referenceModel = decodeModel(await readFile(join(source, 'onnx', 'model.onnx')), 'src');
  const report = await verifyArtifact({
    dataset: await readDataset(data),
    labels: ['NEGATIVE', 'POSITIVE'],
    tokenizer,
    maxLength: 128,
    backend: 'cpu',
    referencePath: join(source, 'onnx', 'model.onnx'),
    referenceInputs: graphInputs(referenceModel.graph!),
    compiledPath: broken,
    compiledInputs: graphInputs(model.graph!),
    maxAccuracyDrop: 1,
    minAgreement: 0.98,
  });
  assert.equal(report.accuracy!.reference, 1);
  // With zero weights every row gets the bias's label: exactly the rows of the other label flip.
  const minority = predicted.filter((p) => p !== report.flipped[0]!.reference).length;
  assert.equal(report.flippedCount, sentences.length - minority);
  assert.ok(report.accuracy!.drop > 1);
  for (const f of report.flipped) {
    assert.equal(f.gold, f.reference, 'the reference was right on every row');
    assert.notEqual(f.compiled, f.reference);
    assert.equal(sentences[f.line - 2], f.text, 'line numbers point at the row');
  }
  assert.throws(() => enforceLimits(report, 'int8'), {
    code: 'KILN_ERR_VERIFY_ACCURACY_DROP',
    message: /drop of \d+\.\d+ points \(limit 1;.*--precision fp32/,
  });
});
