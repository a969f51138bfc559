/**
 * CPU twins of the GPU merge kernels (shaders/unpack, task_vector, combine, pack_add, sum_squares): plain loops
 * with the same semantics, used as the readable spec and as the reference in tests. Every f32 operation is
 * rounded with Math.fround in the same order as the WGSL, so elementwise results match the GPU bit for bit.
 *
 * WGSL lets a device flush f32 subnormals to zero in arithmetic (SwiftShader does, on inputs and results);
 * `{ flushSubnormals: true }` models such a device, so a test can accept either behaviour.
 */
import type { RawDType } from '../gpu/kernels';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../tensor/dtype';
import { DTYPE_BYTES } from '../types';

/** How f32 arithmetic treats subnormals. */
export interface F32Mode {
  /** Flush subnormal operands and results to zero of the same sign, as WGSL permits. */
  flushSubnormals?: boolean;
}

/** Canonical NaNs written by packAdd (common.wgsl's F32_QUIET_NAN, F16_QUIET_NAN, BF16_QUIET_NAN). */
const QUIET_NAN_BITS = { F32: 0x7fc00000, F16: 0x7e00, BF16: 0x7fc0 } as const;

const SMALLEST_NORMAL_F32 = 2 ** -126;

/** Rounds to f32, then flushes a subnormal result to ±0. */
function froundFlushed(x: number): number {
  const y = Math.fround(x);
  return Math.abs(y) < SMALLEST_NORMAL_F32 ? (y < 0 || Object.is(y, -0) ? -0 : 0) : y;
}

/** The f32 rounding of one operation under `mode`; applied to operands and to results. */
function f32Rounder(mode?: F32Mode): (x: number) => number {
  return mode?.flushSubnormals ? froundFlushed : Math.fround;
}

/** Element j of raw little-endian bytes, exactly (as common.wgsl's decode_raw). */
function decodeElement(view: DataView, dtype: RawDType, j: number): number {
  switch (dtype) {
    case 'F32':
      return view.getFloat32(4 * j, true);
    case 'F16':
      return f16BitsToF32(view.getUint16(2 * j, true));
    case 'BF16':
      return bf16BitsToF32(view.getUint16(2 * j, true));
  }
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** out[j] = decode(raw, j) for j < numel. */
export function unpackRef(raw: Uint8Array, dtype: RawDType, numel: number): Float32Array {
  const view = viewOf(raw);
  const out = new Float32Array(numel);
  for (let j = 0; j < numel; j++) out[j] = decodeElement(view, dtype, j);
  return out;
}

/** out[row * numel + j] = decode(rawFt, j) - base[j], one f32 subtraction per element. */
export function taskVectorRef(
  rawFt: Uint8Array,
  dtype: RawDType,
  base: Float32Array,
  numel: number,
  out: Float32Array,
  row: number,
  mode?: F32Mode,
): void {
  const f32 = f32Rounder(mode);
  const view = viewOf(rawFt);
  for (let j = 0; j < numel; j++) {
    out[row * numel + j] = f32(f32(decodeElement(view, dtype, j)) - f32(base[j]!));
  }
}

/** out[j] = sum over r of coeffs[r] * stack[r * numel + j]: from 0, in row order, f32 product then f32 add. */
export function combineRef(
  stack: Float32Array,
  rows: number,
  numel: number,
  coeffs: ArrayLike<number>,
  mode?: F32Mode,
): Float32Array {
  const f32 = f32Rounder(mode);
  const out = new Float32Array(numel);
  for (let j = 0; j < numel; j++) {
    let acc = 0;
    for (let r = 0; r < rows; r++) {
      const product = f32(f32(coeffs[r]!) * f32(stack[r * numel + j]!));
      acc = f32(acc + product);
    }
    out[j] = acc;
  }
  return out;
}

/**
 * Little-endian bytes of encode(base[j] + delta[j]) in F32, F16 or BF16 (numel elements, no padding): one f32
 * add, then round-to-nearest-even; overflow gives infinity and every NaN becomes the positive quiet NaN.
 */
export function packAddRef(
  base: Float32Array,
  delta: Float32Array,
  numel: number,
  dtype: RawDType,
  mode?: F32Mode,
): Uint8Array {
  const f32 = f32Rounder(mode);
  const bytes = new Uint8Array(numel * DTYPE_BYTES[dtype]);
  const view = viewOf(bytes);
  for (let j = 0; j < numel; j++) {
    const sum = f32(f32(base[j]!) + f32(delta[j]!));
    if (dtype === 'F32') {
      if (Number.isNaN(sum)) view.setUint32(4 * j, QUIET_NAN_BITS.F32, true);
      else view.setFloat32(4 * j, sum, true);
    } else {
      const encode = dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
      view.setUint16(2 * j, Number.isNaN(sum) ? QUIET_NAN_BITS[dtype] : encode(sum), true);
    }
  }
  return bytes;
}

/** Sum of squares of each row of a [rows, numel] array, accumulated in float64. */
export function sumSquaresRef(buf: Float32Array, rows: number, numel: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let j = 0; j < numel; j++) {
      const x = buf[r * numel + j]!;
      sum += x * x;
    }
    out[r] = sum;
  }
  return out;
}

/** Twin of scale_add: alpha * dst + beta * src with each product and the sum rounded to f32 (a new array). */
export function scaleAddRef(dst: Float32Array, alpha: number, beta: number, src: Float32Array, mode?: F32Mode): Float32Array {
  const f32 = f32Rounder(mode);
  return dst.map((d, j) => f32(f32(f32(alpha) * d) + f32(f32(beta) * src[j]!)));
}
