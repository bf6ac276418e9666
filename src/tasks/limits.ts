/**
 * What one request may carry: texts per request and characters per text. Texts are checked
 * before any reaches the tokenizer, so an oversized request costs nothing but its parse.
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
