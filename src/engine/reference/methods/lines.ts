/**
 * LiNeS reference (methods.md section 8). The `then` merge (Task Arithmetic, TIES, or Consensus on Task Arithmetic)
 * gives tau_MTL at scale 1; tensor `name` of task t is then scaled by
 *   lambda(name, t) = alpha(name, t) + beta(name, t) * depth(name),   depth = layer / (L - 1), 0 outside the blocks
 * which for scalar alpha and beta is the gradient [alpha, alpha + beta] of scaling.ts. There is no further global
 * scale. alpha "auto" = (||sum_t tau_t||_1 / ||tau_MTL||_1) / T with L1 norms over the whole model (1/T for Task
 * Arithmetic; 1/T as well if tau_MTL is all zero). The auto value is also the fallback where alpha rules match nothing.
 */
import { coefficientAt, countLayers, depthOf, type CoefficientSetting } from '../../methods/scaling';
import type { RefModel } from '../refModel';
import { applyContributions, sumContributions, type CoefficientFn, type Contributions } from './contributions';
import { consensusContributions } from './consensus';
import { thenContributions } from './then';
import type { TiesSettings } from './ties';

/** LiNeS settings. */
export interface LinesSettings {
  alpha: CoefficientSetting | 'auto';
  beta: CoefficientSetting;
  then: 'task_arithmetic' | 'ties' | 'consensus';
  ties: TiesSettings;
  /** Consensus k and mask threshold (then = consensus). */
  consensusK: number;
  maskLambda: CoefficientFn;
}

/** alpha "auto": the L1 mass of the plain task-vector average relative to tau_MTL, i.e. (|sum tau|_1 / |tau_MTL|_1) / T. */
export function linesAutoAlpha(base: RefModel, taus: RefModel[], parts: Contributions): number {
  const l1 = (m: RefModel) => [...m.values()].reduce((s, t) => t.data.reduce((a, x) => a + Math.abs(x), s), 0);
  const mtl = l1(sumContributions(base, parts));
  const ratio = mtl === 0 ? 1 : l1(sumContributions(base, taus)) / mtl;
  return ratio / taus.length;
}

/** The `then` contributions of LiNeS at scale 1. */
export function linesContributions(base: RefModel, taus: RefModel[], s: LinesSettings): Contributions {
  if (s.then === 'consensus') {
    return consensusContributions(base, taus, { k: s.consensusK, maskLambda: s.maskLambda, then: 'task_arithmetic', ties: s.ties });
  }
  return thenContributions(s.then, taus, s.ties);
}

/** LiNeS merge: theta0 + sum_t (alpha + beta * depth) * c_t. */
export function linesRef(base: RefModel, taus: RefModel[], s: LinesSettings, betaFallback = 0.3): RefModel {
  const parts = linesContributions(base, taus, s);
  const auto = linesAutoAlpha(base, taus, parts);
  const layers = countLayers(base.keys());
  const coef: CoefficientFn = (tensor, task) => {
    const site = { tensor, task, layers };
    const alpha = s.alpha === 'auto' ? auto : coefficientAt(s.alpha, site, auto);
    return alpha + coefficientAt(s.beta, site, betaFallback) * depthOf(tensor, layers);
  };
  return applyContributions(base, parts, coef);
}
