/**
 * CPU twins of the GPU magnitude selection (src/engine/gpu/select.ts, bandMask.ts, rowBand.ts): plain sorts of the
 * ordering keys, the readable spec the GPU results are tested against bit for bit.
 *
 * Ordering convention (GPU and CPU alike): |x| is compared as the u32 key `bits(x) & 0x7fffffff`, so -0 == 0, NaN
 * sorts above Infinity and every comparison is exact and total. Descending rank 0 is the largest key; among equal
 * keys the lower flat index comes first (topk.ts `rankBandMask`).
 */
import type { MagnitudeSelection } from '../gpu/selectPasses';

const MAGNITUDE_MASK = 0x7fffffff;

/** The ordering key of |x| for an f32 value: its bits without the sign. */
export function magnitudeKey(x: number): number {
  return (new Uint32Array(new Float32Array([x]).buffer)[0]! & MAGNITUDE_MASK) >>> 0;
}

/** The ordering keys of every element (bit-exact: NaN payloads and -0 are read from the bits). */
export function magnitudeKeys(values: Float32Array): Uint32Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const keys = new Uint32Array(values.length);
  for (let i = 0; i < keys.length; i++) keys[i] = bits[i]! & MAGNITUDE_MASK;
  return keys;
}

/** Index of the first element of ascending `sorted` that is > key. */
function upperBound(sorted: Uint32Array, key: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first element of ascending `sorted` that is >= key. */
function lowerBound(sorted: Uint32Array, key: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Per segment, per requested descending rank: the key of the element at that rank, how many elements are strictly
 * greater, and how many are equal to it. A rank outside [0, count) throws, naming the segment.
 */
export function selectMagnitudeRef(values: readonly Float32Array[], ranks: readonly (readonly number[])[]): MagnitudeSelection[] {
  if (ranks.length !== values.length) throw new RangeError(`selectMagnitudeRef: ${values.length} segments but ${ranks.length} rank lists`);
  return values.map((segment, s) => {
    const sorted = magnitudeKeys(segment).sort();
    const n = sorted.length;
    const wanted = ranks[s]!;
    const k = wanted.length;
    const out: MagnitudeSelection = { bits: new Uint32Array(k), greater: new Float64Array(k), equal: new Float64Array(k) };
    wanted.forEach((rank, i) => {
      if (!Number.isInteger(rank) || rank < 0 || rank >= n) {
        throw new RangeError(`selectMagnitudeRef: segment ${s} has ${n} elements, rank ${rank} requested`);
      }
      const key = sorted[n - 1 - rank]!;
      const above = upperBound(sorted, key);
      out.bits[i] = key;
      out.greater[i] = n - above;
      out.equal[i] = above - lowerBound(sorted, key);
    });
    return out;
  });
}

/**
 * A copy of `values` in which every entry whose descending magnitude rank (ties: lower index first) is outside
 * [from, to) is +0; kept entries keep their exact bits.
 */
export function bandMaskRef(values: Float32Array, from: number, to: number): Float32Array {
  const keys = magnitudeKeys(values);
  const order = Int32Array.from({ length: values.length }, (_, i) => i).sort((i, j) => keys[j]! - keys[i]! || i - j);
  const inBits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Float32Array(values.length);
  const outBits = new Uint32Array(out.buffer);
  for (let r = Math.max(0, from); r < Math.min(to, values.length); r++) outBits[order[r]!] = inBits[order[r]!]!;
  return out;
}

/** bandMaskRef applied to each consecutive row of length n (a stack [T, rows x n] is T * rows such rows). */
export function rowBandMaskRef(values: Float32Array, n: number, from: number, to: number): Float32Array {
  if (!Number.isInteger(n) || n < 1 || values.length % n !== 0) throw new RangeError(`rowBandMaskRef: ${values.length} values are not rows of ${n}`);
  const out = new Float32Array(values.length);
  for (let start = 0; start < values.length; start += n) out.set(bandMaskRef(values.subarray(start, start + n), from, to), start);
  return out;
}
