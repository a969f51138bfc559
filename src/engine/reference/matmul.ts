/**
 * CPU twin of the GPU matrix multiply (src/engine/gpu/matmul.ts, shaders/matmul.wgsl): a plain triple loop in
 * float64 over row-major matrices with the same options (transposes, alpha, beta, batch strides, element offsets).
 * The GPU sums in f32 and in another order, so tests compare with a tolerance, not bit for bit.
 */

/** Shape and options of C[M, N] = alpha * op(A) op(B) + beta * C, for `batch` matrices (all row-major). */
export interface MatmulShape {
  /** Rows of op(A) and of C. */
  m: number;
  /** Columns of op(B) and of C. */
  n: number;
  /** Columns of op(A) = rows of op(B). */
  k: number;
  /** op(A) = A^T: A is stored [k, m] instead of [m, k]. */
  transA?: boolean;
  /** op(B) = B^T: B is stored [n, k] instead of [k, n]. */
  transB?: boolean;
  /** Scale of the product (default 1). */
  alpha?: number;
  /** Scale of the old C (default 0: C is only written, never read). */
  beta?: number;
  /** Number of matrices (default 1). */
  batch?: number;
  /** Elements between consecutive matrices of A (default m * k; 0 uses one A for every batch entry). */
  strideA?: number;
  /** Elements between consecutive matrices of B (default k * n; 0 uses one B for every batch entry). */
  strideB?: number;
  /** Elements between consecutive matrices of C (default m * n). */
  strideC?: number;
  /** Index of A's first element in its buffer (default 0). */
  offsetA?: number;
  /** Index of B's first element in its buffer (default 0). */
  offsetB?: number;
  /** Index of C's first element in its buffer (default 0). */
  offsetC?: number;
}

/** A MatmulShape with every default filled in. */
export type ResolvedMatmul = Required<MatmulShape>;

/** Fills in the defaults of a MatmulShape. */
export function resolveMatmul(s: MatmulShape): ResolvedMatmul {
  return {
    m: s.m,
    n: s.n,
    k: s.k,
    transA: s.transA ?? false,
    transB: s.transB ?? false,
    alpha: s.alpha ?? 1,
    beta: s.beta ?? 0,
    batch: s.batch ?? 1,
    strideA: s.strideA ?? s.m * s.k,
    strideB: s.strideB ?? s.k * s.n,
    strideC: s.strideC ?? s.m * s.n,
    offsetA: s.offsetA ?? 0,
    offsetB: s.offsetB ?? 0,
    offsetC: s.offsetC ?? 0,
  };
}

/** Index of op(A)[i][l] of batch entry b in A's buffer. */
export function indexA(s: ResolvedMatmul, b: number, i: number, l: number): number {
  return s.offsetA + b * s.strideA + (s.transA ? l * s.m + i : i * s.k + l);
}

/** Index of op(B)[l][j] of batch entry b in B's buffer. */
export function indexB(s: ResolvedMatmul, b: number, l: number, j: number): number {
  return s.offsetB + b * s.strideB + (s.transB ? j * s.k + l : l * s.n + j);
}

/** Index of C[i][j] of batch entry b in C's buffer. */
export function indexC(s: ResolvedMatmul, b: number, i: number, j: number): number {
  return s.offsetC + b * s.strideC + i * s.n + j;
}

/**
 * Returns a copy of `c` (or zeros of the length C needs) in which every C[i][j] of every batch entry is replaced by
 * alpha * sum_l op(A)[i][l] op(B)[l][j] + beta * C[i][j], summed in float64. With beta = 0 the old C is not read,
 * so NaN there does not leak into the result (BLAS semantics).
 */
export function matmulRef(a: ArrayLike<number>, b: ArrayLike<number>, shape: MatmulShape, c?: ArrayLike<number>): Float64Array {
  const s = resolveMatmul(shape);
  const need = s.batch > 0 && s.m > 0 && s.n > 0 ? indexC(s, s.batch - 1, s.m - 1, s.n - 1) + 1 : 0;
  const out = new Float64Array(Math.max(need, c?.length ?? 0));
  if (c) out.set(Array.from(c));
  for (let bi = 0; bi < s.batch; bi++) {
    for (let i = 0; i < s.m; i++) {
      for (let j = 0; j < s.n; j++) {
        let sum = 0;
        for (let l = 0; l < s.k; l++) sum += a[indexA(s, bi, i, l)]! * b[indexB(s, bi, l, j)]!;
        const at = indexC(s, bi, i, j);
        out[at] = s.alpha * sum + (s.beta !== 0 ? s.beta * out[at]! : 0);
      }
    }
  }
  return out;
}
