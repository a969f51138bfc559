/**
 * TALL masks and the consensus mask (methods.md section 7, official tall_masks code):
 *   m_t[j]    = 1 if |tau_t[j]| > lambda_t * |tau_MTL[j] - tau_t[j]|   (strict ">")
 *   count[j]  = sum_t m_t[j]                                          (how many tasks use weight j, 0..T)
 *   m_cons[j] = 1 if count[j] >= k
 * tau_MTL is the multi-task vector at scale 1 (the plain sum for TALL; the `then` merge for Consensus).
 * lambda_t is a coefficient: it may differ per task (the paper picks it per task) and per tensor.
 */
import { mapModel, type RefModel } from '../refModel';
import { tensorOf, type CoefficientFn } from './contributions';

/** One 0/1 TALL mask per task. */
export function tallTaskMasks(taus: RefModel[], mtl: RefModel, maskLambda: CoefficientFn): RefModel[] {
  return taus.map((tau, t) => mapModel(tau, (name, d) => {
    const lam = maskLambda(name, t);
    const m = tensorOf(mtl, name).data;
    return d.map((x, i) => (Math.abs(x) > lam * Math.abs(m[i]! - x) ? 1 : 0));
  }));
}

/** Number of masks that use each weight (0..T), as a model of counts. */
export function maskCounts(masks: RefModel[]): RefModel {
  return mapModel(masks[0]!, (name, d) => {
    const out = new Float64Array(d.length);
    for (const m of masks) tensorOf(m, name).data.forEach((x, i) => { if (x !== 0) out[i]! += 1; });
    return out;
  });
}

/** Consensus mask: 1 where at least k task masks use the weight. */
export function consensusMask(masks: RefModel[], k: number): RefModel {
  return mapModel(maskCounts(masks), (_, c) => c.map((x) => (x >= k ? 1 : 0)));
}
