/**
 * What one request may ask of the server: texts per request, characters per text, and how long
 * it may take. Texts are checked before any reaches the tokenizer, so an oversized request costs
 * nothing but its parse.
 */
import { KilnError } from '../core/errors.js';

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
 * Runs `work` (a request's handler) within what is left of the request's `timeoutMs` after the
 * `elapsedMs` since it arrived: 504 when that passes first. `work` gets the deadline as a
 * `performance.now()` value, for the scheduler to drop its inputs still queued then (a batch
 * already running finishes).
 */
export async function runWithin<R>(
  timeoutMs: number | null,
  elapsedMs: number,
  work: (deadline: number | undefined) => Promise<R>,
): Promise<R> {
  if (timeoutMs === null) return work(undefined);
  const left = Math.max(0, timeoutMs - elapsedMs);
  const running = work(performance.now() + left);
  // The abandoned work may still fail later (e.g. a queue-full rejection); nobody awaits it then.
  running.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new KilnError('KILN_ERR_HTTP_TIMEOUT', { limit: timeoutMs })), left);
  });
  try {
    return await Promise.race([running, late]);
  } catch (err) {
    // The scheduler drops inputs still queued at the deadline, which can come a moment before
    // the timer: the client sees one code for one cause either way.
    if (err instanceof KilnError && err.code === 'KILN_ERR_DEADLINE_EXCEEDED')
      throw new KilnError('KILN_ERR_HTTP_TIMEOUT', { limit: timeoutMs }, { cause: err });
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
