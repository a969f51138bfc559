/**
 * The methods whose GPU plan is one kernel or one per-tensor statistic away from Task Arithmetic:
 * MagMax (elementwise max-magnitude selection), SLERP (per-tensor angle between the two raw weight vectors) and
 * Model Stock (per-tensor mean pairwise cosine of the task vectors). References: reference/methods/{magmax,slerp,modelStock}.ts.
 */
import { combine, LinearMergeKernel } from '../../gpu/kernels';
import { magmaxSelect } from '../../gpu/mergeKernels';
import { gram } from '../../gpu/mergeReductions';
import { modelStockRatioFromGram, type ModelStockAngle } from '../../reference/methods/modelStock';
import { slerpCoefficients } from '../../reference/methods/slerp';
import type { GpuPlan } from './plan';
import { copyFloats } from './util';

/**
 * MagMax: without interference metrics one fused kernel per chunk (magmax_output); a tensor whose coefficients are not
 * all finite goes through the stack, where the losers' products coeff * 0 are NaN as combine makes them.
 */
export function magmaxPlan(): GpuPlan {
  return {
    granularity: 'element',
    outputs: () => 1,
    fused: (p) => ({
      kernel: new LinearMergeKernel(p.ctx, 'magmax_output'),
      coeffs: (t) => {
        const c = p.coeffs('lambda', t.name);
        return c.every(Number.isFinite) ? c : null;
      },
    }),
    async emit(p, c, out) {
      magmaxSelect(p.ctx, c.stack, p.tasks, c.count);
      combine(p.ctx, c.stack, p.tasks, c.count, p.coeffs('lambda', c.tensor.name), out[0]!);
      return { contributions: c.stack };
    },
  };
}

/**
 * SLERP coefficients of one tensor from the Gram matrix of [tau_a, tau_b, theta0]: the result s0 a + s1 b is written
 * as theta0 + s0 tau_a + s1 tau_b + (s0 + s1 - 1) theta0.
 */
export function slerpRowCoefficients(g: Float64Array, t: number): Float32Array {
  const at = (i: number, j: number) => g[i * 3 + j]!;
  const aa = at(0, 0) + 2 * at(0, 2) + at(2, 2);
  const bb = at(1, 1) + 2 * at(1, 2) + at(2, 2);
  const ab = at(0, 1) + at(0, 2) + at(1, 2) + at(2, 2);
  const [s0, s1] = slerpCoefficients(Math.sqrt(Math.max(aa, 0)), Math.sqrt(Math.max(bb, 0)), ab, t);
  return Float32Array.from([s0, s1, s0 + s1 - 1]);
}

export function slerpPlan(): GpuPlan {
  let coeffs: Float32Array = new Float32Array(3);
  return {
    granularity: 'element',
    outputs: () => 1,
    async beginTensor(p, t) {
      const g = new Float64Array(9);
      const rows = p.scratch('slerp rows', 3 * p.stream.maxChunk);
      await p.stream.forTensor(t, async (c) => {
        copyFloats(p.ctx, c.stack, rows, 2 * c.count);
        copyFloats(p.ctx, c.base, rows, c.count, 2 * c.count);
        (await gram(p.ctx, rows, 3, c.count)).forEach((v, i) => (g[i] = g[i]! + v));
      });
      coeffs = slerpRowCoefficients(g, p.coeffs('t', t.name)[0]!);
    },
    async emit(p, c, out) {
      const rows = p.scratch('slerp rows', 3 * p.stream.maxChunk);
      copyFloats(p.ctx, c.stack, rows, 2 * c.count);
      copyFloats(p.ctx, c.base, rows, c.count, 2 * c.count);
      combine(p.ctx, rows, 3, c.count, coeffs, out[0]!);
    },
  };
}

export function modelStockPlan(): GpuPlan {
  let ratio = 0;
  return {
    granularity: 'element',
    outputs: () => 1,
    async beginTensor(p, t) {
      const g = new Float64Array(p.tasks * p.tasks);
      await p.stream.forTensor(t, async (c) => (await gram(p.ctx, c.stack, p.tasks, c.count)).forEach((v, i) => (g[i] = g[i]! + v)));
      ratio = modelStockRatioFromGram(g, p.tasks, p.params.angle as ModelStockAngle);
    },
    async emit(p, c, out) {
      // theta = t * mean(theta_i) + (1 - t) * theta0 = theta0 + (t / N) * sum tau_i.
      combine(p.ctx, c.stack, p.tasks, c.count, new Float32Array(p.tasks).fill(ratio / p.tasks), out[0]!);
    },
  };
}
