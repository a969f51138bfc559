/** SLERP: spherical interpolation of the raw weights of two fine-tuned models, tensor by tensor (mergekit). */
import type { MethodSpec } from './params';

export const slerp: MethodSpec = {
  id: 'slerp',
  label: 'SLERP',
  summary:
    'Interpolates along the great circle between the weights of two models, tensor by tensor, from the first (t = 0) ' +
    'to the second (t = 1); nearly parallel tensors fall back to linear interpolation.',
  source: 'mergekit slerp (Shoemake 1985); the base model is not used',
  family: 'batch',
  models: { min: 2, max: 2 },
  params: [
    {
      name: 't',
      kind: 'coefficient',
      default: 0.5,
      min: 0,
      max: 1,
      step: 0.01,
      description: 'Position between the first (0) and the second (1) model; may vary by layer or filter, like mergekit.',
    },
  ],
};
