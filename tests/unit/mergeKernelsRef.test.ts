/**
 * The CPU twins of the merge kernels (src/engine/reference/mergeKernels.ts, mergeReductions.ts) against the
 * float64 references (src/engine/reference/methods/*, metrics.ts), tensor by tensor, on f32-representable data.
 *
 * Task vectors are multiples of 1/16 in [-2, 2] (many zeros, equal magnitudes, exact cancellations), so every f32
 * column sum is exact and f32 decisions (trim, sign election, TALL masks with binary lambdas) must equal the
 * float64 ones exactly. Tolerances: the mean merge multiplies by round_f32(1/n) and DARE scales by an f32
 * 1/(1-p), both within 2^-23 relative of the float64 quotient (exact when n or 1/(1-p) is a power of two);
 * norms, cosines and the mean sign agreement come from f32 partial sums, within 1e-6.
 */
import { describe, expect, it } from 'vitest';
import { REDUCTION_CHUNK } from '../../src/engine/gpu/mergeReductions';
import {
  bitmaskApplyRef,
  bitsOf,
  countMaskRef,
  dareDropRef,
  disjointMergeRef,
  magmaxSelectRef,
  tallMaskRef,
  trimMaskRef,
} from '../../src/engine/reference/mergeKernels';
import { gramRef, rowStatsRef, signStatsRef, signSumRef, usageHistogramRef } from '../../src/engine/reference/mergeReductions';
import { maskModel, sumContributions, type Contributions } from '../../src/engine/reference/methods/contributions';
import { dareDrop } from '../../src/engine/reference/methods/dare';
import { magmaxContributions } from '../../src/engine/reference/methods/magmax';
import { consensusMask, maskCounts, tallTaskMasks } from '../../src/engine/reference/methods/masks';
import type { DisjointMerge } from '../../src/engine/reference/methods/signElect';
import { globalThreshold, tiesContributions, tiesTrim } from '../../src/engine/reference/methods/ties';
import { cosineMatrix, keptFractions, normReport, signConflicts, usageHistogram } from '../../src/engine/reference/metrics';
import { sortedNames, type RefModel } from '../../src/engine/reference/refModel';
import { rngKey, stringId } from '../../src/engine/rng';
import { seededRandom } from '../helpers/safetensorsFixtures';

const ROWS = [1, 3, 8, 20];
const SHAPES: Record<string, number[]> = { 'blocks.0.mlp.weight': [7, 9], 'blocks.1.bias': [13], 'head.scale': [1] };

/** T task vectors on the 1/16 grid: a third zeros (both signs), the rest in [-2, 2]. */
function gridTaus(rows: number, seed: number, shapes = SHAPES): RefModel[] {
  const rng = seededRandom(seed);
  const value = () => (rng() < 0.33 ? (rng() < 0.5 ? 0 : -0) : Math.round((rng() * 4 - 2) * 16) / 16);
  return Array.from({ length: rows }, () =>
    new Map(Object.entries(shapes).map(([name, shape]) => {
      const n = shape.reduce((a, b) => a * b, 1);
      return [name, { shape, data: Float64Array.from({ length: n }, value) }];
    })),
  );
}

/** Tensor `name` of every model as an f32 stack [rows, numel]. */
function stackOf(models: RefModel[], name: string): Float32Array {
  const n = models[0]!.get(name)!.data.length;
  const out = new Float32Array(models.length * n);
  models.forEach((m, r) => out.set(m.get(name)!.data, r * n));
  return out;
}

const f32BitsOf = (x: number) => bitsOf(new Float32Array([x]))[0]!;

/** Expects the stack to equal tensor `name` of each model: exactly (=== , so -0 equals +0), or within rtol. */
function expectRows(what: string, stack: Float32Array, models: RefModel[], name: string, rtol = 0): void {
  const n = models[0]!.get(name)!.data.length;
  const bad: string[] = [];
  models.forEach((m, r) => m.get(name)!.data.forEach((want, j) => {
    const got = stack[r * n + j]!;
    const ok = rtol === 0 ? got === want : Math.abs(got - want) <= rtol * Math.abs(want);
    if (!ok && bad.length < 5) bad.push(`${name}[${r}, ${j}] twin ${got} ref ${want}`);
  }));
  expect(bad, what).toEqual([]);
}

const signOf = (x: number): -1 | 0 | 1 => (x > 0 ? 1 : x < 0 ? -1 : 0);

describe('TIES: trim_mask + sign_sum + disjoint_merge twins = tiesContributions', () => {
  const MERGES: DisjointMerge[] = ['sum', 'mean', 'max'];

  /** The twins' TIES, global scope: per-task threshold bits, majority over every tensor, then the merge. */
  function twinTies(taus: RefModel[], k: number, merge: DisjointMerge): Map<string, Float32Array> {
    const thresholds = Uint32Array.from(taus, (tau) => {
      const t = globalThreshold(tau, k);
      return t === -Infinity ? 0 : f32BitsOf(t);
    });
    const names = sortedNames(taus[0]!);
    const stacks = new Map(names.map((name) => [name, stackOf(taus, name)]));
    let total = 0;
    for (const [name, s] of stacks) {
      const n = s.length / taus.length;
      trimMaskRef(s, taus.length, n, thresholds);
      expectRows(`trim ${name}`, s, taus.map((tau) => tiesTrim(tau, k, 'global')), name);
      total += signSumRef(s, taus.length, n);
    }
    const majority = signOf(total);
    for (const s of stacks.values()) disjointMergeRef(s, taus.length, s.length / taus.length, merge, { rule: 'majority', majority });
    return stacks;
  }

  it.each(ROWS)('global scope, %i tasks, every merge, k = 0.2, 0.5, 1', (rows) => {
    for (const k of [0.2, 0.5, 1]) {
      for (const merge of MERGES) {
        const taus = gridTaus(rows, rows * 10 + k * 100);
        const ref: Contributions = tiesContributions(taus, { k, merge, scope: 'global' });
        for (const [name, s] of twinTies(taus, k, merge)) expectRows(`${merge} k ${k}`, s, ref, name, merge === 'mean' ? 2 ** -23 : 0);
      }
    }
  });

  it('elects nothing where every column cancels exactly and the majority is 0', () => {
    const t = (v: number[]): RefModel => new Map([['w', { shape: [v.length], data: Float64Array.from(v) }]]);
    const taus = [t([1, -1, 0.5, 0]), t([-1, 1, -0.5, 0])];
    const stacks = twinTies(taus, 1, 'sum');
    expect(Array.from(stacks.get('w')!)).toEqual(new Array(8).fill(0));
    expectRows('cancellation', stacks.get('w')!, tiesContributions(taus, { k: 1, merge: 'sum', scope: 'global' }), 'w');
  });

  it.each(ROWS)('tensor scope (zero sum elects +1), %i tasks, no trim', (rows) => {
    for (const merge of MERGES) {
      const taus = gridTaus(rows, rows + 500);
      const ref = tiesContributions(taus, { k: 1, merge, scope: 'tensor' });
      for (const name of sortedNames(taus[0]!)) {
        const s = stackOf(taus, name);
        disjointMergeRef(s, rows, s.length / rows, merge, { rule: 'plus' });
        expectRows(`tensor ${merge}`, s, ref, name, merge === 'mean' ? 2 ** -23 : 0);
      }
    }
  });
});

describe('DARE: dare_drop twin = dareDrop', () => {
  it.each(ROWS)('%i tasks, p 0.5 (exact scale), 0.3 and 0.9, rescaled or not, whole and chunked', (rows) => {
    const seed = 1234;
    for (const p of [0.5, 0.3, 0.9]) {
      for (const rescale of [true, false]) {
        const taus = gridTaus(rows, rows + p * 10);
        const scale = rescale ? 1 / (1 - p) : 1;
        const rtol = scale === 1 || p === 0.5 ? 0 : 2 ** -23;
        const ref = taus.map((tau, t) => dareDrop(tau, t, { p, rescale, seed, linearOnly: false }));
        for (const name of sortedNames(taus[0]!)) {
          const keys = Uint32Array.from(taus, (_, t) => rngKey(seed, t, stringId(name)));
          const whole = stackOf(taus, name);
          const n = whole.length / rows;
          dareDropRef(whole, rows, n, { keys, elementOffset: 0, p, scale });
          expectRows(`dare p ${p} rescale ${rescale}`, whole, ref, name, rtol);
          // Two chunks with elementOffset give the same result.
          const cut = Math.floor(n / 2);
          const pieces = stackOf(taus, name);
          for (const [from, to] of [[0, cut], [cut, n]] as const) {
            const chunk = new Float32Array(rows * (to - from));
            for (let r = 0; r < rows; r++) chunk.set(pieces.subarray(r * n + from, r * n + to), r * (to - from));
            dareDropRef(chunk, rows, to - from, { keys, elementOffset: from, p, scale });
            for (let r = 0; r < rows; r++) pieces.set(chunk.subarray(r * (to - from), (r + 1) * (to - from)), r * n + from);
          }
          expect(Array.from(bitsOf(pieces)), `chunked ${name}`).toEqual(Array.from(bitsOf(whole)));
        }
      }
    }
  });
});

describe('MagMax: magmax_select twin = magmaxContributions', () => {
  it.each(ROWS)('%i tasks, exact ties included', (rows) => {
    const taus = gridTaus(rows, rows + 77);
    const ref = magmaxContributions(taus);
    for (const name of sortedNames(taus[0]!)) {
      const s = stackOf(taus, name);
      magmaxSelectRef(s, rows, s.length / rows);
      expectRows('magmax', s, ref, name);
    }
  });
});

describe('TALL / Consensus: tall_mask, count_mask, bitmask_apply twins = masks.ts', () => {
  const LAMBDAS = [0.5, 0.25, 0.75, 1, 0.125];

  it.each(ROWS)('%i tasks: masks, counts, consensus for k = 0..T+1, per-task deltas', (rows) => {
    const taus = gridTaus(rows, rows + 900);
    const mtl = sumContributions(taus[0]!, taus);
    const lambdas = Float32Array.from({ length: rows }, (_, t) => LAMBDAS[t % LAMBDAS.length]!);
    const masks = tallTaskMasks(taus, mtl, (_, t) => lambdas[t]!);
    const counts = maskCounts(masks);
    for (const name of sortedNames(taus[0]!)) {
      const tau = stackOf(taus, name);
      const n = tau.length / rows;
      const mtlStack = stackOf([mtl], name);
      const twin = tallMaskRef(tau, rows, n, mtlStack, lambdas, true);
      expect(Array.from(twin.counts), `counts ${name}`).toEqual(Array.from(counts.get(name)!.data));
      masks.forEach((m, t) => {
        const bits = Array.from(twin.bitfield!, (b) => (b >>> t) & 1);
        expect(bits, `mask ${t} ${name}`).toEqual(Array.from(m.get(name)!.data));
        const delta = bitmaskApplyRef(twin.bitfield!, t, mtlStack, n);
        expectRows(`delta ${t}`, delta, [maskModel(mtl, m)], name);
      });
      for (const k of [0, 1, 2, rows + 1]) {
        const s = tau.slice();
        countMaskRef(s, rows, n, twin.counts, k);
        const cons = consensusMask(masks, k);
        expectRows(`consensus k ${k}`, s, taus.map((x) => maskModel(x, cons)), name);
      }
      expect(usageHistogramRef(twin.counts, n, rows), `histogram ${name}`).toEqual(usageHistogram(masks.map((m) => new Map([[name, m.get(name)!]]))).total);
    }
  });

  it('counts more than 32 tasks but packs bits only for the first 32', () => {
    const taus = gridTaus(34, 5, { w: [50] });
    const mtl = sumContributions(taus[0]!, taus);
    const tau = stackOf(taus, 'w');
    const twin = tallMaskRef(tau, 34, 50, stackOf([mtl], 'w'), new Float32Array(34).fill(0.5), true);
    const masks = tallTaskMasks(taus, mtl, () => 0.5);
    expect(Array.from(twin.counts)).toEqual(Array.from(maskCounts(masks).get('w')!.data));
    expect(Array.from(twin.bitfield!, (b) => (b >>> 31) & 1)).toEqual(Array.from(masks[31]!.get('w')!.data));
  });

  it('usage histogram refuses counts above the task count', () => {
    expect(() => usageHistogramRef(new Uint32Array([0, 4]), 2, 3)).toThrow(/count 4 at 1 exceeds 3 tasks/);
  });
});

describe('reductions: twins = metrics.ts', () => {
  /** One-tensor task vectors of `numel` seeded values: grid values, or arbitrary f32 values. */
  function vectors(rows: number, numel: number, seed: number, grid: boolean): RefModel[] {
    if (grid) return gridTaus(rows, seed, { w: [numel] });
    const rng = seededRandom(seed);
    return Array.from({ length: rows }, () => new Map([['w', { shape: [numel], data: Float64Array.from({ length: numel }, () => Math.fround(rng() < 0.2 ? 0 : rng() - 0.5)) }]]));
  }

  it.each(ROWS)('%i rows: row_stats = norms and kept fractions, gram = cosines, sign_stats = sign conflicts', (rows) => {
    for (const [numel, grid] of [[1, true], [257, false], [REDUCTION_CHUNK * 2 + 3, true], [REDUCTION_CHUNK + 1, false]] as const) {
      const vs = vectors(rows, numel, rows * 31 + numel, grid);
      const s = stackOf(vs, 'w');
      const what = `${rows}x${numel}`;
      const stats = rowStatsRef(s, rows, numel);
      const norms = normReport(vs).total;
      const kept = keptFractions(vs).total;
      stats.forEach((st, r) => {
        expect(Math.abs(Math.sqrt(st.sumSquares) - norms[r]!), `norm ${r} ${what}`).toBeLessThanOrEqual(1e-6 * norms[r]!);
        expect(st.nonZero / numel, `kept ${r} ${what}`).toBe(kept[r]);
        expect(st.nonFinite).toBe(0);
        const l1 = vs[r]!.get('w')!.data.reduce((a, x) => a + Math.abs(x), 0);
        expect(Math.abs(st.sumAbs - l1), `l1 ${r} ${what}`).toBeLessThanOrEqual(1e-6 * l1);
      });
      const g = gramRef(s, rows, numel);
      const cos = cosineMatrix(vs);
      for (let a = 0; a < rows; a++) {
        for (let b = 0; b < rows; b++) {
          const den = Math.sqrt(g[a * rows + a]! * g[b * rows + b]!);
          const c = den === 0 ? 0 : a === b ? 1 : g[a * rows + b]! / den;
          expect(Math.abs(c - cos[a]![b]!), `cos ${a},${b} ${what}`).toBeLessThanOrEqual(1e-6);
        }
      }
      const signs = signStatsRef(s, rows, numel);
      const ref = signConflicts(vs).total;
      expect(signs.columns).toBe(ref.coordinates);
      expect(signs.conflicts / signs.columns, `conflict rate ${what}`).toBe(ref.conflictRate);
      expect(Math.abs(signs.agreementSum / signs.columns - ref.agreement), `agreement ${what}`).toBeLessThanOrEqual(1e-6);
      let multi = 0;
      for (let j = 0; j < numel; j++) if (vs.filter((v) => v.get('w')!.data[j] !== 0).length >= 2) multi++;
      expect(signs.multi, `multi ${what}`).toBe(multi);
    }
  });

  it('row_stats counts infinities and NaN as non-finite (NaN as non-zero); sign stats ignore NaN like metrics.ts', () => {
    const s = new Float32Array([Infinity, NaN, -0, 1, NaN, -1, 0, 0]);
    const stats = rowStatsRef(s, 2, 4);
    expect(stats.map((x) => [x.nonZero, x.nonFinite])).toEqual([[3, 2], [2, 1]]);
    const signs = signStatsRef(s, 2, 4);
    const v = (d: number[]): RefModel => new Map([['w', { shape: [4], data: Float64Array.from(d) }]]);
    const ref = signConflicts([v([Infinity, NaN, -0, 1]), v([NaN, -1, 0, 0])]).total;
    expect(signs.conflicts / 4).toBe(ref.conflictRate);
    expect(signs.agreementSum / 4).toBe(ref.agreement);
  });

  it('sign_sum twin = sum of float64 column signs on grid data', () => {
    const taus = gridTaus(8, 3, { w: [REDUCTION_CHUNK + 5] });
    const s = stackOf(taus, 'w');
    let want = 0;
    for (let j = 0; j < REDUCTION_CHUNK + 5; j++) want += signOf(taus.reduce((a, t) => a + t.get('w')!.data[j]!, 0));
    expect(signSumRef(s, 8, REDUCTION_CHUNK + 5)).toBe(want);
  });
});
