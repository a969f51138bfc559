/** Consensus Merging (Wang, Dimitriadis et al. 2024): keep only the weights that at least k tasks' TALL masks use. */
import type { MethodSpec } from './params';
import { tiesParams } from './ties';

export const consensus: MethodSpec = {
  id: 'consensus',
  label: 'Consensus Merging',
  summary:
    'Builds a TALL mask per task (weights where the task dominates the rest of the merge), counts how many tasks use ' +
    'each weight, and removes the weights used by fewer than k tasks from the merged task vector.',
  source: 'Wang, Dimitriadis et al., Localizing Task Information (ICML 2024), official tall_masks code',
  family: 'batch',
  models: { min: 2 },
  params: [
    {
      name: 'k',
      kind: 'integer',
      default: 2,
      min: 0,
      max: 1024,
      step: 1,
      description: 'Minimum number of tasks whose mask must use a weight (0 = plain merge, 1 drops unused weights, 2 also drops "selfish" ones).',
    },
    {
      name: 'mask_lambda',
      kind: 'coefficient',
      default: 0.6,
      min: 0,
      max: 2,
      step: 0.05,
      description: 'TALL mask threshold: task t uses a weight when |tau_t| > mask_lambda * |tau_MTL - tau_t| (may differ per task).',
    },
    {
      name: 'then',
      kind: 'enum',
      default: 'task_arithmetic',
      values: ['task_arithmetic', 'ties'],
      description: 'How the multi-task vector tau_MTL is built before masking.',
    },
    {
      name: 'lambda',
      kind: 'coefficient',
      default: 0.3,
      min: 0,
      max: 1.5,
      step: 0.01,
      description: 'Scale of the masked multi-task vector (a number, a per-layer list, filter rules, per task or a table).',
    },
    ...tiesParams('ties_k', ' (used when then = ties)'),
  ],
};
