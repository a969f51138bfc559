/**
 * The host row band (merge/plans/rowBandHost.ts, Breadcrumbs on CPU-emulated adapters) against its twin
 * rowBandMaskRef, bit for bit: kept entries keep their bits (-0, subnormals, infinities and NaNs included), the rest
 * become +0; ties by lower index. Its kept bits (what the merge's memo keeps) give the same result applied to the
 * unmasked values.
 */
import { describe, expect, it } from 'vitest';
import { applyKeptBits, keptBits, rowBandMaskHost } from '../../src/engine/merge/plans/rowBandHost';
import { rowBandMaskRef } from '../../src/engine/reference/select';
import { seededRandom } from '../helpers/safetensorsFixtures';

type Gen = (rng: () => number) => number;
const randomValue: Gen = (rng) => (rng() - 0.5) * 2 ** Math.floor(rng() * 30 - 15);
/** 20 magnitudes, random signs: ties everywhere. */
const tiedValue: Gen = (rng) => (Math.floor(rng() * 20) + 1) * 0.125 * (rng() < 0.5 ? -1 : 1);
/** Mostly ±0, some small values. */
const zeroHeavy: Gen = (rng) => (rng() < 0.8 ? (rng() < 0.5 ? 0 : -0) : Math.floor(rng() * 3 + 1) * (rng() < 0.5 ? -1 : 1));
/** Non-finite and subnormal values among ordinary ones. */
const SPECIAL = [NaN, -NaN, Infinity, -Infinity, 1e-45, -1e-45, 1e-40, 0, -0, 3.4e38];
const specialValue: Gen = (rng) => (rng() < 0.3 ? SPECIAL[Math.floor(rng() * SPECIAL.length)]! : (rng() - 0.5) * 4);

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

function check(gen: Gen, rows: number, n: number, from: number, to: number, seed = 1): void {
  const rng = seededRandom(seed * 7919 + n * 131 + rows);
  const values = Float32Array.from({ length: rows * n }, () => gen(rng));
  const want = rowBandMaskRef(values, n, from, to);
  const got = values.slice();
  rowBandMaskHost(got, n, from, to);
  expect(bits(got), `n=${n} rows=${rows} [${from}, ${to})`).toEqual(bits(want));
}

/** Breadcrumbs-like (drop the top 1%, keep the next 15%), plus edge bands. */
function bandsFor(n: number): [number, number][] {
  const top = Math.trunc(n * 0.01);
  return [[top, top + Math.max(1, Math.trunc(n * 0.15))], [0, 1], [Math.trunc(n / 2), n + 3], [n - 1, n], [2, 2], [0, n], [n, n + 5]];
}

describe('rowBandMaskHost vs rowBandMaskRef', () => {
  for (const n of [1, 2, 7, 17, 300, 3072]) {
    it(`n=${n}: random, tied, zero-heavy and special values`, () => {
      const rows = n > 1000 ? 3 : 20;
      for (const [from, to] of bandsFor(n)) {
        for (const [k, gen] of [randomValue, tiedValue, zeroHeavy, specialValue].entries()) check(gen, rows, n, from, to, k + 1);
      }
    });
  }

  it('every band of short rows, on many seeds', () => {
    for (let seed = 1; seed <= 30; seed++) {
      for (let from = 0; from <= 9; from++) for (let to = 0; to <= 10; to++) check(seed % 2 ? tiedValue : zeroHeavy, 4, 9, from, to, seed);
    }
  });

  it('a row of one repeated magnitude keeps exactly the band, by index', () => {
    const values = Float32Array.from({ length: 50 }, (_, i) => (i % 2 ? 0.5 : -0.5));
    rowBandMaskHost(values, 50, 10, 20);
    expect(Array.from(values, (v, i) => (v !== 0 ? i : -1)).filter((i) => i >= 0)).toEqual(Array.from({ length: 10 }, (_, i) => 10 + i));
  });

  it('uses a scratch buffer when given one, and rejects a bad shape or band', () => {
    const values = Float32Array.from({ length: 12 }, (_, i) => i - 6);
    const want = rowBandMaskRef(values, 4, 1, 3);
    rowBandMaskHost(values, 4, 1, 3, new Int32Array(4));
    expect(bits(values)).toEqual(bits(want));
    expect(() => rowBandMaskHost(new Float32Array(10), 4, 0, 1)).toThrow(/10 values are not rows of 4/);
    expect(() => rowBandMaskHost(new Float32Array(4), 4, -1, 1)).toThrow(/bad band/);
  });
});

describe('the kept bits of a row band', () => {
  it('reproduce the mask bit for bit on the unmasked values (-0, +0, NaN and infinities kept or not)', () => {
    for (const [gen, what] of [
      [randomValue, 'random'],
      [tiedValue, 'tied'],
      [zeroHeavy, 'zero-heavy'],
      [specialValue, 'special'],
    ] as const) {
      for (const [n, rows] of [[7, 5], [32, 9], [300, 3], [33, 1]] as const) {
        for (const [from, to] of bandsFor(n)) {
          const rng = seededRandom(n * 31 + rows + from);
          const values = Float32Array.from({ length: rows * n }, () => gen(rng));
          const masked = values.slice();
          rowBandMaskHost(masked, n, from, to);
          const kept = keptBits(masked);
          expect(kept.length).toBe(Math.ceil(values.length / 32));
          const again = values.slice();
          applyKeptBits(again, kept);
          expect(bits(again), `${what} n=${n} rows=${rows} [${from}, ${to})`).toEqual(bits(masked));
        }
      }
    }
  });

  it('refuses bits of another length', () => {
    expect(() => applyKeptBits(new Float32Array(33), new Uint32Array(1))).toThrow(/2 words|1 words for 33 values/);
  });
});
