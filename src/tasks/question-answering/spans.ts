/**
 * Extractive question answering's arithmetic, as Hugging Face's question-answering pipeline
 * defines it: per window, the start and end logits of every token that is neither the question
 * nor a special token (the first special token, [CLS], kept for "no answer") go through a
 * softmax each; a span's score is its start probability times its end probability; a valid span
 * starts and ends in the context, start ≤ end < start + max_answer_len. Long contexts are read in
 * windows that overlap by a stride; the best spans over all windows win.
 */
/** Hugging Face's pipeline defaults. */
export const DEFAULT_MAX_ANSWER_LEN = 15;
export const DEFAULT_DOC_STRIDE = 128;
/** Bounds of the request options (the pipeline has none; these keep a request's work bounded). */
export const MAX_TOP_K = 100;
export const MAX_ANSWER_LEN_LIMIT = 1024;

/** One window's logits and where its context tokens are. */
export interface WindowLogits {
  start: ArrayLike<number>;
  end: ArrayLike<number>;
  /** Positions [contextFrom, contextTo) hold context tokens. */
  contextFrom: number;
  contextTo: number;
  /** The position kept for "no answer" ([CLS]); null when the layout has none. */
  cls: number | null;
}

/** A span of window positions (inclusive) and its score. */
export interface ScoredSpan {
  start: number;
  end: number;
  score: number;
}

/** Softmax over `positions` of `logits`, in float64; every other position is 0. */
function maskedSoftmax(logits: ArrayLike<number>, positions: readonly number[]): Float64Array {
  const out = new Float64Array(logits.length);
  let max = Number.NEGATIVE_INFINITY;
  for (const p of positions) max = Math.max(max, logits[p]!);
  let sum = 0;
  for (const p of positions) {
    out[p] = Math.exp(logits[p]! - max);
    sum += out[p]!;
  }
  for (const p of positions) out[p] = out[p]! / sum;
  return out;
}

/**
 * A window's `topK` best valid spans, best first (ties: the earlier start, then the earlier end),
 * and the score of "no answer" (the kept first token's start × end probability; null without one).
 */
export function windowSpans(
  window: WindowLogits,
  { topK, maxAnswerLen }: { topK: number; maxAnswerLen: number },
): { spans: ScoredSpan[]; nullScore: number | null } {
  const positions: number[] = [];
  if (window.cls !== null) positions.push(window.cls);
  for (let p = window.contextFrom; p < window.contextTo; p += 1) if (p !== window.cls) positions.push(p);
  const start = maskedSoftmax(window.start, positions);
  const end = maskedSoftmax(window.end, positions);
  const nullScore = window.cls === null ? null : start[window.cls]! * end[window.cls]!;
  const spans: ScoredSpan[] = [];
  for (let s = window.contextFrom; s < window.contextTo; s += 1) {
    const last = Math.min(window.contextTo - 1, s + maxAnswerLen - 1);
    for (let e = s; e <= last; e += 1) spans.push({ start: s, end: e, score: start[s]! * end[e]! });
  }
  spans.sort((a, b) => b.score - a.score || a.start - b.start || a.end - b.end);
  return { spans: spans.slice(0, topK), nullScore };
}

/**
 * Where each window's context starts, in context tokens: windows of `room` tokens, each starting
 * `room - stride` after the one before, until one reaches the end (one window when all fit).
 */
export function windowStarts(contextTokens: number, room: number, stride: number): number[] {
  const starts = [0];
  while (starts.at(-1)! + room < contextTokens) starts.push(starts.at(-1)! + room - stride);
  return starts;
}

/** The stride when a request gives none: 128, or half the context's room when that is less. */
export function defaultStride(room: number): number {
  return Math.min(DEFAULT_DOC_STRIDE, Math.floor(room / 2));
}
