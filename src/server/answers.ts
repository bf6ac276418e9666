/** The JSON answers of /predict and /invocations, built from a text classifier's predictions. */
import { softmax } from '../core/stats.js';
import type { Prediction } from '../runtime/text-classifier.js';

export interface LabelScore {
  label: string;
  score: number;
}

export type PredictionBody = LabelScore & { scores?: LabelScore[] };

/** Softmax of the logits, one entry per label in the model's label order. */
function allScores(logits: readonly number[], labels: readonly string[]): LabelScore[] {
  return softmax(logits).map((score, i) => ({ label: labels[i] ?? String(i), score }));
}

/** `{label, score}`, plus `scores` (every label, in label order) when asked for. */
export function predictionBody(
  prediction: Prediction,
  labels: readonly string[],
  returnAllScores: boolean,
): PredictionBody {
  const body: PredictionBody = { label: prediction.label, score: prediction.score };
  if (returnAllScores) body.scores = allScores(prediction.logits, labels);
  return body;
}

/** A base64 string's bytes, or null: a string with other characters is refused rather than decoded partly. */
export function decodeBase64(value: unknown): Uint8Array | null {
  if (typeof value !== 'string') return null;
  // Whitespace out first, then one linear-time check: a single pattern that let whitespace into
  // the runs would backtrack quadratically on a long run of spaces, blocking the event loop.
  const compact = value.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) return null;
  return Buffer.from(compact, 'base64');
}
