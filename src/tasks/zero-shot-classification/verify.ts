/**
 * `compile --verify` for zero-shot classification: the top label (default template,
 * single-label, as `kiln batch` asks) from the fp32 source against the compiled model's, and,
 * when a row has a gold `label`, each model's accuracy (the label's name, any case).
 */
import type { VerifiedRow, VerifyHooks } from '../task.js';
import type { ZeroShotAnswer, ZeroShotClassifier } from './model.js';

export const zeroShotVerify: VerifyHooks<ZeroShotClassifier> = {
  unit: 'top labels',
  answer: (model, inputs, describe) => model.infer(inputs, describe),
  compare(reference: ZeroShotAnswer, compiled: ZeroShotAnswer, gold): VerifiedRow {
    const ref = reference.labels[0]!;
    const out = compiled.labels[0]!;
    // Each label's score in both answers (their orders may differ).
    const scoreDeltas = reference.labels.map((label, i) =>
      Math.abs(reference.scores[i]! - compiled.scores[compiled.labels.indexOf(label)]!),
    );
    const wanted = gold.label === undefined ? null : String(gold.label).trim().toLowerCase();
    return {
      units: 1,
      agreeing: ref === out ? 1 : 0,
      scoreDeltas,
      reference: ref,
      compiled: out,
      ...(wanted === null
        ? {}
        : {
            correct: { reference: ref.toLowerCase() === wanted, compiled: out.toLowerCase() === wanted },
            gold: String(gold.label),
          }),
    };
  },
};
