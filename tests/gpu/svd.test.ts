/**
 * The GPU block Jacobi SVD (src/engine/gpu/svd.ts) against the float64 reference (reference/svd.ts svdThin) or
 * against matrices built with known singular values: random shapes, tall and wide, rank-deficient, zero, repeated
 * and spread singular values, a batch, both inner orders, and argument checks.
 *
 * What is compared (singular vectors are unique only up to sign, and up to rotation within a repeated singular
 * value, so raw vectors are never compared):
 *   - singular values: |s - s_ref| <= 1e-5 s_0, and <= 1e-4 s_i where s_i >= 1e-3 s_0;
 *   - U and V orthonormal: max |U^T U - I|, max |V^T V - I| <= 1e-5;
 *   - reconstruction: ||A - U diag(s) V^T||_F <= 1e-5 ||A||_F;
 *   - singular subspaces: for each group of equal reference singular values above 1e-6 s_0, the GPU's vectors of
 *     that group span the reference's (||U_ref^T U_gpu||_F^2 within 1e-4 of the group size), on both sides.
 * Size: on SwiftShader (2 cores) a 768 x 768 SVD took 134 s (14 sweeps), far over a test's budget, so the large
 * cases are 384 x 384 and 768 x 192 instead of 768 x 768 and 3072 x 768.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/gpu/device';
import { blockSchedule, svdGpu, type GpuSvd, type GpuSvdOptions } from '../../src/engine/gpu/svd';
import { svdThin } from '../../src/engine/reference/svd';
import { seededRandom } from '../helpers/safetensorsFixtures';
import { readF32, releaseTestContext, testContext, uploadF32 } from '../helpers/gpu';
import { orthogonalityError, reconstructionError, subspaceError, withSingularValues as exactSingularValues } from '../helpers/svdChecks';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await testContext();
});
afterAll(releaseTestContext);

/** Uniform(-1, 1) entries rounded to f32. */
function randomMatrix(m: number, n: number, seed: number): Float64Array {
  const rng = seededRandom(seed);
  return Float64Array.from({ length: m * n }, () => Math.fround(2 * rng() - 1));
}

/** A matrix with the given singular values (svdChecks.withSingularValues), rounded to f32 as the GPU holds it. */
function withSingularValues(m: number, n: number, sigma: number[], seed: number): Float64Array {
  return exactSingularValues(m, n, sigma, seed).map(Math.fround);
}

/** The GPU SVD of `a`, read back; frees the GPU buffers. */
async function gpuSvd(a: Float64Array, m: number, n: number, opts: GpuSvdOptions = {}): Promise<GpuSvd & { uh: Float32Array; vh: Float32Array }> {
  const batch = opts.batch ?? 1;
  const buf = uploadF32(ctx, 'A', Float32Array.from(a));
  try {
    const r = await ctx.scoped('svd', () => svdGpu(ctx, buf, m, n, opts));
    const uh = await readF32(ctx, r.u, batch * m * r.k);
    const vh = await readF32(ctx, r.v, batch * n * r.k);
    ctx.destroyBuffer(r.u);
    ctx.destroyBuffer(r.v);
    return { ...r, uh, vh };
  } finally {
    ctx.destroyBuffer(buf);
  }
}

interface Expected {
  s: ArrayLike<number>;
  /** Reference factors for the subspace comparison (omitted: built matrices with known values only). */
  u?: ArrayLike<number>;
  v?: ArrayLike<number>;
}

/** Checks one GPU SVD (matrix t of a batch) against the expected singular values and factors. */
function expectGoodSvd(a: Float64Array, m: number, n: number, r: GpuSvd & { uh: Float32Array; vh: Float32Array }, want: Expected, t = 0): void {
  const k = Math.min(m, n);
  const what = `${m}x${n}`;
  expect(r.converged, `${what} converged (sweeps ${r.sweeps})`).toBe(true);
  const s = r.s.subarray(t * k, (t + 1) * k);
  const u = r.uh.subarray(t * m * k, (t + 1) * m * k);
  const v = r.vh.subarray(t * n * k, (t + 1) * n * k);
  const s0 = Math.max(want.s[0]!, 1e-300);
  for (let i = 0; i < k; i++) {
    const err = Math.abs(s[i]! - want.s[i]!);
    expect(err, `${what} s[${i}] = ${s[i]} vs ${want.s[i]}`).toBeLessThanOrEqual(1e-5 * s0);
    if (want.s[i]! >= 1e-3 * s0) expect(err, `${what} s[${i}] relative`).toBeLessThanOrEqual(1e-4 * want.s[i]!);
    if (i > 0) expect(s[i]).toBeLessThanOrEqual(s[i - 1]!);
  }
  expect(orthogonalityError(u, m, k), `${what} U orthonormal`).toBeLessThanOrEqual(1e-5);
  expect(orthogonalityError(v, n, k), `${what} V orthonormal`).toBeLessThanOrEqual(1e-5);
  expect(reconstructionError(a, m, n, k, u, s, v), `${what} reconstruction`).toBeLessThanOrEqual(1e-5);
  if (want.u) expect(subspaceError(want.u, u, m, k, want.s), `${what} left subspaces`).toBeLessThanOrEqual(1e-4);
  if (want.v) expect(subspaceError(want.v, v, n, k, want.s), `${what} right subspaces`).toBeLessThanOrEqual(1e-4);
}

describe('svdGpu vs float64 svdThin', () => {
  for (const [m, n] of [[16, 16], [64, 48], [48, 64], [200, 50], [1, 1], [7, 1], [1, 9], [33, 33]] as const) {
    it(`random ${m}x${n}`, async () => {
      const a = randomMatrix(m, n, m * 13 + n);
      expectGoodSvd(a, m, n, await gpuSvd(a, m, n), svdThin(a, m, n));
    });
  }

  it('a batch of three 40x24 matrices in one call', async () => {
    const mats = [0, 1, 2].map((t) => randomMatrix(40, 24, 70 + t));
    const stacked = new Float64Array(3 * 40 * 24);
    mats.forEach((x, t) => stacked.set(x, t * 40 * 24));
    const r = await gpuSvd(stacked, 40, 24, { batch: 3 });
    mats.forEach((x, t) => expectGoodSvd(x, 40, 24, r, svdThin(x, 40, 24), t));
  });

  it('gives each matrix of a batch the factors and sweep count of its own run, bit for bit', async () => {
    // Different condition numbers, so the matrices converge after different sweeps; the batch runs until the last.
    const mats = [withSingularValues(48, 40, Array.from({ length: 40 }, (_, i) => 1 / (1 + i)), 81), randomMatrix(48, 40, 82), withSingularValues(48, 40, Array.from({ length: 40 }, (_, i) => (i < 20 ? 1 : 0.999)), 83)];
    const stacked = new Float64Array(3 * 48 * 40);
    mats.forEach((x, t) => stacked.set(x, t * 48 * 40));
    const batch = await gpuSvd(stacked, 48, 40, { batch: 3 });
    const alone = [];
    for (const x of mats) alone.push(await gpuSvd(x, 48, 40));
    expect(batch.sweepsEach).toEqual(alone.map((r) => r.sweeps));
    expect(batch.convergedEach).toEqual([true, true, true]);
    expect(new Set(batch.sweepsEach).size).toBeGreaterThan(1);
    expect(batch.sweeps).toBe(Math.max(...batch.sweepsEach));
    const k = 40;
    alone.forEach((r, t) => {
      expect(Array.from(batch.s.subarray(t * k, (t + 1) * k)), `s of matrix ${t}`).toEqual(Array.from(r.s));
      expect(batch.uh.subarray(t * 48 * k, (t + 1) * 48 * k), `U of matrix ${t}`).toEqual(r.uh);
      expect(batch.vh.subarray(t * 40 * k, (t + 1) * 40 * k), `V of matrix ${t}`).toEqual(r.vh);
    });
  });

  it('both inner orders (parallel rounds with barriers for GPUs, serial for CPUs) give valid SVDs', async () => {
    const a = randomMatrix(70, 100, 5);
    const ref = svdThin(a, 70, 100);
    // A batch of two 24 x 10 matrices with two zero columns each (the fill path).
    const pair = [randomMatrix(24, 10, 6), randomMatrix(24, 10, 7)];
    for (const x of pair) for (let i = 0; i < 24; i++) x[i * 10 + 1] = x[i * 10 + 6] = 0;
    const stacked = new Float64Array(2 * 240);
    pair.forEach((x, t) => stacked.set(x, t * 240));
    for (const innerOrder of ['parallel', 'serial'] as const) {
      expectGoodSvd(a, 70, 100, await gpuSvd(a, 70, 100, { innerOrder }), ref);
      const r = await gpuSvd(stacked, 24, 10, { innerOrder, batch: 2 });
      pair.forEach((x, t) => expectGoodSvd(x, 24, 10, r, svdThin(x, 24, 10), t));
    }
  });
});

describe('svdGpu on special matrices', () => {
  it('rank-deficient (rank 6 of 30x20 and of 20x30): zero singular values, still orthonormal factors', async () => {
    for (const [m, n] of [[30, 20], [20, 30]] as const) {
      const a = withSingularValues(m, n, [5, 4, 3, 2, 1, 0.5], 3 + m);
      const ref = svdThin(a, m, n);
      const r = await gpuSvd(a, m, n);
      expectGoodSvd(a, m, n, r, ref);
      for (let i = 6; i < 20; i++) expect(r.s[i]).toBeLessThan(1e-5 * r.s[0]!);
    }
  });

  it('exactly zero vectors (zero and repeated columns) are completed to orthonormal factors', async () => {
    const m = 24;
    const n = 10;
    const a = randomMatrix(m, n, 8);
    for (let i = 0; i < m; i++) {
      a[i * n + 2] = 0;
      a[i * n + 7] = 0;
      a[i * n + 5] = a[i * n + 4]!;
    }
    const ref = svdThin(a, m, n);
    const r = await gpuSvd(a, m, n);
    expectGoodSvd(a, m, n, r, ref);
    expect(Array.from(r.s.subarray(8))).toEqual([0, 0]);
  });

  it('the zero matrix: singular values 0, orthonormal U and V', async () => {
    for (const [m, n] of [[12, 40], [40, 12]] as const) {
      const a = new Float64Array(m * n);
      const r = await gpuSvd(a, m, n);
      expect(Array.from(r.s)).toEqual(new Array(12).fill(0));
      expect(orthogonalityError(r.uh, m, 12)).toBeLessThanOrEqual(1e-5);
      expect(orthogonalityError(r.vh, n, 12)).toBeLessThanOrEqual(1e-5);
    }
  });

  it('repeated singular values: the same values and singular subspaces', async () => {
    const sigma = [3, 3, 3, 2, 2, 1, 1, 1, 1, 0.5, 0.25, 0.25];
    for (const [m, n] of [[50, 12], [12, 50], [60, 40]] as const) {
      const a = withSingularValues(m, n, sigma, 11 + n);
      const ref = svdThin(a, m, n);
      const r = await gpuSvd(a, m, n);
      expectGoodSvd(a, m, n, r, ref);
      sigma.forEach((x, i) => expect(Math.abs(r.s[i]! - x)).toBeLessThan(1e-5 * 3));
    }
  });

  it('spread singular values (condition number 1e3): every value to 1e-4 relative', async () => {
    const sigma = Array.from({ length: 48 }, (_, i) => 10 ** (-3 * (i / 47)));
    const a = withSingularValues(64, 48, sigma, 31);
    const ref = svdThin(a, 64, 48);
    const r = await gpuSvd(a, 64, 48);
    expectGoodSvd(a, 64, 48, r, ref);
    ref.s.forEach((x, i) => expect(Math.abs(r.s[i]! - x)).toBeLessThanOrEqual(1e-4 * x));
  });

  it('384x384 and 768x192 with known singular values (stand-ins for 768x768 and 3072x768 on SwiftShader)', async () => {
    for (const [m, n] of [[384, 384], [768, 192]] as const) {
      const k = Math.min(m, n);
      const sigma = Array.from({ length: k }, (_, i) => 2 * 10 ** (-2 * (i / (k - 1))));
      const a = withSingularValues(m, n, sigma, 41 + m);
      expectGoodSvd(a, m, n, await gpuSvd(a, m, n), { s: sigma });
    }
  });
});

describe('svdGpu arguments', () => {
  it('rejects NaN, naming the matrix; rejects a buffer too small', async () => {
    const a = new Float64Array(6).fill(1);
    a[3] = NaN;
    await expect(gpuSvd(a, 2, 3, { label: 'blocks.0.fc1.weight' })).rejects.toThrow(/blocks.0.fc1.weight: matrix 0 of the batch contains NaN or Infinity/);
    await expect(gpuSvd(new Float64Array(6), 3, 3, { label: 'w' })).rejects.toThrow(/w: buffer 'A' has 32 bytes, needs 36/);
  });

  it('the block schedule pairs every two blocks exactly once per sweep', () => {
    for (const nb of [2, 4, 6, 48]) {
      const sched = blockSchedule(nb);
      const met = new Set<string>();
      for (let step = 0; step < nb - 1; step++) {
        const inStep = new Set<number>();
        for (let p = 0; p < nb / 2; p++) {
          const at = (step * (nb / 2) + p) * 2;
          const a = sched[at]!;
          const b = sched[at + 1]!;
          inStep.add(a).add(b);
          met.add(`${Math.min(a, b)},${Math.max(a, b)}`);
        }
        expect(inStep.size).toBe(nb);
      }
      expect(met.size).toBe((nb * (nb - 1)) / 2);
    }
  });
});
