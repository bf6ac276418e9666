/**
 * `compile --verify` on the tasks whose rows become answers, with tiny random-weight BERT heads
 * and the small files under test/fixtures/verify/: token classification counts every token's
 * label, question answering the answer text (and exact match with gold answers), zero-shot the
 * top label (and accuracy against a gold label). An fp32 compile agrees with its source on
 * everything, and its accuracy is what the loaded artifact scores on the gold here; a limit the
 * figures cannot meet stops compile with the coded error. Against another seed's model the
 * answers disagree and the agreement limit refuses them, gold answers or not; a gold that no
 * answer could match, and a limit out of range, are refused before any figure is made.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { before, describe, test } from 'node:test';
import { compile } from '../../src/compiler/compile.js';
import type { CompileOptions } from '../../src/compiler/compile-options.js';
import { enforceLimits } from '../../src/compiler/verify.js';
import { verifyAnswers } from '../../src/compiler/verify-answers.js';
import { KilnError } from '../../src/core/errors.js';
import { importCheckpoint } from '../../src/import/import.js';
import { readArtifact } from '../../src/model/artifact.js';
import { inputOf, readDataset } from '../../src/model/dataset.js';
import type { VerifyReport } from '../../src/model/reports.js';
import { questionAnswering } from '../../src/tasks/question-answering/index.js';
import { loadModel } from '../../src/tasks/registry.js';
import type { AnyTaskModel, TaskModule } from '../../src/tasks/task.js';
import { tokenClassification } from '../../src/tasks/token-classification/index.js';
import { zeroShotClassification } from '../../src/tasks/zero-shot-classification/index.js';
import { REPO, tempDir } from '../fixtures/models.js';
import { randomWeights, tinyBertConfig, vocabIds, writeCheckpoint } from '../fixtures/random-checkpoint.js';

const DATA = join(REPO, 'test', 'fixtures', 'verify');
const NER = tinyBertConfig(['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC'], {
  architectures: ['BertForTokenClassification'],
});
const QA = { ...tinyBertConfig([]), architectures: ['BertForQuestionAnswering'] };
const NLI = tinyBertConfig(['contradiction', 'entailment', 'neutral']);

let dir: string;
const checkpoints: Record<'ner' | 'qa' | 'nli', string> = { ner: '', qa: '', nli: '' };

before(async () => {
  dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
  for (const [name, config, seed] of [
    ['ner', NER, 31],
    ['qa', QA, 32],
    ['nli', NLI, 33],
  ] as const)
    checkpoints[name] = await writeCheckpoint(join(dir, name), config, randomWeights(config, seed));
});

async function verified(name: keyof typeof checkpoints, file: string, options: Partial<CompileOptions> = {}) {
  const { manifest, artifactDir } = await compile({
    source: checkpoints[name],
    out: join(dir, `${name}-${options.precision ?? 'int8'}.kiln`),
    maxLength: 32,
    precision: 'int8',
    verify: resolve(DATA, file),
    ...options,
  });
  assert.ok(manifest.verify, 'the manifest records the verify report');
  return { report: manifest.verify, artifactDir };
}

/**
 * The compiled artifact `artifactDir` verified against another seed's model of the same config
 * (compiled in fp32, so it has the task's tail), at the default agreement limit and with the
 * accuracy limit `maxAccuracyDrop`.
 */
async function againstAnotherSeed<M extends AnyTaskModel>(
  module: TaskModule<M>,
  artifactDir: string,
  config: Record<string, unknown>,
  seed: number,
  file: string,
  maxAccuracyDrop = 1,
): Promise<VerifyReport> {
  const checkpoint = await writeCheckpoint(join(dir, `seed-${seed}`), config, randomWeights(config, seed));
  const other = await compile({ source: checkpoint, out: join(dir, `seed-${seed}.kiln`), maxLength: 32 });
  const { manifest } = await readArtifact(artifactDir);
  return verifyAnswers({
    module,
    hooks: module.verify!,
    dataset: await readDataset(join(DATA, file)),
    dir: artifactDir,
    manifest,
    referencePath: join(other.artifactDir, 'model.onnx'),
    compiledPath: join(artifactDir, 'model.onnx'),
    backend: 'cpu',
    maxAccuracyDrop,
    minAgreement: 0.98,
  });
}

/** Figures every report must hold whatever the weights. */
function checkShape(report: VerifyReport, unit: string, rows: number): void {
  assert.equal(report.unit, unit);
  assert.equal(report.rows, rows);
  assert.ok(report.agreement >= 0 && report.agreement <= 1, `agreement ${report.agreement}`);
  const agreeing = report.agreement * report.units!;
  assert.ok(Math.abs(agreeing - Math.round(agreeing)) < 1e-9, 'agreement is a count of units over the units');
  assert.ok(report.flippedCount <= rows && report.flipped.length === report.flippedCount);
  assert.ok(report.maxAbsLogitDelta >= report.meanAbsLogitDelta && report.meanAbsLogitDelta >= 0);
  if (report.agreement === 1) assert.equal(report.flippedCount, 0);
  else assert.ok(report.flippedCount > 0, 'a unit that differs flips its row');
}

describe('token classification', { timeout: 120_000 }, () => {
  test('int8: agreement counts every token of every row', async () => {
    const { report } = await verified('ner', 'ner.jsonl');
    checkShape(report, 'tokens', 3);
    // Each word of the fixture is one whole token of vocab.txt: the units are the words.
    const dataset = await readDataset(join(DATA, 'ner.jsonl'));
    let words = 0;
    for (const e of dataset.examples) words += (await vocabIds(e.text)).length;
    assert.equal(report.units, words);
    assert.equal(report.accuracy, undefined, 'gold entities are not read');
  });

  test('against a different model (another seed), tokens disagree: listed, counted, and refused at the default limit', async () => {
    const { artifactDir } = await verified('ner', 'ner.jsonl');
    // Another seed's graph, imported only: the reference need not be compiled.
    const other = await writeCheckpoint(join(dir, 'ner-other'), NER, randomWeights(NER, 34));
    await importCheckpoint({ dir: other, out: join(dir, 'other-onnx') });
    const { manifest } = await readArtifact(artifactDir);
    const report = await verifyAnswers({
      module: tokenClassification,
      hooks: tokenClassification.verify!,
      dataset: await readDataset(join(DATA, 'ner.jsonl')),
      dir: artifactDir,
      manifest,
      referencePath: join(dir, 'other-onnx', 'onnx', 'model.onnx'),
      compiledPath: join(artifactDir, 'model.onnx'),
      backend: 'cpu',
      maxAccuracyDrop: 1,
      minAgreement: 0.98,
    });
    checkShape(report, 'tokens', 3);
    assert.ok(report.agreement < 0.9, `two random models agree on ${report.agreement} of the tokens`);
    const flip = report.flipped[0]!;
    assert.match(flip.reference, /^"\w+" [BI]-(PER|LOC)$|^"\w+" O$/);
    assert.notEqual(flip.reference, flip.compiled);
    assert.throws(
      () => enforceLimits(report, 'int8'),
      (err: unknown) => {
        assert.ok(err instanceof KilnError);
        assert.equal(err.code, 'KILN_ERR_VERIFY_AGREEMENT');
        assert.match(err.message, /% of the tokens \(limit 98\.00 %/);
        assert.match(err.message, /--precision fp32/, 'the fix is named');
        return true;
      },
    );
  });

  test('a limit out of range from the library API (NaN, 98 meant as a percentage) is refused before any work', async () => {
    for (const [options, flag] of [
      [{ minAgreement: 1.01 }, '--min-agreement'],
      [{ minAgreement: 98 }, '--min-agreement'],
      [{ minAgreement: Number.NaN }, '--min-agreement'],
      [{ maxAccuracyDrop: -1 }, '--max-accuracy-drop'],
    ] as const) {
      await assert.rejects(
        verified('ner', 'ner.jsonl', { ...options, out: join(dir, 'never.kiln') }),
        (err: unknown) => {
          assert.ok(err instanceof KilnError);
          assert.equal(err.code, 'KILN_ERR_CLI_INVALID_FLAG');
          assert.ok(err.message.startsWith(`${flag} must be a number in [0, `), err.message);
          return true;
        },
      );
    }
  });
});

describe('question answering', { timeout: 120_000 }, () => {
  test('int8: exact match of answers, and against the gold answers of every row', async () => {
    const { report } = await verified('qa', 'qa.jsonl');
    checkShape(report, 'answers', 3);
    assert.equal(report.units, 3);
    assert.ok(report.accuracy, 'every row has gold answers');
    for (const v of [report.accuracy.reference, report.accuracy.compiled]) assert.ok([0, 1, 2, 3].includes(v * 3));
  });

  test('fp32: agrees with its source, and its gold accuracy is what the loaded artifact scores', async () => {
    const { report, artifactDir } = await verified('qa', 'qa.jsonl', { precision: 'fp32' });
    assert.equal(report.agreement, 1);
    assert.ok(report.maxAbsLogitDelta < 1e-4, `scores drift ${report.maxAbsLogitDelta}`);
    const dataset = await readDataset(join(DATA, 'qa.jsonl'));
    // SQuAD's {"text": [...]}, a plain "answer", a list of "answers".
    assert.deepEqual(
      dataset.examples.map((e) => e.answers),
      [['war and music'], ['london'], ['the man', 'man']],
    );
    const model = await loadModel(artifactDir, { replicas: 1 });
    try {
      const answers = (await model.infer(dataset.examples.map(inputOf))) as Array<{
        answers: Array<{ answer: string }>;
      }>;
      const exact = answers.filter((a, i) => dataset.examples[i]!.answers!.includes(a.answers[0]!.answer)).length;
      assert.equal(report.accuracy!.reference, exact / 3);
      assert.equal(report.accuracy!.compiled, exact / 3);
    } finally {
      await model.close();
    }
  });

  test('against a different model (another seed), with gold answers: answers differ and the agreement limit refuses them, whatever the exact match', async () => {
    const { artifactDir } = await verified('qa', 'qa.jsonl', { precision: 'fp32' });
    // Any accuracy drop allowed: only the agreement limit can refuse.
    const report = await againstAnotherSeed(questionAnswering, artifactDir, QA, 35, 'qa.jsonl', 100);
    checkShape(report, 'answers', 3);
    assert.ok(report.accuracy, 'every row has gold answers');
    assert.ok(report.agreement < 0.98, `two random models agree on ${report.agreement} of the answers`);
    assert.throws(() => enforceLimits(report, 'int8'), { code: 'KILN_ERR_VERIFY_AGREEMENT' });
  });

  test('a context of characters the tokenizer drops (a zero-width space) is a coded error naming its line', async () => {
    const file = join(dir, 'qa-zero-width.jsonl');
    const rows = [
      { question: 'where does she live', context: 'she lives in london', answer: 'london' },
      { question: 'who went to paris', context: '\u200b', answer: 'the man' },
    ];
    await writeFile(file, `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);
    await assert.rejects(verified('qa', file, { precision: 'fp32', out: join(dir, 'never.kiln') }), (err: unknown) => {
      assert.ok(err instanceof KilnError);
      assert.equal(err.code, 'KILN_ERR_INPUT_EMPTY_TEXT');
      assert.match(err.message, /^line 2 of .*qa-zero-width\.jsonl's context \(only characters the tokenizer drops\)/);
      return true;
    });
  });
});

describe('zero-shot classification', { timeout: 120_000 }, () => {
  test('int8: top-label agreement, and accuracy what the loaded artifact scores on the gold label column', async () => {
    const { report, artifactDir } = await verified('nli', 'zero-shot.tsv');
    checkShape(report, 'top labels', 3);
    const dataset = await readDataset(join(DATA, 'zero-shot.tsv'));
    const model = await loadModel(artifactDir, { replicas: 1 });
    try {
      const answers = (await model.infer(dataset.examples.map(inputOf))) as Array<{ labels: string[] }>;
      const right = answers.filter((a, i) => a.labels[0] === dataset.examples[i]!.label).length;
      assert.equal(report.accuracy!.compiled, right / 3);
    } finally {
      await model.close();
    }
    assert.ok([0, 1, 2, 3].includes(report.accuracy!.reference * 3));
  });

  test('against a different model (another seed), with gold labels: top labels differ and the agreement limit refuses them, whatever the accuracy', async () => {
    const { artifactDir } = await verified('nli', 'zero-shot.tsv', { precision: 'fp32' });
    const report = await againstAnotherSeed(zeroShotClassification, artifactDir, NLI, 36, 'zero-shot.tsv', 100);
    checkShape(report, 'top labels', 3);
    assert.ok(report.accuracy, 'every row has its gold label');
    assert.ok(report.agreement < 0.98, `two random models agree on ${report.agreement} of the top labels`);
    assert.throws(() => enforceLimits(report, 'int8'), { code: 'KILN_ERR_VERIFY_AGREEMENT' });
  });

  test("a gold label that is none of the row's candidate labels (a typo, a class id) is a coded error naming the line, the label and the candidates", async () => {
    for (const [gold, shown] of [
      ['sport', '"sport"'],
      ['2', '2 \\(a number: class ids are not read\\)'],
    ]) {
      const file = join(dir, `zero-shot-gold-${gold}.tsv`);
      await writeFile(
        file,
        `text\tcandidate_labels\tlabel\nthe soup needs more salt\tsports,politics,cooking\tCooking\nthe match went to extra time\tsports,politics,cooking\t${gold}\n`,
      );
      await assert.rejects(
        verified('nli', file, { precision: 'fp32', out: join(dir, 'never.kiln') }),
        (err: unknown) => {
          assert.ok(err instanceof KilnError);
          assert.equal(err.code, 'KILN_ERR_DATA_INVALID');
          assert.match(
            err.message,
            new RegExp(
              `line 3: the gold label ${shown} is none of the row's candidate labels \\(("\\w+", ){2}"\\w+"\\)`,
            ),
          );
          for (const label of ['sports', 'politics', 'cooking']) assert.ok(err.message.includes(`"${label}"`), label);
          return true;
        },
      );
    }
  });
});
