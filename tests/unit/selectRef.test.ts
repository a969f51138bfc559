/**
 * The magnitude-selection twins (src/engine/reference/select.ts) against the methods' own top-k code
 * (reference/methods/topk.ts: tiesThresholdSorted, rankBandMask) on f32-representable data, plus the key order.
 */
import { describe, expect, it } from 'vitest';
import { bandMaskRef, magnitudeKey, magnitudeKeys, rowBandMaskRef, selectMagnitudeRef } from '../../src/engine/reference/select';
import { rankBandMask, sortedMagnitudes, tiesThresholdSorted } from '../../src/engine/reference/methods/topk';
import { seededRandom } from '../helpers/safetensorsFixtures';

/** f32 values: random (`distinct` = 0) or drawn from `distinct` magnitudes with random signs (many ties). */
function f32Data(seed: number, n: number, distinct = 0): Float32Array {
  const rng = seededRandom(seed);
  const levels = Array.from({ length: distinct }, () => rng() * 4 - 2);
  return Float32Array.from({ length: n }, () => (distinct > 0 ? levels[Math.floor(rng() * distinct)]! * (rng() < 0.5 ? -1 : 1) : (rng() - 0.5) * 2 ** Math.floor(rng() * 12 - 6)));
}

/** Bits of a Float32Array (to compare -0, NaN payloads and kept zeros exactly). */
const bitsOf = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/** What topk.ts keeps: the values where rankBandMask is 1, +0 elsewhere. */
function topkBand(values: Float32Array, from: number, to: number): Float32Array {
  const mask = rankBandMask(Float64Array.from(values), from, to);
  return values.map((x, i) => (mask[i] ? x : 0));
}

describe('magnitudeKey', () => {
  it('orders |x| exactly: -0 == 0, subnormals above 0, NaN above Infinity', () => {
    expect(magnitudeKey(-0)).toBe(magnitudeKey(0));
    expect(magnitudeKey(-1.5)).toBe(magnitudeKey(1.5));
    const ascending = [0, 1e-45, 1e-40, 2 ** -126, 1e-3, 1, 3.4e38, Infinity, NaN];
    const keys = ascending.map(magnitudeKey);
    for (let i = 1; i < keys.length; i++) expect(keys[i]!, `${ascending[i]}`).toBeGreaterThan(keys[i - 1]!);
  });
  it('reads the bits of a Float32Array, sign dropped', () => {
    const values = new Float32Array([-0, -2, 2, 0.5]);
    expect(Array.from(magnitudeKeys(values))).toEqual([0, 0x40000000, 0x40000000, 0x3f000000]);
  });
});

describe('selectMagnitudeRef', () => {
  for (const [what, distinct] of [['random', 0], ['20 distinct magnitudes', 20]] as const) {
    it(`gives the TIES threshold of topk.ts for every kept fraction (${what})`, () => {
      const values = f32Data(7, 1001, distinct);
      const sorted = sortedMagnitudes(Float64Array.from(values));
      const fractions = [0.001, 0.1, 0.2, 0.5, 0.9, 0.999];
      // TIES keeps |x| >= the k-th smallest, k = d - int(d*K): that is descending rank int(d*K).
      const [sel] = selectMagnitudeRef([values], [fractions.map((k) => Math.trunc(values.length * k))]);
      fractions.forEach((k, i) => {
        const threshold = tiesThresholdSorted(sorted, k);
        expect(new Float32Array(new Uint32Array([sel!.bits[i]!]).buffer)[0], `K=${k}`).toBe(threshold);
        expect(sel!.greater[i]).toBe(sorted.filter((m) => m > threshold).length);
        expect(sel!.equal[i]).toBe(sorted.filter((m) => m === threshold).length);
      });
    });
  }

  it('handles ranks 0 and count - 1, several segments and an empty rank list', () => {
    const a = new Float32Array([3, -7, 0, -0, 7, 1]);
    const b = new Float32Array([-2]);
    const [sa, sb, sc] = selectMagnitudeRef([a, b, a], [[0, 5, 1, 4, 3], [0], []]);
    expect(Array.from(sa!.bits)).toEqual([7, 0, 7, 0, 1].map(magnitudeKey));
    expect(Array.from(sa!.greater)).toEqual([0, 4, 0, 4, 3]);
    expect(Array.from(sa!.equal)).toEqual([2, 2, 2, 2, 1]);
    expect(Array.from(sb!.bits)).toEqual([magnitudeKey(2)]);
    expect(sc!.bits.length).toBe(0);
  });

  it('names the segment when a rank is out of range', () => {
    expect(() => selectMagnitudeRef([new Float32Array(3), new Float32Array(2)], [[2], [2]])).toThrow(/segment 1 has 2 elements, rank 2/);
  });
});

describe('bandMaskRef', () => {
  const cases: [number, number][] = [[0, 1], [0, 10], [3, 17], [40, 41], [100, 400], [0, 2000], [990, 5000], [5, 5], [7, 3], [2000, 3000]];
  for (const [what, distinct] of [['random', 0], ['20 distinct magnitudes', 20], ['all equal', 1]] as const) {
    it(`keeps exactly rankBandMask's entries (${what})`, () => {
      const values = f32Data(11, 1000, distinct);
      for (const [from, to] of cases) expect(bitsOf(bandMaskRef(values, from, to)), `[${from}, ${to})`).toEqual(bitsOf(topkBand(values, from, to)));
    });
  }

  it('keeps exact bits (-0, NaN payloads) and breaks ties by index', () => {
    const nanBits = new Float32Array(new Uint32Array([0x7fa00001]).buffer)[0]!;
    const values = new Float32Array([-0, 1, -1, nanBits, 1, 0]);
    const out = bandMaskRef(values, 1, 4);
    // Ranks: NaN 0, 1 (index 1) 1, -1 (index 2) 2, 1 (index 4) 3, -0 (index 0) 4, 0 (index 5) 5.
    expect(bitsOf(out)).toEqual(bitsOf(new Float32Array([0, 1, -1, 0, 1, 0])));
    expect(bitsOf(bandMaskRef(values, 0, 6))).toEqual(bitsOf(values));
  });
});

describe('rowBandMaskRef', () => {
  it('applies the band to each row separately, as rankBandMask on the row', () => {
    for (const n of [1, 7, 300]) {
      const values = f32Data(n, n * 6, 20);
      const out = rowBandMaskRef(values, n, 2, 5);
      for (let r = 0; r < 6; r++) {
        const row = values.subarray(r * n, (r + 1) * n);
        expect(bitsOf(out.subarray(r * n, (r + 1) * n)), `n=${n} row ${r}`).toEqual(bitsOf(topkBand(row, 2, 5)));
      }
    }
  });
  it('rejects a length that is not whole rows', () => {
    expect(() => rowBandMaskRef(new Float32Array(10), 3, 0, 1)).toThrow(/not rows of 3/);
  });
});
