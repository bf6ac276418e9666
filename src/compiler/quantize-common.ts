/**
 * The arithmetic both int8 quantizers share: rounding as ONNX Runtime rounds, symmetric int8
 * weights with a scale per channel, uint8 parameters for a range, and the `keep` name patterns.
 */

/** Rounds half to even, as numpy (ONNX Runtime's Python quantizer) and MLAS do. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Node names (exact) or name prefixes ending in `*`, as `--keep-fp32` takes them. */
export function keepMatcher(patterns: readonly string[]): (name: string) => boolean {
  const exact = new Set(patterns.filter((p) => !p.endsWith('*')));
  const prefixes = patterns.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
  return (name) => exact.has(name) || prefixes.some((p) => name.startsWith(p));
}

export interface QuantizedWeight {
  values: Int8Array;
  /** One per channel along `axis`, or one value for per-tensor. */
  scales: Float32Array;
}

/**
 * Symmetric int8 weights, one scale per index of `axis` (null: one for the tensor):
 * scale = max|w| / qmax, qmax 127 or 63 with `reduceRange`; all-zero channels get scale 1.
 * `minScales` raises a channel's scale (static int8 does so where an int32 bias would overflow).
 * Values are divided by the stored float32 scale, so each dequantizes to within scale / 2 of
 * the original in what ONNX Runtime computes with.
 */
export function quantizeWeight(
  data: Float32Array,
  dims: readonly number[],
  axis: number | null,
  reduceRange: boolean,
  minScales?: Float32Array,
): QuantizedWeight {
  const qmax = reduceRange ? 63 : 127;
  // data is [outer, channels, inner] around the axis.
  const channels = axis === null ? 1 : dims[axis]!;
  const inner = axis === null ? data.length : dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = data.length / (channels * inner);
  const absMax = new Float64Array(channels);
  for (let o = 0; o < outer; o += 1) {
    for (let c = 0; c < channels; c += 1) {
      const start = (o * channels + c) * inner;
      for (let i = start; i < start + inner; i += 1) {
        const v = Math.abs(data[i]!);
        if (v > absMax[c]!) absMax[c] = v;
      }
    }
  }
  const scales = Float32Array.from(absMax, (m, c) => Math.max(m === 0 ? 1 : m / qmax, minScales?.[c] ?? 0));
  const values = new Int8Array(data.length);
  for (let o = 0; o < outer; o += 1) {
    for (let c = 0; c < channels; c += 1) {
      const start = (o * channels + c) * inner;
      for (let i = start; i < start + inner; i += 1) {
        const q = roundHalfEven(data[i]! / scales[c]!);
        values[i] = q < -qmax ? -qmax : Math.min(q, qmax);
      }
    }
  }
  return { values, scales };
}

/**
 * uint8 asymmetric parameters for a range, widened to include 0 (so 0 is exact, as padding
 * needs): scale = (max − min) / 255 as float32, zero point = round(−min / scale).
 */
export function uint8Params(range: { min: number; max: number }): { scale: number; zeroPoint: number } {
  const min = Math.min(0, range.min);
  const max = Math.max(0, range.max);
  const scale = Math.fround(max > min ? (max - min) / 255 : 1);
  return { scale, zeroPoint: Math.min(255, Math.max(0, roundHalfEven(-min / scale))) };
}
