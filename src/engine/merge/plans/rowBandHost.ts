/**
 * Model Breadcrumbs' row band (rowBand.ts's result) computed on the host, for CPU-emulated adapters: there the
 * adapter's "GPU" is these same cores, and a thread-per-row radix select in WGSL (4 passes of 256-bin private
 * histograms per row) took about 100 ns per element, where this takes 6 to 13 (the most on rows of 32). In every row
 * of length n only the entries of descending magnitude rank in [from, to) are kept (keys: bits & 0x7fffffff; among
 * equal keys the lower index ranks first, as reference/select.ts `bandMaskRef`); the rest become +0, in place. Per
 * row: a list of the keys above a floor learnt from the rows before, the keys at ranks to - 1 and from by a
 * branch-free quickselect on it, then one walk in index order that keeps the entries between them (tied entries by
 * their ordinal where the band splits their run).
 */

import { MAGNITUDE_KEY as MAGNITUDE } from '../../gpu/selectPasses';

/** Windows this short are finished by insertion sort. */
const SHORT = 16;
/** The candidate floor's fraction of the last row's key b: its range, its step, and the list length that raises it. */
const MIN_FRACTION = 0.25;
const MAX_FRACTION = 0.95;
const FRACTION_STEP = 0.05;
const LONG_LIST = 1.5;

/**
 * Orders keys[lo, hi) partly, descending, so that its first r - lo + 1 entries are the largest of the window, and
 * returns the key of descending rank r (lo <= r < hi). Keys are below 2^31, so a difference's sign bit compares two
 * of them without a branch: random keys make branches mispredict about as often as not, which cost more than the
 * comparisons. Each step splits the window into keys > pivot, then == pivot and < pivot, so that runs of equal keys
 * (zeros in a task vector) stay linear.
 */
export function keyAtRank(keys: Int32Array, lo: number, hi: number, r: number): number {
  while (hi - lo > SHORT) {
    const x = keys[lo]!;
    const y = keys[(lo + hi) >>> 1]!;
    const z = keys[hi - 1]!;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let gt = lo;
    for (let i = lo; i < hi; i++) {
      const k = keys[i]!;
      keys[i] = keys[gt]!;
      keys[gt] = k;
      gt += (pivot - k) >>> 31;
    }
    if (r < gt) {
      hi = gt;
      continue;
    }
    // The rest are <= pivot: move those equal to it to the front.
    let eq = gt;
    for (let i = gt; i < hi; i++) {
      const k = keys[i]!;
      keys[i] = keys[eq]!;
      keys[eq] = k;
      eq += ((k ^ pivot) - 1) >>> 31;
    }
    if (r < eq) return pivot;
    lo = eq;
  }
  for (let i = lo + 1; i < hi; i++) {
    const k = keys[i]!;
    let j = i;
    for (; j > lo && keys[j - 1]! < k; j--) keys[j] = keys[j - 1]!;
    keys[j] = k;
  }
  return keys[r]!;
}

/** One f32 and its bits, for scaledKey (used synchronously: one pair serves every call). */
const CELL = new Float32Array(1);
const CELL_BITS = new Int32Array(CELL.buffer);

/** The f32 whose bits are `key`, times `factor`, as a key again (a float's magnitude bits order as its value). */
function scaledKey(key: number, factor: number): number {
  CELL_BITS[0] = key;
  CELL[0] = CELL[0]! * factor;
  return CELL_BITS[0]! & MAGNITUDE;
}

/**
 * Zeroes (+0), in place, every entry of each length-n row of `values` whose descending magnitude rank in its row is
 * outside [from, to). `scratch` holds at least n keys (allocated when omitted).
 */
export function rowBandMaskHost(values: Float32Array, n: number, from: number, to: number, scratch?: Int32Array): void {
  if (!Number.isInteger(n) || n < 1 || values.length % n !== 0) throw new RangeError(`rowBandMaskHost: ${values.length} values are not rows of ${n}`);
  if (!Number.isInteger(from) || from < 0 || !(to >= 0)) throw new RangeError(`rowBandMaskHost: bad band [${from}, ${to})`);
  const bits = new Int32Array(values.buffer, values.byteOffset, values.length);
  const hi = Math.min(to, n);
  if (from >= hi) {
    bits.fill(0);
    return;
  }
  const cand = scratch && scratch.length >= n ? scratch : new Int32Array(n);
  // Only keys >= floor can hold ranks below hi once at least hi of them are. The rows of a weight matrix look alike,
  // so a fraction of the last row's key b makes a floor that leaves a short list of candidates (all keys when it
  // leaves too few); the fraction follows how many the last row listed.
  let floor = 0;
  let fraction = 0.75;
  for (let start = 0; start < bits.length; start += n) {
    const end = start + n;
    let c = 0;
    for (let j = start; j < end; j++) {
      const key = bits[j]! & MAGNITUDE;
      cand[c] = key;
      c += ((key - floor) >>> 31) ^ 1;
    }
    if (c < hi) {
      for (let j = start; j < end; j++) cand[j - start] = bits[j]! & MAGNITUDE;
      c = n;
      fraction = Math.max(MIN_FRACTION, fraction - FRACTION_STEP);
    } else if (c > LONG_LIST * hi) fraction = Math.min(MAX_FRACTION, fraction + FRACTION_STEP);
    // b at rank hi - 1 first: its search leaves the hi largest keys in front, where rank `from` lies.
    const b = keyAtRank(cand, 0, c, hi - 1);
    const a = keyAtRank(cand, 0, hi, from);
    floor = scaledKey(b, fraction);
    // Every key >= b is in the list: the counts need only the list.
    let aboveA = 0;
    let aboveB = 0;
    let equalB = 0;
    for (let i = 0; i < c; i++) {
      const key = cand[i]!;
      aboveA += (a - key) >>> 31;
      aboveB += (b - key) >>> 31;
      equalB += ((key ^ b) - 1) >>> 31;
    }
    // A tie group wholly inside the band (the usual case) keeps every member; else its members take ordinals.
    const cut = !(aboveA >= from && aboveB + equalB <= hi);
    maskSpan(bits, start, end, { from, to: hi, a, b, greaterA: aboveA, greaterB: aboveB, seenA: 0, seenB: 0, cutA: cut, cutB: cut });
  }
}

/**
 * A band [from, to) of descending magnitude ranks in key terms: keys a (at rank from) and b (at rank to - 1), the
 * elements with a greater key, whether the band cuts each tie group (then its members, in index order, take the ranks
 * greater + seen), and the members seen so far (a span may continue where an earlier one stopped).
 */
export interface TieBand {
  from: number;
  to: number;
  a: number;
  b: number;
  greaterA: number;
  greaterB: number;
  seenA: number;
  seenB: number;
  cutA: boolean;
  cutB: boolean;
}

/** Zeroes (+0) the entries [first, end) of `bits` (f32 bit patterns) outside the band (from < to); advances its ordinals. */
export function maskSpan(bits: Int32Array, first: number, end: number, band: TieBand): void {
  const { a, b } = band;
  if (!band.cutA && !band.cutB) {
    // Keep b <= key <= a, without a branch: keys are below 2^31, so a difference's sign bit compares them.
    for (let j = first; j < end; j++) {
      const w = bits[j]!;
      const key = w & MAGNITUDE;
      bits[j] = w & ~(((key - b) | (a - key)) >> 31);
    }
    return;
  }
  for (let j = first; j < end; j++) {
    const key = bits[j]! & MAGNITUDE;
    let keep = key < a && key > b;
    if (key === a) {
      keep = !band.cutA || inBand(band, band.greaterA + band.seenA);
      if (band.cutA) band.seenA++;
    } else if (key === b) {
      keep = !band.cutB || inBand(band, band.greaterB + band.seenB);
      if (band.cutB) band.seenB++;
    }
    if (!keep) bits[j] = 0;
  }
}

const inBand = (band: TieBand, rank: number) => rank >= band.from && rank < band.to;

/**
 * Which entries of a masked `values` the band kept, one bit each (bit i % 32 of word i >> 5): those whose bits are
 * not +0's. An entry kept as -0 keeps its bit; one kept as +0 does not, which `applyKeptBits` writes as +0 anyway.
 */
export function keptBits(values: Float32Array): Uint32Array {
  const bits = new Int32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint32Array(Math.ceil(values.length / 32));
  for (let i = 0; i < bits.length; i++) if (bits[i] !== 0) out[i >>> 5]! |= 1 << (i & 31);
  return out;
}

/** rowBandMaskHost's result from its `keptBits`: every entry whose bit is clear becomes +0, in place. */
export function applyKeptBits(values: Float32Array, kept: Uint32Array): void {
  if (kept.length !== Math.ceil(values.length / 32)) throw new RangeError(`applyKeptBits: ${kept.length} words for ${values.length} values`);
  const bits = new Int32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < bits.length; i++) if (((kept[i >>> 5]! >>> (i & 31)) & 1) === 0) bits[i] = 0;
}
