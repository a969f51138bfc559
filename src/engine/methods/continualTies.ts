/** Continual TIES-Merging: M <- M + lambda * TIES([M - theta0, tau_t]) for each model after the first. */
import type { MethodSpec } from './params';

export const continualTies: MethodSpec = {
  id: 'continual_ties',
  label: 'Continual TIES',
  summary:
    'The first model is added as lambda * tau; each later one is TIES-merged (global top-k trim, sign election, disjoint merge) with the current merged task vector and the result, scaled by lambda, is added on top.',
  source: 'FusionBench ContinualTiesMergingForCLIP (method/opcm), baseline of Tang et al. 2025',
  family: 'continual',
  models: { min: 1 },
  params: [
    {
      name: 'k',
      kind: 'number',
      default: 0.2,
      min: 0,
      max: 1,
      step: 0.01,
      description: 'Fraction of entries kept per task vector by the global magnitude trim (ties at the threshold are kept).',
    },
    {
      name: 'lambda',
      kind: 'coefficient',
      default: 0.3,
      min: 0,
      max: 1.5,
      step: 0.01,
      description: 'Scale of each merged update (a number, a per-layer list, or filter rules; per_task follows the incoming model index).',
    },
    { name: 'merge', kind: 'enum', default: 'sum', values: ['sum', 'mean', 'max'], description: 'Disjoint merge of the agreeing entries: sum, mean or signed max magnitude.' },
  ],
};
