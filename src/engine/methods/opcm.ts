/** OPCM (Tang et al. 2025): continual merging that projects each new task vector away from the merged one's dominant singular subspace. */
import type { MethodSpec } from './params';

export const opcm: MethodSpec = {
  id: 'opcm',
  label: 'OPCM',
  summary:
    'Merges models one at a time: each Linear weight of a new task vector is projected orthogonally to the top singular directions of the merged task vector, and the merged task vector is rescaled to the mean task-vector norm.',
  source: 'Tang et al., Merging Models on the Fly Without Retraining (arXiv 2501.09522); official code in FusionBench (method/opcm)',
  family: 'continual',
  models: { min: 1 },
  params: [
    {
      name: 'alpha',
      kind: 'number',
      default: 0.5,
      min: 0,
      max: 1,
      step: 0.05,
      description: 'Energy threshold: singular directions before the cumulative singular-value fraction exceeds alpha are protected (alpha = 1 protects none).',
    },
    {
      name: 'zero_diagonal',
      kind: 'boolean',
      default: true,
      description: "Also remove the new task vector's coordinate on every diagonal singular pair (current official code; off = the arXiv v1 code).",
    },
    { name: 'order', kind: 'order', default: 'given', description: 'Merge order: the given order, a list of model indices, or "shuffle" (seeded).' },
    { name: 'seed', kind: 'integer', default: 0, min: 0, max: 4294967295, description: 'Seed of the shuffled order.' },
    {
      name: 'class_embedding',
      kind: 'enum',
      default: 'merge',
      values: ['merge', 'keep-first'],
      description: "'merge' treats class_embedding like any other parameter; 'keep-first' mirrors the official code, which keeps the first model's value and only rescales it.",
    },
  ],
};
