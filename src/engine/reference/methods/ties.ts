/**
 * TIES-Merging reference (methods.md section 4).
 *
 * scope "global" (FusionBench / official TIES): each task vector is flattened over all tensors (sorted names; the
 * order does not matter for a quantile), thresholded at its k-th largest magnitude with the ">=" rule of topk.ts,
 * signs are elected by the sign of the sum with the model-wide majority fill, and agreeing entries are merged.
 *
 * scope "tensor" (mergekit `ties`, sparsify.magnitude + get_mask("sum")): per tensor, exactly int(k*numel) entries
 * are kept by magnitude (lower flat index wins ties; k >= 1 keeps the tensor as is; a tensor where int(k*numel) is 0
 * keeps nothing, where mergekit would stop with an assertion), the sign is +1 when the sum is >= 0, and entries whose
 * sign equals it are merged. mergekit divides by the number of agreeing tasks (normalize: true): that is
 * merge = "mean" here; `merge` stays a separate choice so that both scopes offer sum, mean and max. mergekit's
 * per-model `weight` and its norm rescaling (rescale: false by default for ties) are not part of this method.
 */
import { mapModel, type RefModel } from '../refModel';
import type { Contributions } from './contributions';
import { disjointContributions, electSigns, type DisjointMerge } from './signElect';
import { sortedModelMagnitudes, tiesThresholdSorted, topCountMask } from './topk';

/** Scope of the trim (and of the zero-sign rule). */
export type TiesScope = 'global' | 'tensor';

/** TIES settings other than the final scale. */
export interface TiesSettings {
  /** Fraction kept in (0, 1]. */
  k: number;
  merge: DisjointMerge;
  scope: TiesScope;
}

/** Trimmed copy of one task vector (dropped entries set to 0). */
export function tiesTrim(tau: RefModel, k: number, scope: TiesScope): RefModel {
  if (scope === 'tensor') {
    return mapModel(tau, (_, d) => {
      if (k >= 1) return d.slice();
      const keep = topCountMask(d, Math.trunc(k * d.length));
      return d.map((x, i) => (keep[i] ? x : 0));
    });
  }
  const threshold = globalThreshold(tau, k);
  return mapModel(tau, (_, d) => d.map((x) => (Math.abs(x) >= threshold ? x : 0)));
}

/** The global TIES threshold of one task vector: k-th largest |x| over all its tensors (see topk.ts). */
export function globalThreshold(tau: RefModel, k: number): number {
  return tiesThresholdSorted(sortedModelMagnitudes(tau), k);
}

/** Per-task contributions of TIES at scale 1 (trim, elect, disjoint merge); their sum is the merged task vector. */
export function tiesContributions(taus: RefModel[], s: TiesSettings): Contributions {
  const trimmed = taus.map((tau) => tiesTrim(tau, s.k, s.scope));
  return disjointContributions(trimmed, electSigns(trimmed, s.scope), s.merge);
}
