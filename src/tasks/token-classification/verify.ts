/**
 * `compile --verify` for a token classifier: every token's label (`aggregation_strategy: none`,
 * nothing ignored) from the fp32 source against the compiled model's. Agreement counts tokens,
 * not rows: one flipped token in a long text is one token in many. Gold entities in the file,
 * when it has them, are not read.
 */
import type { VerifiedRow, VerifyHooks } from '../task.js';
import type { TokenEntity } from './aggregate.js';
import type { TokenAnswer, TokenClassifier } from './model.js';

/** A token as the flipped-row list shows it: `"paris" B-LOC`. */
const shown = (token: TokenEntity | undefined): string =>
  token ? `${JSON.stringify(token.word)} ${token.entity}` : '(none)';

export const tokenVerify: VerifyHooks<TokenClassifier> = {
  unit: 'tokens',
  answer: (model, inputs, describe) => model.infer(inputs, describe, { aggregationStrategy: 'none', ignoreLabels: [] }),
  compare(reference: TokenAnswer, compiled: TokenAnswer): VerifiedRow {
    // One text, one tokenizer: both list the same tokens in the same order.
    const ref = reference.entities as TokenEntity[];
    const out = compiled.entities as TokenEntity[];
    let agreeing = 0;
    let first = -1;
    const scoreDeltas: number[] = [];
    ref.forEach((token, i) => {
      const other = out[i];
      if (other && other.entity === token.entity) {
        agreeing += 1;
        scoreDeltas.push(Math.abs(token.score - other.score));
      } else if (first < 0) first = i;
    });
    return { units: ref.length, agreeing, scoreDeltas, reference: shown(ref[first]), compiled: shown(out[first]) };
  },
};
