/**
 * Pure data shaping for the interference charts: an InterferenceReport (per layer group: tensors outside the blocks
 * first, then blocks 0..L-1) turned into recharts rows with percentages, plus the axis helpers the charts share.
 * No React here, so every number a chart draws can be unit-tested.
 */
import type { InterferenceReport, SignStats } from '../../engine/merge/metrics';

export type Layer = number | null;

/** Axis label of a layer group: "other" for the tensors outside the blocks (embeddings, norms, head), else the block index. */
export function layerLabel(layer: Layer): string {
  return layer === null ? 'other' : String(layer);
}

/** Long label of a layer group, for tooltips and descriptions. */
export function layerTitle(layer: Layer): string {
  return layer === null ? 'outside the blocks (embeddings, norms, head)' : `block ${layer}`;
}

/** A recharts tooltip title for rows that carry `layer`. */
export function layerTooltipLabel(_label: unknown, payload?: readonly { payload?: unknown }[]): string {
  const row = payload?.[0]?.payload as { layer?: Layer } | undefined;
  return layerTitle(row?.layer ?? null);
}

/** The x-axis title every per-layer chart uses. */
export const LAYER_AXIS = 'layer (block; other = outside the blocks)';

const pct = (x: number) => 100 * x;

/** What the sign chart plots per layer: the share of coordinates in conflict, or the mean sign agreement ratio. */
export type SignMeasure = 'conflicts' | 'agreement';

export interface SignConflictRow {
  label: string;
  layer: Layer;
  /**
   * Conflicts: % of coordinates whose task-vector entries disagree in sign. Agreement: the mean over coordinates of
   * TIES' sign agreement ratio |#pos - #neg| / (#pos + #neg), in % (100: every coordinate's entries share one sign).
   */
  before: number;
  /** The same among the method's contributions (after trimming/masking), when the method reports them. */
  after?: number;
}

const signValue = (s: SignStats, measure: SignMeasure) => pct(measure === 'conflicts' ? s.conflictRate : s.agreement);

/**
 * Per-layer sign conflicts (%) or mean sign agreement (%) before and, when present, after the method. With many tasks
 * nearly every coordinate has some conflict (8 independent signs agree with probability 2^-7), so the conflict rate
 * saturates near 100 % and the agreement ratio is the one that still tells layers and methods apart.
 */
export function signConflictRows(i: InterferenceReport, measure: SignMeasure = 'conflicts'): SignConflictRow[] {
  const after = new Map<Layer, SignStats>((i.signs.contributions?.layers ?? []).map((l) => [l.layer, l]));
  return i.signs.taskVectors.layers.map((l) => {
    const row: SignConflictRow = { label: layerLabel(l.layer), layer: l.layer, before: signValue(l, measure) };
    const a = after.get(l.layer);
    if (a) row.after = signValue(a, measure);
    return row;
  });
}

/** Usage classes of TALL / Consensus masks (methods.md 7 and 11): how many of the T task masks use a weight. */
export const USAGE_CLASSES = [
  { key: 'catastrophic', label: 'catastrophic (used by no task)' },
  { key: 'selfish', label: 'selfish (used by 1 task)' },
  { key: 'general', label: 'general (used by ≥ 2 tasks)' },
] as const;
export type UsageClass = (typeof USAGE_CLASSES)[number]['key'];

/** Splits a usage histogram counts[c] (c = 0..T) into the three classes, as % of the weights. */
export function usageClasses(counts: readonly number[]): Record<UsageClass, number> {
  const total = counts.reduce((a, b) => a + b, 0);
  const share = (n: number) => (total > 0 ? pct(n / total) : 0);
  return {
    catastrophic: share(counts[0] ?? 0),
    selfish: share(counts[1] ?? 0),
    general: share(counts.slice(2).reduce((a, b) => a + b, 0)),
  };
}

export type UsageRow = { label: string; layer: Layer } & Record<UsageClass, number>;

/** Per-layer usage classes (%), or null when the method builds no TALL masks. */
export function usageRows(i: InterferenceReport): UsageRow[] | null {
  return i.usage ? i.usage.layers.map((l) => ({ label: layerLabel(l.layer), layer: l.layer, ...usageClasses(l.counts) })) : null;
}

/** Rows keyed `m0..m{T-1}` (one per model) plus a label: the shape of every per-model, per-layer series. */
export type ModelRow = { label: string; layer: Layer } & Record<string, number | string | Layer>;

export const modelKey = (m: number) => `m${m}`;

/** Per-layer kept fraction (%) of each task's contributions, or null when the method reports none. */
export function keptRows(i: InterferenceReport): ModelRow[] | null {
  if (!i.kept) return null;
  return i.kept.layers.map((l) => {
    const row: ModelRow = { label: layerLabel(l.layer), layer: l.layer };
    l.kept.forEach((k, m) => (row[modelKey(m)] = pct(k)));
    return row;
  });
}

/**
 * Whether the merge masked anything: TALL usage counts, or some task keeping less than all of its entries. A method
 * whose contributions are the task vectors themselves (LiNeS over Task Arithmetic) keeps 100 % and masks nothing.
 */
export function hasMaskData(i: InterferenceReport): boolean {
  return i.usage !== null || (i.kept !== null && i.kept.total.some((k) => k < 1));
}

/** Per-layer L2 norms: `m0..m{T-1}` for the task vectors and `merged` for the merged task vector. */
export function layerNormRows(i: InterferenceReport): ModelRow[] {
  return i.norms.layers.map((l) => {
    const row: ModelRow = { label: layerLabel(l.layer), layer: l.layer };
    const T = l.norms.length - 1;
    l.norms.forEach((n, m) => (row[m < T ? modelKey(m) : 'merged'] = n));
    return row;
  });
}

/** The cosine matrices a heatmap can show: the whole model first, then each layer group. */
export function cosineChoices(i: InterferenceReport): { key: string; label: string; cos: number[][] }[] {
  return [{ key: 'total', label: 'whole model', cos: i.cosine.total }, ...i.cosine.layers.map((l) => ({ key: layerLabel(l.layer), label: layerTitle(l.layer), cos: l.cos }))];
}

/** The largest |cosine| off the diagonal (the diagonal is 1 by definition and says nothing). */
export function maxOffDiagonal(cos: readonly (readonly number[])[]): number {
  let m = 0;
  cos.forEach((row, i) => row.forEach((v, j) => i !== j && Number.isFinite(v) && (m = Math.max(m, Math.abs(v)))));
  return m;
}

/** The smallest of 1, 2, 2.5, 5 times a power of ten that is >= x (x > 0): a round colour-scale limit. */
export function niceCeil(x: number): number {
  if (!(x > 0) || !Number.isFinite(x)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(x)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= x * (1 - 1e-12)) return m * p;
  return 10 * p;
}

/**
 * Bounds of a log axis that show every positive value: outward to quarter decades, since recharts' automatic
 * log domain can clip the smallest series. Zeros and non-finite values are ignored; null when nothing is positive.
 */
export function logDomain(values: Iterable<number>): [number, number] | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v > 0 && Number.isFinite(v)) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  if (lo === Infinity) return null;
  const down = Math.pow(10, Math.floor(Math.log10(lo) * 4) / 4);
  const up = Math.pow(10, Math.ceil(Math.log10(hi) * 4) / 4);
  return [down, up > down ? up : down * 10];
}

/** Every numeric value of some keys across rows (for axis bounds). */
export function valuesOf(rows: readonly Record<string, unknown>[], keys: readonly string[]): number[] {
  return rows.flatMap((r) => keys.map((k) => r[k]).filter((v): v is number => typeof v === 'number'));
}

/** A percentage for tooltips and text: one decimal, or two below 1 %. */
export function formatPct(v: number): string {
  return `${Math.abs(v) < 1 && v !== 0 ? v.toFixed(2) : v.toFixed(1)} %`;
}

/** Width of one tick-label character at the charts' font size (measured on the rendered page). */
const TICK_CHAR_PX = 8;
/** Width recharts gives a y axis. */
const Y_AXIS_PX = 60;

/**
 * Left chart margin that keeps the first x tick label inside the chart when labels are drawn at `angleDeg` ending at
 * their tick (textAnchor "end"), the tick being at the plot's left edge or further right: the label's horizontal
 * extent less the y axis's width, and at least `min`.
 */
export function slantedLabelMargin(label: string, angleDeg: number, min: number): number {
  const extent = Math.ceil(label.length * TICK_CHAR_PX * Math.cos((angleDeg * Math.PI) / 180));
  return Math.max(min, extent - Y_AXIS_PX + 8);
}
