/**
 * The float64 matmul twin (src/engine/reference/matmul.ts): hand-computed products, the transpose identities,
 * alpha/beta (BLAS semantics: beta = 0 never reads C), batch strides, broadcast, offsets and k = 0.
 */
import { describe, expect, it } from 'vitest';
import { indexA, indexB, indexC, matmulRef, resolveMatmul } from '../../src/engine/reference/matmul';

// A = [[1, 2, 3], [4, 5, 6]] (2x3), B = [[7, 8], [9, 10], [11, 12]] (3x2): A B = [[58, 64], [139, 154]].
const A = [1, 2, 3, 4, 5, 6];
const B = [7, 8, 9, 10, 11, 12];
const AB = [58, 64, 139, 154];

/** Row-major transpose of a rows x cols matrix. */
function transpose(x: number[], rows: number, cols: number): number[] {
  return Array.from({ length: rows * cols }, (_, i) => x[(i % rows) * cols + Math.floor(i / rows)]!);
}

describe('matmulRef', () => {
  it('multiplies a 2x3 by a 3x2 matrix', () => {
    expect(Array.from(matmulRef(A, B, { m: 2, n: 2, k: 3 }))).toEqual(AB);
  });

  it('reads transposed operands: op(A) = A^T, op(B) = B^T', () => {
    const at = transpose(A, 2, 3);
    const bt = transpose(B, 3, 2);
    expect(Array.from(matmulRef(at, B, { m: 2, n: 2, k: 3, transA: true }))).toEqual(AB);
    expect(Array.from(matmulRef(A, bt, { m: 2, n: 2, k: 3, transB: true }))).toEqual(AB);
    expect(Array.from(matmulRef(at, bt, { m: 2, n: 2, k: 3, transA: true, transB: true }))).toEqual(AB);
    // B A (3x3) = (A^T B^T)^T, computed both ways.
    const ba = matmulRef(B, A, { m: 3, n: 3, k: 2 });
    const atbt = matmulRef(A, B, { m: 3, n: 3, k: 2, transA: true, transB: true });
    expect(Array.from(ba)).toEqual(transpose(Array.from(atbt), 3, 3));
  });

  it('C = alpha A B + beta C, and beta = 0 does not read C', () => {
    const c = [1, -1, 2, 0.5];
    expect(Array.from(matmulRef(A, B, { m: 2, n: 2, k: 3, alpha: 0.5, beta: 2 }, c))).toEqual(AB.map((x, i) => 0.5 * x + 2 * c[i]!));
    expect(Array.from(matmulRef(A, B, { m: 2, n: 2, k: 3 }, [NaN, NaN, NaN, NaN]))).toEqual(AB);
  });

  it('k = 0 gives beta C (an empty sum)', () => {
    expect(Array.from(matmulRef([], [], { m: 2, n: 2, k: 0, beta: 3 }, [1, 2, 3, 4]))).toEqual([3, 6, 9, 12]);
  });

  it('batches with strides, broadcast (stride 0) and offsets; untouched C entries keep their values', () => {
    // Two A's with a gap of one element, one shared B, C entries at offset 1 with stride 5.
    const a = [99, ...A, -1, ...A.map((x) => 2 * x)];
    const shape = { m: 2, n: 2, k: 3, batch: 2, offsetA: 1, strideA: 7, strideB: 0, offsetC: 1, strideC: 5 };
    const c = matmulRef(a, B, shape, new Array(11).fill(-7));
    expect(Array.from(c)).toEqual([-7, ...AB, -7, ...AB.map((x) => 2 * x), -7]);
  });

  it('index helpers follow the documented layouts', () => {
    const s = resolveMatmul({ m: 4, n: 5, k: 3, transA: true, batch: 2, offsetA: 2, offsetB: 1, offsetC: 3 });
    expect([s.strideA, s.strideB, s.strideC, s.alpha, s.beta]).toEqual([12, 15, 20, 1, 0]);
    expect(indexA(s, 1, 2, 1)).toBe(2 + 12 + 1 * 4 + 2);
    expect(indexB(s, 1, 2, 4)).toBe(1 + 15 + 2 * 5 + 4);
    expect(indexC(s, 1, 3, 4)).toBe(3 + 20 + 3 * 5 + 4);
  });
});
