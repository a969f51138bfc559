/** The GPU plan of every batch method id (a fresh plan per merge: plans hold per-merge state). */
import { ConfigError } from '../../errors';
import { breadcrumbsPlan } from './breadcrumbs';
import { consensusPlan, tallMasksPlan } from './consensus';
import { darePlan } from './dare';
import { linesPlan } from './lines';
import { simpleAveragePlan, taskArithmeticPlan } from './linear';
import type { GpuPlan } from './plan';
import { magmaxPlan, modelStockPlan, slerpPlan } from './simple';
import { tiesPlan } from './ties';

const PLANS: ReadonlyMap<string, () => GpuPlan> = new Map([
  ['task_arithmetic', () => taskArithmeticPlan],
  ['simple_average', () => simpleAveragePlan],
  ['ties', tiesPlan],
  ['dare', darePlan],
  ['breadcrumbs', breadcrumbsPlan],
  ['consensus', consensusPlan],
  ['tall_masks', tallMasksPlan],
  ['lines', linesPlan],
  ['magmax', magmaxPlan],
  ['slerp', slerpPlan],
  ['model_stock', modelStockPlan],
]);

/** A new plan for a method, or a ConfigError if the method has none on the GPU. */
export function planOf(methodId: string): GpuPlan {
  const make = PLANS.get(methodId);
  if (!make) throw new ConfigError('method', `method '${methodId}' has no GPU implementation (GPU methods: ${[...PLANS.keys()].join(', ')})`);
  return make();
}
