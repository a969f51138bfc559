/** The GPU plan of every method id. */
import { ConfigError } from '../../errors';
import { simpleAveragePlan, taskArithmeticPlan } from './linear';
import type { GpuPlan } from './plan';

const PLANS: ReadonlyMap<string, GpuPlan> = new Map([
  ['task_arithmetic', taskArithmeticPlan],
  ['simple_average', simpleAveragePlan],
]);

/** The plan of a method, or a ConfigError if the method has none on the GPU. */
export function planOf(methodId: string): GpuPlan {
  const plan = PLANS.get(methodId);
  if (!plan) throw new ConfigError('method', `method '${methodId}' has no GPU implementation (GPU methods: ${[...PLANS.keys()].join(', ')})`);
  return plan;
}
