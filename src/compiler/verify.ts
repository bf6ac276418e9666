/**
 * `compile --verify FILE`: the seed's "accuracy differs after compilation", turned into a check.
 * Runs the unoptimized fp32 source graph and the compiled artifact on every row of a data file
 * and compares: accuracy of each (when the rows have labels), label agreement, logit error and
 * the rows whose label flipped. Compile fails when the drop passes the limit.
 */
import { KilnError } from '../core/errors.js';
import type { Dataset } from '../model/dataset.js';
import { buildFeeds } from '../model/feeds.js';
import type { VerifyReport } from '../model/reports.js';
import type { TextTokenizer } from '../model/tokenizer.js';
import type { TensorInfo } from '../onnx/graph.js';
import { type Backend, createSession } from '../runtime/binding.js';

export interface VerifyInput {
  dataset: Dataset;
  labels: string[];
  tokenizer: TextTokenizer;
  maxLength: number;
  backend: Backend;
  /** The unoptimized fp32 graph: the reference. */
  referencePath: string;
  referenceInputs: TensorInfo[];
  /** The compiled graph, loaded as the runtime loads it. */
  compiledPath: string;
  compiledInputs: TensorInfo[];
  /** Percentage points. */
  maxAccuracyDrop: number;
  /** Fraction in [0, 1]; the measure when rows have no labels. */
  minAgreement: number;
  onProgress?: (done: number, total: number) => void;
}

const BATCH = 32;

/** A label as a class index: names by id2label, numbers as ids. Null when it is neither. */
export function labelIndex(label: string | number | undefined, labels: readonly string[]): number | null {
  if (label === undefined) return null;
  if (typeof label === 'number') return Number.isInteger(label) && label >= 0 && label < labels.length ? label : null;
  const byName = labels.findIndex((l) => l.toLowerCase() === label.toLowerCase());
  if (byName >= 0) return byName;
  return /^\d+$/.test(label) && Number(label) < labels.length ? Number(label) : null;
}

const argmax = (values: ArrayLike<number>): number => {
  let best = 0;
  for (let i = 1; i < values.length; i += 1) if (values[i]! > values[best]!) best = i;
  return best;
};

async function logitsOf(
  path: string,
  inputs: TensorInfo[],
  input: VerifyInput,
  encoded: ReturnType<TextTokenizer['encode']>[],
  label: string,
): Promise<Float32Array[]> {
  const session = await createSession(path, { backend: input.backend, optimization: 'disabled' });
  try {
    const out: Float32Array[] = [];
    for (let start = 0; start < encoded.length; start += BATCH) {
      const batch = encoded.slice(start, start + BATCH);
      const result = (await session.run(buildFeeds(batch, inputs, input.tokenizer.padId)))[
        session.outputNames[0] ?? ''
      ]!;
      const classes = result.dims[1]!;
      for (let r = 0; r < batch.length; r += 1) out.push(result.data.slice(r * classes, (r + 1) * classes));
      input.onProgress?.(
        Math.min(encoded.length, start + BATCH) + (label === 'compiled' ? encoded.length : 0),
        encoded.length * 2,
      );
    }
    return out;
  } finally {
    await session.release();
  }
}

export async function verifyArtifact(input: VerifyInput): Promise<VerifyReport> {
  const { dataset, labels } = input;
  const gold = dataset.examples.map((e) => labelIndex(e.label, labels));
  const withLabels = dataset.hasLabels && gold.every((g) => g !== null);
  if (dataset.hasLabels && !withLabels) {
    const bad = dataset.examples.find((_e, i) => gold[i] === null)!;
    throw new KilnError('KILN_ERR_DATA_INVALID', {
      path: dataset.path,
      line: bad.line,
      problem: `label ${JSON.stringify(bad.label)} is neither a label name (${labels.join(', ')}) nor an id in 0..${labels.length - 1}`,
    });
  }
  const encoded = dataset.examples.map((e) => input.tokenizer.encode(e.text, input.maxLength));
  const reference = await logitsOf(input.referencePath, input.referenceInputs, input, encoded, 'reference');
  const compiled = await logitsOf(input.compiledPath, input.compiledInputs, input, encoded, 'compiled');

  let agree = 0;
  let refCorrect = 0;
  let compCorrect = 0;
  let maxDelta = 0;
  let sumDelta = 0;
  let values = 0;
  const flipped: VerifyReport['flipped'] = [];
  let flippedCount = 0;
  dataset.examples.forEach((example, i) => {
    const r = reference[i]!;
    const c = compiled[i]!;
    for (let j = 0; j < r.length; j += 1) {
      const d = Math.abs(r[j]! - c[j]!);
      maxDelta = Math.max(maxDelta, d);
      sumDelta += d;
      values += 1;
    }
    const rl = argmax(r);
    const cl = argmax(c);
    if (rl === cl) agree += 1;
    else {
      flippedCount += 1;
      if (flipped.length < 10) {
        flipped.push({
          line: example.line,
          text: example.text,
          reference: labels[rl]!,
          compiled: labels[cl]!,
          ...(withLabels ? { gold: labels[gold[i]!]! } : {}),
        });
      }
    }
    if (withLabels) {
      if (rl === gold[i]) refCorrect += 1;
      if (cl === gold[i]) compCorrect += 1;
    }
  });
  const n = dataset.examples.length;
  const report: VerifyReport = {
    data: dataset.path,
    rows: n,
    ...(withLabels
      ? {
          accuracy: {
            reference: refCorrect / n,
            compiled: compCorrect / n,
            drop: ((refCorrect - compCorrect) / n) * 100,
          },
        }
      : {}),
    agreement: agree / n,
    maxAbsLogitDelta: maxDelta,
    meanAbsLogitDelta: values > 0 ? sumDelta / values : 0,
    flipped,
    flippedCount,
    limits: { maxAccuracyDrop: input.maxAccuracyDrop, minAgreement: input.minAgreement },
  };
  return report;
}

/** Throws the coded error that stops compile when the report breaks a limit. */
export function enforceLimits(report: VerifyReport, precision: string): void {
  const fix =
    precision === 'int8'
      ? 'compile with --precision fp32, or keep more nodes in fp32 (--keep-fp32 "/classifier*" or other node names)'
      : 'check that the source model and the data belong together; the compiled fp32 graph should match its source';
  if (report.accuracy && report.accuracy.drop > report.limits.maxAccuracyDrop) {
    throw new KilnError('KILN_ERR_VERIFY_ACCURACY_DROP', {
      drop: report.accuracy.drop.toFixed(2),
      reference: (report.accuracy.reference * 100).toFixed(2),
      compiled: (report.accuracy.compiled * 100).toFixed(2),
      limit: String(report.limits.maxAccuracyDrop),
      flipped: report.flippedCount,
      fix,
    });
  }
  if (!report.accuracy && report.agreement < report.limits.minAgreement) {
    throw new KilnError('KILN_ERR_VERIFY_AGREEMENT', {
      agreement: (report.agreement * 100).toFixed(2),
      limit: (report.limits.minAgreement * 100).toFixed(2),
      flipped: report.flippedCount,
      fix,
    });
  }
}

export type { VerifyReport };
