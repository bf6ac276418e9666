/**
 * What the tasks that answer labels (text and image classification) share: the JSON answer of
 * /predict and /invocations, and the KServe v2 label, score and logits tensors.
 */
import { softmax } from '../core/stats.js';
import type { TensorMetadata, TensorOutput } from './task.js';

export interface LabelScore {
  label: string;
  score: number;
}

export type PredictionBody = LabelScore & { scores?: LabelScore[] };

/** Softmax of the logits, one entry per label in the model's label order. */
function allScores(logits: readonly number[], labels: readonly string[]): LabelScore[] {
  return softmax(logits).map((score, i) => ({ label: labels[i] ?? String(i), score }));
}

/**
 * `{label, score}`, plus `scores` (every label, in label order) when asked for: the
 * prediction's own `scores` (its model's score function), else the softmax of its logits.
 */
export function predictionBody(
  prediction: { label: string; score: number; logits: readonly number[]; scores?: readonly number[] },
  labels: readonly string[],
  returnAllScores: boolean,
): PredictionBody {
  const body: PredictionBody = { label: prediction.label, score: prediction.score };
  if (returnAllScores)
    body.scores = prediction.scores
      ? prediction.scores.map((score, i) => ({ label: labels[i] ?? String(i), score }))
      : allScores(prediction.logits, labels);
  return body;
}

/** KServe metadata of the label outputs: label and score per input, logits [n, classes]. */
export function labelOutputs(classes: number): TensorMetadata[] {
  return [
    { name: 'label', datatype: 'BYTES', shape: [-1] },
    { name: 'score', datatype: 'FP32', shape: [-1] },
    { name: 'logits', datatype: 'FP32', shape: [-1, classes] },
  ];
}

/** The label outputs of predictions: label and score in `shape`, logits [n, classes]. */
export function labelTensors(
  predictions: ReadonlyArray<{ label: string; score: number; logits: readonly number[] }>,
  classes: number,
  shape: number[],
): Record<string, TensorOutput> {
  return {
    label: { name: 'label', datatype: 'BYTES', shape, data: predictions.map((p) => p.label) },
    score: { name: 'score', datatype: 'FP32', shape, data: predictions.map((p) => p.score) },
    logits: {
      name: 'logits',
      datatype: 'FP32',
      shape: [predictions.length, classes],
      data: predictions.flatMap((p) => p.logits),
    },
  };
}

/** Labels for a one-line summary: the first eight, then how many. */
export function labelList(labels: readonly string[]): string {
  return labels.length > 8 ? `${labels.slice(0, 8).join(', ')} … (${labels.length})` : labels.join(', ');
}
