/** Task Arithmetic and simple averaging: the delta is a weighted sum of the task vectors, nothing else. */
import { combine } from '../../gpu/kernels';
import type { GpuPlan } from './plan';

/** theta0 + sum_t lambda(tensor, t) * tau_t. */
export const taskArithmeticPlan: GpuPlan = {
  granularity: 'element',
  outputs: () => 1,
  async emit(p, c, out) {
    combine(p.ctx, c.stack, p.tasks, c.count, p.coeffs('lambda', c.tensor.name), out[0]!);
  },
};

/** mean_t theta_t = theta0 + (1/T) sum_t tau_t. */
export const simpleAveragePlan: GpuPlan = {
  granularity: 'element',
  outputs: () => 1,
  async emit(p, c, out) {
    combine(p.ctx, c.stack, p.tasks, c.count, new Float32Array(p.tasks).fill(1 / p.tasks), out[0]!);
  },
};
