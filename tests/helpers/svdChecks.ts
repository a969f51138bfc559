/**
 * Matrices with known singular values and the measures the SVD tests check factors with (the float64 reference, the
 * GPU Jacobi and the host Gram SVD). Singular vectors are unique only up to sign, and up to rotation within a
 * repeated singular value, so raw vectors are never compared: orthogonality, reconstruction and spanned subspaces are.
 */
import { rngKey, rngUniform } from '../../src/engine/rng';

/** Deterministic uniform(-1, 1) matrix, row-major m x n. */
export function randomMatrix(m: number, n: number, seed: number): Float64Array {
  const key = rngKey(seed, 7, 0);
  return Float64Array.from({ length: m * n }, (_, i) => 2 * rngUniform(key, i) - 1);
}

/** `count` random orthonormal vectors of length `len` (Gram-Schmidt, twice). */
export function randomOrthonormal(len: number, count: number, seed: number): Float64Array[] {
  const raw = randomMatrix(count, len, seed);
  const out: Float64Array[] = [];
  for (let j = 0; j < count; j++) {
    const v = raw.slice(j * len, (j + 1) * len);
    for (let pass = 0; pass < 2; pass++) {
      for (const q of out) {
        let c = 0;
        for (let i = 0; i < len; i++) c += q[i]! * v[i]!;
        for (let i = 0; i < len; i++) v[i] = v[i]! - c * q[i]!;
      }
    }
    let nrm = 0;
    for (let i = 0; i < len; i++) nrm += v[i]! * v[i]!;
    out.push(v.map((x) => x / Math.sqrt(nrm)));
  }
  return out;
}

/** A = sum_l sigma_l a_l b_l^T with random orthonormal a_l (length m) and b_l (length n). */
export function withSingularValues(m: number, n: number, sigma: readonly number[], seed: number): Float64Array {
  const a = randomOrthonormal(m, sigma.length, seed);
  const b = randomOrthonormal(n, sigma.length, seed + 1);
  const out = new Float64Array(m * n);
  sigma.forEach((s, l) => {
    const al = a[l]!;
    const bl = b[l]!;
    for (let i = 0; i < m; i++) {
      const x = s * al[i]!;
      for (let j = 0; j < n; j++) out[i * n + j]! += x * bl[j]!;
    }
  });
  return out;
}

/** max |Q^T Q - I| for the row-major [rows, cols] matrix Q. */
export function orthogonalityError(q: ArrayLike<number>, rows: number, cols: number): number {
  let err = 0;
  for (let a = 0; a < cols; a++) {
    for (let b = a; b < cols; b++) {
      let d = 0;
      for (let i = 0; i < rows; i++) d += q[i * cols + a]! * q[i * cols + b]!;
      err = Math.max(err, Math.abs(d - (a === b ? 1 : 0)));
    }
  }
  return err;
}

/** ||A - U diag(s) V^T||_F / ||A||_F (the absolute error when A = 0), summed over A / max |A| so that huge or tiny entries neither overflow nor underflow. */
export function reconstructionError(a: ArrayLike<number>, m: number, n: number, k: number, u: ArrayLike<number>, s: ArrayLike<number>, v: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < m * n; i++) scale = Math.max(scale, Math.abs(a[i]!));
  if (scale === 0) scale = 1;
  let err = 0;
  let norm = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let x = 0;
      for (let l = 0; l < k; l++) x += u[i * k + l]! * (s[l]! / scale) * v[j * k + l]!;
      err += (a[i * n + j]! / scale - x) ** 2;
      norm += (a[i * n + j]! / scale) ** 2;
    }
  }
  return norm > 0 ? Math.sqrt(err / norm) : Math.sqrt(err);
}

/**
 * For each group of (relatively) equal reference singular values above 1e-6 s_0: group size minus
 * ||X_ref[:, group]^T X[:, group]||_F^2 (0 when the spans agree), the worst over groups.
 */
export function subspaceError(ref: ArrayLike<number>, got: ArrayLike<number>, rows: number, k: number, s: ArrayLike<number>): number {
  let worst = 0;
  let start = 0;
  while (start < k && s[start]! > 1e-6 * s[0]!) {
    let end = start + 1;
    while (end < k && Math.abs(s[end]! - s[end - 1]!) <= 1e-3 * s[start]!) end++;
    let captured = 0;
    for (let a = start; a < end; a++) {
      for (let b = start; b < end; b++) {
        let d = 0;
        for (let i = 0; i < rows; i++) d += ref[i * k + a]! * got[i * k + b]!;
        captured += d * d;
      }
    }
    worst = Math.max(worst, end - start - captured);
    start = end;
  }
  return worst;
}
