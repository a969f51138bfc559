/**
 * Interference and diagnostic metrics in float64 (methods.md section 11): the readable twin of the GPU reductions.
 *
 * Conventions shared by every function:
 * - "vectors" are task vectors (or masks, or merged task vectors) aligned with each other; index i of every output
 *   list refers to vectors[i].
 * - A layer group is one residual block (`layer` = its index, from scaling.ts layerIndexOf) or every tensor outside
 *   the blocks (`layer` = null: embeddings, pre/post norms, heads). Per-layer lists hold the null group first (when it
 *   has tensors), then blocks by ascending index.
 * - Whole-model results ("total") run over all tensors. A cosine with a zero-norm vector is 0.
 */
import { layerIndexOf } from '../methods/scaling';
import { refTaskVectors, sortedNames, type RefModel } from './refModel';
import { sortedModelMagnitudes, tiesThresholdSorted } from './methods/topk';

/** The tensors of one layer group. */
export interface LayerGroup {
  layer: number | null;
  tensors: string[];
}

/** Groups tensor names by residual block (see the file comment); tensors sorted by name within a group. */
export function layerGroups(names: Iterable<string>): LayerGroup[] {
  const byLayer = new Map<number | null, string[]>();
  for (const name of [...names].sort()) {
    const l = layerIndexOf(name);
    const list = byLayer.get(l) ?? [];
    list.push(name);
    byLayer.set(l, list);
  }
  return [...byLayer.entries()]
    .sort(([a], [b]) => (a === null ? -1 : b === null ? 1 : a - b))
    .map(([layer, tensors]) => ({ layer, tensors }));
}

/** The merged task vector theta_merged - theta0. */
export function mergedTaskVector(base: RefModel, merged: RefModel): RefModel {
  return refTaskVectors(base, [merged])[0]!;
}

/** Pairwise cosine similarity over the whole model: [T][T], symmetric, 1 on the diagonal (0 for a zero vector). */
export function cosineMatrix(vectors: RefModel[]): number[][] {
  return cosineOver(vectors, sortedNames(first(vectors)));
}

/** Pairwise cosine similarity per layer group: one [T][T] matrix per group. */
export function cosineMatrixByLayer(vectors: RefModel[]): { layer: number | null; cos: number[][] }[] {
  return layerGroups(first(vectors).keys()).map((g) => ({ layer: g.layer, cos: cosineOver(vectors, g.tensors) }));
}

/** L2 norms of each vector: whole model (`total[i]`), per layer group and per tensor (sorted names). */
export interface NormReport {
  total: number[];
  layers: { layer: number | null; norms: number[] }[];
  tensors: { tensor: string; norms: number[] }[];
}

/** L2 norms of every vector (pass the merged task vector as the last one to compare it with the task vectors). */
export function normReport(vectors: RefModel[]): NormReport {
  const names = sortedNames(first(vectors));
  const sq = (v: RefModel, tensors: string[]) => Math.sqrt(tensors.reduce((s, n) => s + dot(data(v, n), data(v, n)), 0));
  return {
    total: vectors.map((v) => sq(v, names)),
    layers: layerGroups(names).map((g) => ({ layer: g.layer, norms: vectors.map((v) => sq(v, g.tensors)) })),
    tensors: names.map((tensor) => ({ tensor, norms: vectors.map((v) => sq(v, [tensor])) })),
  };
}

/** Sign statistics over a set of coordinates. */
export interface SignStats {
  /** Number of coordinates. */
  coordinates: number;
  /** Fraction of coordinates where some task's non-zero entry is positive and another's is negative. */
  conflictRate: number;
  /** Mean TIES sign agreement ratio |#pos - #neg| / (#pos + #neg) over coordinates (1 where all entries are 0). */
  agreement: number;
}

/** Sign conflicts between task vectors, whole model and per layer group. */
export function signConflicts(vectors: RefModel[]): { total: SignStats; layers: ({ layer: number | null } & SignStats)[] } {
  const names = sortedNames(first(vectors));
  return {
    total: signStatsOver(vectors, names),
    layers: layerGroups(names).map((g) => ({ layer: g.layer, ...signStatsOver(vectors, g.tensors) })),
  };
}

/** TIES sign agreement ratio of one coordinate's entries across tasks: |#pos - #neg| / (#pos + #neg), 1 if all are 0. */
export function signAgreementRatio(entries: ArrayLike<number>): number {
  let pos = 0, neg = 0;
  for (let i = 0; i < entries.length; i++) {
    if (entries[i]! > 0) pos++;
    else if (entries[i]! < 0) neg++;
  }
  return pos + neg === 0 ? 1 : Math.abs(pos - neg) / (pos + neg);
}

/**
 * Kept fraction of each mask (an entry counts as kept when it is non-zero, so masked task vectors work too):
 * `total[i]` over the whole model, `layers[g].kept[i]` per layer group.
 */
export function keptFractions(masks: RefModel[]): { total: number[]; layers: { layer: number | null; kept: number[] }[] } {
  const names = sortedNames(first(masks));
  const frac = (m: RefModel, tensors: string[]) => {
    let kept = 0, n = 0;
    for (const t of tensors) for (const x of data(m, t)) { n++; if (x !== 0) kept++; }
    return n === 0 ? 0 : kept / n;
  };
  return {
    total: masks.map((m) => frac(m, names)),
    layers: layerGroups(names).map((g) => ({ layer: g.layer, kept: masks.map((m) => frac(m, g.tensors)) })),
  };
}

/**
 * TALL / Consensus usage histogram: `total[c]` = number of weights used by exactly c of the T masks (c = 0..T;
 * 0 = "catastrophic", 1 = "selfish", >= 2 = general), and the same per layer group in `layers[g].counts`.
 */
export function usageHistogram(masks: RefModel[]): { total: number[]; layers: { layer: number | null; counts: number[] }[] } {
  const names = sortedNames(first(masks));
  const hist = (tensors: string[]) => {
    const h = new Array<number>(masks.length + 1).fill(0);
    for (const t of tensors) {
      const cols = masks.map((m) => data(m, t));
      for (let j = 0; j < cols[0]!.length; j++) h[cols.reduce((c, col) => c + (col[j]! !== 0 ? 1 : 0), 0)]!++;
    }
    return h;
  };
  return { total: hist(names), layers: layerGroups(names).map((g) => ({ layer: g.layer, counts: hist(g.tensors) })) };
}

/**
 * Norm kept by the TIES global trim: for each fraction k in `ks` (each in (0, 1]), ||trim_k(tau)|| / ||tau|| with the
 * ">=" threshold of TIES (0 for a zero vector). Output: one number per k, in the order of `ks`.
 */
export function topkNormRetained(tau: RefModel, ks: readonly number[]): number[] {
  const mags = sortedModelMagnitudes(tau);
  // suffix[i] = sum of squares of mags[i..]; the kept entries are a suffix of the ascending order.
  const suffix = new Float64Array(mags.length + 1);
  for (let i = mags.length - 1; i >= 0; i--) suffix[i] = suffix[i + 1]! + mags[i]! * mags[i]!;
  const total = Math.sqrt(suffix[0]!);
  return ks.map((k) => {
    if (total === 0) return 0;
    const threshold = tiesThresholdSorted(mags, k);
    return Math.sqrt(suffix[lowerBound(mags, threshold)]!) / total;
  });
}

function cosineOver(vectors: RefModel[], tensors: string[]): number[][] {
  const norms = vectors.map((v) => Math.sqrt(tensors.reduce((s, n) => s + dot(data(v, n), data(v, n)), 0)));
  return vectors.map((a, i) => vectors.map((b, j) => {
    if (norms[i] === 0 || norms[j] === 0) return 0;
    if (i === j) return 1;
    return tensors.reduce((s, n) => s + dot(data(a, n), data(b, n)), 0) / (norms[i]! * norms[j]!);
  }));
}

function signStatsOver(vectors: RefModel[], tensors: string[]): SignStats {
  let coordinates = 0, conflicts = 0, agreement = 0;
  const column = new Float64Array(vectors.length);
  for (const t of tensors) {
    const cols = vectors.map((v) => data(v, t));
    for (let j = 0; j < cols[0]!.length; j++) {
      cols.forEach((c, i) => { column[i] = c[j]!; });
      const sar = signAgreementRatio(column);
      coordinates++;
      agreement += sar;
      if (column.some((x) => x > 0) && column.some((x) => x < 0)) conflicts++;
    }
  }
  return { coordinates, conflictRate: coordinates ? conflicts / coordinates : 0, agreement: coordinates ? agreement / coordinates : 1 };
}

/** First index i with sorted[i] >= x (sorted ascending). */
function lowerBound(sorted: Float64Array, x: number): number {
  let lo = 0, hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function data(m: RefModel, name: string): Float64Array {
  const t = m.get(name);
  if (!t) throw new Error(`metrics: tensor ${name} is missing from a vector`);
  return t.data;
}

function first(vectors: RefModel[]): RefModel {
  const v = vectors[0];
  if (!v) throw new Error('metrics: need at least one vector');
  return v;
}
