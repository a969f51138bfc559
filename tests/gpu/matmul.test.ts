/**
 * The GPU matmul against its float64 twin (src/engine/reference/matmul.ts) on seeded random matrices: odd and
 * aligned sizes (scalar and vec4 loads), all four transpose combinations, batches with strides, broadcast (stride
 * 0), offsets, alpha/beta, k = 0, and argument checks.
 *
 * Tolerance: |C_gpu - C_ref| <= 1e-5 * (|alpha| ||op(A) row i|| ||op(B) column j|| + |beta| |C_old|) per entry
 * (f32 sums of k products have error ~ sqrt(k) * 6e-8 relative to that bound).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/gpu/device';
import { matmul } from '../../src/engine/gpu/matmul';
import { indexA, indexB, indexC, matmulRef, resolveMatmul, type MatmulShape } from '../../src/engine/reference/matmul';
import { seededRandom } from '../helpers/safetensorsFixtures';
import { readF32, releaseTestContext, testContext, uploadF32 } from '../helpers/gpu';

const RTOL = 1e-5;

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await testContext();
});
afterAll(releaseTestContext);

function randomValues(count: number, seed: number): Float32Array {
  const rng = seededRandom(seed);
  return Float32Array.from({ length: count }, () => 2 * rng() - 1);
}

/** Buffer lengths (elements) that A, B and C need for `shape` (at least 1). */
function lengths(shape: MatmulShape): { a: number; b: number; c: number } {
  const s = resolveMatmul(shape);
  const extent = (offset: number, stride: number, size: number) => Math.max(1, offset + (s.batch - 1) * stride + size);
  return { a: extent(s.offsetA, s.strideA, s.m * s.k), b: extent(s.offsetB, s.strideB, s.k * s.n), c: extent(s.offsetC, s.strideC, s.m * s.n) };
}

/** Largest |gpu - ref| divided by its per-entry error scale, over every C entry of every batch entry. */
function worstError(gpu: Float32Array, ref: Float64Array, a: Float32Array, b: Float32Array, cOld: Float32Array, shape: MatmulShape): number {
  const s = resolveMatmul(shape);
  let worst = 0;
  for (let t = 0; t < s.batch; t++) {
    const rowNorm = Array.from({ length: s.m }, (_, i) => Math.hypot(...Array.from({ length: s.k }, (_, l) => a[indexA(s, t, i, l)]!)));
    const colNorm = Array.from({ length: s.n }, (_, j) => Math.hypot(...Array.from({ length: s.k }, (_, l) => b[indexB(s, t, l, j)]!)));
    for (let i = 0; i < s.m; i++) {
      for (let j = 0; j < s.n; j++) {
        const at = indexC(s, t, i, j);
        const scale = Math.abs(s.alpha) * rowNorm[i]! * colNorm[j]! + Math.abs(s.beta) * Math.abs(cOld[at]!) + 1e-30;
        worst = Math.max(worst, Math.abs(gpu[at]! - ref[at]!) / scale);
      }
    }
  }
  return worst;
}

/** Runs one matmul on the GPU and on the CPU twin; returns the worst scaled error and the GPU result. */
async function compare(shape: MatmulShape, seed = 1): Promise<{ worst: number; gpu: Float32Array; ref: Float64Array }> {
  const len = lengths(shape);
  const a = randomValues(len.a, seed);
  const b = randomValues(len.b, seed + 1);
  const cOld = randomValues(len.c, seed + 2);
  const bufA = uploadF32(ctx, 'A', a);
  const bufB = uploadF32(ctx, 'B', b);
  const bufC = uploadF32(ctx, 'C', cOld);
  try {
    await ctx.scoped('matmul test', () => matmul(ctx, bufA, bufB, bufC, shape));
    const gpu = await readF32(ctx, bufC, len.c);
    const ref = matmulRef(a, b, shape, cOld);
    return { worst: worstError(gpu, ref, a, b, cOld, shape), gpu, ref };
  } finally {
    for (const buf of [bufA, bufB, bufC]) ctx.destroyBuffer(buf);
  }
}

const TRANSPOSES = [
  { transA: false, transB: false },
  { transA: true, transB: false },
  { transA: false, transB: true },
  { transA: true, transB: true },
];

describe('matmul vs float64 triple loop', () => {
  // [m, k, n]: 1x1, odd (scalar loads and tails), aligned (vec4 loads), mixed alignments, larger than a tile, and
  // aligned sizes whose last thread block hangs 4 rows and columns past m and n (vec4 loads of clamped blocks).
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [7, 13, 5],
    [64, 64, 64],
    [300, 257, 129],
    [8, 5, 12],
    [12, 16, 7],
    [33, 4, 36],
    [68, 20, 76],
  ];
  for (const [m, k, n] of shapes) {
    for (const tr of TRANSPOSES) {
      it(`${m}x${k} times ${k}x${n}, transA=${tr.transA} transB=${tr.transB}`, async () => {
        const { worst } = await compare({ m, n, k, ...tr }, m * 31 + k);
        expect(worst).toBeLessThan(RTOL);
      });
    }
  }

  it('alpha and beta scale the product and the old C', async () => {
    const { worst } = await compare({ m: 37, n: 20, k: 24, alpha: -0.75, beta: 1.5 });
    expect(worst).toBeLessThan(RTOL);
  });

  it('beta = 0 never reads C (NaN there does not leak)', async () => {
    const a = randomValues(6 * 5, 3);
    const b = randomValues(5 * 4, 4);
    const bufA = uploadF32(ctx, 'A', a);
    const bufB = uploadF32(ctx, 'B', b);
    const bufC = uploadF32(ctx, 'C', new Float32Array(6 * 4).fill(NaN));
    await ctx.scoped('matmul', () => matmul(ctx, bufA, bufB, bufC, { m: 6, n: 4, k: 5, alpha: 2 }));
    const gpu = await readF32(ctx, bufC, 24);
    const ref = matmulRef(a, b, { m: 6, n: 4, k: 5, alpha: 2 });
    gpu.forEach((x, i) => expect(Math.abs(x - ref[i]!)).toBeLessThan(1e-5));
    for (const buf of [bufA, bufB, bufC]) ctx.destroyBuffer(buf);
  });

  it('k = 0 gives beta * C', async () => {
    const { gpu, ref } = await compare({ m: 3, n: 5, k: 0, beta: 0.5 });
    expect(Array.from(gpu)).toEqual(Array.from(ref, Math.fround));
  });

  it('batch with packed strides, both layouts', async () => {
    expect((await compare({ m: 20, n: 12, k: 16, batch: 3 })).worst).toBeLessThan(RTOL);
    expect((await compare({ m: 9, n: 7, k: 11, batch: 4, transA: true, transB: true }, 5)).worst).toBeLessThan(RTOL);
  });

  it('batch with stride 0 (one B for all), padded strides and offsets', async () => {
    const shape: MatmulShape = { m: 10, n: 8, k: 12, batch: 3, strideB: 0, strideA: 10 * 12 + 4, strideC: 10 * 8 + 8, offsetA: 4, offsetB: 8, offsetC: 12 };
    expect((await compare(shape, 9)).worst).toBeLessThan(RTOL);
    // Odd offsets force scalar loads of otherwise vec4-friendly layouts.
    const odd: MatmulShape = { m: 16, n: 16, k: 16, batch: 2, offsetA: 3, offsetB: 1, offsetC: 5, strideA: 257, strideB: 259, strideC: 261 };
    expect((await compare(odd, 11)).worst).toBeLessThan(RTOL);
  });

  it('a product of a buffer with itself (Gram matrix A A^T)', async () => {
    const a = randomValues(24 * 40, 21);
    const buf = uploadF32(ctx, 'A', a);
    const out = uploadF32(ctx, 'G', new Float32Array(24 * 24));
    await ctx.scoped('gram', () => matmul(ctx, buf, buf, out, { m: 24, n: 24, k: 40, transB: true }));
    const gpu = await readF32(ctx, out, 24 * 24);
    const ref = matmulRef(a, a, { m: 24, n: 24, k: 40, transB: true });
    gpu.forEach((x, i) => expect(Math.abs(x - ref[i]!)).toBeLessThan(40 * 1e-6));
    ctx.destroyBuffer(buf);
    ctx.destroyBuffer(out);
  });
});

describe('matmul argument checks', () => {
  it('rejects an output that aliases an input, too-small buffers and bad sizes, naming the kernel', () => {
    const small = uploadF32(ctx, 'small', new Float32Array(8));
    const other = uploadF32(ctx, 'other', new Float32Array(64));
    expect(() => matmul(ctx, small, other, small, { m: 2, n: 2, k: 2 })).toThrow(/matmul: the output buffer 'small'/);
    const out = uploadF32(ctx, 'out', new Float32Array(64));
    expect(() => matmul(ctx, small, other, out, { m: 4, n: 4, k: 4 })).toThrow(/matmul: buffer 'small' has 32 bytes, needs 64/);
    expect(() => matmul(ctx, other, other, small, { m: 0, n: 2, k: 2 })).toThrow(/matmul: m must be/);
    expect(() => matmul(ctx, other, other, small, { m: 2, n: 2, k: 2, batch: 2, strideC: 1 })).toThrow(/overlap/);
    for (const buf of [small, other, out]) ctx.destroyBuffer(buf);
  });
});
