/**
 * Pure data shaping for the step-wise charts: average accuracy on the tasks seen so far over several merge orders
 * (mean, min, max, sample std per step), per-task curves, OPCM's per-layer diagnostics as a layer x step grid,
 * lambda_t next to sqrt(t), and the coefficient sweep.
 */
import type { StepDiagnostics } from '../../engine/merge/continual';
import type { LayerDiagnostics } from '../../engine/reference/opcm';
import { layerIndexOf } from '../../engine/methods/scaling';
import { shortTensorName } from '../format';

/** acc[step][task]: accuracy (%) on task `task` after step + 1 models; null or NaN where not evaluated. */
export type AccMatrix = readonly (readonly (number | null)[])[];

/** One merge order of a continual run. */
export interface OrderAccuracy {
  /** Task indices in merge order. */
  order: readonly number[];
  acc: AccMatrix;
}

export interface ContinualMethodRuns {
  id: string;
  label: string;
  orders: readonly OrderAccuracy[];
}

const finite = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);

/** Average accuracy on the tasks merged so far (order[0..step]) after each step; null where none of them was scored. */
export function seenAverages(run: OrderAccuracy): (number | null)[] {
  return run.acc.map((row, step) => {
    const xs = run.order.slice(0, step + 1).map((task) => row[task]).filter(finite);
    return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
  });
}

/** Mean, extremes and sample standard deviation (null for fewer than 2 values) of some numbers. */
export interface Spread {
  mean: number;
  min: number;
  max: number;
  std: number | null;
  n: number;
}

export function spreadOf(xs: readonly number[]): Spread | null {
  if (xs.length === 0) return null;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1)) : null;
  return { mean, min: Math.min(...xs), max: Math.max(...xs), std, n: xs.length };
}

/** Per step (1-based t), the spread over the orders of the seen-task average. */
export function continualSpread(method: ContinualMethodRuns): ({ t: number } & Spread)[] {
  const avgs = method.orders.map(seenAverages);
  const steps = Math.max(0, ...avgs.map((a) => a.length));
  const out: ({ t: number } & Spread)[] = [];
  for (let s = 0; s < steps; s++) {
    const sp = spreadOf(avgs.map((a) => a[s]).filter(finite));
    if (sp) out.push({ t: s + 1, ...sp });
  }
  return out;
}

export type StepRow = { t: number } & Record<string, number | [number, number] | undefined>;

/** Chart rows for several methods: `${id}` = mean over orders, `${id}_band` = [min, max] (only with 2+ orders). */
export function continualRows(methods: readonly ContinualMethodRuns[]): StepRow[] {
  const byStep = new Map<number, StepRow>();
  for (const m of methods) {
    for (const s of continualSpread(m)) {
      const row = byStep.get(s.t) ?? { t: s.t };
      row[m.id] = s.mean;
      if (s.n > 1) row[`${m.id}_band`] = [s.min, s.max];
      byStep.set(s.t, row);
    }
  }
  return [...byStep.values()].sort((a, b) => a.t - b.t);
}

/** Per-task accuracy of one method after each step, averaged over the orders in which the task was scored. */
export function perTaskRows(method: ContinualMethodRuns, tasks: number): StepRow[] {
  const steps = Math.max(0, ...method.orders.map((o) => o.acc.length));
  return Array.from({ length: steps }, (_, s) => {
    const row: StepRow = { t: s + 1 };
    for (let task = 0; task < tasks; task++) {
      const xs = method.orders.map((o) => o.acc[s]?.[task]).filter(finite);
      if (xs.length) row[`task${task}`] = xs.reduce((a, b) => a + b, 0) / xs.length;
    }
    return row;
  });
}

/** OPCM diagnostics as a grid: one row per projected Linear weight (or per block), one column per step. */
export interface LayerStepGrid {
  /** Row labels and their tooltips (full tensor names or the block). */
  rows: { label: string; title: string }[];
  /** Columns: step t (1-based); step 1 projects nothing and is left out. */
  steps: number[];
  /** Protected rank r ([row][column]; null where the row was not projected at that step). Mean r per block. */
  rank: (number | null)[][];
  /** Removed-energy ratio ||tau - tau~||^2 / ||tau||^2; per block, the same ratio over the block's weights. */
  removed: (number | null)[][];
}

/** A tensor name as a short grid label: the block index and the module (`3.mlp.fc1`). */
export function weightLabel(tensor: string): string {
  return shortTensorName(tensor).replace(/^(.*\.)?(layers|resblocks|h|layer|blocks)\.(\d+)\./, '$3.').replace(/\.w$/, '');
}

/** Arranges the per-layer diagnostics of every step; `group` = 'block' pools the weights of each residual block. */
export function opcmGrid(steps: readonly StepDiagnostics[], group: 'weight' | 'block'): LayerStepGrid {
  const withLayers = steps.filter((s) => s.layers.length > 0);
  const keyOf = (d: LayerDiagnostics) => (group === 'weight' ? d.tensor : String(layerIndexOf(d.tensor) ?? 'other'));
  const keys: string[] = [];
  for (const s of withLayers) for (const d of s.layers) if (!keys.includes(keyOf(d))) keys.push(keyOf(d));
  if (group === 'block') keys.sort((a, b) => (a === 'other' ? -1 : b === 'other' ? 1 : Number(a) - Number(b)));
  const cell = (s: StepDiagnostics, key: string, f: (ds: LayerDiagnostics[]) => number) => {
    const ds = s.layers.filter((d) => keyOf(d) === key);
    return ds.length ? f(ds) : null;
  };
  const meanRank = (ds: LayerDiagnostics[]) => ds.reduce((a, d) => a + d.protectedRank, 0) / ds.length;
  // Pooled ratio: sum of removed energy over sum of energy, i.e. the ratio of the block's weights taken together.
  const pooledRemoved = (ds: LayerDiagnostics[]) => {
    const energy = ds.reduce((a, d) => a + d.tauNorm ** 2, 0);
    return energy > 0 ? ds.reduce((a, d) => a + d.removedEnergy * d.tauNorm ** 2, 0) / energy : 0;
  };
  return {
    rows: keys.map((k) => (group === 'weight' ? { label: weightLabel(k), title: k } : { label: k === 'other' ? 'other' : `block ${k}`, title: k === 'other' ? 'weights outside the blocks' : `Linear weights of block ${k}` })),
    steps: withLayers.map((s) => s.step + 1),
    rank: keys.map((k) => withLayers.map((s) => cell(s, k, meanRank))),
    removed: keys.map((k) => withLayers.map((s) => cell(s, k, pooledRemoved))),
  };
}

/** lambda_t and sqrt(t) per step, plus the norms the continual chart shows. */
export function stepRows(steps: readonly StepDiagnostics[]) {
  return steps.map((s) => ({ t: s.step + 1, lambda: s.lambda, sqrtT: s.sqrtT, incoming: s.taskVectorNorm, mean: s.meanNorm, merged: s.mergedNorm }));
}

/** One point of a coefficient sweep. */
export interface SweepPoint {
  value: number;
  average: number;
  perTask?: Record<string, number>;
}

/** Sweep rows sorted by value: `average` plus one key per task id (`task:<id>`). */
export function sweepRows(points: readonly SweepPoint[]): Record<string, number>[] {
  return [...points]
    .sort((a, b) => a.value - b.value)
    .map((p) => {
      const row: Record<string, number> = { value: p.value, average: p.average };
      for (const [id, v] of Object.entries(p.perTask ?? {})) row[`task:${id}`] = v;
      return row;
    });
}

/** The sweep point with the best average (the first one on ties), or null for an empty sweep. */
export function bestPoint(points: readonly SweepPoint[]): SweepPoint | null {
  return points.reduce<SweepPoint | null>((best, p) => (best === null || p.average > best.average ? p : best), null);
}
