import { describe, expect, it } from 'vitest';
import {
  bf16BitsToF32,
  decodeFloats,
  decodeToF32,
  encodeFloats,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
} from '../../src/engine/tensor/dtype';
import { seededRandom } from '../helpers/safetensorsFixtures';

/** The number whose f32 bit pattern is `bits`. */
function f32(bits: number): number {
  const v = new DataView(new ArrayBuffer(4));
  v.setUint32(0, bits >>> 0);
  return v.getFloat32(0);
}

const isF16NaN = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
const isBf16NaN = (b: number) => (b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0;

/**
 * Independent f16 rounding oracle: binary search over the sorted positive f16 values, nearest wins, ties go to
 * the even pattern, and anything at or above 65520 (the midpoint between 65504 and 2^16) is infinity.
 */
function referenceF16(x: number): number {
  const a = Math.abs(Math.fround(x));
  const sign = Math.sign(Math.fround(x)) < 0 || Object.is(Math.fround(x), -0) ? 0x8000 : 0;
  if (a >= 65520) return sign | 0x7c00;
  let lo = 0;
  let hi = 0x7bff;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (f16BitsToF32(mid) <= a) lo = mid;
    else hi = mid - 1;
  }
  const below = f16BitsToF32(lo);
  if (below === a || lo === 0x7bff) return sign | lo;
  const dBelow = a - below;
  const dAbove = f16BitsToF32(lo + 1) - a;
  if (dBelow < dAbove) return sign | lo;
  if (dAbove < dBelow) return sign | (lo + 1);
  return sign | (lo % 2 === 0 ? lo : lo + 1);
}

describe('f16', () => {
  it('decodes known patterns exactly', () => {
    expect(f16BitsToF32(0x3c00)).toBe(1);
    expect(f16BitsToF32(0xc000)).toBe(-2);
    expect(f16BitsToF32(0x3555)).toBe(0.333251953125);
    expect(f16BitsToF32(0x7bff)).toBe(65504);
    expect(f16BitsToF32(0x0400)).toBe(2 ** -14);
    expect(f16BitsToF32(0x0001)).toBe(2 ** -24);
    expect(f16BitsToF32(0x03ff)).toBe(1023 * 2 ** -24);
    expect(f16BitsToF32(0x7c00)).toBe(Infinity);
    expect(f16BitsToF32(0xfc00)).toBe(-Infinity);
    expect(Object.is(f16BitsToF32(0x8000), -0)).toBe(true);
    expect(f16BitsToF32(0x7e00)).toBeNaN();
    expect(f16BitsToF32(0xfc01)).toBeNaN();
  });

  it('round-trips all 65536 bit patterns (NaNs become the canonical NaN with their sign)', () => {
    let previous = -Infinity;
    for (let h = 0; h < 65536; h++) {
      const value = f16BitsToF32(h);
      const expected = isF16NaN(h) ? (h & 0x8000) | 0x7e00 : h;
      if (f32ToF16Bits(value) !== expected) throw new Error(`pattern 0x${h.toString(16)} -> ${value} -> 0x${f32ToF16Bits(value).toString(16)}`);
      // Positive patterns up to +inf are strictly increasing: decode is monotonic, so no two patterns collide.
      if (h <= 0x7c00) {
        expect(value > previous || h === 0).toBe(true);
        previous = value;
      }
    }
  });

  it('rounds to nearest, ties to even, on hand-made cases', () => {
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie between 0x3c00 (even) and 0x3c01
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie between 0x3c01 and 0x3c02 (even)
    expect(f32ToF16Bits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // just above the tie
    expect(f32ToF16Bits(-(1 + 3 * 2 ** -11))).toBe(0xbc02);
    expect(f32ToF16Bits(1 - 2 ** -12)).toBe(0x3c00); // tie above 0x3bff (odd): the carry moves into the exponent
    // x is rounded to f32 first: the extra 2^-30 vanishes there, leaving an exact tie that goes to even.
    expect(f32ToF16Bits(1 + 2 ** -11 + 2 ** -30)).toBe(0x3c00);
  });

  it('overflows to infinity exactly at the rounding boundary', () => {
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(65519.99)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // tie between 65504 (odd) and 2^16 (inf)
    expect(f32ToF16Bits(1e6)).toBe(0x7c00);
    expect(f32ToF16Bits(-1e6)).toBe(0xfc00);
    expect(f32ToF16Bits(Infinity)).toBe(0x7c00);
    expect(f32ToF16Bits(-Infinity)).toBe(0xfc00);
    expect(f32ToF16Bits(3.4e38)).toBe(0x7c00);
  });

  it('produces subnormals and signed zeros correctly', () => {
    expect(f32ToF16Bits(2 ** -24)).toBe(0x0001);
    expect(f32ToF16Bits(-(2 ** -24))).toBe(0x8001);
    expect(f32ToF16Bits(2 ** -25)).toBe(0x0000); // tie between 0 (even) and 1 unit
    expect(f32ToF16Bits(2 ** -25 * 1.001)).toBe(0x0001);
    expect(f32ToF16Bits(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2 units
    expect(f32ToF16Bits(5 * 2 ** -25)).toBe(0x0002); // tie between 2 (even) and 3 units
    expect(f32ToF16Bits(1023.5 * 2 ** -24)).toBe(0x0400); // largest subnormal rounds up into the smallest normal
    expect(f32ToF16Bits(1022.5 * 2 ** -24)).toBe(0x03fe);
    expect(f32ToF16Bits(2 ** -26)).toBe(0x0000);
    expect(f32ToF16Bits(-(2 ** -26))).toBe(0x8000);
    expect(f32ToF16Bits(f32(0x00000001))).toBe(0x0000); // f32 subnormal
    expect(f32ToF16Bits(0)).toBe(0x0000);
    expect(f32ToF16Bits(-0)).toBe(0x8000);
  });

  it('maps NaN to 0x7e00 with its sign', () => {
    expect(f32ToF16Bits(NaN)).toBe(0x7e00);
    expect(f32ToF16Bits(f32(0x7f800001))).toBe(0x7e00); // a payload only in the low bits must not become inf
    expect(f32ToF16Bits(f32(0xffc00000))).toBe(0xfe00);
  });

  it('agrees with a brute-force nearest-value oracle on random values and exact midpoints', () => {
    const rng = seededRandom(7);
    for (let i = 0; i < 20000; i++) {
      // Random f32s with exponents from 2^-28 to 2^17: subnormal, normal and overflowing f16 ranges.
      const exp = Math.floor(rng() * 46) - 28;
      const x = (rng() < 0.5 ? -1 : 1) * (1 + rng()) * 2 ** exp;
      expect(f32ToF16Bits(x)).toBe(referenceF16(x));
      // The exact midpoint between two adjacent f16 values (representable in f32): the hardest tie cases.
      const h = Math.floor(rng() * 0x7bff);
      const mid = (f16BitsToF32(h) + f16BitsToF32(h + 1)) / 2;
      expect(f32ToF16Bits(mid)).toBe(referenceF16(mid));
      expect(f32ToF16Bits(mid)).toBe(h % 2 === 0 ? h : h + 1);
    }
  });
});

describe('bf16', () => {
  it('decodes by shifting into the top half of an f32', () => {
    expect(bf16BitsToF32(0x3f80)).toBe(1);
    expect(bf16BitsToF32(0x4049)).toBe(3.140625);
    expect(bf16BitsToF32(0xc000)).toBe(-2);
    expect(bf16BitsToF32(0x0001)).toBe(2 ** -133);
    expect(bf16BitsToF32(0x7f80)).toBe(Infinity);
    expect(bf16BitsToF32(0x7fc1)).toBeNaN();
  });

  it('round-trips all 65536 bit patterns (NaNs become 0x7fc0 with their sign)', () => {
    for (let b = 0; b < 65536; b++) {
      const expected = isBf16NaN(b) ? (b & 0x8000) | 0x7fc0 : b;
      const got = f32ToBf16Bits(bf16BitsToF32(b));
      if (got !== expected) throw new Error(`pattern 0x${b.toString(16)} -> 0x${got.toString(16)}`);
    }
  });

  it('rounds to nearest, ties to even, on the f32 bit pattern', () => {
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie: 0x3f80 is even
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie: 0x3f82 is even
    expect(f32ToBf16Bits(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81);
    expect(f32ToBf16Bits(-(1 + 2 ** -8 + 2 ** -20))).toBe(0xbf81);
    expect(f32ToBf16Bits(f32(0x3f80ffff))).toBe(0x3f81);
    expect(f32ToBf16Bits(f32(0x3fffffff))).toBe(0x4000); // carry into the exponent
    expect(f32ToBf16Bits(f32(0x7f7f7fff))).toBe(0x7f7f); // largest finite bf16 stays finite
    expect(f32ToBf16Bits(f32(0x7f7fffff))).toBe(0x7f80); // max f32 rounds up to infinity
    expect(f32ToBf16Bits(f32(0x00000001))).toBe(0x0000); // f32 subnormal below half a bf16 unit
    expect(f32ToBf16Bits(-0)).toBe(0x8000);
    expect(f32ToBf16Bits(1 + 2 ** -8 + 2 ** -40)).toBe(0x3f80); // rounded to f32 first: an exact tie
  });

  it('maps NaN to 0x7fc0 with its sign', () => {
    expect(f32ToBf16Bits(NaN)).toBe(0x7fc0);
    expect(f32ToBf16Bits(f32(0x7f800001))).toBe(0x7fc0);
    expect(f32ToBf16Bits(f32(0xffffffff))).toBe(0xffc0);
  });
});

describe('decodeFloats / decodeToF32 / encodeFloats', () => {
  const values = [1, -2.5, 0.1, 65504, -0, 3.0517578125e-5];

  it('encodes little-endian', () => {
    expect([...encodeFloats([1], 'F32')]).toEqual([0x00, 0x00, 0x80, 0x3f]);
    expect([...encodeFloats([1], 'F16')]).toEqual([0x00, 0x3c]);
    expect([...encodeFloats([1], 'BF16')]).toEqual([0x80, 0x3f]);
    expect([...encodeFloats([1], 'F64')]).toEqual([0, 0, 0, 0, 0, 0, 0xf0, 0x3f]);
  });

  it.each(['F64', 'F32', 'F16', 'BF16'] as const)('%s decodes exactly from an unaligned subarray', (dtype) => {
    const encoded = encodeFloats(values, dtype);
    const buffer = new Uint8Array(encoded.byteLength + 3);
    buffer.set(encoded, 1);
    const decoded = decodeFloats(buffer.subarray(1, 1 + encoded.byteLength), dtype);
    const expected =
      dtype === 'F64' ? values
      : dtype === 'F32' ? values.map(Math.fround)
      : dtype === 'F16' ? values.map((v) => f16BitsToF32(f32ToF16Bits(v)))
      : values.map((v) => bf16BitsToF32(f32ToBf16Bits(v)));
    expect([...decoded]).toEqual(expected);
    expect(Object.is(decoded[4], -0)).toBe(true);
    expect([...decodeToF32(buffer.subarray(1, 1 + encoded.byteLength), dtype)]).toEqual(expected.map(Math.fround));
  });

  it('decodes F32 alike from aligned and unaligned bytes, signed zeros and NaN payloads included', () => {
    const bits = Uint32Array.of(0x3f800000, 0x80000000, 0x7fc00001, 0xffc12345, 0x00000001, 0x7f800000);
    const aligned = new Uint8Array(bits.buffer);
    const shifted = new Uint8Array(aligned.byteLength + 1);
    shifted.set(aligned, 1);
    const a = new Uint32Array(decodeToF32(aligned, 'F32').buffer);
    const b = new Uint32Array(decodeToF32(shifted.subarray(1), 'F32').buffer);
    expect([...a]).toEqual([...bits]);
    expect([...b]).toEqual([...a]);
  });

  it('rounds F64 to f32 in decodeToF32 and keeps it exact in decodeFloats', () => {
    const bytes = encodeFloats([0.1], 'F64');
    expect(decodeFloats(bytes, 'F64')[0]).toBe(0.1);
    expect(decodeToF32(bytes, 'F64')[0]).toBe(Math.fround(0.1));
  });

  it('throws for non-float dtypes and partial elements', () => {
    expect(() => decodeFloats(new Uint8Array(8), 'I64')).toThrow(/I64 is not a float dtype/);
    expect(() => decodeToF32(new Uint8Array(1), 'BOOL')).toThrow(/not a float dtype/);
    expect(() => decodeFloats(new Uint8Array(3), 'F16')).toThrow(/not a whole number of F16 elements/);
  });
});
