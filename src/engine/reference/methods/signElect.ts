/**
 * TIES sign election and disjoint merge over trimmed task vectors.
 *
 * Election ("mass"): gamma_j = sign(sum_t x_tj).
 * - global (FusionBench / official TIES): a zero gamma_j is replaced by the majority sign sign(sum_j gamma_j) over the
 *   whole model, which may itself be 0 (then coordinate j keeps nothing).
 * - tensor (mergekit): gamma_j = +1 when sum_t x_tj >= 0, else -1 (zero goes to +1).
 * Disjoint merge: task t takes part at j when x_tj != 0 and sign(x_tj) == gamma_j (zeros never take part).
 */
import { mapModel, sortedNames, type RefModel } from '../refModel';
import { tensorOf, type Contributions } from './contributions';

/** How agreeing entries are combined: sum, mean (divide by the number of agreeing tasks) or max (largest magnitude). */
export type DisjointMerge = 'sum' | 'mean' | 'max';

/** Elected sign per coordinate (-1, 0 or +1) of trimmed task vectors; see the file comment for the two conventions. */
export function electSigns(trimmed: RefModel[], scope: 'global' | 'tensor'): RefModel {
  const first = trimmed[0]!;
  const signs = mapModel(first, (name, d) => {
    const s = new Float64Array(d.length);
    for (const x of trimmed) {
      const v = tensorOf(x, name).data;
      for (let i = 0; i < s.length; i++) s[i]! += v[i]!;
    }
    return scope === 'tensor' ? s.map((v) => (v >= 0 ? 1 : -1)) : s.map(Math.sign);
  });
  if (scope === 'tensor') return signs;
  let total = 0;
  for (const name of sortedNames(signs)) for (const g of tensorOf(signs, name).data) total += g;
  const majority = Math.sign(total);
  for (const t of signs.values()) t.data.forEach((g, i) => { if (g === 0) t.data[i] = majority; });
  return signs;
}

/**
 * Per-task contributions of the disjoint merge: c_tj = x_tj for agreeing tasks (sum), x_tj / #agreeing (mean), or
 * x_tj for the one agreeing task of largest |x_tj| and 0 for the others (max; the lowest task index wins ties).
 */
export function disjointContributions(trimmed: RefModel[], signs: RefModel, merge: DisjointMerge): Contributions {
  const out: Contributions = trimmed.map((x) => mapModel(x, (_, d) => new Float64Array(d.length)));
  for (const [name, g] of signs) {
    const xs = trimmed.map((x) => tensorOf(x, name).data);
    const cs = out.map((c) => tensorOf(c, name).data);
    for (let j = 0; j < g.data.length; j++) {
      const gamma = g.data[j]!;
      const agree = (v: number) => v !== 0 && Math.sign(v) === gamma;
      if (merge === 'max') {
        let best = -1;
        xs.forEach((x, t) => { if (agree(x[j]!) && (best < 0 || Math.abs(x[j]!) > Math.abs(xs[best]![j]!))) best = t; });
        if (best >= 0) cs[best]![j] = xs[best]![j]!;
        continue;
      }
      let count = 0;
      for (const x of xs) if (agree(x[j]!)) count++;
      const div = merge === 'mean' ? Math.max(count, 1) : 1;
      xs.forEach((x, t) => { if (agree(x[j]!)) cs[t]![j] = x[j]! / div; });
    }
  }
  return out;
}
