/**
 * Thin SVD A = U diag(s) V^T of an m x n matrix on the host, through the float64 eigendecomposition of the Gram
 * matrix of its short side (methods.md 1.8: "an eigendecomposition of the n x n Gram matrix, u_i = Delta v_i /
 * sigma_i"). On a CPU-emulated adapter this replaces the GPU's block Jacobi for OPCM: a 768 x 768 Jacobi SVD took
 * 134 s on SwiftShader (2 cores), this about 2.3 s on one core.
 *
 * With k = min(m, n): G = A^T A (tall A) or A A^T (wide A), k x k, summed in float64; G = E diag(lambda) E^T gives
 * the short-side singular vectors e_j; the long-side ones are w_j = A e_j (or A^T e_j), s_j = ||w_j||, u_j = w_j / s_j.
 * Taking s_j as ||w_j|| rather than sqrt(lambda_j) makes A e_j = s_j u_j hold to rounding, so U diag(s) V^T
 * reconstructs A to rounding whatever the singular values' accuracy.
 *
 * Accuracy. Forming G squares the condition number: lambda_j carries an absolute error of about eps * s_0^2, so s_j is
 * resolved down to about sqrt(eps) s_0 = 1.5e-8 s_0 (the f32 GPU path: about 1e-6 s_0), and u_i . u_j is off by about
 * eps s_0^2 / (s_i s_j). Long-side vectors with s_j <= REORTHOGONALIZE_BELOW * s_0 are therefore orthogonalised
 * against the ones before them (Gram-Schmidt, twice), and one with nothing left (a zero or numerically dependent
 * vector: zero or rank-deficient input) becomes the standard basis vector with the least of it in the span so far, so
 * U and V are always orthonormal (to about 1e-10 here).
 *
 * Cost: k^2 L / 2 multiply-adds for G, about 4.7 k^3 for the eigendecomposition, k^2 L for the long side (L = max(m, n)).
 */
import { completeOrthonormal, type ThinSvd } from '../reference/svd';
import { dot } from './dot';
import { runSteps, type Steps } from './steps';
import { symmetricEigenSteps } from './symmetricEigen';

/** Thin SVD, row-major: u [m, k] (column j is u_j), s descending, v [n, k]; the reference's layout, without sweeps. */
export type GramSvd = Omit<ThinSvd, 'sweeps'>;

/** Long-side vectors with s_j at or below this fraction of s_0 are orthogonalised explicitly (see the module comment). */
export const REORTHOGONALIZE_BELOW = 1e-3;

/** Thin SVD of the row-major m x n matrix `a`; throws on NaN or Infinity. */
export function gramSvd(a: Float32Array | Float64Array, m: number, n: number): GramSvd {
  return runSteps(gramSvdSteps(a, m, n));
}

/** gramSvd as steps (steps.ts), yielding after each row of work; throws on bad input at once. */
export function gramSvdSteps(a: Float32Array | Float64Array, m: number, n: number): Steps<GramSvd> {
  if (!(Number.isInteger(m) && Number.isInteger(n) && m > 0 && n > 0) || a.length !== m * n) {
    throw new Error(`gramSvd: expected a ${m}x${n} matrix (${m * n} values), got ${a.length} values`);
  }
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) throw new Error('gramSvd: the matrix contains NaN or Infinity');
  return svdSteps(a, m, n);
}

function* svdSteps(a: Float32Array | Float64Array, m: number, n: number): Steps<GramSvd> {
  const tall = m >= n;
  const k = Math.min(m, n);
  const len = Math.max(m, n);
  const x = shortSideRows(a, m, n);
  const eig = yield* symmetricEigenSteps(yield* gram(x, k, len), k);
  const long = yield* combineRows(eig.vectors, x, k, len);
  const norms = new Float64Array(k);
  for (let j = 0; j < k; j++) norms[j] = Math.sqrt(dot(long, j * len, long, j * len, len));
  // ||A e_j|| may order near-equal values differently from lambda_j.
  const order = Array.from({ length: k }, (_, j) => j).sort((p, q) => norms[q]! - norms[p]! || p - q);
  const s = Float64Array.from(order, (j) => norms[j]!);
  const longSide = new Float64Array(k * len);
  const shortSide = new Float64Array(k * k);
  order.forEach((from, to) => {
    const nrm = norms[from]!;
    for (let i = 0; i < len; i++) longSide[to * len + i] = nrm > 0 ? long[from * len + i]! / nrm : 0;
    shortSide.set(eig.vectors.subarray(from * k, (from + 1) * k), to * k);
  });
  yield* orthonormalizeTail(longSide, len, k, s);
  return tall
    ? { m, n, k, u: transpose(longSide, k, len), s, v: transpose(shortSide, k, k) }
    : { m, n, k, u: transpose(shortSide, k, k), s, v: transpose(longSide, k, len) };
}

/** The k = min(m, n) vectors of A's long side as the rows of a float64 [k, L] matrix: A^T for a tall A, A for a wide one. */
function shortSideRows(a: Float32Array | Float64Array, m: number, n: number): Float64Array {
  if (m < n) return Float64Array.from(a);
  const x = new Float64Array(n * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) x[j * m + i] = a[i * n + j]!;
  return x;
}

/** X X^T (k x k) for the rows of x ([k, len]): A^T A for a tall A, A A^T for a wide one. */
function* gram(x: Float64Array, k: number, len: number): Steps<Float64Array> {
  const g = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    yield;
    for (let j = i; j < k; j++) {
      const d = dot(x, i * len, x, j * len, len);
      g[i * k + j] = d;
      g[j * k + i] = d;
    }
  }
  return g;
}

/** Rows j of the result: sum_i e[j, i] x_i, i.e. A e_j (tall A) or A^T e_j (wide A); [k, len]. Four rows of x per pass over a result row. */
function* combineRows(e: Float64Array, x: Float64Array, k: number, len: number): Steps<Float64Array> {
  const out = new Float64Array(k * len);
  for (let j = 0; j < k; j++) {
    yield;
    const o = j * len;
    const ej = j * k;
    let i = 0;
    for (; i + 3 < k; i += 4) {
      const [f0, f1, f2, f3] = [e[ej + i]!, e[ej + i + 1]!, e[ej + i + 2]!, e[ej + i + 3]!];
      const [x0, x1, x2, x3] = [i * len, (i + 1) * len, (i + 2) * len, (i + 3) * len];
      for (let c = 0; c < len; c++) out[o + c] = out[o + c]! + f0 * x[x0 + c]! + f1 * x[x1 + c]! + f2 * x[x2 + c]! + f3 * x[x3 + c]!;
    }
    for (; i < k; i++) {
      const f = e[ej + i]!;
      const xi = i * len;
      for (let c = 0; c < len; c++) out[o + c] = out[o + c]! + f * x[xi + c]!;
    }
  }
  return out;
}

/**
 * Makes the unit rows of `w` (k rows of length len, s descending) orthonormal: rows with s_j <= REORTHOGONALIZE_BELOW
 * s_0 are orthogonalised twice against all rows before them; a row with (almost) nothing left is replaced by the
 * completion the reference SVD uses (reference/svd.ts completeOrthonormal: the standard basis vector least represented
 * in the span so far, orthogonalised twice).
 */
function* orthonormalizeTail(w: Float64Array, len: number, k: number, s: Float64Array): Steps<void> {
  const cut = REORTHOGONALIZE_BELOW * s[0]!;
  const first = s.findIndex((x) => !(x > cut));
  if (first < 0) return;
  for (let j = first; j < k; j++) {
    yield;
    const at = j * len;
    const before = Math.sqrt(dot(w, at, w, at, len));
    if (before > 0 && orthogonalize(w, at, len, j) > 0.5 * before) continue;
    const prior = Array.from({ length: j }, (_, r) => w.subarray(r * len, (r + 1) * len));
    w.set(completeOrthonormal(prior, len, j + 1)[j]!, at);
  }
}

/** Removes from row j (at offset `at`) its components along rows 0 .. j - 1, twice, and normalises it; returns its norm before normalising. */
function orthogonalize(w: Float64Array, at: number, len: number, j: number): number {
  for (let pass = 0; pass < 2; pass++) {
    for (let r = 0; r < j; r++) {
      const c = dot(w, r * len, w, at, len);
      if (c === 0) continue;
      for (let i = 0; i < len; i++) w[at + i] = w[at + i]! - c * w[r * len + i]!;
    }
  }
  const nrm = Math.sqrt(dot(w, at, w, at, len));
  if (nrm > 0) for (let i = 0; i < len; i++) w[at + i] = w[at + i]! / nrm;
  return nrm;
}

/** The [cols, rows] transpose of a row-major [rows, cols] matrix. */
function transpose(x: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = x[i * cols + j]!;
  return out;
}
