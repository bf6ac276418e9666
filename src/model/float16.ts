/**
 * IEEE 754 half precision (F16) and bfloat16 (BF16) conversions, one value at a time and in bulk.
 * Scalars go through float32 first: rounding f64 → f32 → f16 (or bf16) still gives the correctly
 * rounded result, because float32's 24-bit significand is at least 2p + 2 bits for p = 11 (f16)
 * and p = 8 (bf16), so the first rounding never creates a false tie.
 */

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Shared scratch for reinterpreting one float32 as its bits. */
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

function f32Bits(value: number): number {
  scratchF32[0] = value;
  return scratchU32[0]!;
}

function bitsF32(bits: number): number {
  scratchU32[0] = bits;
  return scratchF32[0]!;
}

/** The value of the half-precision number with bit pattern `bits` (the low 16 bits are used). */
export function f16ToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

/** Half-precision bits from float32 bits, rounding to nearest, ties to even. */
function f16FromF32Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) {
    // Keep the payload's top bits and force the quiet bit, so a NaN never becomes infinity.
    return mantissa ? sign | 0x7e00 | (mantissa >>> 13) : sign | 0x7c00;
  }
  const e = exponent - 112; // rebias: 127 → 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): value = m × 2^-24 with m = significand >> (14 - e).
    if (e < -10) return sign;
    const full = mantissa | 0x800000;
    const shift = 14 - e;
    let m = full >>> shift;
    const rest = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rest > half || (rest === half && m & 1)) m += 1;
    return sign | m; // m = 0x400 is the smallest normal, which is what the carry means
  }
  let m = mantissa >>> 13;
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && m & 1)) m += 1;
  return sign | ((e << 10) + m); // a carry out of m bumps the exponent, up to infinity
}

/** Half-precision bits of `value`: round to nearest even; overflow gives ±infinity, NaN stays NaN. */
export function f32ToF16(value: number): number {
  return f16FromF32Bits(f32Bits(value));
}

/** The value of the bfloat16 number with bit pattern `bits` (the low 16 bits are used). */
export function bf16ToF32(bits: number): number {
  return bitsF32((bits & 0xffff) << 16);
}

function bf16FromF32Bits(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Bfloat16 bits of `value`: round to nearest even; overflow gives ±infinity, NaN stays NaN. */
export function f32ToBf16(value: number): number {
  return bf16FromF32Bits(f32Bits(value));
}

let f16Table: Float32Array | undefined;

/** All 65536 half values, built once on first use (256 KiB). */
function halfTable(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(0x10000);
    for (let i = 0; i < 0x10000; i += 1) f16Table[i] = f16ToF32(i);
  }
  return f16Table;
}

/** A little-endian u16 view of `bytes`, copying when the bytes are odd-aligned or big-endian. */
function u16View(bytes: Uint8Array, what: string): Uint16Array {
  if (bytes.byteLength % 2 !== 0)
    throw new RangeError(`${what}: byte length ${bytes.byteLength} is not a multiple of 2`);
  let aligned = bytes;
  if (!LITTLE_ENDIAN) aligned = Buffer.from(bytes).swap16();
  else if (bytes.byteOffset % 2 !== 0) aligned = bytes.slice();
  return new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
}

function u16Bytes(halves: Uint16Array): Uint8Array {
  const bytes = new Uint8Array(halves.buffer, halves.byteOffset, halves.byteLength);
  return LITTLE_ENDIAN ? bytes : Buffer.from(bytes).swap16();
}

/** Float32 values of little-endian F16 data. */
export function decodeF16(bytes: Uint8Array): Float32Array {
  const halves = u16View(bytes, 'decodeF16');
  const table = halfTable();
  const out = new Float32Array(halves.length);
  for (let i = 0; i < halves.length; i += 1) out[i] = table[halves[i]!]!;
  return out;
}

/** Float32 values of little-endian BF16 data: each value is its bits shifted into the top half. */
export function decodeBf16(bytes: Uint8Array): Float32Array {
  const halves = u16View(bytes, 'decodeBf16');
  const words = new Uint32Array(halves.length);
  for (let i = 0; i < halves.length; i += 1) words[i] = halves[i]! << 16;
  return new Float32Array(words.buffer);
}

/** Little-endian F16 bytes of `values`, rounded to nearest even. */
export function encodeF16(values: Float32Array): Uint8Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i += 1) out[i] = f16FromF32Bits(bits[i]!);
  return u16Bytes(out);
}

/** Little-endian BF16 bytes of `values`, rounded to nearest even. */
export function encodeBf16(values: Float32Array): Uint8Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i += 1) out[i] = bf16FromF32Bits(bits[i]!);
  return u16Bytes(out);
}
