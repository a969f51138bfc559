/** DARE (Yu et al. 2023): drop each task-vector entry at random with rate p, rescale by 1/(1-p), then merge. */
import type { MethodSpec } from './params';
import { tiesParams } from './ties';

export const dare: MethodSpec = {
  id: 'dare',
  label: 'DARE',
  summary:
    'Randomly drops a fraction p of every task vector (seeded, reproducible) and rescales the rest by 1/(1-p), then ' +
    'merges with Task Arithmetic or TIES (TIES still trims after the drop).',
  source: 'Yu et al., Language Models are Super Mario (ICML 2024); FusionBench dare (p 0.5, rescale, lambda 0.3)',
  family: 'batch',
  models: { min: 1 },
  params: [
    {
      name: 'p',
      kind: 'number',
      default: 0.5,
      min: 0,
      max: 1,
      maxExclusive: true,
      step: 0.01,
      description: 'Drop rate: each entry is zeroed with probability p.',
    },
    { name: 'rescale', kind: 'boolean', default: true, description: 'Divide the kept entries by 1 - p (keeps the expected task vector).' },
    {
      name: 'seed',
      kind: 'integer',
      default: 0,
      min: 0,
      max: 4294967295,
      step: 1,
      description: 'Random seed; the same seed gives the same drop mask on CPU and GPU.',
    },
    {
      name: 'then',
      kind: 'enum',
      default: 'task_arithmetic',
      values: ['task_arithmetic', 'ties'],
      description: 'How the dropped task vectors are merged.',
    },
    {
      name: 'linear_only',
      kind: 'boolean',
      default: false,
      description: 'Drop only the 2-D ".weight" matrices of Linear layers (not embeddings); other tensors are merged untouched.',
    },
    {
      name: 'lambda',
      kind: 'coefficient',
      default: 0.3,
      min: 0,
      max: 3,
      step: 0.01,
      description: 'Scale of the merged task vector (a number, a per-layer list, filter rules, per task or a table).',
    },
    ...tiesParams('k', ' (used when then = ties)'),
  ],
};
