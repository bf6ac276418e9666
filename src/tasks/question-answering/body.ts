/**
 * The question-answering request as /predict and SageMaker's /invocations take it, Hugging
 * Face's pipeline's names: `{"question", "context", "top_k"?, "max_answer_len"?, "doc_stride"?,
 * "handle_impossible_answer"?}`. Read field by field (the /invocations body has no schema).
 */
import { checkTexts, type RequestLimits } from '../limits.js';
import type { Answer, Answers, QuestionRequest } from './model.js';

export const QA_EXPECTED =
  '{"question": "…", "context": "…"} (optional: "top_k", "max_answer_len", "doc_stride", "handle_impossible_answer")';

/** The body's fields as JSON schema properties (for /predict's schema). */
export const QA_FIELDS = {
  question: { type: 'string' },
  context: { type: 'string' },
  top_k: { type: 'integer' },
  max_answer_len: { type: 'integer' },
  doc_stride: { type: 'integer' },
  handle_impossible_answer: { type: 'boolean' },
} as const;

const INTEGERS = { top_k: 'topK', max_answer_len: 'maxAnswerLen', doc_stride: 'docStride' } as const;

/** A question body's request; `invalid` words a body of the wrong shape. */
export function readQuestionBody(
  body: unknown,
  { limits, invalid }: { limits: RequestLimits; invalid: (problem: string) => Error },
): QuestionRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('it is not a JSON object');
  const record = body as Record<string, unknown>;
  const extra = Object.keys(record).find((k) => !Object.hasOwn(QA_FIELDS, k));
  if (extra !== undefined) throw invalid(`it has an unknown field "${extra}"`);
  const { question, context, handle_impossible_answer: impossible } = record;
  if (typeof question !== 'string')
    throw invalid(question === undefined ? 'it has no "question"' : '"question" is not a string');
  if (typeof context !== 'string')
    throw invalid(context === undefined ? 'it has no "context"' : '"context" is not a string');
  if (impossible !== undefined && typeof impossible !== 'boolean')
    throw invalid('"handle_impossible_answer" is not true or false');
  const request: QuestionRequest = { question, context };
  for (const [field, key] of Object.entries(INTEGERS)) {
    const value = record[field];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isInteger(value)) throw invalid(`"${field}" is not an integer`);
    request[key] = value;
  }
  if (impossible !== undefined) request.handleImpossibleAnswer = impossible;
  checkTexts([{ text: question, text_pair: context }], () => 'the question', limits);
  return request;
}

/** The pipeline's answer: one `{"answer", "score", "start", "end"}`, or a list of them when top_k > 1. */
export function answerBody(answers: Answers, topK: number | undefined): Answer | Answer[] {
  return (topK ?? 1) > 1 ? answers.answers : answers.answers[0]!;
}
