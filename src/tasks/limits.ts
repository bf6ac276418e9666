/**
 * What one request may carry: texts per request and characters per text. Texts are checked
 * before any reaches the tokenizer, so an oversized request costs nothing but its parse.
 */
import { KilnError } from '../core/errors.js';
import type { TextInput } from '../runtime/text-model.js';

/**
 * Most inputs one request may ever carry (the ceiling of `--max-client-batch`, and the cap of
 * the few inputs it does not govern: KServe token rows and images, /decode rows); larger jobs
 * belong in several requests or `kiln batch`.
 */
export const MAX_TEXTS_PER_REQUEST = 1024;
/**
 * Most characters (UTF-16 code units) per text. The embedded model reads 128 tokens, about
 * 600 characters of English; 20,000 leaves room for long-context models and bounds tokenizer time.
 */
export const DEFAULT_MAX_TEXT_CHARS = 20_000;
/** Most inputs per request unless `--max-client-batch` says otherwise. */
export const DEFAULT_MAX_CLIENT_BATCH = MAX_TEXTS_PER_REQUEST;

/** Most candidate labels per zero-shot request unless `--max-labels` says otherwise: each label is one model run. */
export const DEFAULT_MAX_LABELS = 32;

export interface RequestLimits {
  /** Most characters per text. */
  maxTextChars: number;
  /**
   * Most inputs one request may carry (`--max-client-batch`, at most {@link MAX_TEXTS_PER_REQUEST}):
   * texts or pairs on /predict, /embed, /v1/embeddings, /tokenize, /invocations and KServe texts,
   * images on /predict, the texts a rerank scores against its query. TEI's `max_client_batch_size`.
   */
  maxClientBatch: number;
  /** Most candidate labels one zero-shot request may carry (`--max-labels`). */
  maxLabels: number;
  /** Deadline of a request from its arrival, in ms; null for none. */
  timeoutMs: number | null;
}

/**
 * Throws the coded 413 for too many texts (`limit`: the request's cap, `--max-client-batch`
 * unless the route says otherwise) or a text that is too long; each text of a pair counts on
 * its own.
 */
export function checkTexts(
  texts: readonly TextInput[],
  describe: (index: number) => string,
  limits: RequestLimits,
  limit = limits.maxClientBatch,
): void {
  if (texts.length > limit) throw new KilnError('KILN_ERR_HTTP_TOO_MANY_TEXTS', { count: texts.length, limit });
  const check = (text: string, where: string): void => {
    if (text.length > limits.maxTextChars)
      throw new KilnError('KILN_ERR_HTTP_TEXT_TOO_LONG', { where, length: text.length, limit: limits.maxTextChars });
  };
  texts.forEach((text, index) => {
    if (typeof text === 'string') check(text, describe(index));
    else {
      check(text.text, `${describe(index)}'s "text"`);
      check(text.text_pair, `${describe(index)}'s "text_pair"`);
    }
  });
}
