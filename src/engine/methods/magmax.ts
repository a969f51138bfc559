/** MagMax (Marczak et al. 2024): per weight, keep the task-vector entry of largest magnitude. */
import type { MethodSpec } from './params';

export const magmax: MethodSpec = {
  id: 'magmax',
  label: 'MagMax',
  summary: 'For every weight keeps the task-vector entry with the largest magnitude (a later model wins ties), scaled by lambda.',
  source: 'Marczak et al., MagMax (ECCV 2024); FusionBench magmax (lambda 0.5)',
  family: 'batch',
  models: { min: 1 },
  params: [
    {
      name: 'lambda',
      kind: 'coefficient',
      default: 0.5,
      min: 0,
      max: 1.5,
      step: 0.01,
      description: 'Scale of the max-magnitude task vector (a number, a per-layer list, filter rules, per task or a table).',
    },
  ],
};
