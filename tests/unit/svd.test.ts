import { describe, expect, it } from 'vitest';
import { columnOf, completeOrthonormal, packColumns, svdThin, SVD_MAX_SWEEPS, type ThinSvd } from '../../src/engine/reference/svd';
import { svdMultiplyAdds } from '../../src/engine/gpu/svd';
import { orthogonalityError, randomMatrix, randomOrthonormal, reconstructionError, withSingularValues } from '../helpers/svdChecks';

function expectValidSvd(a: Float64Array, m: number, n: number, tol = 1e-13): ThinSvd {
  const svd = svdThin(a, m, n);
  const k = Math.min(m, n);
  expect([svd.m, svd.n, svd.k, svd.u.length, svd.s.length, svd.v.length]).toEqual([m, n, k, m * k, k, n * k]);
  expect(orthogonalityError(svd.u, m, k)).toBeLessThan(tol);
  expect(orthogonalityError(svd.v, n, k)).toBeLessThan(tol);
  expect(reconstructionError(a, m, n, k, svd.u, svd.s, svd.v)).toBeLessThan(tol);
  for (let i = 0; i < k; i++) {
    expect(svd.s[i]).toBeGreaterThanOrEqual(0);
    if (i > 0) expect(svd.s[i]).toBeLessThanOrEqual(svd.s[i - 1]!);
  }
  expect(svd.sweeps).toBeLessThan(SVD_MAX_SWEEPS);
  return svd;
}

describe('svdThin (one-sided Jacobi, float64)', () => {
  it.each([
    [8, 5],
    [5, 8],
    [6, 6],
    [96, 24],
    [24, 96],
    [1, 7],
    [7, 1],
    [1, 1],
  ])('factors a random %ix%i matrix: orthonormal U, V, exact reconstruction, sorted values', (m, n) => {
    expectValidSvd(randomMatrix(m, n, m * 31 + n), m, n);
  });

  it('finds the singular values of constructed matrices (tall, wide, square, spread over 11 decades)', () => {
    const cases: [number, number, number[]][] = [
      [96, 24, Array.from({ length: 24 }, (_, i) => 24 - i)],
      [24, 96, Array.from({ length: 24 }, (_, i) => 2 ** -i)],
      [5, 5, [1e3, 1, 1e-3, 1e-6, 1e-8]],
      [6, 4, [3, 3, 3, 1]], // repeated singular values
    ];
    for (const [m, n, sigma] of cases) {
      const svd = expectValidSvd(withSingularValues(m, n, sigma, m + n), m, n);
      sigma.forEach((s, i) => expect(Math.abs(svd.s[i]! - s)).toBeLessThan(1e-13 * sigma[0]!));
    }
  });

  it('handles rank-deficient matrices: zero singular values with completed orthonormal vectors', () => {
    for (const [m, n] of [[7, 5], [5, 7], [6, 6]] as const) {
      const svd = expectValidSvd(withSingularValues(m, n, [3, 1], 11), m, n);
      expect(svd.s[0]).toBeCloseTo(3, 13);
      expect(svd.s[1]).toBeCloseTo(1, 13);
      for (let i = 2; i < Math.min(m, n); i++) expect(svd.s[i]).toBeLessThan(1e-14);
    }
    // Exact zeros on the long side (a zero column of a tall matrix) take the completion path.
    const a = new Float64Array([1, 0, 2, 3, 0, 4, 5, 0, 6, 7, 0, 8]); // 4x3, column 1 is zero
    const svd = expectValidSvd(a, 4, 3);
    expect(svd.s[2]).toBe(0);
  });

  it('factors the zero matrix as U, V orthonormal and s = 0', () => {
    for (const [m, n] of [[4, 3], [3, 4], [1, 1]] as const) {
      const svd = expectValidSvd(new Float64Array(m * n), m, n);
      expect([...svd.s]).toEqual(new Array(Math.min(m, n)).fill(0));
    }
  });

  it('is exact on the identity and on diagonal matrices (no rotation needed)', () => {
    const d = new Float64Array([0, 0, 0, 0, 2, 0, 0, 0, 5]); // diag(0, 2, 5)
    const svd = expectValidSvd(d, 3, 3);
    expect([...svd.s]).toEqual([5, 2, 0]);
    expect(svd.sweeps).toBe(1);
  });

  it('keeps tiny and huge inputs accurate (scaling avoids under/overflow of squared norms)', () => {
    for (const scale of [1e-200, 1e200]) {
      const base = randomMatrix(6, 4, 5);
      const ref = svdThin(base, 6, 4);
      const svd = expectValidSvd(base.map((x) => x * scale), 6, 4);
      ref.s.forEach((s, i) => expect(Math.abs(svd.s[i]! / scale - s)).toBeLessThan(1e-13));
    }
  });

  it('rejects bad sizes and non-finite values', () => {
    expect(() => svdThin(new Float64Array(5), 2, 3)).toThrow(/2x3/);
    expect(() => svdThin(new Float64Array([1, NaN]), 1, 2)).toThrow(/NaN/);
    expect(() => svdThin(new Float64Array([1, Infinity]), 2, 1)).toThrow(/Infinity/);
  });
});

describe('completeOrthonormal / packColumns / columnOf', () => {
  it('extends random orthonormal vectors to a full orthonormal basis', () => {
    const start = randomOrthonormal(9, 3, 2);
    const full = completeOrthonormal(start, 9, 9);
    expect(full).toHaveLength(9);
    const q = packColumns(full, 9);
    expect(orthogonalityError(q, 9, 9)).toBeLessThan(1e-14);
    start.forEach((x, j) => expect([...columnOf(q, 9, 9, j)]).toEqual([...x]));
    expect(() => completeOrthonormal(start, 9, 10)).toThrow(/10/);
  });
});

describe('svdMultiplyAdds (the benchmark\'s work count of the GPU SVD)', () => {
  it('counts Gram tiles, row updates and rotations per step and block pair, per sweep', () => {
    // 40 x 24: k 24, one block pair (nb 2), long side 40, rows of 40 + 24 values, 8 inner sweeps:
    // 36 tiles x 16 x 40 + 32 x 32 x 64 + 8 x 496 rotations x 12 x 32.
    expect(svdMultiplyAdds(40, 24, 3)).toBe(3 * (36 * 16 * 40 + 32 * 32 * 64 + 8 * 496 * 12 * 32));
    // 200 x 50: 4 blocks (3 steps of 2 pairs), long side 200, rows of 200 + 52 values, one inner sweep.
    expect(svdMultiplyAdds(200, 50, 1)).toBe(3 * 2 * (36 * 16 * 200 + 32 * 32 * 252 + 496 * 12 * 32));
    // A wide matrix works on its long side too.
    expect(svdMultiplyAdds(50, 200, 7)).toBe(7 * svdMultiplyAdds(200, 50, 1));
  });
});
