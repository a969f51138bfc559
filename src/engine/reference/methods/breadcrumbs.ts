/**
 * Model Breadcrumbs reference (methods.md section 6). Both scopes rank by magnitude with the exact-count rule of
 * topk.ts (largest first, lower index wins ties).
 *
 * scope "row" (official TaskVectorMiddleKeep, remove_first): each row along the last dimension (length n) first loses
 * its int(n*gamma) largest entries, then keeps the int(n*density) largest of what is left. 0-d tensors are untouched;
 * a 1-D tensor is one row.
 *
 * scope "tensor" (mergekit magnitude_outliers): over the flattened tensor of N entries, target = int(density*N),
 * top = int(gamma*N), bottom = N - target - top; if bottom < 0 then top += bottom and bottom = 0; the entries of
 * descending magnitude rank [top, N - bottom) are kept; density >= 1 keeps the tensor unchanged. mergekit's slice
 * `indices[n_bot:-n_top]` keeps nothing when top is 0; we keep the N - bottom smallest instead, as intended.
 */
import { mapModel, type RefModel } from '../refModel';
import { rankBandMask, topCountMask } from './topk';

/** Breadcrumbs settings. */
export interface BreadcrumbsSettings {
  density: number;
  gamma: number;
  scope: 'row' | 'tensor';
}

/** Masked copy of one task vector. */
export function breadcrumbsMask(tau: RefModel, s: BreadcrumbsSettings): RefModel {
  return mapModel(tau, (_, d, shape) => (s.scope === 'row' ? maskRows(d, shape, s) : maskTensor(d, s)));
}

function maskRows(d: Float64Array, shape: number[], s: BreadcrumbsSettings): Float64Array {
  const n = shape[shape.length - 1] ?? 0;
  if (shape.length === 0 || n === 0) return d.slice();
  const out = new Float64Array(d.length);
  for (let start = 0; start < d.length; start += n) {
    const row = d.slice(start, start + n);
    const removed = topCountMask(row, Math.trunc(n * s.gamma));
    const rest = row.map((x, i) => (removed[i] ? 0 : x));
    const keep = topCountMask(rest, Math.trunc(n * s.density));
    rest.forEach((x, i) => { out[start + i] = keep[i] ? x : 0; });
  }
  return out;
}

function maskTensor(d: Float64Array, s: BreadcrumbsSettings): Float64Array {
  if (s.density >= 1) return d.slice();
  const total = d.length;
  const target = Math.trunc(s.density * total);
  let top = Math.trunc(s.gamma * total);
  let bottom = total - target - top;
  if (bottom < 0) {
    top += bottom;
    bottom = 0;
  }
  const keep = rankBandMask(d, top, total - bottom);
  return d.map((x, i) => (keep[i] ? x : 0));
}
