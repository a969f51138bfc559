/**
 * Per-layer scale curves <-> coefficient settings (src/engine/methods/scaling.ts). A curve holds one value per
 * residual block 0..L-1; the setting it becomes is read by the engine exactly as drawn: a list of L values is a
 * gradient sampled at t = l / (L - 1), so value l applies to block l, and tensors outside the blocks take value 0.
 * Filter curves become `{"filter": ..., "value": ...}` rules ahead of a catch-all rule for every other tensor.
 * Output is compact: a constant curve is a number and a straight line is [first, last] (the LiNeS form).
 * Curves edited point by point are rounded to 4 decimals; values read from a setting and presets are kept exact.
 */
import { gradientAt, type CoefficientRule, type CoefficientSetting, type Gradient } from '../../engine/methods/scaling';

/** The curves of a setting: `all` for every tensor no filter catches (null: such tensors keep the parameter's default). */
export interface LayerCurves {
  all: number[] | null;
  /** In rule order: the first filter that is a substring of a tensor name wins. */
  filters: { filter: string; values: number[] }[];
}

/** Values set point by point are kept to 4 decimals: enough for any slider, and links stay short. */
export const roundValue = (v: number) => Math.round(v * 1e4) / 1e4;

/** The gradient sampled at each block: value l at t = l / (L - 1). */
export function sampleGradient(g: Gradient, layers: number): number[] {
  return Array.from({ length: layers }, (_, l) => gradientAt(g, layers > 1 ? l / (layers - 1) : 0));
}

const isNumberList = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && Number.isFinite(x));
const isGradient = (v: unknown): v is Gradient => (typeof v === 'number' && Number.isFinite(v)) || isNumberList(v);

/**
 * Curves of a setting, or null when it is not a per-layer curve: per-task settings and tables vary by task or by
 * tensor, which a curve over the layers cannot show. Rules after a catch-all, and repeats of a filter, are never
 * reached by the engine and are dropped.
 */
export function curvesFromSetting(value: unknown, layers: number): LayerCurves | null {
  if (isGradient(value)) return { all: sampleGradient(value, layers), filters: [] };
  if (!Array.isArray(value) || value.length === 0) return null;
  const curves: LayerCurves = { all: null, filters: [] };
  for (const rule of value) {
    if (typeof rule !== 'object' || rule === null || !isGradient((rule as CoefficientRule).value)) return null;
    const { filter, value: g } = rule as CoefficientRule;
    if (filter !== undefined && typeof filter !== 'string') return null;
    if (filter === undefined || filter === '*') {
      curves.all = sampleGradient(g, layers);
      break;
    }
    if (!curves.filters.some((f) => f.filter === filter)) curves.filters.push({ filter, values: sampleGradient(g, layers) });
  }
  return curves;
}

/** The shortest gradient equal to the curve at every block: a number, [first, last] for a straight line, or the list. */
export function compressGradient(values: readonly number[]): Gradient {
  const v = [...values];
  if (v.length === 0) throw new Error('a layer curve needs at least one value');
  if (v.every((x) => x === v[0])) return v[0]!;
  const L = v.length;
  // A straight line within rounding noise: the engine's interpolation of [first, last] gives the same values.
  const line = (l: number) => v[0]! + ((v[L - 1]! - v[0]!) * l) / (L - 1);
  return v.every((x, l) => Math.abs(x - line(l)) <= 1e-14 * Math.max(1, Math.abs(x))) ? [v[0]!, v[L - 1]!] : v;
}

/** The coefficient setting of some curves (validateCoefficient accepts it unchanged). */
export function settingFromCurves(c: LayerCurves): CoefficientSetting {
  if (c.filters.length === 0) {
    if (!c.all) throw new Error('a layer curve setting needs a curve for all tensors or for some filter');
    return compressGradient(c.all);
  }
  const rules: CoefficientRule[] = c.filters.map((f) => ({ filter: f.filter, value: compressGradient(f.values) }));
  if (c.all) rules.push({ value: compressGradient(c.all) });
  return rules;
}

/** The curve a filter (null = all tensors) follows: its own, or else the all-tensor curve; null if neither exists. */
export function curveOf(c: LayerCurves, filter: string | null): number[] | null {
  if (filter === null) return c.all;
  return c.filters.find((f) => f.filter === filter)?.values ?? c.all;
}

/** Whether a filter has a curve of its own. */
export const hasOwnCurve = (c: LayerCurves, filter: string | null) => (filter === null ? c.all !== null : c.filters.some((f) => f.filter === filter));

/** Replaces (or creates, after the existing filters) the curve of a filter; null = the all-tensor curve. */
export function withCurve(c: LayerCurves, filter: string | null, values: readonly number[]): LayerCurves {
  const v = [...values];
  if (filter === null) return { all: v, filters: c.filters };
  const i = c.filters.findIndex((f) => f.filter === filter);
  const filters = i < 0 ? [...c.filters, { filter, values: v }] : c.filters.map((f, j) => (j === i ? { filter, values: v } : f));
  return { all: c.all, filters };
}

/** Drops a filter's own curve (its tensors follow the all-tensor curve again); needs an all-tensor curve to fall back on. */
export function withoutFilter(c: LayerCurves, filter: string): LayerCurves {
  return { all: c.all, filters: c.filters.filter((f) => f.filter !== filter) };
}

/** Sets one block's value; the whole edited curve is rounded, so values read from a long gradient stay short. */
export function withPoint(values: readonly number[], layer: number, v: number): number[] {
  return values.map((x, l) => roundValue(l === layer ? v : x));
}

export type Preset = { kind: 'constant'; value: number } | { kind: 'linear'; from: number; to: number } | { kind: 'lines'; alpha: number; beta: number };

/** Curves of the presets: a constant, a straight line from the first block to the last, LiNeS' alpha + beta l / (L - 1). */
export function presetCurve(p: Preset, layers: number): number[] {
  const g: Gradient = p.kind === 'constant' ? p.value : p.kind === 'linear' ? [p.from, p.to] : [p.alpha, p.alpha + p.beta];
  return sampleGradient(g, layers); // not rounded: a ramp must stay a straight line, which compresses to [first, last]
}

const FILTER_NAMES: Record<string, string> = { self_attn: 'attention', attn: 'attention', attention: 'attention', mlp: 'MLP', layer_norm: 'layer norms', norm: 'norms' };

/** A filter as the editor names it: "attention (self_attn)". */
export function filterLabel(filter: string): string {
  const name = FILTER_NAMES[filter];
  return !name || name.toLowerCase() === filter ? (name ?? filter) : `${name} (${filter})`;
}

/**
 * The usual filters (attention, MLP, layer norms) that some tensor of a model matches; of filters matching the
 * same tensors, the first listed is kept.
 */
export function filtersFor(tensors: readonly string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const f of Object.keys(FILTER_NAMES)) {
    const hits = tensors.filter((t) => t.includes(f));
    const key = hits.join('\n');
    if (hits.length === 0 || seen.has(key)) continue;
    seen.add(key);
    out.push(f);
  }
  return out;
}
