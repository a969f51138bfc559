/** Model Stock (Jang et al. 2024): move from the base towards the average by a ratio set by the angle between task vectors. */
import type { MethodSpec } from './params';

export const modelStock: MethodSpec = {
  id: 'model_stock',
  label: 'Model Stock',
  summary:
    'Per tensor, measures the angle between the task vectors and interpolates between the base and the average of the ' +
    'fine-tuned models with t = N cos / (1 + (N - 1) cos). Parameter-free.',
  source: 'Jang et al., Model Stock (ECCV 2024); mergekit model_stock (cosine) and FusionBench model_stock (angle)',
  family: 'batch',
  models: { min: 2 },
  params: [
    {
      name: 'angle',
      kind: 'enum',
      default: 'cosine',
      values: ['cosine', 'angle'],
      description: 'Average the pairwise cosines (cosine, mergekit) or the pairwise angles (angle, FusionBench) when N > 2.',
    },
  ],
};
