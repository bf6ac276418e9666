/** Length buckets: a batch is padded to the smallest bucket that fits its longest sequence. */

/** The smallest bucket that holds `length` (buckets ascending; the last holds everything). */
export function bucketFor(length: number, buckets: readonly number[]): number {
  for (const b of buckets) if (b >= length) return b;
  return buckets[buckets.length - 1]!;
}

/** Powers of two from 16 below max length, then max length itself: 16, 32, 64, 128. */
export function defaultBuckets(maxLength: number): number[] {
  const out: number[] = [];
  for (let b = 16; b < maxLength; b *= 2) out.push(b);
  out.push(maxLength);
  return out;
}
