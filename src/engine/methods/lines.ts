/** LiNeS (Wang, Dimitriadis et al. 2024): scale the merged task vector by a ramp that grows with depth. */
import type { CoefficientParam, MethodSpec } from './params';
import { tiesParams } from './ties';

const alpha: CoefficientParam = {
  name: 'alpha',
  kind: 'coefficient',
  default: 'auto',
  allowAuto: true,
  min: 0,
  max: 1,
  step: 0.01,
  description: 'Scale of the shallowest layers and of everything outside the blocks; "auto" = (||sum tau||_1 / ||tau_MTL||_1) / T.',
};

export const lines: MethodSpec = {
  id: 'lines',
  label: 'LiNeS',
  summary:
    'Merges with Task Arithmetic, TIES or Consensus at scale 1, then scales layer l by alpha + beta * l / (L - 1): ' +
    'shallow layers stay close to the base, deep layers take more of the merge.',
  source: 'Wang, Dimitriadis et al., LiNeS (ICLR 2025), official LiNeS code',
  family: 'batch',
  models: { min: 1 },
  params: [
    alpha,
    {
      name: 'beta',
      kind: 'coefficient',
      default: 0.3,
      min: 0,
      max: 1.5,
      step: 0.01,
      description: 'Extra scale reached at the deepest layer (the method\'s usual lambda).',
    },
    {
      name: 'then',
      kind: 'enum',
      default: 'task_arithmetic',
      values: ['task_arithmetic', 'ties', 'consensus'],
      description: 'Which merge builds the multi-task vector tau_MTL (consensus builds its masks on Task Arithmetic).',
    },
    ...tiesParams('k', ' (used when then = ties)'),
    {
      name: 'consensus_k',
      kind: 'integer',
      default: 2,
      min: 0,
      max: 1024,
      step: 1,
      description: 'Minimum number of tasks that must use a weight (used when then = consensus).',
    },
    {
      name: 'mask_lambda',
      kind: 'coefficient',
      default: 0.6,
      min: 0,
      max: 2,
      step: 0.05,
      description: 'TALL mask threshold of the consensus masks (used when then = consensus).',
    },
  ],
};
