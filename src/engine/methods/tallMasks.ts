/** TALL masks (Wang, Dimitriadis et al. 2024): compress T fine-tuned models into one multi-task vector plus one mask per task. */
import type { MethodSpec } from './params';

export const tallMasks: MethodSpec = {
  id: 'tall_masks',
  label: 'TALL masks',
  summary:
    'Produces one model per task: the base plus the multi-task vector restricted to the weights where that task ' +
    'dominates (|tau_t| > mask_lambda * |tau_MTL - tau_t|). Each task is evaluated with its own model.',
  source: 'Wang, Dimitriadis et al., Localizing Task Information (ICML 2024), official tall_masks code; FusionBench mask_lambda 0.6',
  family: 'batch',
  models: { min: 2 },
  params: [
    {
      name: 'mask_lambda',
      kind: 'coefficient',
      default: 0.6,
      min: 0,
      max: 2,
      step: 0.05,
      description: 'Mask threshold; the paper picks it per task from {0.2 ... 0.6} (use {"per_task": [...]}).',
    },
  ],
};
