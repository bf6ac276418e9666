/**
 * `compile --verify` for zero-shot classification: the top label (default template,
 * single-label, as `kiln batch` asks) from the fp32 source against the compiled model's, and,
 * when a row has a gold `label`, each model's accuracy (the label's name, any case). A gold label
 * that is none of the row's candidate labels is refused: both models would score it wrong, the
 * accuracy would drop by 0 whatever the compiled model does.
 */
import { KilnError } from '../../core/errors.js';
import type { VerifiedRow, VerifyHooks } from '../task.js';
import type { ZeroShotAnswer, ZeroShotClassifier } from './model.js';

export const zeroShotVerify: VerifyHooks<ZeroShotClassifier> = {
  unit: 'top labels',
  answer: (model, inputs, describe) => model.infer(inputs, describe),
  compare(reference: ZeroShotAnswer, compiled: ZeroShotAnswer, gold, row): VerifiedRow {
    const ref = reference.labels[0]!;
    const out = compiled.labels[0]!;
    // Each label's score in both answers (their orders may differ).
    const scoreDeltas = reference.labels.map((label, i) =>
      Math.abs(reference.scores[i]! - compiled.scores[compiled.labels.indexOf(label)]!),
    );
    const wanted = gold.label === undefined ? null : String(gold.label).trim().toLowerCase();
    if (wanted !== null && !reference.labels.some((label) => label.toLowerCase() === wanted)) {
      // A number is read as a label's name ("1" of star ratings, which TSV cells give as numbers);
      // a class id means nothing here: each row names its own labels.
      const shown =
        typeof gold.label === 'number'
          ? `${gold.label} (a number: class ids are not read)`
          : JSON.stringify(gold.label);
      throw new KilnError('KILN_ERR_DATA_INVALID', {
        ...row,
        problem: `the gold label ${shown} is none of the row's candidate labels (${reference.labels.map((l) => JSON.stringify(l)).join(', ')}); write one of them (any case) as "label"`,
      });
    }
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
