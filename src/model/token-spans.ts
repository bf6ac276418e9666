/**
 * Where each token of a text lies in it, as JavaScript string indices (UTF-16 code units).
 * @huggingface/tokenizers 0.2.0 gives no offsets (its Encoding has ids, tokens and masks only),
 * so each token's own text is looked up in the input from where the previous one ended,
 * compared as the common normalizers see text (lower case, accents stripped). Tokens that
 * cannot be found that way (an unknown-token marker, a byte piece of an emoji in a byte-level
 * BPE) take the text between their found neighbours: one visible run each, in order.
 */

/** A token's place in the text: `text.slice(start, end)` is what it covers. */
export interface TokenSpan {
  start: number;
  end: number;
}

/** A character as lower-case, accent-stripping normalizers (BERT's) leave it. */
export function fold(text: string): string {
  return text.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

/**
 * `text` folded, with the UTF-16 index in `text` where each folded unit's character starts
 * (`origins`) and ends (`ends`), so a match in the folded text maps back to the input.
 */
export function foldWithOrigins(text: string): { text: string; origins: number[]; ends: number[] } {
  let folded = '';
  const origins: number[] = [];
  const ends: number[] = [];
  let index = 0;
  for (const char of text) {
    const piece = fold(char);
    folded += piece;
    for (let k = 0; k < piece.length; k += 1) {
      origins.push(index);
      ends.push(index + char.length);
    }
    index += char.length;
  }
  return { text: folded, origins, ends };
}

/** A token that shares the previous token's piece: byte pieces of one character, decoded together. */
export const SAME_PIECE = Symbol('same piece');

/**
 * The span of each token of `text`, given each token's own text without word-piece or
 * word-start markers (`pieces`; null for a token that stands for no text of its own, such as
 * the unknown token; {@link SAME_PIECE} for a token whose text was given with the one before).
 * A token whose span cannot be told is null.
 */
export function alignPieces(
  text: string,
  pieces: ReadonlyArray<string | null | typeof SAME_PIECE>,
): Array<TokenSpan | null> {
  const folded = foldWithOrigins(text);
  let cursor = 0;
  let previous: TokenSpan | null = null;
  const spans: Array<TokenSpan | null> = pieces.map((raw) => {
    if (raw === SAME_PIECE) return previous;
    previous = placed(raw);
    return previous;
  });
  function placed(raw: string | null): TokenSpan | null {
    const piece = raw === null ? '' : fold(raw).trim();
    const at = piece === '' ? -1 : folded.text.indexOf(piece, cursor);
    if (at < 0) return null;
    cursor = at + piece.length;
    return { start: folded.origins[at]!, end: folded.ends[cursor - 1]! };
  }
  // Runs of unplaced tokens share the text between their placed neighbours.
  for (let i = 0; i < spans.length; ) {
    if (spans[i] !== null) {
      i += 1;
      continue;
    }
    let j = i;
    while (j < spans.length && spans[j] === null) j += 1;
    const from = i > 0 ? spans[i - 1]!.end : 0;
    const to = j < spans.length ? spans[j]!.start : text.length;
    const runs = [...text.slice(from, to).matchAll(/\S+/gu)].map((m) => ({
      start: from + m.index,
      end: from + m.index + m[0].length,
    }));
    if (runs.length > 0) {
      const count = j - i;
      for (let k = 0; k < count; k += 1) {
        // One visible run per token; a token split in byte pieces (an emoji) gives each piece the same run.
        const first = runs[Math.min(k, runs.length - 1)]!;
        const last = k === count - 1 ? runs.at(-1)! : first;
        spans[i + k] = { start: first.start, end: last.end };
      }
    }
    i = j;
  }
  return spans;
}
