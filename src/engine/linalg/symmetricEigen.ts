/**
 * Eigendecomposition of a real symmetric matrix in float64, A = V diag(w) V^T, by Householder reduction to
 * tridiagonal form and the implicit QL iteration with Wilkinson-style shifts (Golub & Van Loan, ch. 8.3; the
 * classic EISPACK tred2 / tql2 pair). The host SVD (gramSvd.ts) uses it on Gram matrices.
 *
 * Storage is row-major throughout, and the eigenvectors are kept as rows so that every rotation of the QL step
 * combines two contiguous rows (columns of a row-major matrix would be strided by n).
 *
 * Cost for n x n: about n^3 multiply-adds for the reduction, 2/3 n^3 for forming its orthogonal factor, and about
 * 3 n^3 for the QL rotations (1.5 to 2 iterations per eigenvalue): 1.8 to 2.2 s for n = 768 on one core of the bench
 * machine (V8 scalar code; carrying the rotated row across a QL sweep measured no faster).
 * Accuracy: eigenvalues to about n * eps * ||A||, eigenvectors orthonormal to about n * eps.
 */
import { dot } from './dot';
import { runSteps, type Steps } from './steps';

/** Result of symmetricEigen: eigenvalues in descending order and their unit eigenvectors as the rows of `vectors`. */
export interface SymmetricEigen {
  n: number;
  values: Float64Array;
  /** [n, n] row-major; row j is the eigenvector of values[j]. */
  vectors: Float64Array;
}

const EPS = 2.220446049250313e-16;
/** QL iterations allowed per eigenvalue; convergence is cubic, so about 2 are typical. */
const MAX_ITERATIONS = 60;

/**
 * Eigenvalues and eigenvectors of the symmetric n x n matrix `a` (row-major; only its symmetric part is meaningful,
 * both triangles are read). `a` is not modified.
 */
export function symmetricEigen(a: Float64Array, n: number): SymmetricEigen {
  return runSteps(symmetricEigenSteps(a, n));
}

/** symmetricEigen as steps (steps.ts): it yields after each row or eigenvalue of work. Throws on bad input at once. */
export function symmetricEigenSteps(a: Float64Array, n: number): Steps<SymmetricEigen> {
  if (!(Number.isInteger(n) && n > 0) || a.length !== n * n) throw new Error(`symmetricEigen: expected a ${n}x${n} matrix (${n * n} values), got ${a.length}`);
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) throw new Error('symmetricEigen: the matrix contains NaN or Infinity');
  return eigenSteps(a.slice(), n);
}

function* eigenSteps(work: Float64Array, n: number): Steps<SymmetricEigen> {
  const d = new Float64Array(n);
  const e = new Float64Array(n); // e[i] couples i and i + 1; e[n - 1] = 0
  const betas = yield* tridiagonalize(work, n, d, e);
  const rows = transposeInPlace(yield* formQ(work, n, betas), n); // row j = column j of Q
  yield* ql(d, e, rows, n);
  return sortDescending(d, rows, n);
}

/**
 * Reduces `a` (in place, n x n) to the tridiagonal T = Q^T A Q with Q = H_0 H_1 ... H_{n-3}: H_k = I - beta_k v v^T
 * maps A's column k below the diagonal onto its first entry. Writes T's diagonal into d and its off-diagonal into e;
 * leaves each v in row k of `a` (entries k + 1 .. n - 1) and returns the betas.
 */
function* tridiagonalize(a: Float64Array, n: number, d: Float64Array, e: Float64Array): Steps<Float64Array> {
  const betas = new Float64Array(Math.max(n - 2, 0));
  const p = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    yield;
    const row = k * n;
    d[k] = a[row + k]!;
    // x = A[k, k+1..] (= the column below the diagonal, by symmetry).
    const tailSq = dot(a, row + k + 2, a, row + k + 2, n - k - 2);
    const x0 = a[row + k + 1]!;
    if (tailSq === 0) {
      // Already tridiagonal in this column: H_k = I.
      e[k] = x0;
      a.fill(0, row + k + 1, row + n);
      continue;
    }
    const norm = Math.sqrt(x0 * x0 + tailSq);
    const alpha = x0 > 0 ? -norm : norm; // the sign that avoids cancellation in v0 = x0 - alpha
    e[k] = alpha;
    a[row + k + 1] = x0 - alpha; // v, in place of x
    const beta = 1 / (norm * norm - x0 * alpha); // 2 / (v^T v)
    betas[k] = beta;
    // B = A[k+1.., k+1..] <- H B H = B - v w^T - w v^T, with p = beta B v, w = p - (beta / 2)(p^T v) v.
    let pv = 0;
    for (let i = k + 1; i < n; i++) {
      const bi = i * n;
      p[i] = beta * dot(a, bi + k + 1, a, row + k + 1, n - k - 1);
      pv += p[i]! * a[row + i]!;
    }
    const half = 0.5 * beta * pv;
    for (let i = k + 1; i < n; i++) p[i] = p[i]! - half * a[row + i]!;
    for (let i = k + 1; i < n; i++) {
      const bi = i * n;
      const vi = a[row + i]!;
      const wi = p[i]!;
      for (let j = k + 1; j < n; j++) a[bi + j] = a[bi + j]! - vi * p[j]! - wi * a[row + j]!;
    }
  }
  if (n >= 2) {
    d[n - 2] = a[(n - 2) * n + n - 2]!;
    e[n - 2] = a[(n - 2) * n + n - 1]!;
  }
  d[n - 1] = a[n * n - 1]!;
  e[n - 1] = 0;
  return betas;
}

/** Q = H_0 H_1 ... H_{n-3} from the vectors tridiagonalize left in `a`, accumulated backwards (each H_k touches rows and columns k + 1 ..). */
function* formQ(a: Float64Array, n: number, betas: Float64Array): Steps<Float64Array> {
  const q = new Float64Array(n * n);
  for (let i = 0; i < n; i++) q[i * n + i] = 1;
  const t = new Float64Array(n);
  for (let k = n - 3; k >= 0; k--) {
    yield;
    const beta = betas[k]!;
    if (beta === 0) continue;
    const row = k * n;
    // Q[k+1.., k+1..] <- (I - beta v v^T) Q[k+1.., k+1..]: t = v^T Q, then Q -= beta v t^T, row by row.
    t.fill(0, k + 1, n);
    for (let i = k + 1; i < n; i++) {
      const vi = a[row + i]!;
      const qi = i * n;
      for (let j = k + 1; j < n; j++) t[j] = t[j]! + vi * q[qi + j]!;
    }
    for (let i = k + 1; i < n; i++) {
      const f = beta * a[row + i]!;
      const qi = i * n;
      for (let j = k + 1; j < n; j++) q[qi + j] = q[qi + j]! - f * t[j]!;
    }
  }
  return q;
}

function transposeInPlace(m: Float64Array, n: number): Float64Array {
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const x = m[i * n + j]!;
      m[i * n + j] = m[j * n + i]!;
      m[j * n + i] = x;
    }
  }
  return m;
}

/**
 * Diagonalises the tridiagonal (d, e) by implicit QL steps, each shifted by the eigenvalue of the leading 2 x 2 block
 * closest to d[l], deflating when an off-diagonal entry falls below eps times its neighbours. Every plane rotation
 * of the columns i, i + 1 of the eigenvector matrix is applied to `rows` i, i + 1 (which hold those columns).
 */
function* ql(d: Float64Array, e: Float64Array, rows: Float64Array, n: number): Steps<void> {
  for (let l = 0; l < n; l++) {
    for (let iter = 0; ; iter++) {
      yield;
      let m = l;
      while (m < n - 1 && Math.abs(e[m]!) > EPS * (Math.abs(d[m]!) + Math.abs(d[m + 1]!))) m++;
      if (m === l) break;
      if (iter === MAX_ITERATIONS) throw new Error(`symmetricEigen: no convergence for eigenvalue ${l} after ${MAX_ITERATIONS} QL iterations`);
      // Shift: the eigenvalue of [[d_l, e_l], [e_l, d_l+1]] nearer to d_l.
      let g = (d[l + 1]! - d[l]!) / (2 * e[l]!);
      let r = Math.hypot(g, 1);
      g = d[m]! - d[l]! + e[l]! / (g + (g >= 0 ? r : -r));
      let s = 1;
      let c = 1;
      let p = 0;
      let i = m - 1;
      for (; i >= l; i--) {
        const f = s * e[i]!;
        const b = c * e[i]!;
        r = Math.hypot(f, g);
        e[i + 1] = r;
        if (r === 0) {
          // Underflow: the matrix splits here; undo the pending shift and start again.
          d[i + 1] = d[i + 1]! - p;
          e[m] = 0;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1]! - p;
        r = (d[i]! - g) * s + 2 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
        rotateRows(rows, n, i, c, s);
      }
      if (i >= l) continue;
      d[l] = d[l]! - p;
      e[l] = g;
      e[m] = 0;
    }
  }
}

/** (row i, row i + 1) <- (c x - s y, s x + c y) for x = row i, y = row i + 1. */
function rotateRows(rows: Float64Array, n: number, i: number, c: number, s: number): void {
  const x0 = i * n;
  const y0 = x0 + n;
  for (let j = 0; j < n; j++) {
    const x = rows[x0 + j]!;
    const y = rows[y0 + j]!;
    rows[x0 + j] = c * x - s * y;
    rows[y0 + j] = s * x + c * y;
  }
}

function sortDescending(d: Float64Array, rows: Float64Array, n: number): SymmetricEigen {
  const order = Array.from({ length: n }, (_, i) => i).sort((p, q) => d[q]! - d[p]! || p - q);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((from, to) => {
    values[to] = d[from]!;
    vectors.set(rows.subarray(from * n, (from + 1) * n), to * n);
  });
  return { n, values, vectors };
}
