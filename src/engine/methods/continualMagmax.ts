/** MagMax: elementwise running maximum-magnitude task vector, theta = theta0 + lambda * tau_max. */
import type { MethodSpec } from './params';

export const continualMagmax: MethodSpec = {
  id: 'continual_magmax',
  label: 'MagMax',
  summary: 'Keeps, element by element, the task-vector entry of largest magnitude seen so far (ties go to the newer model) and adds it, scaled by lambda, to the base.',
  source: 'Marczak et al., MagMax (ECCV 2024); FusionBench method/magmax',
  family: 'continual',
  models: { min: 1 },
  params: [
    { name: 'lambda', kind: 'number', default: 0.5, min: 0, max: 1.5, step: 0.01, description: 'Scale of the max-magnitude task vector.' },
  ],
};
