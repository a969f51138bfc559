/** TIES-Merging (Yadav et al. 2023): trim each task vector by magnitude, elect a sign per weight, merge the agreeing entries. */
import type { MethodSpec, ParamSpec } from './params';

/**
 * The trim / elect / merge parameters of TIES. Methods that can hand their task vectors to TIES (`then: ties`) list
 * them too; `kName` renames the kept fraction where the host method already has a `k` (consensus: `ties_k`).
 */
export function tiesParams(kName = 'k', note = ''): ParamSpec[] {
  return [
    {
      name: kName,
      kind: 'number',
      default: 0.2,
      min: 0,
      max: 1,
      minExclusive: true,
      step: 0.01,
      description: `Fraction of each task vector kept by magnitude in the trim (0.2 = top 20 %)${note}.`,
    },
    {
      name: 'merge',
      kind: 'enum',
      default: 'sum',
      values: ['sum', 'mean', 'max'],
      description: `How the entries that agree with the elected sign are combined: sum (FusionBench), mean (paper "dis-mean"), max${note}.`,
    },
    {
      name: 'scope',
      kind: 'enum',
      default: 'global',
      values: ['global', 'tensor'],
      description:
        `Trim threshold over the whole model (global, FusionBench) or exactly int(k*numel) per tensor (tensor, mergekit; ` +
        `mergekit's ties with normalize: true is tensor + mean)${note}.`,
    },
  ];
}

export const ties: MethodSpec = {
  id: 'ties',
  label: 'TIES-Merging',
  summary:
    'Keeps the largest entries of each task vector, elects one sign per weight by total mass, and merges only the ' +
    'entries that agree with it; then scales by lambda.',
  source: 'Yadav et al., TIES-Merging (NeurIPS 2023); FusionBench ties_merging (k 0.2, sum, lambda 0.3); mergekit ties',
  family: 'batch',
  models: { min: 1 },
  params: [
    ...tiesParams(),
    {
      name: 'lambda',
      kind: 'coefficient',
      default: 0.3,
      min: 0,
      max: 3,
      step: 0.01,
      description: 'Scale of the merged task vector (a number, a per-layer list, filter rules, per task or a table).',
    },
  ],
};
