/**
 * Anisotropic scaling: any scalar coefficient of a method (`lambda`, a per-model `weight`, ...) may vary by layer,
 * by tensor-name filter, by task, or come from an explicit per-task x per-tensor table (aTLAS-style blocks).
 * Semantics follow mergekit's parameter settings: a list is a gradient interpolated piecewise-linearly over
 * t = layer / (layers - 1); tensors outside the numbered layers use t = 0; in a rule list the first rule whose
 * `filter` is a substring of the tensor name wins, and a rule without filter (or "*") matches everything.
 * LiNeS is the gradient [alpha, alpha + beta].
 */
import { ConfigError, preview } from '../errors';

/** A scalar, or a list of values interpolated across the layers (a gradient). */
export type Gradient = number | number[];
/** One filter rule. */
export interface CoefficientRule { filter?: string; value: Gradient }
/** Everything a coefficient parameter accepts. */
export type CoefficientSetting =
  | Gradient
  | CoefficientRule[]
  | { per_task: CoefficientSetting[] }
  | { table: Record<string, number[]>; default?: number };

/** Where a coefficient is evaluated: tensor name, task index and the model's number of layers. */
export interface CoefficientSite { tensor: string; task: number; layers: number }

const LAYER_PATTERNS = [/\.layers\.(\d+)\./, /\.resblocks\.(\d+)\./, /\.h\.(\d+)\./, /\.layer\.(\d+)\./, /\.blocks\.(\d+)\./, /^layers\.(\d+)\./, /^h\.(\d+)\./, /^blocks\.(\d+)\./];

/** Layer (residual block) index of a tensor from its name (`.layers.N.`, `.resblocks.N.`, `.h.N.`, ...); null outside blocks. */
export function layerIndexOf(tensor: string): number | null {
  for (const re of LAYER_PATTERNS) {
    const m = re.exec(tensor);
    if (m) return Number(m[1]);
  }
  return null;
}

/** Number of layers of a model: one more than the largest layer index among its tensor names (0 if none). */
export function countLayers(tensors: Iterable<string>): number {
  let max = -1;
  for (const t of tensors) max = Math.max(max, layerIndexOf(t) ?? -1);
  return max + 1;
}

/** Position t in [0, 1] of a tensor along the depth: layer / (layers - 1); 0 outside the numbered layers. */
export function depthOf(tensor: string, layers: number): number {
  const l = layerIndexOf(tensor);
  if (l === null || layers <= 1) return 0;
  return Math.min(1, l / (layers - 1));
}

/** Piecewise-linear value of a gradient at t in [0, 1]. */
export function gradientAt(g: Gradient, t: number): number {
  if (typeof g === 'number') return g;
  if (g.length === 1) return g[0]!;
  const x = t * (g.length - 1);
  const i = Math.min(Math.floor(x), g.length - 2);
  const f = x - i;
  return g[i]! * (1 - f) + g[i + 1]! * f;
}

/** Value of a coefficient setting at one tensor of one task. `fallback` is used when no rule matches. */
export function coefficientAt(setting: CoefficientSetting, site: CoefficientSite, fallback: number): number {
  if (typeof setting === 'number' || isNumberList(setting)) return gradientAt(setting as Gradient, depthOf(site.tensor, site.layers));
  if (Array.isArray(setting)) {
    for (const rule of setting) {
      if (rule.filter === undefined || rule.filter === '*' || site.tensor.includes(rule.filter)) {
        return gradientAt(rule.value, depthOf(site.tensor, site.layers));
      }
    }
    return fallback;
  }
  if ('per_task' in setting) {
    const s = setting.per_task[site.task];
    return s === undefined ? fallback : coefficientAt(s, site, fallback);
  }
  const row = setting.table[site.tensor];
  const v = row?.[site.task];
  return v ?? setting.default ?? fallback;
}

/** True if the setting is the same number for every tensor and task (lets fast paths skip per-tensor work). */
export function isUniform(setting: CoefficientSetting): setting is number {
  return typeof setting === 'number';
}

function isNumberList(v: unknown): v is number[] {
  return Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number');
}

const isFiniteNumber = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

function validateGradient(field: string, g: unknown): Gradient {
  if (isFiniteNumber(g)) return g;
  if (Array.isArray(g) && g.length > 0 && g.every(isFiniteNumber)) return g as number[];
  throw new ConfigError(field, `expected a number or a non-empty list of numbers (a per-layer gradient), got ${describe(g)}`);
}

/**
 * Checks an untrusted coefficient setting (from a CLI flag, a JSON config or a link) and returns it typed.
 * Accepted forms: 0.3 | [0.1, 0.5] | [{"filter": "mlp", "value": 0.5}, {"value": 0.3}] | {"per_task": [...]} |
 * {"table": {"tensor.name": [v_task0, v_task1, ...]}, "default": 0.3}.
 */
export function validateCoefficient(field: string, v: unknown, depth = 0): CoefficientSetting {
  if (isFiniteNumber(v) || isNumberList(v)) return validateGradient(field, v);
  if (Array.isArray(v)) {
    if (v.length === 0) throw new ConfigError(field, 'an empty list is not a coefficient');
    return v.map((rule, i) => {
      if (typeof rule !== 'object' || rule === null || Array.isArray(rule)) {
        throw new ConfigError(`${field}[${i}]`, `expected {"filter": "...", "value": ...}, got ${describe(rule)}`);
      }
      const r = rule as Record<string, unknown>;
      for (const k of Object.keys(r)) if (k !== 'filter' && k !== 'value') throw new ConfigError(`${field}[${i}].${k}`, 'unknown key (allowed: filter, value)');
      if (r.filter !== undefined && typeof r.filter !== 'string') throw new ConfigError(`${field}[${i}].filter`, 'must be a string');
      if (r.value === undefined) throw new ConfigError(`${field}[${i}].value`, 'missing: each rule needs a value (a number or a per-layer list)');
      const out: CoefficientRule = { value: validateGradient(`${field}[${i}].value`, r.value) };
      if (typeof r.filter === 'string') out.filter = r.filter;
      return out;
    });
  }
  if (typeof v === 'object' && v !== null && depth < 2) {
    const o = v as Record<string, unknown>;
    if ('per_task' in o) {
      if (!Array.isArray(o.per_task) || o.per_task.length === 0) throw new ConfigError(`${field}.per_task`, 'must be a non-empty list (one setting per model)');
      return { per_task: o.per_task.map((s, i) => validateCoefficient(`${field}.per_task[${i}]`, s, depth + 1)) };
    }
    if ('table' in o) {
      const t = o.table;
      if (typeof t !== 'object' || t === null || Array.isArray(t)) throw new ConfigError(`${field}.table`, 'must map tensor names to lists of per-task values');
      // No prototype: a row keyed "__proto__" must stay a row, and lookups must not find inherited members.
      const table = Object.create(null) as Record<string, number[]>;
      for (const [name, row] of Object.entries(t)) {
        if (!Array.isArray(row) || !row.every(isFiniteNumber)) throw new ConfigError(`${field}.table[${preview(name, 200)}]`, 'must be a list of numbers, one per model');
        table[name] = row as number[];
      }
      const out: { table: Record<string, number[]>; default?: number } = { table };
      if (o.default !== undefined) {
        if (!isFiniteNumber(o.default)) throw new ConfigError(`${field}.default`, 'must be a number');
        out.default = o.default;
      }
      return out;
    }
  }
  throw new ConfigError(field, `expected a number, a per-layer list, filter rules, {"per_task": [...]} or {"table": {...}}; got ${describe(v)}`);
}

function describe(v: unknown): string {
  return preview(v);
}
