/**
 * Consensus Merging reference (methods.md section 7): tau_cons = m_cons * tau_MTL with tau_MTL the `then` merge at
 * scale 1, then theta = theta0 + lambda * tau_cons. Per task, the contribution c_t of `then` is masked by m_cons, so
 * an anisotropic lambda scales each task's surviving part.
 */
import type { RefModel } from '../refModel';
import { maskModel, sumContributions, type CoefficientFn, type Contributions } from './contributions';
import { consensusMask, tallTaskMasks } from './masks';
import { thenContributions, type ThenMethod } from './then';
import type { TiesSettings } from './ties';

/** Consensus settings other than the final scale. */
export interface ConsensusSettings {
  /** Minimum number of tasks that must use a weight. */
  k: number;
  maskLambda: CoefficientFn;
  then: ThenMethod;
  ties: TiesSettings;
}

/** Per-task contributions of Consensus at scale 1 (the `then` contributions restricted to the consensus mask). */
export function consensusContributions(base: RefModel, taus: RefModel[], s: ConsensusSettings): Contributions {
  const parts = thenContributions(s.then, taus, s.ties);
  const mtl = sumContributions(base, parts);
  const mask = consensusMask(tallTaskMasks(taus, mtl, s.maskLambda), s.k);
  return parts.map((c) => maskModel(c, mask));
}
