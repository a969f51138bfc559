/**
 * OPCM (Tang et al. 2025) in float64, exactly as the official FusionBench code runs it (methods.md 1.3-1.5).
 *
 * Projection of one Linear weight (methods.md 1.4), thin form: with Delta = U diag(s) V^T (thin SVD of the merged
 * task vector) and r the split rank,
 *   tau~ = tau - U_r (U_r^T tau V_r) V_r^T - sum_{i >= r} (u_i^T tau v_i) u_i v_i^T
 * i.e. remove tau's r x r block on the dominant singular pairs and (zeroDiagonal) its diagonal coordinate on every
 * other singular pair. Edge cases: Delta = 0 gives tau~ = tau; the diagonal term is skipped for sigma_i <= rankEps *
 * sigma_0 (their singular vectors are arbitrary null-space vectors; the official code's result there depends on the
 * SVD library); alpha >= 1 and alpha = 0 give r = 0, as in the code.
 *
 * One step (opcmStep) folds an incoming model into the merged model M with the recursion of methods.md 1.3, so
 * between steps only theta0, M, prev_lambda and the running mean norm exist.
 */
import { isLinearWeight } from './linearWeights';
import type { RefModel } from './refModel';
import { columnOf, completeOrthonormal, packColumns, svdThin } from './svd';

/** Default relative threshold below which a singular value counts as zero (float64 round-off is ~1e-15). */
export const OPCM_RANK_EPS = 1e-10;

/** Options of the projection of one Linear weight. */
export interface ProjectionOptions {
  /** Energy threshold on the cumulative singular-value fraction, in [0, 1]. */
  alpha: number;
  /** Remove tau's diagonal coordinates u_i^T tau v_i (current official code; false = the arXiv v1 behaviour). */
  zeroDiagonal: boolean;
  /** Skip the diagonal removal for sigma_i <= rankEps * sigma_0 (default OPCM_RANK_EPS; negative = never skip). */
  rankEps?: number;
}

/** What one projection did to one Linear weight; ratios are 0 when tau = 0. */
export interface ProjectionStats {
  /** r: number of protected singular directions (the r x r block). */
  protectedRank: number;
  /** Singular values of Delta above rankEps * sigma_0 (0 when Delta = 0). */
  numericalRank: number;
  /** ||tau|| of this tensor. */
  tauNorm: number;
  /** ||tau - tau~||^2 / ||tau||^2. */
  removedEnergy: number;
  /** ||U_r^T tau V_r||^2 / ||tau||^2. */
  blockOverlap: number;
  /** sum_i (u_i^T tau v_i)^2 / ||tau||^2 over the numerically nonzero singular pairs. */
  diagonalOverlap: number;
  /** The GPU path only: Jacobi sweeps its SVD of Delta took (svdGpu), for the benchmark's work count. */
  svdSweeps?: number;
}

/** The projected task vector of one Linear weight plus its statistics. */
export interface Projection {
  projected: Float64Array;
  stats: ProjectionStats;
}

/**
 * split_rank = index of the first cumulative singular-value fraction that strictly exceeds alpha, 0 when none does
 * (numpy argmax of an all-false array). The total is the last cumulative sum, so alpha = 1 always gives 0.
 */
export function splitRank(s: Float64Array, alpha: number): number {
  let total = 0;
  for (const x of s) total += x;
  if (!(total > 0)) return 0;
  let cum = 0;
  for (let i = 0; i < s.length; i++) {
    cum += s[i]!;
    if (cum / total > alpha) return i;
  }
  return 0;
}

/** Projects the task vector `tau` of an m x n Linear weight away from the merged task vector `delta` (thin SVD). */
export function projectLinearWeight(delta: Float64Array, tau: Float64Array, m: number, n: number, opts: ProjectionOptions): Projection {
  const tauSq = sumSquares(tau);
  if (sumSquares(delta) === 0) {
    const stats = { protectedRank: 0, numericalRank: 0, tauNorm: Math.sqrt(tauSq), removedEnergy: 0, blockOverlap: 0, diagonalOverlap: 0 };
    return { projected: tau.slice(), stats };
  }
  const { k, u, s, v } = svdThin(delta, m, n);
  const r = splitRank(s, opts.alpha);
  const nonzero = nonzeroPairs(s, opts.rankEps);
  // c[i][j] = u_i^T tau v_j: [k, k]
  const c = gemm(gemm(u, m, k, true, tau, m, n, false), k, n, false, v, n, k, false);
  // z: the coefficients to remove; the r x r block, then the remaining diagonal.
  const z = new Float64Array(k * k);
  let blockSq = 0;
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < r; j++) {
      z[i * k + j] = c[i * k + j]!;
      blockSq += c[i * k + j]! ** 2;
    }
  }
  let diagSq = 0;
  for (let i = 0; i < k; i++) {
    if (!nonzero[i]) continue;
    diagSq += c[i * k + i]! ** 2;
    if (opts.zeroDiagonal && i >= r) z[i * k + i] = c[i * k + i]!;
  }
  const removed = gemm(gemm(u, m, k, false, z, k, k, false), m, k, false, v, n, k, true);
  const projected = tau.map((x, i) => x - removed[i]!);
  const stats = { protectedRank: r, numericalRank: nonzero.filter(Boolean).length, tauNorm: Math.sqrt(tauSq), ...ratios(tau, projected, tauSq, blockSq, diagSq) };
  return { projected, stats };
}

/**
 * The same projection in the official code's full-SVD form (U [m, m], V [n, n], P = U^T tau V, zero P's diagonal
 * and top-left r x r block, tau~ = U P V^T). Cubic in the long side: for tests of the thin form only.
 */
export function projectLinearWeightFull(delta: Float64Array, tau: Float64Array, m: number, n: number, opts: ProjectionOptions): Float64Array {
  if (sumSquares(delta) === 0) return tau.slice();
  const { k, u, s, v } = svdThin(delta, m, n);
  const r = splitRank(s, opts.alpha);
  const nonzero = nonzeroPairs(s, opts.rankEps);
  const columns = (mat: Float64Array, rows: number) => Array.from({ length: k }, (_, j) => columnOf(mat, rows, k, j));
  const uFull = packColumns(completeOrthonormal(columns(u, m), m, m), m);
  const vFull = packColumns(completeOrthonormal(columns(v, n), n, n), n);
  const p = gemm(gemm(uFull, m, m, true, tau, m, n, false), m, n, false, vFull, n, n, false);
  if (opts.zeroDiagonal) for (let i = 0; i < k; i++) if (nonzero[i]) p[i * n + i] = 0;
  for (let i = 0; i < r; i++) for (let j = 0; j < r; j++) p[i * n + j] = 0;
  return gemm(gemm(uFull, m, m, false, p, m, n, false), m, n, false, vFull, n, n, true);
}

function nonzeroPairs(s: Float64Array, rankEps = OPCM_RANK_EPS): boolean[] {
  const cut = rankEps * (s[0] ?? 0);
  return Array.from(s, (x) => x > cut);
}

function ratios(tau: Float64Array, projected: Float64Array, tauSq: number, blockSq: number, diagSq: number) {
  if (tauSq === 0) return { removedEnergy: 0, blockOverlap: 0, diagonalOverlap: 0 };
  let removedSq = 0;
  for (let i = 0; i < tau.length; i++) removedSq += (tau[i]! - projected[i]!) ** 2;
  return { removedEnergy: removedSq / tauSq, blockOverlap: blockSq / tauSq, diagonalOverlap: diagSq / tauSq };
}

/** op(A) op(B) for row-major A [ar, ac] and B [br, bc]; op transposes when asked. */
function gemm(a: Float64Array, ar: number, ac: number, ta: boolean, b: Float64Array, br: number, bc: number, tb: boolean): Float64Array {
  const rows = ta ? ac : ar;
  const inner = ta ? ar : ac;
  const cols = tb ? br : bc;
  if (inner !== (tb ? bc : br)) throw new Error(`gemm: inner sizes differ (${inner} vs ${tb ? bc : br})`);
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let l = 0; l < inner; l++) {
      const x = ta ? a[l * ac + i]! : a[i * ac + l]!;
      if (x === 0) continue;
      for (let j = 0; j < cols; j++) out[i * cols + j] = out[i * cols + j]! + x * (tb ? b[j * bc + l]! : b[l * bc + j]!);
    }
  }
  return out;
}

function sumSquares(x: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += x[i]! * x[i]!;
  return sum;
}

/** How OPCM treats a model: projection options plus the class_embedding quirk (methods.md 1.5). */
export interface OpcmOptions extends ProjectionOptions {
  /** 'merge': like any other parameter; 'keep-first': the official code's quirk (first model's value, rescaled only). */
  classEmbedding: 'merge' | 'keep-first';
}

/** Per-Linear-weight diagnostics of one OPCM step. */
export interface LayerDiagnostics extends ProjectionStats {
  tensor: string;
  rows: number;
  cols: number;
}

/** Result of one OPCM step: the new merged model and what the step measured. */
export interface OpcmStepResult {
  merged: RefModel;
  /** lambda_t = ||R_t|| / N-bar_t, to be passed back as prevLambda. */
  lambda: number;
  /** ||R_t||: norm of the merged task vector before the rescale to N-bar. */
  unscaledNorm: number;
  layers: LayerDiagnostics[];
}

/** `embeddings.class_embedding` and the like: a direct parameter of a non-leaf module, skipped by the official loop. */
export function isClassEmbedding(name: string): boolean {
  return name === 'class_embedding' || name.endsWith('.class_embedding');
}

/**
 * One OPCM step (k >= 1): M_new = theta0 + (N-bar / S) (prevLambda (M - theta0) + P(tau)) with P the Linear-weight
 * projection (identity elsewhere) and S the norm of the bracket. When S = 0 (everything cancelled) M_new = theta0
 * and lambda = 0 instead of the code's division by zero.
 */
export function opcmStep(base: RefModel, merged: RefModel, incoming: RefModel, prevLambda: number, meanNorm: number, opts: OpcmOptions): OpcmStepResult {
  const names = [...base.keys()].sort();
  const unscaled = new Map<string, Float64Array>(); // R_t, tensor by tensor
  const layers: LayerDiagnostics[] = [];
  let sq = 0;
  for (const name of names) {
    const b = base.get(name)!;
    const mData = merged.get(name)!.data;
    const tData = incoming.get(name)!.data;
    const delta = mData.map((x, i) => x - b.data[i]!);
    let r: Float64Array;
    if (opts.classEmbedding === 'keep-first' && isClassEmbedding(name)) {
      r = delta; // never merged: M keeps its value until the global rescale
    } else {
      const tau = tData.map((x, i) => x - b.data[i]!);
      let update: Float64Array = tau;
      if (isLinearWeight(name, b.shape)) {
        const [rows, cols] = b.shape as [number, number];
        const { projected, stats } = withTensorName(name, () => projectLinearWeight(delta, tau, rows, cols, opts));
        update = projected;
        layers.push({ tensor: name, rows, cols, ...stats });
      }
      r = delta.map((x, i) => prevLambda * x + update[i]!);
    }
    for (const x of r) sq += x * x;
    unscaled.set(name, r);
  }
  const s = Math.sqrt(sq);
  const factor = s > 0 ? meanNorm / s : 0;
  const out: RefModel = new Map();
  for (const name of names) {
    const b = base.get(name)!;
    const r = unscaled.get(name)!;
    out.set(name, { shape: b.shape.slice(), data: b.data.map((x, i) => x + r[i]! * factor) });
  }
  return { merged: out, lambda: s > 0 ? s / meanNorm : 0, unscaledNorm: s, layers };
}

/** Runs `f`, prefixing any error with the tensor it concerns (e.g. a NaN in one weight). */
function withTensorName<T>(name: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new Error(`opcm: tensor ${name}: ${(e as Error).message}`);
  }
}
