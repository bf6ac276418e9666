import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  bf16ToF32,
  decodeBf16,
  decodeF16,
  encodeBf16,
  encodeF16,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
} from '../../src/model/float16.js';

const hex = (bits: number): string => `0x${bits.toString(16).padStart(4, '0')}`;
const isHalfNaN = (bits: number): boolean => (bits & 0x7c00) === 0x7c00 && (bits & 0x3ff) !== 0;
const isBf16NaN = (bits: number): boolean => (bits & 0x7f80) === 0x7f80 && (bits & 0x7f) !== 0;

/** Float32 values with exactly these bit patterns (a JS number could canonicalize a NaN payload). */
const fromBits = (...bits: number[]): Float32Array => new Float32Array(Uint32Array.from(bits).buffer);

describe('f32ToF16', () => {
  const cases: Array<[string, number, number]> = [
    ['1', 1, 0x3c00],
    ['-2', -2, 0xc000],
    ['0', 0, 0x0000],
    ['-0', -0, 0x8000],
    ['largest half 65504', 65504, 0x7bff],
    ['smallest subnormal 2^-24', 2 ** -24, 0x0001],
    ['largest subnormal 2^-14 - 2^-24', 2 ** -14 - 2 ** -24, 0x03ff],
    ['smallest normal 2^-14', 2 ** -14, 0x0400],
    ['0.1 (rounds down)', 0.1, 0x2e66],
    ['1/3', 1 / 3, 0x3555],
    ['70000 overflows to infinity', 70000, 0x7c00],
    ['-70000 overflows to -infinity', -70000, 0xfc00],
    ['65519 stays finite (below the halfway point)', 65519, 0x7bff],
    ['65520 is a tie with odd 0x7bff: to infinity', 65520, 0x7c00],
    ['Infinity', Infinity, 0x7c00],
    ['-Infinity', -Infinity, 0xfc00],
    ['1 + 2^-11 is a tie: to even 1', 1 + 2 ** -11, 0x3c00],
    ['1 + 3·2^-11 is a tie: to even 0x3c02', 1 + 3 * 2 ** -11, 0x3c02],
    ['1 + 2^-11 + 2^-20 is past the tie: up', 1 + 2 ** -11 + 2 ** -20, 0x3c01],
    ['2049 is a tie: to even 2048', 2049, 0x6800],
    ['2051 is a tie: to even 2052', 2051, 0x6802],
    ['2^-25 is a subnormal tie: to even 0', 2 ** -25, 0x0000],
    ['3·2^-25 is a subnormal tie: to even 2·2^-24', 3 * 2 ** -25, 0x0002],
    ['1.5·2^-25 rounds up to 2^-24', 1.5 * 2 ** -25, 0x0001],
    ['1e-8 underflows to 0', 1e-8, 0x0000],
    ['2^-14 - 2^-25 is a tie: carries into the smallest normal', 2 ** -14 - 2 ** -25, 0x0400],
  ];
  for (const [label, value, bits] of cases) {
    test(`f32ToF16(${label}) = ${hex(bits)}`, () => {
      assert.equal(hex(f32ToF16(value)), hex(bits));
    });
  }

  test('f32ToF16(NaN) is a NaN', () => {
    assert.ok(isHalfNaN(f32ToF16(NaN)), hex(f32ToF16(NaN)));
  });

  test('f32ToF16 gives the nearest half for 100k random floats (ties to even)', () => {
    let state = 12345;
    const bits = new Uint32Array(1);
    const f = new Float32Array(bits.buffer);
    for (let i = 0; i < 100_000; i += 1) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      // Exponents around the half range, so subnormal, normal and overflow cases all occur.
      bits[0] = (state & 0x807fffff) | ((((state >>> 23) & 0x3f) + 95) << 23);
      const x = f[0]!;
      const h = f32ToF16(x);
      const got = f16ToF32(h);
      if (Math.abs(x) >= 65520) {
        assert.equal(got, Math.sign(x) * Infinity, `${x}`);
        continue;
      }
      for (const neighbour of [h - 1, h + 1]) {
        if ((neighbour & 0x7fff) > 0x7bff || neighbour < 0 || ((neighbour ^ h) & 0x8000) !== 0) continue;
        const other = f16ToF32(neighbour);
        const d = Math.abs(got - x);
        const dOther = Math.abs(other - x);
        assert.ok(
          d < dOther || (d === dOther && (h & 1) === 0),
          `${x} → ${hex(h)} (${got}), but ${hex(neighbour)} (${other}) is nearer`,
        );
      }
    }
  });
});

describe('f16ToF32', () => {
  const cases: Array<[number, number]> = [
    [0x3c00, 1],
    [0xc000, -2],
    [0x7bff, 65504],
    [0x0001, 2 ** -24],
    [0x03ff, 2 ** -14 - 2 ** -24],
    [0x0400, 2 ** -14],
    [0x3555, 0.333251953125],
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
    [0x8000, -0],
  ];
  for (const [bits, value] of cases) {
    test(`f16ToF32(${hex(bits)}) = ${Object.is(value, -0) ? '-0' : value}`, () => {
      assert.ok(Object.is(f16ToF32(bits), value), `${f16ToF32(bits)}`);
    });
  }

  test('f16ToF32(0x7e00) and f16ToF32(0x7c01) are NaN', () => {
    assert.ok(Number.isNaN(f16ToF32(0x7e00)));
    assert.ok(Number.isNaN(f16ToF32(0x7c01)));
  });
});

describe('f32ToBf16 and bf16ToF32', () => {
  const cases: Array<[string, number, number]> = [
    ['1', 1, 0x3f80],
    ['-2', -2, 0xc000],
    ['0.1 (rounds up)', 0.1, 0x3dcd],
    ['-0', -0, 0x8000],
    ['Infinity', Infinity, 0x7f80],
    ['float32 max overflows to infinity', 3.4028234663852886e38, 0x7f80],
    ['1 + 2^-8 is a tie: to even 1', 1 + 2 ** -8, 0x3f80],
    ['1 + 3·2^-8 is a tie: to even 0x3f82', 1 + 3 * 2 ** -8, 0x3f82],
  ];
  for (const [label, value, bits] of cases) {
    test(`f32ToBf16(${label}) = ${hex(bits)}`, () => {
      assert.equal(hex(f32ToBf16(value)), hex(bits));
    });
  }

  test('f32ToBf16(NaN) is a NaN', () => {
    assert.ok(isBf16NaN(f32ToBf16(NaN)), hex(f32ToBf16(NaN)));
  });

  test('bf16ToF32 of known patterns', () => {
    assert.equal(bf16ToF32(0x3f80), 1);
    assert.equal(bf16ToF32(0xc000), -2);
    assert.equal(bf16ToF32(0x3dcd), 0.10009765625);
    assert.equal(bf16ToF32(0x7f80), Infinity);
    assert.ok(Number.isNaN(bf16ToF32(0x7fc0)));
  });
});

describe('bulk conversions', () => {
  const allPatterns = (): Uint8Array => {
    const halves = new Uint16Array(0x10000);
    for (let i = 0; i < halves.length; i += 1) halves[i] = i;
    return new Uint8Array(halves.buffer);
  };

  test('decodeF16(every pattern) matches f16ToF32, and encodeF16 gives every non-NaN pattern back', () => {
    const decoded = decodeF16(allPatterns());
    assert.equal(decoded.length, 0x10000);
    const again = new Uint16Array(encodeF16(decoded).buffer);
    for (let i = 0; i < 0x10000; i += 1) {
      if (isHalfNaN(i)) {
        assert.ok(Number.isNaN(decoded[i]), hex(i));
        assert.ok(isHalfNaN(again[i]!), hex(i));
      } else {
        assert.ok(Object.is(decoded[i], f16ToF32(i)), hex(i));
        assert.equal(again[i], i, hex(i));
      }
    }
  });

  test('decodeBf16(every pattern) matches bf16ToF32, and encodeBf16 gives every non-NaN pattern back', () => {
    const decoded = decodeBf16(allPatterns());
    const again = new Uint16Array(encodeBf16(decoded).buffer);
    for (let i = 0; i < 0x10000; i += 1) {
      if (isBf16NaN(i)) {
        assert.ok(Number.isNaN(decoded[i]), hex(i));
        assert.ok(isBf16NaN(again[i]!), hex(i));
      } else {
        assert.ok(Object.is(decoded[i], bf16ToF32(i)), hex(i));
        assert.equal(again[i], i, hex(i));
      }
    }
  });

  test('decodeF16 and decodeBf16 read bytes at an odd offset in their buffer', () => {
    const backing = new Uint8Array(7);
    backing.set([0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b], 1);
    const odd = backing.subarray(1);
    assert.deepEqual(Array.from(decodeF16(odd)), [1, -2, 65504]);
    backing.set([0x80, 0x3f, 0x00, 0xc0, 0xcd, 0x3d], 1);
    assert.deepEqual(Array.from(decodeBf16(odd)), [1, -2, 0.10009765625]);
  });

  test('encodeF16 and encodeBf16 write little-endian bytes of a subarray', () => {
    const values = Float32Array.from([99, 1, -2, 0.1]).subarray(1);
    assert.deepEqual(Array.from(encodeF16(values)), [0x00, 0x3c, 0x00, 0xc0, 0x66, 0x2e]);
    assert.deepEqual(Array.from(encodeBf16(values)), [0x80, 0x3f, 0x00, 0xc0, 0xcd, 0x3d]);
  });

  test('encodeF16 and encodeBf16 keep a NaN whose payload is only in the low bits a NaN (not infinity)', () => {
    const nans = fromBits(0x7f800001, 0xff800001);
    const halves = new Uint16Array(encodeF16(nans).buffer);
    const brains = new Uint16Array(encodeBf16(nans).buffer);
    for (let i = 0; i < 2; i += 1) {
      assert.ok(isHalfNaN(halves[i]!), hex(halves[i]!));
      assert.ok(isBf16NaN(brains[i]!), hex(brains[i]!));
    }
  });

  test('decodeF16(odd byte length) throws RangeError', () => {
    assert.throws(() => decodeF16(new Uint8Array(3)), RangeError);
  });
});
