/**
 * TALL-mask compression reference (methods.md section 7): tau_MTL = sum_t tau_t (unscaled) and, for every task,
 * theta_hat_t = theta0 + m_t * tau_MTL, evaluated at scale 1 (each task then uses its own model).
 */
import { refAddDelta, refTaskVectors, type RefModel } from '../refModel';
import { maskModel, sumContributions, type CoefficientFn } from './contributions';
import { tallTaskMasks } from './masks';

/** One model per task: the base plus the multi-task vector restricted to that task's TALL mask. */
export function tallMaskModelsRef(base: RefModel, models: RefModel[], maskLambda: CoefficientFn): RefModel[] {
  const taus = refTaskVectors(base, models);
  const mtl = sumContributions(base, taus);
  return tallTaskMasks(taus, mtl, maskLambda).map((m) => refAddDelta(base, maskModel(mtl, m)));
}
