/** Simple averaging of the fine-tuned weights: theta = mean_t theta_t (= Task Arithmetic with lambda = 1/T). */
import type { MethodSpec } from './params';

export const simpleAverage: MethodSpec = {
  id: 'simple_average',
  label: 'Simple Average',
  summary: 'Averages the fine-tuned models weight by weight (model soup); no parameters.',
  source: 'Wortsman et al., Model Soups (ICML 2022); FusionBench simple_average',
  family: 'batch',
  models: { min: 1 },
  params: [],
};
