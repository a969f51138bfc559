/** Task Arithmetic reference (methods.md section 3): theta = theta0 + sum_t lambda(tensor, t) * tau_t. */
import type { CoefficientSetting } from '../../methods/scaling';
import { refTaskVectors, type RefModel } from '../refModel';
import { applyContributions, coefficientFn } from './contributions';

/** Task Arithmetic with a (possibly anisotropic) lambda; `fallback` is used where no lambda rule matches. */
export function taskArithmeticRef(base: RefModel, models: RefModel[], lambda: CoefficientSetting, fallback = 0.3): RefModel {
  return applyContributions(base, refTaskVectors(base, models), coefficientFn(lambda, base, fallback));
}
