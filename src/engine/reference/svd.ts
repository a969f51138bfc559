/**
 * Float64 singular value decomposition by one-sided Jacobi (Hestenes): the reference the GPU SVD is tested against.
 *
 * Method: take the k = min(m, n) vectors of length L = max(m, n) that the matrix has along its longer side (the
 * columns of a tall A, the rows of a wide A) and rotate pairs of them until every pair is orthogonal to a relative
 * tolerance of JACOBI_TOL_FACTOR * sqrt(L) * eps (about 1e-14 here). The rotations, accumulated from the identity,
 * form the orthogonal factor on the short side; the rotated vectors' norms are the singular values and the
 * normalised vectors the other factor. One-sided Jacobi gives small singular values to high relative accuracy and
 * orthogonal factors to round-off, which is why it was chosen over the Gram-matrix eigendecomposition (that one
 * squares the condition number).
 *
 * Zero singular values (zero or rank-deficient input) have no defined singular vector on the long side; we complete
 * those columns to an orthonormal set (completeOrthonormal), so U and V are always orthonormal.
 */

/** Thin SVD A = U diag(s) V^T of an m x n matrix, k = min(m, n). All arrays are row-major. */
export interface ThinSvd {
  m: number;
  n: number;
  k: number;
  /** Left singular vectors [m, k]: column i is u_i. */
  u: Float64Array;
  /** Singular values, descending, length k. */
  s: Float64Array;
  /** Right singular vectors [n, k]: column i is v_i. */
  v: Float64Array;
  /** Jacobi sweeps until no pair needed a rotation (at most SVD_MAX_SWEEPS). */
  sweeps: number;
}

/** Sweep cap; random matrices converge in about 6-10 sweeps (quadratic convergence), so hitting it means trouble. */
export const SVD_MAX_SWEEPS = 60;
/** A pair counts as orthogonal when |a_p . a_q| <= JACOBI_TOL_FACTOR * sqrt(L) * eps * |a_p| |a_q|. */
export const JACOBI_TOL_FACTOR = 4;
const EPS = 2.220446049250313e-16;
/** After scaling the input to max |a| = 1, a vector shorter than this is treated as exactly zero. */
const ZERO_NORM = 1e-150;

/** Thin SVD of the row-major m x n matrix `a` (float64), singular values in descending order. */
export function svdThin(a: Float64Array, m: number, n: number): ThinSvd {
  if (!(Number.isInteger(m) && Number.isInteger(n) && m > 0 && n > 0) || a.length !== m * n) {
    throw new Error(`svdThin: expected a ${m}x${n} matrix (${m * n} values), got ${a.length} values`);
  }
  const tall = m >= n;
  const k = Math.min(m, n);
  const len = Math.max(m, n);
  // Scale to max |a| = 1 so that squared norms neither overflow nor underflow; undone on the singular values.
  let maxAbs = 0;
  for (let i = 0; i < a.length; i++) {
    const x = Math.abs(a[i]!);
    if (!(x <= Number.MAX_VALUE)) throw new Error('svdThin: the matrix contains NaN or Infinity');
    if (x > maxAbs) maxAbs = x;
  }
  const scale = maxAbs > 0 ? maxAbs : 1;
  // w[j]: the j-th vector along the long side (column j of a tall A, row j of a wide A), scaled.
  const w: Float64Array[] = [];
  for (let j = 0; j < k; j++) {
    const vec = new Float64Array(len);
    for (let i = 0; i < len; i++) vec[i] = (tall ? a[i * n + j]! : a[j * n + i]!) / scale;
    w.push(vec);
  }
  // acc[j]: column j of the accumulated rotation (V for a tall A, U for a wide one), starting at the identity.
  const acc: Float64Array[] = [];
  for (let j = 0; j < k; j++) {
    const e = new Float64Array(k);
    e[j] = 1;
    acc.push(e);
  }
  const sweeps = jacobiSweeps(w, acc, JACOBI_TOL_FACTOR * Math.sqrt(len) * EPS);

  // Singular values = norms of the rotated vectors; sort descending (ties keep the original column order).
  const norms = w.map((x) => Math.sqrt(dot(x, x)));
  const order = norms.map((_, j) => j).sort((p, q) => norms[q]! - norms[p]! || p - q);
  const s = new Float64Array(k);
  const longSide: (Float64Array | null)[] = [];
  const shortSide: Float64Array[] = [];
  order.forEach((j, i) => {
    const nrm = norms[j]!;
    s[i] = nrm * scale;
    longSide.push(nrm > ZERO_NORM ? w[j]!.map((x) => x / nrm) : null);
    shortSide.push(acc[j]!);
  });
  const completed = fillMissingOrthonormal(longSide, len);
  return {
    m,
    n,
    k,
    u: packColumns(tall ? completed : shortSide, m),
    s,
    v: packColumns(tall ? shortSide : completed, n),
    sweeps,
  };
}

/** Rotates pairs of `w` (and the same pairs of `acc`) until all pairs of `w` are orthogonal to `tol`; returns sweeps. */
function jacobiSweeps(w: Float64Array[], acc: Float64Array[], tol: number): number {
  const k = w.length;
  for (let sweep = 1; sweep <= SVD_MAX_SWEEPS; sweep++) {
    let rotated = false;
    for (let p = 0; p < k - 1; p++) {
      for (let q = p + 1; q < k; q++) {
        const wp = w[p]!;
        const wq = w[q]!;
        const alpha = dot(wp, wp);
        const beta = dot(wq, wq);
        const gamma = dot(wp, wq);
        if (alpha === 0 || beta === 0 || Math.abs(gamma) <= tol * Math.sqrt(alpha) * Math.sqrt(beta)) continue;
        rotated = true;
        // Rotation that zeroes the pair's inner product: t = tan(theta) is the smaller root of t^2 + 2 zeta t - 1 = 0.
        const zeta = (beta - alpha) / (2 * gamma);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        rotate(wp, wq, c, c * t);
        rotate(acc[p]!, acc[q]!, c, c * t);
      }
    }
    if (!rotated) return sweep;
  }
  return SVD_MAX_SWEEPS;
}

/** (x, y) <- (c x - s y, s x + c y), in place. */
function rotate(x: Float64Array, y: Float64Array, c: number, s: number): void {
  for (let i = 0; i < x.length; i++) {
    const a = x[i]!;
    const b = y[i]!;
    x[i] = c * a - s * b;
    y[i] = s * a + c * b;
  }
}

function dot(x: Float64Array, y: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += x[i]! * y[i]!;
  return sum;
}

/** Replaces the null entries by unit vectors orthogonal to all others (the given ones must be orthonormal). */
function fillMissingOrthonormal(vectors: (Float64Array | null)[], len: number): Float64Array[] {
  const known = vectors.filter((x): x is Float64Array => x !== null);
  if (known.length === vectors.length) return known;
  const extra = completeOrthonormal(known, len, vectors.length).slice(known.length);
  return vectors.map((x) => x ?? extra.shift()!);
}

/**
 * Extends orthonormal vectors of length `len` to `count` orthonormal vectors (count <= len). Each new vector is the
 * standard basis vector with the largest component outside the current span, orthogonalised twice (Gram-Schmidt
 * with re-orthogonalisation), so it is orthonormal to round-off. Used for zero singular values and full U, V.
 */
export function completeOrthonormal(vectors: readonly Float64Array[], len: number, count: number): Float64Array[] {
  if (count > len) throw new Error(`completeOrthonormal: cannot have ${count} orthonormal vectors of length ${len}`);
  const out = vectors.map((x) => x.slice());
  // inSpan[i] = squared length of e_i's projection on the current span.
  const inSpan = new Float64Array(len);
  for (const q of out) for (let i = 0; i < len; i++) inSpan[i] = inSpan[i]! + q[i]! * q[i]!;
  while (out.length < count) {
    let best = 0;
    for (let i = 1; i < len; i++) if (inSpan[i]! < inSpan[best]!) best = i;
    const r = new Float64Array(len);
    r[best] = 1;
    for (let pass = 0; pass < 2; pass++) {
      for (const q of out) {
        const c = dot(q, r);
        for (let i = 0; i < len; i++) r[i] = r[i]! - c * q[i]!;
      }
    }
    const nrm = Math.sqrt(dot(r, r));
    for (let i = 0; i < len; i++) r[i] = r[i]! / nrm;
    for (let i = 0; i < len; i++) inSpan[i] = inSpan[i]! + r[i]! * r[i]!;
    out.push(r);
  }
  return out;
}

/** Packs vectors of length `rows` as the columns of a row-major [rows, vectors.length] matrix. */
export function packColumns(vectors: readonly Float64Array[], rows: number): Float64Array {
  const cols = vectors.length;
  const out = new Float64Array(rows * cols);
  vectors.forEach((x, j) => {
    for (let i = 0; i < rows; i++) out[i * cols + j] = x[i]!;
  });
  return out;
}

/** Column j of a row-major [rows, cols] matrix. */
export function columnOf(mat: Float64Array, rows: number, cols: number, j: number): Float64Array {
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++) out[i] = mat[i * cols + j]!;
  return out;
}
