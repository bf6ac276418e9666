/**
 * `compile --verify` for the tasks whose rows become answers (token classification, question
 * answering, zero-shot classification): the fp32 source and the compiled graph each loaded as
 * the task's runtime class, so both answers go through the pre- and post-processing serving uses
 * (windows, hypotheses, span scoring), on every row of the file read as `kiln batch` reads it.
 * The task's {@link VerifyHooks} say what is compared; the report has the classifier's shape.
 */
import type { Manifest } from '../model/artifact.js';
import { type Dataset, inputOf } from '../model/dataset.js';
import type { VerifyReport } from '../model/reports.js';
import { type Backend, storedGraphOptimization } from '../runtime/binding.js';
import { workerReplicas } from '../runtime/replica.js';
import type { AnyTaskModel, TaskModule, VerifiedRow, VerifyHooks } from '../tasks/task.js';

export interface VerifyAnswersInput<M extends AnyTaskModel> {
  module: TaskModule<M>;
  hooks: VerifyHooks<M>;
  dataset: Dataset;
  /** A folder with the artifact's companion files (tokenizer, config) and the manifest they are read with. */
  dir: string;
  manifest: Manifest;
  /** The unoptimized fp32 graph (with the task's tail): the reference, run on the CPU. */
  referencePath: string;
  /** The compiled graph, loaded as the runtime loads it. */
  compiledPath: string;
  backend: Backend;
  /** Percentage points; applies when every row has a gold answer (label). */
  maxAccuracyDrop: number;
  /** Fraction in [0, 1] of the task's units (tokens, answers); applies with gold or without. */
  minAgreement: number;
  onProgress?: (done: number, total: number) => void;
}

/** Rows answered per call of each model: enough to fill batches, few enough for steady progress. */
const CHUNK = 64;
/** Rows whose answers differ that the report lists; the count covers them all. */
const MAX_FLIPPED_LISTED = 10;

export async function verifyAnswers<M extends AnyTaskModel>(input: VerifyAnswersInput<M>): Promise<VerifyReport> {
  const { dataset, hooks, manifest } = input;
  const examples = dataset.examples;
  const open = (modelPath: string, backend: Backend, optimization: 'all' | 'disabled'): Promise<M> =>
    input.module.open(input.dir, manifest, {
      replicas: 1,
      verify: false,
      replicaFactory: workerReplicas({ modelPath, backend, optimization, intraOpThreads: 0 }),
    });
  const reference = await open(input.referencePath, 'cpu', 'disabled');
  let compiled: M | null = null;
  const rows: VerifiedRow[] = [];
  try {
    compiled = await open(input.compiledPath, input.backend, storedGraphOptimization(input.backend));
    for (let start = 0; start < examples.length; start += CHUNK) {
      const chunk = examples.slice(start, start + CHUNK);
      const inputs = chunk.map(inputOf);
      const describe = (i: number): string => `line ${chunk[i]!.line} of ${dataset.path}`;
      const ref = await hooks.answer(reference, inputs, describe);
      input.onProgress?.(start + chunk.length, examples.length * 2);
      const out = await hooks.answer(compiled, inputs, describe);
      input.onProgress?.(examples.length + start + chunk.length, examples.length * 2);
      chunk.forEach((example, i) => {
        const gold = {
          ...(example.label === undefined ? {} : { label: example.label }),
          ...(example.answers === undefined ? {} : { answers: example.answers }),
        };
        rows.push(hooks.compare(ref[i]!, out[i]!, gold, { path: dataset.path, line: example.line }));
      });
    }
  } finally {
    await reference.close();
    await compiled?.close();
  }
  return summarize(rows, input);
}

function summarize<M extends AnyTaskModel>(rows: readonly VerifiedRow[], input: VerifyAnswersInput<M>): VerifyReport {
  const { dataset } = input;
  let units = 0;
  let agreeing = 0;
  let maxDelta = 0;
  let sumDelta = 0;
  let deltas = 0;
  const flipped: VerifyReport['flipped'] = [];
  let flippedCount = 0;
  rows.forEach((row, i) => {
    units += row.units;
    agreeing += row.agreeing;
    for (const d of row.scoreDeltas) {
      maxDelta = Math.max(maxDelta, d);
      sumDelta += d;
      deltas += 1;
    }
    if (row.agreeing === row.units) return;
    flippedCount += 1;
    const example = dataset.examples[i]!;
    if (flipped.length < MAX_FLIPPED_LISTED)
      flipped.push({
        line: example.line,
        text: example.text,
        reference: row.reference,
        compiled: row.compiled,
        ...(row.gold === undefined ? {} : { gold: row.gold }),
      });
  });
  // Accuracy only when every row has its gold, as for classifiers' labels.
  const n = rows.length;
  const withGold = n > 0 && rows.every((r) => r.correct !== undefined);
  const correct = (which: 'reference' | 'compiled'): number => rows.filter((r) => r.correct?.[which]).length;
  return {
    data: dataset.path,
    rows: n,
    unit: input.hooks.unit,
    units,
    ...(withGold
      ? {
          accuracy: {
            reference: correct('reference') / n,
            compiled: correct('compiled') / n,
            drop: ((correct('reference') - correct('compiled')) / n) * 100,
          },
        }
      : {}),
    agreement: units === 0 ? 1 : agreeing / units,
    maxAbsLogitDelta: maxDelta,
    meanAbsLogitDelta: deltas > 0 ? sumDelta / deltas : 0,
    flipped,
    flippedCount,
    limits: { maxAccuracyDrop: input.maxAccuracyDrop, minAgreement: input.minAgreement },
  };
}
