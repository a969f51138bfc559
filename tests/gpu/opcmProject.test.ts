/**
 * The GPU OPCM projection of one Linear weight (src/engine/gpu/opcmProject.ts) against the float64 reference
 * (reference/opcm.ts projectLinearWeight): random shapes x alpha x zeroDiagonal, zero delta, rank-deficient delta.
 *
 * Tolerances: ||tau~_gpu - tau~_ref||_F <= 1e-4 ||tau~_ref||_F; protected and numerical rank equal; the energy
 * ratios within 1e-4 (f32 SVD and matmuls: errors ~1e-6).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/engine/gpu/device';
import { gpuRankEps, OPCM_GPU_RANK_FLOOR, projectLinearWeightGpu, type GpuProjectionOptions } from '../../src/engine/gpu/opcmProject';
import { projectLinearWeight, splitRank, type ProjectionStats } from '../../src/engine/reference/opcm';
import { svdThin } from '../../src/engine/reference/svd';
import { seededRandom } from '../helpers/safetensorsFixtures';
import { emptyF32, readF32, releaseTestContext, testContext, uploadF32 } from '../helpers/gpu';

const RTOL = 1e-4;
const STATS_TOL = 1e-4;

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await testContext();
});
afterAll(releaseTestContext);

function randomMatrix(m: number, n: number, seed: number): Float64Array {
  const rng = seededRandom(seed);
  return Float64Array.from({ length: m * n }, () => Math.fround(2 * rng() - 1));
}

/** A task vector that overlaps delta (so the block and diagonal terms remove something) plus noise. */
function overlapping(delta: Float64Array, seed: number): Float64Array {
  const noise = randomMatrix(1, delta.length, seed);
  return delta.map((x, i) => Math.fround(0.6 * x + noise[i]!));
}

/** A rank-`rank` m x n matrix B C (exactly representable in f32 is not needed: the GPU sees the f32 rounding). */
function lowRank(m: number, n: number, rank: number, seed: number): Float64Array {
  const b = randomMatrix(m, rank, seed);
  const c = randomMatrix(rank, n, seed + 1);
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let l = 0; l < rank; l++) for (let j = 0; j < n; j++) out[i * n + j]! += b[i * rank + l]! * c[l * n + j]!;
  return out.map(Math.fround);
}

async function project(delta: Float64Array, tau: Float64Array, m: number, n: number, opts: GpuProjectionOptions): Promise<{ out: Float32Array; stats: ProjectionStats }> {
  const d = uploadF32(ctx, 'delta', Float32Array.from(delta));
  const t = uploadF32(ctx, 'tau', Float32Array.from(tau));
  const o = emptyF32(ctx, 'projected', m * n);
  try {
    const stats = await ctx.scoped('projection', () => projectLinearWeightGpu(ctx, d, t, m, n, opts, o));
    return { out: await readF32(ctx, o, m * n), stats };
  } finally {
    for (const buf of [d, t, o]) ctx.destroyBuffer(buf);
  }
}

/** Runs GPU and reference (the reference with the GPU's rank threshold) and compares result and statistics. */
async function expectMatchesReference(delta: Float64Array, tau: Float64Array, m: number, n: number, opts: GpuProjectionOptions): Promise<ProjectionStats> {
  const gpu = await project(delta, tau, m, n, opts);
  const ref = projectLinearWeight(delta, tau, m, n, { ...opts, rankEps: gpuRankEps(opts.rankEps) });
  let diff = 0;
  let norm = 0;
  ref.projected.forEach((x, i) => {
    diff += (gpu.out[i]! - x) ** 2;
    norm += x * x;
  });
  const what = `${m}x${n} alpha ${opts.alpha} zeroDiagonal ${opts.zeroDiagonal}`;
  expect(Math.sqrt(diff), `${what}: projection error vs ||ref|| ${Math.sqrt(norm)}`).toBeLessThanOrEqual(RTOL * Math.sqrt(norm));
  expect(gpu.stats.protectedRank, `${what}: protected rank`).toBe(ref.stats.protectedRank);
  expect(gpu.stats.numericalRank, `${what}: numerical rank`).toBe(ref.stats.numericalRank);
  expect(Math.abs(gpu.stats.tauNorm - ref.stats.tauNorm)).toBeLessThanOrEqual(1e-6 * ref.stats.tauNorm);
  for (const key of ['removedEnergy', 'blockOverlap', 'diagonalOverlap'] as const) {
    expect(Math.abs(gpu.stats[key] - ref.stats[key]), `${what}: ${key}`).toBeLessThanOrEqual(STATS_TOL);
  }
  return gpu.stats;
}

describe('projectLinearWeightGpu vs float64 projectLinearWeight', () => {
  const shapes: [number, number][] = [
    [6, 4],
    [4, 6],
    [5, 5],
    [64, 48],
    [48, 64],
    [96, 96],
  ];
  const alphas = [0, 0.3, 0.5, 0.9, 1];
  for (const [m, n] of shapes) {
    it(`${m}x${n}, alpha in {${alphas.join(', ')}}, zeroDiagonal on and off`, async () => {
      const delta = randomMatrix(m, n, 100 + m * 7 + n);
      const tau = overlapping(delta, 200 + m + n);
      const s = svdThin(delta, m, n).s;
      const ranks = new Set<number>();
      for (const alpha of alphas) {
        for (const zeroDiagonal of [true, false]) {
          const stats = await expectMatchesReference(delta, tau, m, n, { alpha, zeroDiagonal });
          expect(stats.protectedRank).toBe(splitRank(s, alpha));
          ranks.add(stats.protectedRank);
          // Removing more never removes less: the block is inside what zeroDiagonal=true removes.
          if (zeroDiagonal) expect(stats.removedEnergy).toBeGreaterThanOrEqual(stats.blockOverlap - 1e-12);
          else expect(Math.abs(stats.removedEnergy - stats.blockOverlap)).toBeLessThan(1e-6);
        }
      }
      // alpha 0 and 1 protect nothing; 0.9 protects most directions of a random matrix.
      expect(ranks.has(0)).toBe(true);
      if (Math.min(m, n) > 4) expect(Math.max(...ranks)).toBeGreaterThan(1);
    });
  }

  it('a zero delta leaves tau unchanged', async () => {
    const tau = randomMatrix(12, 9, 5);
    const { out, stats } = await project(new Float64Array(12 * 9), tau, 12, 9, { alpha: 0.5, zeroDiagonal: true });
    expect(Array.from(out)).toEqual(Array.from(tau));
    expect(stats).toEqual({ protectedRank: 0, numericalRank: 0, tauNorm: expect.closeTo(Math.hypot(...tau), 5), removedEnergy: 0, blockOverlap: 0, diagonalOverlap: 0, svdSweeps: expect.any(Number) });
  });

  it('a rank-deficient delta: the diagonal term skips the zero singular values (m > n and m < n)', async () => {
    for (const [m, n, rank] of [[40, 30, 8], [30, 40, 5]] as const) {
      const delta = lowRank(m, n, rank, 17 + m);
      const tau = overlapping(delta, 23 + n);
      for (const zeroDiagonal of [true, false]) {
        for (const alpha of [0.5, 0.9]) {
          const stats = await expectMatchesReference(delta, tau, m, n, { alpha, zeroDiagonal });
          expect(stats.numericalRank).toBe(rank);
          expect(stats.protectedRank).toBeLessThan(rank);
        }
      }
    }
  });

  it('rankEps: below the f32 floor the floor applies; negative never skips', () => {
    expect(gpuRankEps()).toBe(OPCM_GPU_RANK_FLOOR);
    expect(gpuRankEps(1e-3)).toBe(1e-3);
    expect(gpuRankEps(-1)).toBe(-1);
  });

  it('rejects an output buffer that is tau or delta, and alpha outside [0, 1], naming the weight', async () => {
    const [a, b, c] = ['a', 'b', 'c'].map((name) => uploadF32(ctx, name, new Float32Array(12))) as [GPUBuffer, GPUBuffer, GPUBuffer];
    await expect(projectLinearWeightGpu(ctx, a, b, 3, 4, { alpha: 0.5, zeroDiagonal: true, label: 'fc1.weight' }, b)).rejects.toThrow(/fc1.weight: the output buffer 'b'/);
    await expect(projectLinearWeightGpu(ctx, a, b, 3, 4, { alpha: 1.5, zeroDiagonal: true, label: 'fc1.weight' }, c)).rejects.toThrow(/fc1.weight: alpha must be in \[0, 1\]/);
    for (const buf of [a, b, c]) ctx.destroyBuffer(buf);
  });
});
