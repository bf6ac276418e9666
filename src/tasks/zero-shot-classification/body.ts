/**
 * The zero-shot request as /predict and SageMaker's /invocations take it, Hugging Face's
 * pipeline's names: `{"text", "candidate_labels", "hypothesis_template"?, "multi_label"?}`,
 * `candidate_labels` a list of strings or one string of comma-separated labels. Read field by
 * field (the /invocations body has no schema), each problem a coded 400.
 */
import { checkTexts, type RequestLimits } from '../limits.js';
import type { ZeroShotRequest } from './model.js';
import { parseLabels } from './model.js';

export const ZERO_SHOT_EXPECTED =
  '{"text": "…", "candidate_labels": ["…", …]} (optional: "hypothesis_template" with {} for the label, "multi_label")';

/** The body's fields as JSON schema properties (for /predict's schema). */
export const ZERO_SHOT_FIELDS = {
  text: { type: 'string' },
  candidate_labels: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
  hypothesis_template: { type: 'string' },
  multi_label: { type: 'boolean' },
} as const;

/** A zero-shot body's request; `invalid` words a body of the wrong shape. */
export function readZeroShotBody(
  body: unknown,
  { limits, invalid }: { limits: RequestLimits; invalid: (problem: string) => Error },
): ZeroShotRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('it is not a JSON object');
  const {
    text,
    candidate_labels: labels,
    hypothesis_template: template,
    multi_label: multi,
    ...rest
  } = body as Record<string, unknown>;
  const extra = Object.keys(rest)[0];
  if (extra !== undefined) throw invalid(`it has an unknown field "${extra}"`);
  if (typeof text !== 'string') throw invalid(text === undefined ? 'it has no "text"' : '"text" is not a string');
  if (labels === undefined) throw invalid('it has no "candidate_labels"');
  let list: string[];
  if (typeof labels === 'string') list = parseLabels(labels, '"candidate_labels"');
  else if (Array.isArray(labels) && labels.every((l) => typeof l === 'string')) list = labels;
  else throw invalid('"candidate_labels" is neither a string nor a list of strings');
  if (template !== undefined && typeof template !== 'string') throw invalid('"hypothesis_template" is not a string');
  if (multi !== undefined && typeof multi !== 'boolean') throw invalid('"multi_label" is not true or false');
  checkTexts([text], () => '"text"', limits);
  checkTexts(list, (i) => `"candidate_labels[${i}]"`, limits, Number.POSITIVE_INFINITY);
  return {
    text,
    labels: list,
    ...(template !== undefined ? { template } : {}),
    ...(multi !== undefined ? { multiLabel: multi } : {}),
  };
}
