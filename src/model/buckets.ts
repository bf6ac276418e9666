/** Length buckets: a batch is padded to the smallest bucket that fits its longest sequence. */

/** The smallest bucket that holds `length` (buckets ascending; the last holds everything). */
export function bucketFor(length: number, buckets: readonly number[]): number {
  for (const b of buckets) if (b >= length) return b;
  return buckets[buckets.length - 1]!;
}

/**
 * Every 8 tokens up to 64, every 16 up to 128, every 32 beyond, ending at max length: fine
 * enough that a batch pads little (on SST-2, buckets 16/32/64/128 left 69 % of the padded
 * tokens real; see benchmarks/peers.mjs), coarse enough to stay a short list.
 */
export function defaultBuckets(maxLength: number): number[] {
  const out: number[] = [];
  for (let b = 8; b < maxLength; b += b < 64 ? 8 : b < 128 ? 16 : 32) out.push(b);
  out.push(maxLength);
  return out;
}
