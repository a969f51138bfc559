/** Model Breadcrumbs (Davari & Belilovsky 2023): keep the middle-magnitude entries of each task vector, then add. */
import type { MethodSpec } from './params';

export const breadcrumbs: MethodSpec = {
  id: 'breadcrumbs',
  label: 'Model Breadcrumbs',
  summary:
    'Removes the few largest entries (outliers) and the many smallest entries of every task vector, keeping a band of ' +
    'middle magnitudes, then adds the masked task vectors scaled by lambda.',
  source: 'Davari & Belilovsky, Model Breadcrumbs (arXiv 2312.06795), official code TaskVectorMiddleKeep; mergekit breadcrumbs',
  family: 'batch',
  models: { min: 1 },
  params: [
    {
      name: 'density',
      kind: 'number',
      default: 0.15,
      min: 0,
      max: 1,
      minExclusive: true,
      step: 0.01,
      description: 'Fraction of entries kept (beta in the official code).',
    },
    {
      name: 'gamma',
      kind: 'number',
      default: 0.006,
      min: 0,
      max: 1,
      maxExclusive: true,
      step: 0.001,
      description: 'Fraction of the largest entries removed as outliers.',
    },
    {
      name: 'scope',
      kind: 'enum',
      default: 'row',
      values: ['row', 'tensor'],
      description: 'Rank entries within each row along the last dimension (row, official code) or over the whole tensor (tensor, mergekit).',
    },
    {
      name: 'lambda',
      kind: 'coefficient',
      default: 0.2,
      min: 0,
      max: 1.5,
      step: 0.01,
      description: 'Scale of the summed masked task vectors (a number, a per-layer list, filter rules, per task or a table).',
    },
  ],
};
