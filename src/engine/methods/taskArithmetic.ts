/** Task Arithmetic (Ilharco et al. 2023): theta = theta0 + lambda * sum_t tau_t. */
import type { MethodSpec } from './params';

export const taskArithmetic: MethodSpec = {
  id: 'task_arithmetic',
  label: 'Task Arithmetic',
  summary: 'Adds the sum of all task vectors to the base, scaled by lambda.',
  source: 'Ilharco et al., Editing Models with Task Arithmetic (ICLR 2023); FusionBench default lambda 0.3',
  family: 'batch',
  models: { min: 1 },
  params: [
    {
      name: 'lambda',
      kind: 'coefficient',
      default: 0.3,
      min: 0,
      max: 1.5,
      step: 0.01,
      description: 'Scale of the summed task vectors (a number, a per-layer list, or filter rules).',
    },
  ],
};
