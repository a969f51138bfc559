/** Continual Task Arithmetic: M <- M + lambda * tau_t for each incoming model, starting from the base. */
import type { MethodSpec } from './params';

export const continualTaskArithmetic: MethodSpec = {
  id: 'continual_task_arithmetic',
  label: 'Continual Task Arithmetic',
  summary: 'Adds each incoming task vector, scaled by lambda, to the merged model; the final model equals batch Task Arithmetic.',
  source: 'FusionBench ContinualTaskArithmeticForCLIP (method/opcm), baseline of Tang et al. 2025',
  family: 'continual',
  models: { min: 1 },
  params: [
    {
      name: 'lambda',
      kind: 'coefficient',
      default: 0.3,
      min: 0,
      max: 1.5,
      step: 0.01,
      description: 'Scale of each task vector (a number, a per-layer list, or filter rules; per_task follows the model index).',
    },
  ],
};
