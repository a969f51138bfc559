/**
 * Magnitude thresholds and exact top-count selection.
 *
 * Two conventions exist and both are needed:
 * - TIES (FusionBench / official): with d entries and kept fraction K, k = d - int(d*K) and the threshold is the
 *   k-th smallest |x| (1-based); an entry is kept when |x| >= threshold. This keeps int(d*K) + 1 entries when there
 *   are no ties (the ">=" off-by-one of the source), more with ties. K = 1 gives k = 0: everything is kept.
 * - Exact count (mergekit, Breadcrumbs): keep exactly `count` entries, the largest |x| first; among equal |x| the
 *   lower flat index wins. (torch's argsort/topk leave that order unspecified; ours is fixed so CPU and GPU agree.)
 */
import { sortedNames, type RefModel } from '../refModel';

/** |values| sorted ascending (a copy). */
export function sortedMagnitudes(values: Float64Array): Float64Array {
  const a = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) a[i] = Math.abs(values[i]!);
  return a.sort();
}

/** |x| of every entry of every tensor of a model, sorted ascending (the flattened vector of the global ops). */
export function sortedModelMagnitudes(model: RefModel): Float64Array {
  const names = sortedNames(model);
  const mags = new Float64Array(names.reduce((n, name) => n + (model.get(name)?.data.length ?? 0), 0));
  let at = 0;
  for (const name of names) for (const x of model.get(name)?.data ?? []) mags[at++] = Math.abs(x);
  return mags.sort();
}

/** TIES trim threshold from ascending magnitudes: the k-th smallest, k = d - int(d*K); -Infinity when k = 0 (keep all). */
export function tiesThresholdSorted(sortedAsc: Float64Array, fraction: number): number {
  const d = sortedAsc.length;
  const k = d - Math.trunc(d * fraction);
  return k <= 0 ? -Infinity : sortedAsc[k - 1]!;
}

/** TIES trim threshold of one vector (see tiesThresholdSorted). */
export function tiesThreshold(values: Float64Array, fraction: number): number {
  return tiesThresholdSorted(sortedMagnitudes(values), fraction);
}

/** Flat indices of `values` ordered by |x| descending, ties by index ascending. */
export function rankByMagnitude(values: Float64Array): Int32Array {
  const order = Int32Array.from({ length: values.length }, (_, i) => i);
  return order.sort((a, b) => Math.abs(values[b]!) - Math.abs(values[a]!) || a - b);
}

/** 0/1 mask keeping the entries of descending magnitude rank in [from, to) (rank 0 = largest |x|). */
export function rankBandMask(values: Float64Array, from: number, to: number): Uint8Array {
  const mask = new Uint8Array(values.length);
  const order = rankByMagnitude(values);
  for (let r = Math.max(0, from); r < Math.min(to, values.length); r++) mask[order[r]!] = 1;
  return mask;
}

/** 0/1 mask keeping exactly the `count` largest |x| (fewer if the vector is shorter). */
export function topCountMask(values: Float64Array, count: number): Uint8Array {
  return rankBandMask(values, 0, count);
}
