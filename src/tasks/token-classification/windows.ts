/**
 * Texts longer than the model reads are cut into overlapping windows of tokens, each run with
 * the text's special tokens around it; every token then takes its scores from the window where
 * it sits farthest from an edge (the most context on both sides), so nothing is cut and the
 * overlap decides the tokens near a window's edge.
 */

/** A window: the text tokens [start, end) of the whole text. */
export interface Window {
  start: number;
  end: number;
}

/** The largest default overlap, in tokens (Hugging Face's question-answering doc_stride). */
export const MAX_DEFAULT_STRIDE = 128;

/** The default stride for windows of `room` text tokens: a quarter of a window, at most 128. */
export function defaultStride(room: number): number {
  return Math.min(MAX_DEFAULT_STRIDE, Math.floor(room / 4));
}

/**
 * Windows of at most `room` tokens over `count` tokens, consecutive ones sharing `stride`
 * tokens (0 ≤ stride < room): one window when the text fits.
 */
export function windowsOf(count: number, room: number, stride: number): Window[] {
  if (count <= room) return [{ start: 0, end: count }];
  const step = room - stride;
  const out: Window[] = [];
  for (let start = 0; ; start += step) {
    const end = Math.min(start + room, count);
    out.push({ start, end });
    if (end === count) return out;
  }
}

/**
 * For each token, the window it takes its scores from: the one where its distance to the
 * nearer edge is largest (the earlier window on ties).
 */
export function ownerOfEachToken(count: number, windows: readonly Window[]): number[] {
  const owners: number[] = new Array(count).fill(0);
  const depth: number[] = new Array(count).fill(-1);
  windows.forEach((w, k) => {
    for (let t = w.start; t < w.end; t += 1) {
      const d = Math.min(t - w.start, w.end - 1 - t);
      if (d > depth[t]!) {
        depth[t] = d;
        owners[t] = k;
      }
    }
  });
  return owners;
}
