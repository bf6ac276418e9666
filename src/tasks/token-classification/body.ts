/**
 * The request fields of token classification, as /predict, SageMaker's `parameters` and KServe
 * v2 take them (Hugging Face's pipeline names): `aggregation_strategy`, `ignore_labels`,
 * `stride`, `redact`.
 */
import type { Entity } from './aggregate.js';
import type { TokenAnswer, TokenOptions } from './model.js';

/** The fields' JSON schemas (/predict adds them to its body; values are checked by the model, for coded errors). */
export const TOKEN_FIELDS = {
  aggregation_strategy: { type: 'string' },
  ignore_labels: { type: 'array', items: { type: 'string' } },
  stride: { type: 'number' },
  redact: { type: 'boolean' },
} as const;

export const TOKEN_FIELD_NAMES = Object.keys(TOKEN_FIELDS);

/**
 * The options in `fields` (a body, or SageMaker's `parameters`); `invalid(problem)` is the
 * coded error for a field of the wrong type or one this task does not read.
 */
export function tokenOptions(fields: Record<string, unknown>, invalid: (problem: string) => Error): TokenOptions {
  const { aggregation_strategy: strategy, ignore_labels: ignore, stride, redact, ...rest } = fields;
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined)
    throw invalid(`"${unknown}" is not a token-classification field (${TOKEN_FIELD_NAMES.join(', ')})`);
  if (strategy !== undefined && typeof strategy !== 'string') throw invalid('"aggregation_strategy" is not a string');
  if (ignore !== undefined && !(Array.isArray(ignore) && ignore.every((l) => typeof l === 'string')))
    throw invalid('"ignore_labels" is not a list of strings');
  if (stride !== undefined && typeof stride !== 'number') throw invalid('"stride" is not a number');
  if (redact !== undefined && typeof redact !== 'boolean') throw invalid('"redact" is not true or false');
  return {
    ...(strategy !== undefined ? { aggregationStrategy: strategy as TokenOptions['aggregationStrategy'] } : {}),
    ...(ignore !== undefined ? { ignoreLabels: ignore as string[] } : {}),
    ...(stride !== undefined ? { stride: stride as number } : {}),
    ...(redact !== undefined ? { redact: redact as boolean } : {}),
  };
}

/** The answer /predict and /invocations give for one text. */
export function entitiesBody(answer: TokenAnswer): { entities: Entity[]; redacted?: string } {
  return { entities: answer.entities, ...(answer.redacted !== undefined ? { redacted: answer.redacted } : {}) };
}
