/** What turns a classifier's logits into the scores users read (artifact.ts, ScoreFunction). */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sigmoid, softmax } from '../core/stats.js';
import type { ScoreFunction } from '../model/artifact.js';

/** Every label's score, in label order. */
export function scoresOf(logits: readonly number[], fn: ScoreFunction): number[] {
  if (fn === 'softmax') return softmax(logits);
  if (fn === 'sigmoid') return logits.map(sigmoid);
  return [...logits];
}

/** config.json's `problem_type` in a model's folder; undefined when there is none to read. */
export async function problemType(modelHome: string): Promise<unknown> {
  try {
    return (JSON.parse(await readFile(join(modelHome, 'config.json'), 'utf8')) as { problem_type?: unknown })
      .problem_type;
  } catch {
    // A bare graph without config.json: nothing says the head is multi-label.
    return undefined;
  }
}
