/** The CPU twins of the GPU kernels on tiny hand-computed cases. */
import { describe, expect, it } from 'vitest';
import {
  combineRef,
  packAddRef,
  sumSquaresRef,
  taskVectorRef,
  unpackRef,
} from '../../src/engine/reference/kernels';

/** Little-endian bytes of 16-bit patterns. */
function halves(...bits: number[]): Uint8Array {
  const bytes = new Uint8Array(bits.length * 2);
  bits.forEach((b, i) => new DataView(bytes.buffer).setUint16(2 * i, b, true));
  return bytes;
}

/** The 16-bit patterns in little-endian bytes. */
function halvesOf(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: bytes.byteLength / 2 }, (_, i) => view.getUint16(2 * i, true));
}

describe('unpackRef', () => {
  it('decodes F16 including subnormals, infinities and NaN', () => {
    const out = unpackRef(halves(0x3c00, 0xc000, 0x0001, 0x7c00, 0xfc00, 0x7e00, 0x8000, 0x7bff), 'F16', 8);
    expect(Array.from(out)).toEqual([1, -2, 2 ** -24, Infinity, -Infinity, NaN, -0, 65504]);
  });

  it('decodes BF16 as the top half of an f32', () => {
    expect(Array.from(unpackRef(halves(0x3f80, 0xc040, 0x0001, 0x7f80), 'BF16', 4))).toEqual([1, -3, 2 ** -133, Infinity]);
  });

  it('decodes F32 from an unaligned view and stops at numel', () => {
    const backing = new Uint8Array(13);
    new DataView(backing.buffer).setFloat32(1, 1.5, true);
    new DataView(backing.buffer).setFloat32(5, -0.25, true);
    expect(Array.from(unpackRef(backing.subarray(1), 'F32', 2))).toEqual([1.5, -0.25]);
  });
});

describe('taskVectorRef', () => {
  it('writes decode(ft) - base into the requested row only', () => {
    const out = new Float32Array(6).fill(7);
    taskVectorRef(halves(0x3e00, 0xb800, 0x0000), 'F16', new Float32Array([0.5, 0.5, -0]), 3, out, 1);
    // 1.5 - 0.5, -0.5 - 0.5, 0 - (-0) = +0
    expect(Array.from(out)).toEqual([7, 7, 7, 1, -1, 0]);
    expect(Object.is(out[5], 0)).toBe(true);
  });

  it('rounds the difference to f32', () => {
    const out = new Float32Array(1);
    const one = new Uint8Array(new Float32Array([1]).buffer);
    taskVectorRef(one, 'F32', new Float32Array([1e-8]), 1, out, 0);
    expect(out[0]).toBe(1); // 1 - 1e-8 is 0.99999999 in float64 but rounds back to 1 in f32
  });

  it('flushes subnormal operands and results only in flushSubnormals mode', () => {
    const raw = new Uint8Array(new Float32Array([1e-40, -3e-39]).buffer);
    const base = new Float32Array([0, 2 ** -126]);
    const ieee = new Float32Array(2);
    const flushed = new Float32Array(2);
    taskVectorRef(raw, 'F32', base, 2, ieee, 0);
    taskVectorRef(raw, 'F32', base, 2, flushed, 0, { flushSubnormals: true });
    expect(ieee[0]).toBe(Math.fround(1e-40));
    expect(ieee[1]).toBe(Math.fround(Math.fround(-3e-39) - 2 ** -126));
    expect(flushed[0]).toBe(0);
    expect(flushed[1]).toBe(-(2 ** -126)); // -3e-39 is read as -0
  });
});

describe('combineRef', () => {
  it('computes a weighted sum of rows', () => {
    const stack = new Float32Array([1, 2, 10, 20, 100, 200]);
    expect(Array.from(combineRef(stack, 3, 2, [0.5, 2, -1]))).toEqual([0.5 + 20 - 100, 1 + 40 - 200]);
  });

  it('accumulates in f32 in row order', () => {
    // 2^24 + 1 rounds back to 2^24 (tie to even) twice; summed the other way round the ones survive.
    const forward = new Float32Array([2 ** 24, 1, 1]);
    const backward = new Float32Array([1, 1, 2 ** 24]);
    expect(combineRef(forward, 3, 1, [1, 1, 1])[0]).toBe(2 ** 24);
    expect(combineRef(backward, 3, 1, [1, 1, 1])[0]).toBe(2 ** 24 + 2);
  });

  it('rounds each product to f32 before adding', () => {
    const x = 1 + 2 ** -12; // x * x = 1 + 2^-11 + 2^-24: the 2^-24 is lost in the rounded product
    expect(combineRef(new Float32Array([x, -1]), 2, 1, [x, 1])[0]).toBe(2 ** -11);
  });
});

describe('packAddRef', () => {
  const add = (base: number[], delta: number[], dtype: 'F16' | 'BF16') =>
    halvesOf(packAddRef(new Float32Array(base), new Float32Array(delta), base.length, dtype));

  it('encodes F16 with round-to-nearest-even', () => {
    expect(add([1, 1, 1, -0], [0.5, 2 ** -11, 3 * 2 ** -11, -0], 'F16')).toEqual([0x3e00, 0x3c00, 0x3c02, 0x8000]);
  });

  it('overflows to F16 infinity from 65520 up and keeps 65519', () => {
    expect(add([65504, 65504, -65504], [15, 16, -1e6], 'F16')).toEqual([0x7bff, 0x7c00, 0xfc00]);
  });

  it('rounds into and out of the F16 subnormal range', () => {
    // 2^-25 is a tie between 0 and 2^-24 (even 0); 3 * 2^-25 a tie between 2^-24 and 2^-23 (even 2^-23).
    expect(add([2 ** -25, 3 * 2 ** -25, 2 ** -14 - 2 ** -26], [0, 0, 0], 'F16')).toEqual([0x0000, 0x0002, 0x0400]);
  });

  it('encodes BF16 with round-to-nearest-even', () => {
    expect(add([1, 1, 3.3895313892515355e38], [2 ** -8, 3 * 2 ** -8, 0], 'BF16')).toEqual([0x3f80, 0x3f82, 0x7f7f]);
    expect(add([3.4e38], [0], 'BF16')).toEqual([0x7f80]);
  });

  it('writes every NaN as the positive quiet NaN', () => {
    expect(add([NaN, Infinity, -NaN], [1, -Infinity, 0], 'F16')).toEqual([0x7e00, 0x7e00, 0x7e00]);
    expect(add([NaN, Infinity], [1, -Infinity], 'BF16')).toEqual([0x7fc0, 0x7fc0]);
    const f32 = packAddRef(new Float32Array([Infinity, 1]), new Float32Array([-Infinity, 0.5]), 2, 'F32');
    expect(Array.from(new Uint32Array(f32.buffer))).toEqual([0x7fc00000, 0x3fc00000]);
  });
});

describe('sumSquaresRef', () => {
  it('sums squares per row in float64', () => {
    // 4096^2 + 1 = 16777217 is not an f32; float64 keeps it.
    expect(Array.from(sumSquaresRef(new Float32Array([1, 2, 4096, 1]), 2, 2))).toEqual([5, 16777217]);
  });
});
