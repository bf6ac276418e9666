/**
 * What one request may ask of the server: texts per request, characters per text, and how long
 * it may take. Checked before any text reaches the tokenizer, so an oversized request costs
 * nothing but its parse.
 */
import { KilnError } from '../core/errors.js';
import type { Prediction, TextClassifier } from '../runtime/text-classifier.js';
import type { Embedding, TextEmbedder } from '../runtime/text-embedder.js';

/** Most texts one request may carry; larger jobs belong in several requests or `kiln batch`. */
export const MAX_TEXTS_PER_REQUEST = 1024;
/**
 * Most characters (UTF-16 code units) per text. The embedded model reads 128 tokens, about
 * 600 characters of English; 20,000 leaves room for long-context models and bounds tokenizer time.
 */
export const DEFAULT_MAX_TEXT_CHARS = 20_000;

export interface RequestLimits {
  /** Most characters per text. */
  maxTextChars: number;
  /** Deadline of a request from its arrival, in ms; null for none. */
  timeoutMs: number | null;
}

/** Throws the coded 413 for too many texts or a text that is too long. */
export function checkTexts(texts: readonly string[], describe: (index: number) => string, limits: RequestLimits): void {
  if (texts.length > MAX_TEXTS_PER_REQUEST)
    throw new KilnError('KILN_ERR_HTTP_TOO_MANY_TEXTS', { count: texts.length, limit: MAX_TEXTS_PER_REQUEST });
  texts.forEach((text, index) => {
    if (text.length > limits.maxTextChars)
      throw new KilnError('KILN_ERR_HTTP_TEXT_TOO_LONG', {
        where: describe(index),
        length: text.length,
        limit: limits.maxTextChars,
      });
  });
}

/**
 * Checks the texts and classifies them within what is left of the request's deadline
 * (`elapsedMs` since it arrived). On timeout the answer is 504, and texts still queued then are
 * dropped by the scheduler before they run (a batch already running finishes).
 */
export function classifyWithin(
  classifier: TextClassifier,
  texts: readonly string[],
  describe: (index: number) => string,
  limits: RequestLimits,
  elapsedMs: number,
): Promise<Prediction[]> {
  checkTexts(texts, describe, limits);
  return runWithin(limits, elapsedMs, (options) => classifier.classify(texts, describe, options));
}

/** {@link classifyWithin} for embedding models. */
export function embedWithin(
  embedder: TextEmbedder,
  texts: readonly string[],
  describe: (index: number) => string,
  limits: RequestLimits,
  elapsedMs: number,
): Promise<Embedding[]> {
  checkTexts(texts, describe, limits);
  return runWithin(limits, elapsedMs, (options) => embedder.embed(texts, describe, options));
}

/** Runs `work` with the request's deadline: 504 when it passes, and unstarted work is dropped. */
export async function runWithin<R>(
  limits: RequestLimits,
  elapsedMs: number,
  work: (options: { deadline?: number }) => Promise<R>,
): Promise<R> {
  if (limits.timeoutMs === null) return work({});
  const limit = limits.timeoutMs;
  // Queued inputs still waiting at the deadline are dropped by the scheduler, unrun.
  const running = work({ deadline: performance.now() + Math.max(0, limit - elapsedMs) });
  // The abandoned work may still fail later (e.g. a queue-full rejection); nobody awaits it then.
  running.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new KilnError('KILN_ERR_HTTP_TIMEOUT', { limit })), Math.max(0, limit - elapsedMs));
  });
  try {
    return await Promise.race([running, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
