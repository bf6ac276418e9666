/**
 * The request fields the text routes share, named as Text Embeddings Inference names them: a
 * text pair `{"text", "text_pair"}`, and `truncate` / `truncation_direction` (TEI writes the
 * direction `Left` / `Right`; both cases are taken).
 */
import type { InferOptions } from '../runtime/task-model.js';

/** A text pair in a JSON body; anything else in its place fails the route's schema (400). */
export const TEXT_PAIR_SCHEMA = {
  type: 'object',
  required: ['text', 'text_pair'],
  properties: { text: { type: 'string' }, text_pair: { type: 'string' } },
  additionalProperties: false,
} as const;

export type TruncationBody = 'left' | 'right' | 'Left' | 'Right';

/** The truncation fields, for a route schema's `properties`. */
export const TRUNCATION_SCHEMA = {
  truncate: { type: 'boolean' },
  truncation_direction: { type: 'string', enum: ['left', 'right', 'Left', 'Right'] },
} as const;

/** The model options a body's truncation fields ask for. */
export function truncationOptions(body: {
  truncate?: boolean;
  truncation_direction?: TruncationBody;
}): Pick<InferOptions, 'truncate' | 'truncationDirection'> {
  return {
    truncate: body.truncate,
    truncationDirection: body.truncation_direction?.toLowerCase() as InferOptions['truncationDirection'],
  };
}
