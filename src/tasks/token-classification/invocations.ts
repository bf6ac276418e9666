/**
 * SageMaker's /invocations for token classifiers, as Hugging Face's inference containers take
 * them: `{"inputs": "…" | ["…", …], "parameters"?: {"aggregation_strategy", "ignore_labels",
 * "stride", "redact"}}` (a JSON body, or one per line of a JSON Lines body) →
 * `{"entities": […], "redacted"?}` for one text, a list of those for a list.
 */
import { checkTexts } from '../limits.js';
import type { InvocationsBodyHook } from '../task.js';
import { entitiesBody, tokenOptions } from './body.js';
import type { TokenClassifier } from './model.js';

export const tokenInvocations: InvocationsBodyHook<TokenClassifier> = {
  expected:
    '{"inputs": "…" or ["…", …]} (optional: "parameters": {"aggregation_strategy", "ignore_labels", "stride", "redact"})',
  async read(model, body, { limits, deadline, invalid }) {
    if (typeof body === 'string') body = { inputs: body };
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('it is not a JSON object');
    const { inputs, parameters, ...rest } = body as Record<string, unknown>;
    const extra = Object.keys(rest)[0];
    if (extra !== undefined) throw invalid(`it has an unknown field "${extra}"`);
    if (
      parameters !== undefined &&
      (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters))
    )
      throw invalid('"parameters" is not an object');
    const options = tokenOptions((parameters ?? {}) as Record<string, unknown>, (p) => invalid(`"parameters": ${p}`));
    const single = typeof inputs === 'string';
    if (!single && !Array.isArray(inputs))
      throw invalid(inputs === undefined ? 'it has no "inputs"' : '"inputs" is not a string or a list of strings');
    const texts = single ? [inputs as string] : (inputs as unknown[]);
    if (texts.length === 0) throw invalid('"inputs" is an empty list');
    const bad = texts.findIndex((t) => typeof t !== 'string');
    if (bad >= 0) throw invalid(`"inputs[${bad}]" is not a string`);
    const describe = (i: number): string => (single ? '"inputs"' : `"inputs[${i}]"`);
    checkTexts(texts as string[], describe, limits);
    const answers = await model.recognize(texts as string[], describe, { ...options, deadline });
    return single ? entitiesBody(answers[0]!) : answers.map(entitiesBody);
  },
};
