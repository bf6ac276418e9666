/**
 * Calibration for static int8: the fp32 model runs over sample batches with every tensor to be
 * quantized as an extra output, and each one's range (min and max) and per-channel mean (for
 * bias correction) are recorded.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KilnError } from '../core/errors.js';
import type { FloatTensor } from '../core/tensor.js';
import { graphInputs } from '../onnx/graph.js';
import { DataType, encodeModel, type GraphProto, type ModelProto, onnx, type ValueInfoProto } from '../onnx/proto.js';
import { createSession } from '../runtime/binding.js';

const T = DataType;

export interface CalibrateOptions {
  /** The model input the batches feed. @defaultValue the model's only input */
  inputName?: string;
  /** Intra-op threads of the calibration session; 0 uses every core. @defaultValue 0 */
  intraOpThreads?: number;
  /** Called after each calibration batch with the number of batches done. */
  onBatch?: (done: number) => void;
}

/** Calibration batches: float32 NCHW tensors for the model's image input. */
export type CalibrationBatches = Iterable<FloatTensor> | AsyncIterable<FloatTensor>;

export interface ActivationRange {
  min: number;
  max: number;
}

export interface CalibrationResult {
  ranges: Map<string, ActivationRange>;
  /** Mean of each channel (axis 1 of 2-D and 4-D tensors) over the calibration inputs, for bias correction. */
  channelMeans?: Map<string, Float64Array>;
  batches: number;
  /** Images (first dimension of every batch, summed). */
  samples: number;
}

/**
 * Runs the fp32 model over the calibration batches with every tensor in `tensors` as an extra
 * graph output and keeps each one's min and max. Graph inputs are measured from the batches.
 */
export async function calibrate(
  model: ModelProto,
  tensors: readonly string[],
  batches: CalibrationBatches,
  options: CalibrateOptions = {},
): Promise<CalibrationResult> {
  const graph: GraphProto = model.graph ?? {};
  const inputs = graphInputs(graph);
  const inputName = options.inputName ?? (inputs.length === 1 ? inputs[0]!.name : undefined);
  if (!inputName || !inputs.some((i) => i.name === inputName)) {
    throw new KilnError('KILN_ERR_CALIBRATION_INVALID', {
      problem: options.inputName
        ? `the model has no input ${JSON.stringify(options.inputName)}`
        : `the model has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}) and calibration feeds one`,
      fix: `name the image input with inputName (one of: ${inputs.map((i) => i.name).join(', ')})`,
    });
  }
  const existing = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  const extra: ValueInfoProto[] = tensors
    .filter((t) => t !== inputName && !existing.has(t))
    .map((name) => ({ name, type: { tensorType: { elemType: T.FLOAT } } }));
  const probe = onnx.ModelProto.create({ ...model, graph: { ...graph, output: [...(graph.output ?? []), ...extra] } });

  const dir = await mkdtemp(join(tmpdir(), 'kiln-calibrate-'));
  const ranges = new Map<string, ActivationRange>();
  const sums = new Map<string, { sums: Float64Array; count: number }>();
  const measure = (name: string, { data, dims }: FloatTensor): void => {
    let { min, max } = ranges.get(name) ?? { min: Infinity, max: -Infinity };
    for (let i = 0; i < data.length; i += 1) {
      const v = data[i]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    ranges.set(name, { min, max });
    if (dims.length !== 2 && dims.length !== 4) return;
    const channels = dims[1]!;
    const inner = dims.length === 4 ? dims[2]! * dims[3]! : 1;
    const entry = sums.get(name) ?? { sums: new Float64Array(channels), count: 0 };
    if (entry.sums.length !== channels) return;
    for (let start = 0; start < data.length; start += inner) {
      let sum = 0;
      for (let i = start; i < start + inner; i += 1) sum += data[i]!;
      const channel = Math.floor(start / inner) % channels;
      entry.sums[channel] = entry.sums[channel]! + sum;
    }
    entry.count += data.length / channels;
    sums.set(name, entry);
  };
  let count = 0;
  let samples = 0;
  try {
    const path = join(dir, 'calibrate.onnx');
    await writeFile(path, encodeModel(probe));
    const session = await createSession(path, {
      backend: 'cpu',
      optimization: 'all',
      intraOpThreads: options.intraOpThreads ?? 0,
    });
    try {
      const wanted = new Set(tensors);
      for await (const batch of batches) {
        const outputs = await session.run({ [inputName]: batch });
        if (wanted.has(inputName)) measure(inputName, batch);
        for (const name of tensors) if (name !== inputName && outputs[name]) measure(name, outputs[name]!);
        count += 1;
        samples += batch.dims[0] ?? 1;
        options.onBatch?.(count);
      }
    } finally {
      await session.release();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  if (count === 0)
    throw new KilnError('KILN_ERR_CALIBRATION_INVALID', {
      problem: 'no calibration batches were given',
      fix: 'pass at least one batch of representative inputs (a few dozen images is typical)',
    });
  const channelMeans = new Map([...sums].map(([name, { sums: s, count: n }]) => [name, s.map((v) => v / n)]));
  return { ranges, channelMeans, batches: count, samples };
}
