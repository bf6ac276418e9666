/** Nearest-rank percentile of ascending values; NaN when there are none. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** Softmax, computed stably (the largest value subtracted before exponentiating). */
export function softmax(values: readonly number[]): number[] {
  const max = Math.max(...values);
  const exps = values.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

/** The logistic function, without overflow for large negative inputs. */
export function sigmoid(value: number): number {
  return value >= 0 ? 1 / (1 + Math.exp(-value)) : Math.exp(value) / (1 + Math.exp(value));
}

/** Index of the largest value (the first one on ties); 0 for an empty list. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i += 1) if (values[i]! > values[best]!) best = i;
  return best;
}

/** The most likely class and its softmax probability, without building the whole distribution. */
export function softmaxTop(values: readonly number[]): { index: number; probability: number } {
  const index = argmax(values);
  const max = values[index]!;
  let sum = 0;
  for (const value of values) sum += Math.exp(value - max);
  return { index, probability: 1 / sum };
}
