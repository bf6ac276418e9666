/**
 * `compile --verify`: the compiled model checked against its source. Runs the unoptimized fp32
 * source graph and the compiled artifact on every row of a data file (or every image of a
 * folder) and compares: accuracy of each (when the rows have labels), label agreement, logit
 * error and the rows whose label flipped. Compile fails when the drop passes the limit.
 */
import { KilnError } from '../core/errors.js';
import { argmax } from '../core/stats.js';
import type { Dataset } from '../model/dataset.js';
import { buildFeeds } from '../model/feeds.js';
import type { ImagePreprocessing } from '../model/image.js';
import type { VerifyReport } from '../model/reports.js';
import type { TextTokenizer } from '../model/tokenizer.js';
import type { TensorInfo } from '../onnx/graph.js';
import { type Backend, createSession, storedGraphOptimization } from '../runtime/binding.js';
import { imageBatches } from './image-data.js';

export interface VerifyInput {
  dataset: Dataset;
  labels: string[];
  tokenizer: TextTokenizer;
  maxLength: number;
  /** The device the compiled graph runs on; the reference runs on the CPU. */
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
/** Flipped rows the report lists; the count covers them all. */
const MAX_FLIPPED_LISTED = 10;

/** A label as a class index: names by id2label, numbers as ids. Null when it is neither. */
export function labelIndex(label: string | number | undefined, labels: readonly string[]): number | null {
  if (label === undefined) return null;
  if (typeof label === 'number') return Number.isInteger(label) && label >= 0 && label < labels.length ? label : null;
  const byName = labels.findIndex((l) => l.toLowerCase() === label.toLowerCase());
  if (byName >= 0) return byName;
  return /^\d+$/.test(label) && Number(label) < labels.length ? Number(label) : null;
}

async function logitsOf(
  path: string,
  inputs: TensorInfo[],
  input: VerifyInput,
  encoded: ReturnType<TextTokenizer['encode']>[],
  label: string,
): Promise<Float32Array[]> {
  // The reference is the fp32 source on the CPU; the compiled graph runs as the runtime loads it.
  const session = await createSession(
    path,
    label === 'compiled'
      ? { backend: input.backend, optimization: storedGraphOptimization(input.backend) }
      : { backend: 'cpu', optimization: 'disabled' },
  );
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
  const golds = dataset.examples.map((e) => labelIndex(e.label, labels));
  const withLabels = dataset.hasLabels && golds.every((g) => g !== null);
  if (dataset.hasLabels && !withLabels) {
    const bad = dataset.examples.find((_e, i) => golds[i] === null)!;
    throw new KilnError('KILN_ERR_DATA_INVALID', {
      path: dataset.path,
      line: bad.line,
      problem: `label ${JSON.stringify(bad.label)} is neither a label name (${labels.join(', ')}) nor an id in 0..${labels.length - 1}`,
    });
  }
  const encoded = dataset.examples.map((e) => input.tokenizer.encode(e.text, input.maxLength));
  const reference = await logitsOf(input.referencePath, input.referenceInputs, input, encoded, 'reference');
  const compiled = await logitsOf(input.compiledPath, input.compiledInputs, input, encoded, 'compiled');

  const comparison = new OutputComparison(labels);
  let refCorrect = 0;
  let compCorrect = 0;
  dataset.examples.forEach((example, i) => {
    const gold = withLabels ? golds[i]! : null;
    const [rl, cl] = comparison.add(reference[i]!, compiled[i]!, {
      line: example.line,
      text: example.text,
      ...(gold === null ? {} : { gold: labels[gold]! }),
    });
    if (rl === gold) refCorrect += 1;
    if (cl === gold) compCorrect += 1;
  });
  const n = dataset.examples.length;
  return {
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
    ...comparison.summary(),
    limits: { maxAccuracyDrop: input.maxAccuracyDrop, minAgreement: input.minAgreement },
  };
}

/**
 * {@link verifyArtifact} for an image model: the fp32 source and the compiled graph on every
 * image, preprocessed as the runtime will. Images carry no gold labels here, so the measure is
 * agreement with the source.
 */
export async function verifyImages(options: {
  path: string;
  paths: readonly string[];
  spec: ImagePreprocessing;
  labels: readonly string[];
  referencePath: string;
  compiledPath: string;
  backend: Backend;
  minAgreement: number;
  maxAccuracyDrop: number;
}): Promise<VerifyReport> {
  const reference = await createSession(options.referencePath, { backend: 'cpu', optimization: 'disabled' });
  const compiled = await createSession(options.compiledPath, {
    backend: options.backend,
    optimization: storedGraphOptimization(options.backend),
  });
  const classes = options.labels.length;
  const comparison = new OutputComparison(options.labels);
  try {
    for await (const batch of imageBatches(options.paths, options.spec, options.path)) {
      const feed = { [options.spec.input]: { type: 'float32' as const, ...batch } };
      const ref = (await reference.run(feed))[reference.outputNames[0]!]!.data;
      const out = (await compiled.run(feed))[compiled.outputNames[0]!]!.data;
      for (let r = 0; r < batch.dims[0]!; r += 1) {
        const row = comparison.rows;
        const rowOf = (data: Float32Array): Float32Array => data.subarray(r * classes, (r + 1) * classes);
        comparison.add(rowOf(ref), rowOf(out), { line: row + 1, text: options.paths[row]! });
      }
    }
  } finally {
    await reference.release();
    await compiled.release();
  }
  return {
    data: options.path,
    rows: comparison.rows,
    ...comparison.summary(),
    limits: { maxAccuracyDrop: options.maxAccuracyDrop, minAgreement: options.minAgreement },
  };
}

type FlippedRow = VerifyReport['flipped'][number];

/** Reference and compiled outputs compared row by row: top-1 agreement, |Δ| over every value, the first rows whose label flipped. */
class OutputComparison {
  rows = 0;
  private agreeing = 0;
  private maxDelta = 0;
  private sumDelta = 0;
  private values = 0;
  private readonly flipped: FlippedRow[] = [];
  private flippedCount = 0;

  constructor(private readonly labels: readonly string[]) {}

  /** Adds one row; returns the top-1 class of the reference and of the compiled output. */
  add(
    reference: ArrayLike<number>,
    compiled: ArrayLike<number>,
    row: Pick<FlippedRow, 'line' | 'text' | 'gold'>,
  ): [reference: number, compiled: number] {
    for (let j = 0; j < reference.length; j += 1) {
      const d = Math.abs(reference[j]! - compiled[j]!);
      this.maxDelta = Math.max(this.maxDelta, d);
      this.sumDelta += d;
      this.values += 1;
    }
    const r = argmax(reference);
    const c = argmax(compiled);
    this.rows += 1;
    if (r === c) this.agreeing += 1;
    else {
      this.flippedCount += 1;
      const { gold, ...where } = row;
      if (this.flipped.length < MAX_FLIPPED_LISTED)
        this.flipped.push({
          ...where,
          reference: this.labels[r] ?? String(r),
          compiled: this.labels[c] ?? String(c),
          ...(gold === undefined ? {} : { gold }),
        });
    }
    return [r, c];
  }

  summary(): Pick<VerifyReport, 'agreement' | 'maxAbsLogitDelta' | 'meanAbsLogitDelta' | 'flipped' | 'flippedCount'> {
    return {
      agreement: this.rows === 0 ? 1 : this.agreeing / this.rows,
      maxAbsLogitDelta: this.maxDelta,
      meanAbsLogitDelta: this.values > 0 ? this.sumDelta / this.values : 0,
      flipped: this.flipped,
      flippedCount: this.flippedCount,
    };
  }
}

/** Throws the coded error that stops compile when the report breaks a limit. */
export function enforceLimits(report: VerifyReport, precision: string): void {
  const fix =
    precision === 'int8'
      ? 'compile with --precision fp32, or keep more nodes in fp32 (--keep-fp32 "/classifier*" or other node names)'
      : precision === 'fp16'
        ? 'compile with --precision fp32 for this device'
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
  // A classifier's accuracy on gold labels covers its flips. The answer tasks (with a unit) match
  // gold by exact equality, so with low gold accuracy an int8 model could change many answers at
  // no cost in accuracy: agreement is their limit too.
  if ((!report.accuracy || report.unit !== undefined) && report.agreement < report.limits.minAgreement) {
    throw new KilnError('KILN_ERR_VERIFY_AGREEMENT', {
      agreement: (report.agreement * 100).toFixed(2),
      unit: report.unit ?? 'rows',
      limit: (report.limits.minAgreement * 100).toFixed(2),
      flipped: report.flippedCount,
      fix,
    });
  }
}

export type { VerifyReport };
