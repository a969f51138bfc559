/**
 * Model Stock reference (methods.md section 10). Per tensor, with offsets tau_i = theta_i - theta0 (flattened):
 *   cosine (mergekit): c_ij = clamp(<tau_i, tau_j> / max(|tau_i| |tau_j|, 1e-6), -1, 1); cos = mean c_ij;
 *                      t = N cos / (1 + (N-1) cos)   (t = 0 where that denominator is exactly 0, instead of inf/NaN)
 *   angle (FusionBench): c_ij = clamp(<tau_i, tau_j> / (|tau_i| |tau_j| + 1e-8), -1, 1); cos = cos(mean acos c_ij);
 *                      t = N cos / ((N-1) cos + 1 + 1e-8)
 *   theta = t * mean_i theta_i + (1 - t) * theta0
 */
import { mapModel, refTaskVectors, type RefModel } from '../refModel';
import { tensorOf } from './contributions';

/** How pairwise similarities are averaged when there are more than two models. */
export type ModelStockAngle = 'cosine' | 'angle';

/** The interpolation ratio t of one tensor from its N >= 2 flattened offsets. */
export function modelStockRatio(offsets: Float64Array[], angle: ModelStockAngle): number {
  const n = offsets.length;
  const g = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      let dot = 0;
      for (let e = 0; e < offsets[i]!.length; e++) dot += offsets[i]![e]! * offsets[j]![e]!;
      g[i * n + j] = g[j * n + i] = dot;
    }
  }
  return modelStockRatioFromGram(g, n, angle);
}

/** The ratio t from the N x N Gram matrix (row-major) of the offsets: what the GPU plan computes from its reductions. */
export function modelStockRatioFromGram(g: Float64Array, n: number, angle: ModelStockAngle): number {
  let acc = 0;
  let pairs = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const dot = g[i * n + j]!;
      const aa = g[i * n + i]!;
      const bb = g[j * n + j]!;
      const c = angle === 'cosine' ? dot / Math.max(Math.sqrt(aa) * Math.sqrt(bb), 1e-6) : dot / (Math.sqrt(aa * bb) + 1e-8);
      const clamped = Math.min(1, Math.max(-1, c));
      acc += angle === 'cosine' ? clamped : Math.acos(clamped);
      pairs++;
    }
  }
  if (angle === 'angle') {
    const cos = Math.cos(acc / pairs);
    return (n * cos) / ((n - 1) * cos + 1 + 1e-8);
  }
  const cos = acc / pairs;
  const denom = 1 + (n - 1) * cos;
  return denom === 0 ? 0 : (n * cos) / denom;
}

/** Model Stock merge of N >= 2 fine-tuned models. */
export function modelStockRef(base: RefModel, models: RefModel[], angle: ModelStockAngle): RefModel {
  const taus = refTaskVectors(base, models);
  return mapModel(base, (name, b) => {
    const t = modelStockRatio(taus.map((tau) => tensorOf(tau, name).data), angle);
    const ms = models.map((m) => tensorOf(m, name).data);
    return b.map((x, i) => {
      let avg = 0;
      for (const m of ms) avg += m[i]!;
      return t * (avg / ms.length) + (1 - t) * x;
    });
  });
}
