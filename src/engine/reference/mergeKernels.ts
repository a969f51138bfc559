/**
 * CPU twins of the elementwise merge kernels (shaders/trim_mask, dare_drop, disjoint_merge, ties_merge, magmax_select,
 * tall_mask, count_mask, bitmask_apply; launchers in src/engine/gpu/mergeKernels.ts). They work on the same
 * [rows, numel] f32 stacks, in place where the kernel is, with the same decisions on bits and the same f32
 * operations in the same order (Math.fround), so a device that keeps subnormals gives identical bits; NaN
 * payloads of arithmetic results may differ. Decisions made on bits (trim, magnitudes, signs, masks) are
 * identical on every device; the float64 references in ./methods are what these twins are tested against.
 */
import { countReciprocals, type DareChunk, type TallMaskOutputs, type ZeroSignRule } from '../gpu/mergeKernels';
import { rngUniform } from '../rng';
import type { DisjointMerge } from './methods/signElect';

const MAG = 0x7fffffff;
const INF_BITS = 0x7f800000;

/** The f32 bit patterns behind a Float32Array (same memory). */
export function bitsOf(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

/** Sum of column j in f32, from 0, in row order (the sum every column kernel elects a sign from). */
export function columnSumF32(stack: Float32Array, rows: number, numel: number, j: number): number {
  let s = 0;
  for (let r = 0; r < rows; r++) s = Math.fround(s + stack[r * numel + j]!);
  return s;
}

/** -1 or +1 from the sign bit of a non-zero, non-NaN f32 pattern. */
function signOfBits(bits: number): number {
  return bits >>> 31 ? -1 : 1;
}

/** Twin of trim_mask: zero x where its magnitude bits are below the row's threshold bits. */
export function trimMaskRef(stack: Float32Array, rows: number, numel: number, thresholdBits: Uint32Array): void {
  const bits = bitsOf(stack);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < numel; j++) if ((bits[r * numel + j]! & MAG) < thresholdBits[r]!) bits[r * numel + j] = 0;
  }
}

/** Twin of dare_drop: keep x * scale where rng_uniform(keys[r], elementOffset + j) >= p (both as f32), else 0. */
export function dareDropRef(stack: Float32Array, rows: number, numel: number, dare: DareChunk): void {
  const p = Math.fround(dare.p);
  const scale = Math.fround(dare.scale);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < numel; j++) {
      const i = r * numel + j;
      if (rngUniform(dare.keys[r]!, dare.elementOffset + j) < p) stack[i] = 0;
      else if (scale !== 1) stack[i] = Math.fround(stack[i]! * scale);
    }
  }
}

/** The sign disjoint_merge elects from a column sum: -1, 0, +1, or NaN when no row can agree. */
function electedSign(sum: number, zeroSign: ZeroSignRule): number {
  const bits = new Uint32Array(new Float32Array([sum]).buffer)[0]!;
  const mag = bits & MAG;
  const plus = zeroSign.rule === 'plus';
  if (mag > INF_BITS) return plus ? -1 : NaN;
  if (mag === 0) return plus ? 1 : zeroSign.majority;
  return signOfBits(bits);
}

/** Whether an entry (as f32 bits) takes part in the disjoint merge under elected sign `gamma`. */
function agrees(bits: number, gamma: number): boolean {
  const mag = bits & MAG;
  return mag !== 0 && mag <= INF_BITS && signOfBits(bits) === gamma;
}

/**
 * Twin of disjoint_merge: sign election from the f32 column sum, then per-row contributions (sum: agreeing x;
 * mean: agreeing x * round_f32(1 / n), n >= 2; max: the first agreeing row of largest |x|), everything else 0.
 */
export function disjointMergeRef(stack: Float32Array, rows: number, numel: number, merge: DisjointMerge, zeroSign: ZeroSignRule): void {
  const bits = bitsOf(stack);
  const recip = countReciprocals(rows);
  for (let j = 0; j < numel; j++) {
    const gamma = electedSign(columnSumF32(stack, rows, numel, j), zeroSign);
    const agreeing: number[] = [];
    for (let r = 0; r < rows; r++) if (agrees(bits[r * numel + j]!, gamma)) agreeing.push(r);
    let keep = agreeing;
    if (merge === 'max') {
      let best = -1;
      for (const r of agreeing) if (best < 0 || (bits[r * numel + j]! & MAG) > (bits[best * numel + j]! & MAG)) best = r;
      keep = best < 0 ? [] : [best];
    }
    for (let r = 0; r < rows; r++) {
      const i = r * numel + j;
      if (!keep.includes(r)) bits[i] = 0;
      else if (merge === 'mean' && agreeing.length > 1) stack[i] = Math.fround(stack[i]! * recip[agreeing.length]!);
    }
  }
}

/** Twin of ties_merge: trimMaskRef then disjointMergeRef, in place. */
export function tiesMergeRef(stack: Float32Array, rows: number, numel: number, thresholdBits: Uint32Array, merge: DisjointMerge, zeroSign: ZeroSignRule): void {
  trimMaskRef(stack, rows, numel, thresholdBits);
  disjointMergeRef(stack, rows, numel, merge, zeroSign);
}

/** Twin of magmax_select: per column the last row of largest magnitude bits keeps its value, the others 0. */
export function magmaxSelectRef(stack: Float32Array, rows: number, numel: number): void {
  const bits = bitsOf(stack);
  for (let j = 0; j < numel; j++) {
    let win = 0;
    for (let r = 1; r < rows; r++) if ((bits[r * numel + j]! & MAG) >= (bits[win * numel + j]! & MAG)) win = r;
    for (let r = 0; r < rows; r++) if (r !== win) bits[r * numel + j] = 0;
  }
}

/** Outputs of tallMaskRef (the host arrays behind TallMaskOutputs). */
export type TallMaskResult = { [K in keyof TallMaskOutputs]: Uint32Array };

/**
 * Twin of tall_mask: m_r[j] = |tau| > round(lambda_r * round(|mtl - tau|)) in f32; usage counts and, with
 * `withBits`, the masks packed one bit per row (rows beyond 32 are counted but get no bit).
 */
export function tallMaskRef(tau: Float32Array, rows: number, numel: number, mtl: Float32Array, lambdas: Float32Array, withBits: boolean): TallMaskResult {
  const counts = new Uint32Array(numel);
  const bitfield = new Uint32Array(numel);
  for (let j = 0; j < numel; j++) {
    for (let r = 0; r < rows; r++) {
      const x = tau[r * numel + j]!;
      if (Math.abs(x) > Math.fround(lambdas[r]! * Math.abs(Math.fround(mtl[j]! - x)))) {
        counts[j]!++;
        if (r < 32) bitfield[j]! |= 1 << r;
      }
    }
  }
  return withBits ? { counts, bitfield } : { counts };
}

/** Twin of count_mask: zero column j of every row unless counts[j] >= k. */
export function countMaskRef(stack: Float32Array, rows: number, numel: number, counts: Uint32Array, k: number): void {
  const bits = bitsOf(stack);
  for (let j = 0; j < numel; j++) {
    if (counts[j]! >= k) continue;
    for (let r = 0; r < rows; r++) bits[r * numel + j] = 0;
  }
}

/** Twin of keep_bits: bit r of words[j] set where row r of the stack is not +0 (by bits) at column j. */
export function keepBitsRef(stack: Float32Array, rows: number, numel: number): Uint32Array {
  const bits = bitsOf(stack);
  const words = new Uint32Array(numel);
  for (let r = 0; r < rows; r++) for (let j = 0; j < numel; j++) if (bits[r * numel + j] !== 0) words[j] = (words[j]! | (1 << r)) >>> 0;
  return words;
}

/** Twin of bitmask_apply: src[j] where bit `bit` of bitfield[j] is set, else 0 (exact bits). */
export function bitmaskApplyRef(bitfield: Uint32Array, bit: number, src: Float32Array, numel: number): Float32Array {
  const out = new Float32Array(numel);
  const from = bitsOf(src);
  const to = bitsOf(out);
  for (let j = 0; j < numel; j++) if ((bitfield[j]! >>> bit) & 1) to[j] = from[j]!;
  return out;
}
