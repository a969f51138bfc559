/**
 * Float dtype conversions on the CPU: the reference twins of the GPU unpack/pack kernels, so every rounding
 * rule here (round-to-nearest-even, overflow to infinity, canonical NaN) must match the WGSL bit for bit.
 * Bytes are always little-endian, as safetensors stores them, whatever the host's byte order.
 */
import type { DType } from '../types';

// Scratch views for reinterpreting one f32's bits (single-threaded per realm, so sharing them is safe).
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** Bit pattern (u32) of `x` rounded to f32. */
function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0]!;
}

/** The f32 whose bit pattern is `bits`. */
function f32FromBits(bits: number): number {
  scratchU32[0] = bits >>> 0;
  return scratchF32[0]!;
}

/** Exact value of an f16 bit pattern (subnormals, infinities and NaN, with its sign, included). */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  // NaN keeps its sign and payload (as an f32 NaN), like the GPU's bit-level unpack.
  if (exp === 0x1f) return mant ? f32FromBits(((h & 0x8000) << 16) | 0x7f800000 | (mant << 13)) : sign * Infinity;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

/**
 * f16 bit pattern of `x` rounded first to f32, then to f16 with round-to-nearest-even. Values too large for
 * f16 become ±infinity, NaN becomes 0x7e00 with its sign kept, and tiny values become f16 subnormals or ±0.
 */
export function f32ToF16Bits(x: number): number {
  const bits = f32Bits(x);
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | (mant ? 0x7e00 : 0x7c00);
  const e = exp - 127;
  if (e > 15) return sign | 0x7c00;
  if (e >= -14) {
    // Normal f16: drop 13 mantissa bits; a carry out of the mantissa correctly bumps the exponent (up to inf).
    let h = ((e + 15) << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) !== 0)) h++;
    return sign | h;
  }
  // Subnormal f16 counts units of 2^-24; the value is full * 2^(e-23), i.e. full >> -(e+1) units.
  if (exp === 0) return sign; // f32 subnormals are far below half of the smallest f16 subnormal
  const shift = -(e + 1);
  if (shift > 24) return sign;
  const full = mant | 0x800000;
  let q = full >>> shift;
  const rest = full & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && (q & 1) !== 0)) q++;
  return sign | q;
}

/** Exact value of a bf16 bit pattern (the top half of an f32). */
export function bf16BitsToF32(b: number): number {
  return f32FromBits((b & 0xffff) << 16);
}

/** bf16 bit pattern of `x` rounded first to f32, then to bf16 with round-to-nearest-even; NaN becomes 0x7fc0 | sign. */
export function f32ToBf16Bits(x: number): number {
  const bits = f32Bits(x);
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) return ((bits >>> 16) & 0x8000) | 0x7fc0;
  const lsb = (bits >>> 16) & 1;
  // Arithmetic (not 32-bit ops): the rounded sum can exceed 2^31. Max finite rounds up into infinity, as it should.
  return Math.floor((bits + 0x7fff + lsb) / 0x10000) & 0xffff;
}

type FloatDType = 'F64' | 'F32' | 'F16' | 'BF16';

let f16Table: Float32Array | undefined;

/** All 65536 f16 values (each exact in f32), built on first use: decoding is then a table lookup. */
function f16Lookup(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32(h);
  }
  return f16Table;
}

/** Element size of a float dtype; throws for integer and boolean dtypes. */
function floatSize(dtype: DType): number {
  switch (dtype) {
    case 'F64':
      return 8;
    case 'F32':
      return 4;
    case 'F16':
    case 'BF16':
      return 2;
    default:
      throw new TypeError(`dtype ${dtype} is not a float dtype (expected F64, F32, F16 or BF16)`);
  }
}

/** Whether typed arrays use little-endian order here (safetensors bytes are little-endian). */
export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Decodes little-endian floats into `out` (a Float64Array keeps values exact, a Float32Array rounds them). */
function decodeInto<T extends Float32Array | Float64Array>(bytes: Uint8Array, dtype: DType, make: (n: number) => T): T {
  const size = floatSize(dtype);
  if (bytes.byteLength % size !== 0) {
    throw new RangeError(`${bytes.byteLength} bytes is not a whole number of ${dtype} elements (${size} bytes each)`);
  }
  const n = bytes.byteLength / size;
  const out = make(n);
  // DataView works on any byte offset (tensor slices of a file are rarely aligned) and is little-endian on request.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype as FloatDType) {
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true);
      break;
    case 'F32':
      // Aligned bytes on a little-endian host are already the values: one bulk copy.
      if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) out.set(new Float32Array(bytes.buffer, bytes.byteOffset, n));
      else for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
      break;
    case 'F16': {
      const table = f16Lookup();
      for (let i = 0; i < n; i++) out[i] = table[view.getUint16(i * 2, true)]!;
      break;
    }
    case 'BF16': {
      // Widen to f32 bit patterns in bulk, then reinterpret.
      const bits = new Uint32Array(n);
      for (let i = 0; i < n; i++) bits[i] = view.getUint16(i * 2, true) << 16;
      out.set(new Float32Array(bits.buffer));
      break;
    }
  }
  return out;
}

/** Exact values of little-endian F64/F32/F16/BF16 bytes (any byte offset); throws for non-float dtypes. */
export function decodeFloats(bytes: Uint8Array, dtype: DType): Float64Array {
  return decodeInto(bytes, dtype, (n) => new Float64Array(n));
}

/** Values of little-endian F64/F32/F16/BF16 bytes rounded to f32 (exact except for F64 input). */
export function decodeToF32(bytes: Uint8Array, dtype: DType): Float32Array {
  return decodeInto(bytes, dtype, (n) => new Float32Array(n));
}

/** Little-endian bytes of `values` in a float dtype (F16/BF16 round via f32, as the GPU pack kernels do). */
export function encodeFloats(values: ArrayLike<number>, dtype: FloatDType): Uint8Array {
  const size = floatSize(dtype);
  const n = values.length;
  const bytes = new Uint8Array(n * size);
  const view = new DataView(bytes.buffer);
  switch (dtype) {
    case 'F64':
      for (let i = 0; i < n; i++) view.setFloat64(i * 8, values[i]!, true);
      break;
    case 'F32':
      for (let i = 0; i < n; i++) view.setFloat32(i * 4, values[i]!, true);
      break;
    case 'F16':
      for (let i = 0; i < n; i++) view.setUint16(i * 2, f32ToF16Bits(values[i]!), true);
      break;
    case 'BF16':
      for (let i = 0; i < n; i++) view.setUint16(i * 2, f32ToBf16Bits(values[i]!), true);
      break;
  }
  return bytes;
}
