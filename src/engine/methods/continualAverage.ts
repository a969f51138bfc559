/** Continual weight average: M <- (k M + theta_t) / (k + 1), which ends at the simple average. */
import type { MethodSpec } from './params';

export const continualAverage: MethodSpec = {
  id: 'continual_average',
  label: 'Continual Average',
  summary: 'Keeps the running mean of the models seen so far; the final model is the simple average.',
  source: 'FusionBench ContinualWeightAverageForCLIP (method/opcm), baseline of Tang et al. 2025',
  family: 'continual',
  models: { min: 1 },
  params: [],
};
