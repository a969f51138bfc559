/**
 * The host SVD (src/engine/linalg/gramSvd.ts: float64 Gram eigendecomposition, used for OPCM on CPU-emulated
 * adapters) and its symmetric eigensolver (linalg/symmetricEigen.ts), against the one-sided Jacobi reference
 * (reference/svd.ts svdThin) and matrices built with known singular values or eigenvalues.
 *
 * Tolerances (float64 throughout; the Gram matrix squares the condition number, so small singular values are
 * resolved only to about sqrt(eps) s_0):
 *   - eigen: ||A v - lambda v|| <= 1e-12 ||A||, V orthonormal to 1e-12, eigenvalues of built matrices to 1e-12 ||A||;
 *   - SVD: U and V orthonormal to 1e-10; ||A - U diag(s) V^T||_F <= 1e-10 ||A||_F (a re-orthogonalised vector u_j moves
 *     by about eps s_0^2 / s_j^2); |s - s_ref| <= 1e-7 s_0, and
 *     <= 1e-9 s_i relative where s_i >= 1e-3 s_0; singular subspaces as the reference's (svdChecks.subspaceError <= 1e-8).
 */
import { describe, expect, it } from 'vitest';
import { CancelledError } from '../../src/engine/errors';
import { gramSvd, gramSvdSteps, REORTHOGONALIZE_BELOW } from '../../src/engine/linalg/gramSvd';
import { runStepsYielding } from '../../src/engine/linalg/steps';
import { symmetricEigen } from '../../src/engine/linalg/symmetricEigen';
import { svdThin } from '../../src/engine/reference/svd';
import { orthogonalityError, randomMatrix, randomOrthonormal, reconstructionError, subspaceError, withSingularValues } from '../helpers/svdChecks';

/** The symmetric matrix Q diag(lambda) Q^T for random orthonormal Q. */
function withEigenvalues(lambda: readonly number[], seed: number): Float64Array {
  const n = lambda.length;
  const q = randomOrthonormal(n, n, seed);
  const a = new Float64Array(n * n);
  lambda.forEach((l, k) => {
    const v = q[k]!;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j]! += l * v[i]! * v[j]!;
  });
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) a[i * n + j] = a[j * n + i]!; // exactly symmetric
  return a;
}

function randomSymmetric(n: number, seed: number): Float64Array {
  const r = randomMatrix(n, n, seed);
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) r[i * n + j] = r[j * n + i]!;
  return r;
}

function frobenius(a: ArrayLike<number>): number {
  let sq = 0;
  for (let i = 0; i < a.length; i++) sq += a[i]! ** 2;
  return Math.sqrt(sq);
}

/** Checks A v_j = lambda_j v_j, orthonormal rows, descending values; returns the decomposition. */
function expectValidEigen(a: Float64Array, n: number) {
  const r = symmetricEigen(a, n);
  const scale = Math.max(frobenius(a), 1e-300);
  for (let j = 0; j < n; j++) {
    const v = r.vectors.subarray(j * n, (j + 1) * n);
    let res = 0;
    for (let i = 0; i < n; i++) {
      let x = 0;
      for (let c = 0; c < n; c++) x += a[i * n + c]! * v[c]!;
      res += (x - r.values[j]! * v[i]!) ** 2;
    }
    expect(Math.sqrt(res), `n ${n}: residual of eigenpair ${j}`).toBeLessThanOrEqual(1e-12 * scale);
    if (j > 0) expect(r.values[j]).toBeLessThanOrEqual(r.values[j - 1]!);
  }
  // Rows as the columns of the transpose.
  const cols = new Float64Array(n * n);
  for (let j = 0; j < n; j++) for (let i = 0; i < n; i++) cols[i * n + j] = r.vectors[j * n + i]!;
  expect(orthogonalityError(cols, n, n), `n ${n}: orthonormal eigenvectors`).toBeLessThanOrEqual(1e-12);
  return r;
}

describe('symmetricEigen (Householder tridiagonalisation + implicit QL, float64)', () => {
  it.each([1, 2, 3, 4, 7, 33, 130])('decomposes a random symmetric %ix%i matrix', (n) => {
    expectValidEigen(randomSymmetric(n, 100 + n), n);
  });

  it('finds built eigenvalues: negative, repeated, zero, spread over 12 decades', () => {
    const cases = [
      [5, -3, 2, 2, 2, 0, -7, 1e-3],
      [1, 1, 1, 1, 1, 1],
      Array.from({ length: 25 }, (_, i) => 10 ** (-i / 2)),
      [0, 0, 0, 4],
    ];
    cases.forEach((lambda, c) => {
      const r = expectValidEigen(withEigenvalues(lambda, 7 + c), lambda.length);
      const want = [...lambda].sort((x, y) => y - x);
      want.forEach((x, i) => expect(Math.abs(r.values[i]! - x), `case ${c} value ${i}`).toBeLessThanOrEqual(1e-12 * Math.max(...lambda.map(Math.abs))));
    });
  });

  it('is exact where nothing needs rotating: diagonal, already tridiagonal, zero', () => {
    expect([...expectValidEigen(new Float64Array([2, 0, 0, 0, -1, 0, 0, 0, 5]), 3).values]).toEqual([5, 2, -1]);
    expect([...expectValidEigen(new Float64Array(16), 4).values]).toEqual([0, 0, 0, 0]);
    // Tridiagonal [[2, 1, 0], [1, 2, 1], [0, 1, 2]]: eigenvalues 2 + sqrt(2), 2, 2 - sqrt(2).
    const r = expectValidEigen(new Float64Array([2, 1, 0, 1, 2, 1, 0, 1, 2]), 3);
    [2 + Math.SQRT2, 2, 2 - Math.SQRT2].forEach((x, i) => expect(r.values[i]).toBeCloseTo(x, 14));
  });

  it('does not modify its input and rejects bad input', () => {
    const a = randomSymmetric(5, 3);
    const copy = a.slice();
    symmetricEigen(a, 5);
    expect(a).toEqual(copy);
    expect(() => symmetricEigen(new Float64Array(5), 2)).toThrow(/2x2/);
    expect(() => symmetricEigen(new Float64Array([1, NaN, NaN, 1]), 2)).toThrow(/NaN/);
  });
});

/** Checks gramSvd(a) against the reference (svdThin) or known singular values. */
function expectGoodHostSvd(a: Float64Array | Float32Array, m: number, n: number, known?: readonly number[]) {
  const k = Math.min(m, n);
  const what = `${m}x${n}`;
  const r = gramSvd(a, m, n);
  expect([r.m, r.n, r.k, r.u.length, r.s.length, r.v.length]).toEqual([m, n, k, m * k, k, n * k]);
  const a64 = Float64Array.from(a);
  const ref = svdThin(a64, m, n);
  const want = known ?? [...ref.s];
  const s0 = Math.max(want[0]!, 1e-300);
  for (let i = 0; i < k; i++) {
    const err = Math.abs(r.s[i]! - want[i]!);
    expect(err, `${what} s[${i}] = ${r.s[i]} vs ${want[i]}`).toBeLessThanOrEqual(1e-7 * s0);
    if (want[i]! >= 1e-3 * s0) expect(err, `${what} s[${i}] relative`).toBeLessThanOrEqual(1e-9 * want[i]!);
    if (i > 0) expect(r.s[i]).toBeLessThanOrEqual(r.s[i - 1]!);
  }
  expect(orthogonalityError(r.u, m, k), `${what} U orthonormal`).toBeLessThanOrEqual(1e-10);
  expect(orthogonalityError(r.v, n, k), `${what} V orthonormal`).toBeLessThanOrEqual(1e-10);
  expect(reconstructionError(a64, m, n, k, r.u, r.s, r.v), `${what} reconstruction`).toBeLessThanOrEqual(1e-10);
  expect(subspaceError(ref.u, r.u, m, k, ref.s), `${what} left subspaces`).toBeLessThanOrEqual(1e-8);
  expect(subspaceError(ref.v, r.v, n, k, ref.s), `${what} right subspaces`).toBeLessThanOrEqual(1e-8);
  return r;
}

describe('gramSvd (host SVD through the Gram eigendecomposition)', () => {
  it.each([
    [1, 1], [7, 1], [1, 9], [16, 16], [64, 48], [48, 64], [200, 50], [50, 200], [96, 96],
  ])('factors a random %ix%i matrix like the Jacobi reference', (m, n) => {
    expectGoodHostSvd(randomMatrix(m, n, m * 17 + n), m, n);
  });

  it('takes f32 input as the GPU holds it', () => {
    expectGoodHostSvd(Float32Array.from(randomMatrix(40, 30, 3)), 40, 30);
  });

  it('finds built singular values: repeated, spread over 4 decades, tall and wide', () => {
    const repeated = [3, 3, 3, 2, 2, 1, 1, 1, 1, 0.5, 0.25, 0.25];
    const spread = Array.from({ length: 40 }, (_, i) => 10 ** (-4 * (i / 39)));
    for (const [m, n, sigma] of [[50, 12, repeated], [12, 50, repeated], [60, 40, spread], [40, 60, spread]] as const) {
      expectGoodHostSvd(withSingularValues(m, n, sigma, m + 2 * n), m, n, sigma);
    }
  });

  it('rank-deficient and exactly dependent inputs: zero singular values with orthonormal completions', () => {
    for (const [m, n] of [[30, 20], [20, 30]] as const) {
      const r = expectGoodHostSvd(withSingularValues(m, n, [5, 4, 3, 2, 1, 0.5], 9 + m), m, n);
      for (let i = 6; i < 20; i++) expect(r.s[i]).toBeLessThan(1e-7 * r.s[0]!);
    }
    // Zero and repeated columns: the long side's vectors for them vanish or coincide.
    const a = randomMatrix(24, 10, 8);
    for (let i = 0; i < 24; i++) {
      a[i * 10 + 2] = 0;
      a[i * 10 + 7] = 0;
      a[i * 10 + 5] = a[i * 10 + 4]!;
    }
    const r = expectGoodHostSvd(a, 24, 10);
    expect(r.s[7]).toBeLessThanOrEqual(REORTHOGONALIZE_BELOW * r.s[0]!);
  });

  it('the zero matrix: s = 0 and orthonormal U, V', () => {
    for (const [m, n] of [[12, 40], [40, 12], [1, 1]] as const) {
      const r = gramSvd(new Float64Array(m * n), m, n);
      const k = Math.min(m, n);
      expect([...r.s]).toEqual(new Array(k).fill(0));
      expect(orthogonalityError(r.u, m, k)).toBeLessThanOrEqual(1e-12);
      expect(orthogonalityError(r.v, n, k)).toBeLessThanOrEqual(1e-12);
    }
  });

  it('rejects bad sizes and non-finite values', () => {
    expect(() => gramSvd(new Float64Array(5), 2, 3)).toThrow(/2x3/);
    expect(() => gramSvd(new Float32Array([1, NaN]), 1, 2)).toThrow(/NaN/);
    expect(() => gramSvd(new Float64Array([1, Infinity]), 2, 1)).toThrow(/Infinity/);
  });
});

describe('runStepsYielding (the host SVD as the page runs it)', () => {
  it('lets other work run between its steps and gives the same factors as the direct call', async () => {
    const a = randomMatrix(120, 80, 12);
    let done = false;
    let turns = 0;
    const other = (async () => {
      while (!done) {
        await new Promise((resolve) => setImmediate(resolve));
        turns++;
      }
    })();
    const stepped = await runStepsYielding(gramSvdSteps(a, 120, 80), 0);
    done = true;
    await other;
    expect(turns).toBeGreaterThan(10);
    expect(stepped).toEqual(gramSvd(a, 120, 80));
  });

  it('stops with CancelledError at the first turn after its signal fires', async () => {
    const controller = new AbortController();
    setImmediate(() => controller.abort());
    await expect(runStepsYielding(gramSvdSteps(randomMatrix(150, 150, 3), 150, 150), 0, controller.signal)).rejects.toBeInstanceOf(CancelledError);
  });

  it('reports bad input when the steps are made, before any is run', () => {
    expect(() => gramSvdSteps(new Float64Array([NaN]), 1, 1)).toThrow(/NaN/);
  });
});
