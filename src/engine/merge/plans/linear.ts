/** Task Arithmetic and simple averaging: the delta is a weighted sum of the task vectors, nothing else. */
import { combine } from '../../gpu/kernels';
import { LinearMergeKernel } from '../../gpu/linearMerge';
import type { AlignedTensor } from '../align';
import type { GpuPlan, PlanContext } from './plan';

/** A plan whose delta is sum_t coeffs(tensor)[t] * tau_t. */
function linearPlan(coeffs: (p: PlanContext, t: AlignedTensor) => Float32Array): GpuPlan {
  return {
    granularity: 'element',
    outputs: () => 1,
    fusedWithKnownMetrics: true,
    fused: (p) => ({ kernel: new LinearMergeKernel(p.ctx), coeffs: (t) => coeffs(p, t) }),
    async emit(p, c, out) {
      combine(p.ctx, c.stack, p.tasks, c.count, coeffs(p, c.tensor), out[0]!);
    },
  };
}

/** theta0 + sum_t lambda(tensor, t) * tau_t. */
export const taskArithmeticPlan: GpuPlan = linearPlan((p, t) => p.coeffs('lambda', t.name));

/** mean_t theta_t = theta0 + (1/T) sum_t tau_t. */
export const simpleAveragePlan: GpuPlan = linearPlan((p) => new Float32Array(p.tasks).fill(1 / p.tasks));
