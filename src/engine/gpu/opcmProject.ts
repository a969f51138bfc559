/**
 * The OPCM projection of one Linear weight on the GPU (methods.md 1.4, thin form), the twin of reference/opcm.ts's
 * projectLinearWeight: with Delta = U diag(s) V^T (svdGpu) and r = splitRank(s, alpha),
 *   P = U^T tau V (k x k);  Q = P on the top-left r x r block, plus (zeroDiagonal) the diagonal entries i with
 *   s_i > rankEps * s_0;  tau~ = tau - U Q V^T.
 * Four matmuls (U^T tau, (U^T tau) V, Q V^T, tau - U (Q V^T)) and the small opcm_mask kernel; the statistics
 * come from P's block and diagonal (||tau - tau~||^2 = ||Q||_F^2 since U and V are orthonormal), read back as
 * 2k floats. Edge cases as in the reference: Delta = 0 gives tau~ = tau; alpha = 0 and alpha >= 1 give r = 0.
 *
 * f32 singular values resolve only down to ~1e-6 * s_0, so a zero singular value comes out as that noise, with an
 * arbitrary singular-vector pair; the diagonal removal therefore skips s_i <= max(rankEps, OPCM_GPU_RANK_FLOOR) * s_0
 * (a negative rankEps still means "never skip", as in the reference).
 */
import { GpuError } from '../errors';
import { OPCM_RANK_EPS, splitRank, type ProjectionOptions, type ProjectionStats } from '../reference/opcm';
import type { GpuContext } from './device';
import { itemGrid } from './dispatch';
import { combine, readBuffer, sumSquares } from './kernels';
import { bind, launch } from './launch';
import { matmul } from './matmul';
import { svdGpu, type GpuSvd } from './svd';

/** Smallest relative singular value treated as nonzero on the GPU (f32 SVD noise is ~1e-7 .. 1e-6 of s_0). */
export const OPCM_GPU_RANK_FLOOR = 1e-5;

/** Options of projectLinearWeightGpu. */
export interface GpuProjectionOptions extends ProjectionOptions {
  /** Names the weight in errors and buffer labels (default 'opcm'). */
  label?: string;
}

const F32_BYTES = 4;

/** The rank threshold the GPU applies: rankEps raised to OPCM_GPU_RANK_FLOOR, unless negative (never skip). */
export function gpuRankEps(rankEps: number = OPCM_RANK_EPS): number {
  return rankEps < 0 ? rankEps : Math.max(rankEps, OPCM_GPU_RANK_FLOOR);
}

/**
 * Writes tau~ (the projection of the m x n task vector `tau` away from the merged task vector `delta`, both f32
 * [m, n] buffers) into `out` (a third buffer) and returns the projection's statistics, as projectLinearWeight
 * defines them.
 */
export async function projectLinearWeightGpu(
  ctx: GpuContext,
  delta: GPUBuffer,
  tau: GPUBuffer,
  m: number,
  n: number,
  opts: GpuProjectionOptions,
  out: GPUBuffer,
): Promise<ProjectionStats> {
  const label = opts.label ?? 'opcm';
  checkProjection(ctx, tau, m, n, opts, out, delta);
  const svd = await svdGpu(ctx, delta, m, n, { label: `${label} delta` });
  try {
    return await projectOnFactors(ctx, factorsOf(svd, 0), tau, m, n, opts, out);
  } finally {
    ctx.destroyBuffer(svd.u);
    ctx.destroyBuffer(svd.v);
  }
}

/** Factors held on the GPU for one or more matrices: a (batched) svdGpu result, or one host SVD's (no sweeps). */
export type HeldFactors = Pick<GpuSvd, 'u' | 'v' | 's' | 'k'> & { sweepsEach?: number[] };

/** One matrix of a batched SVD: its U and V inside the batch's buffers (the SVD's owner frees them). */
export interface SvdFactors {
  u: GPUBuffer;
  v: GPUBuffer;
  /** Index of the matrix in the batch (U at element index * m * k, V at index * n * k). */
  index: number;
  k: number;
  /** Its k singular values, descending. */
  s: Float64Array;
  /** Jacobi sweeps the GPU SVD took for it; undefined when it was factored on the host. */
  sweeps?: number;
}

/** Matrix `index` of `svd`. */
export function factorsOf(svd: HeldFactors, index: number): SvdFactors {
  return { u: svd.u, v: svd.v, index, k: svd.k, s: svd.s.subarray(index * svd.k, (index + 1) * svd.k), sweeps: svd.sweepsEach?.[index] };
}

/** The arguments' checks: `out` apart from tau (and delta, when the caller has it), alpha in [0, 1], every buffer m x n f32. */
function checkProjection(ctx: GpuContext, tau: GPUBuffer, m: number, n: number, opts: GpuProjectionOptions, out: GPUBuffer, delta?: GPUBuffer): void {
  const label = opts.label ?? 'opcm';
  if (out === tau || out === delta) throw new GpuError('validation', `${label}: the output buffer '${out.label}' must differ from delta and tau`);
  if (!(opts.alpha >= 0 && opts.alpha <= 1)) throw new GpuError('validation', `${label}: alpha must be in [0, 1], got ${opts.alpha}`);
  for (const buf of delta ? [delta, tau, out] : [tau, out]) bind(ctx, label, buf, m * n * F32_BYTES);
}

/**
 * projectLinearWeightGpu with the SVD of delta already taken (`f`, e.g. one matrix of a batch that shares every
 * dispatch of the SVD with weights of the same shape): tau~ into `out`, and the statistics.
 */
export async function projectOnFactors(ctx: GpuContext, f: SvdFactors, tau: GPUBuffer, m: number, n: number, opts: GpuProjectionOptions, out: GPUBuffer): Promise<ProjectionStats> {
  const label = opts.label ?? 'opcm';
  checkProjection(ctx, tau, m, n, opts, out);
  const numel = m * n;
  const tauSq = (await sumSquares(ctx, tau, 1, numel))[0]!;
  const temps: GPUBuffer[] = [];
  try {
    combine(ctx, tau, 1, numel, Float32Array.of(1), out);
    const s0 = f.s[0]!;
    if (!(s0 > 0)) return { protectedRank: 0, numericalRank: 0, tauNorm: Math.sqrt(tauSq), removedEnergy: 0, blockOverlap: 0, diagonalOverlap: 0, svdSweeps: f.sweeps };
    const { k } = f;
    const uAt = f.index * m * k;
    const vAt = f.index * n * k;
    const r = splitRank(f.s, opts.alpha);
    const cut = gpuRankEps(opts.rankEps) * s0;
    let nonzero = 0;
    while (nonzero < k && f.s[nonzero]! > cut) nonzero++;

    const buffer = (what: string, count: number) => {
      const buf = ctx.createBuffer(`${label} ${what}`, count * F32_BYTES, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
      temps.push(buf);
      return buf;
    };
    const utTau = buffer('U^T tau', k * n);
    const p = buffer('P', k * k);
    const q = buffer('Q', k * k);
    const stats = buffer('stats', 2 * k);
    const qvt = buffer('Q V^T', k * n);
    matmul(ctx, f.u, tau, utTau, { m: k, n, k: m, transA: true, offsetA: uAt });
    matmul(ctx, utTau, f.v, p, { m: k, n: k, k: n, offsetB: vAt });
    const diag = opts.zeroDiagonal ? nonzero : 0;
    launch(ctx, 'opcm_mask', [k, r, diag], [{ buffer: p }, { buffer: q }, { buffer: stats }], itemGrid(k, ctx.info.limits.maxComputeWorkgroupsPerDimension));
    matmul(ctx, q, f.v, qvt, { m: k, n, k, transB: true, offsetB: vAt });
    matmul(ctx, f.u, qvt, out, { m, n, k, alpha: -1, beta: 1, offsetA: uAt });

    const bytes = await readBuffer(ctx, stats, 2 * k * F32_BYTES);
    const st = new Float32Array(bytes.buffer, bytes.byteOffset, 2 * k);
    let blockSq = 0;
    let diagSq = 0;
    let removedDiagSq = 0;
    for (let i = 0; i < k; i++) {
      blockSq += st[2 * i]!;
      const d = st[2 * i + 1]! ** 2;
      if (i < nonzero) diagSq += d;
      if (i >= r && i < diag) removedDiagSq += d;
    }
    const ratio = (x: number) => (tauSq > 0 ? x / tauSq : 0);
    return {
      protectedRank: r,
      numericalRank: nonzero,
      tauNorm: Math.sqrt(tauSq),
      removedEnergy: ratio(blockSq + removedDiagSq),
      blockOverlap: ratio(blockSq),
      diagonalOverlap: ratio(diagSq),
      svdSweeps: f.sweeps,
    };
  } finally {
    for (const buf of temps) ctx.destroyBuffer(buf);
  }
}
