/**
 * `compile --verify` for extractive question answering: the best answer's text from the fp32
 * source against the compiled model's (exact match after trimming), and, when a row has gold
 * answers (`answer` / `answers`), each model's exact match with any of them. Plain equality:
 * no SQuAD normalisation (case, punctuation, articles).
 */
import type { VerifiedRow, VerifyHooks } from '../task.js';
import type { Answers, QuestionAnswerer } from './model.js';

export const answerVerify: VerifyHooks<QuestionAnswerer> = {
  unit: 'answers',
  answer: (model, inputs, describe) => model.infer(inputs, describe),
  compare(reference: Answers, compiled: Answers, gold): VerifiedRow {
    // ask() answers at least one span for every context it takes (one without tokens is refused).
    const ref = reference.answers[0]!;
    const out = compiled.answers[0]!;
    const same = ref.answer.trim() === out.answer.trim();
    const golds = gold.answers?.map((a) => a.trim());
    const matches = (answer: string): boolean => golds!.includes(answer.trim());
    return {
      units: 1,
      agreeing: same ? 1 : 0,
      scoreDeltas: same ? [Math.abs(ref.score - out.score)] : [],
      reference: JSON.stringify(ref.answer),
      compiled: JSON.stringify(out.answer),
      ...(golds
        ? {
            correct: { reference: matches(ref.answer), compiled: matches(out.answer) },
            gold: golds.map((g) => JSON.stringify(g)).join(' | '),
          }
        : {}),
    };
  },
};
