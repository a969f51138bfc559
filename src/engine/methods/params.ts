/**
 * Method parameters: one schema per parameter (kind, default, allowed range or values, one-line meaning) drives
 * validation of configs, the CLI's `--set key=value`, share links and the page's controls alike.
 */
import { ConfigError, preview } from '../errors';
import { validateCoefficient, type CoefficientSetting } from './scaling';

interface ParamBase {
  name: string;
  /** One line for the UI and the CLI help. */
  description: string;
}
/** A plain number with a closed or half-open range. */
export interface NumberParam extends ParamBase {
  kind: 'number' | 'integer';
  default: number;
  min: number;
  max: number;
  /** Excluded bounds, e.g. DARE's p in [0, 1). */
  minExclusive?: boolean;
  maxExclusive?: boolean;
  /** Slider step in the UI. */
  step?: number;
}
/** A scaling coefficient: a number, or any anisotropic setting (see scaling.ts). `min`/`max` are the UI slider range only. */
export interface CoefficientParam extends ParamBase {
  kind: 'coefficient';
  /** A number, or "auto" where `allowAuto` (the method computes it). */
  default: number | 'auto';
  min: number;
  max: number;
  step?: number;
  /** Accepts the string "auto" (e.g. LiNeS alpha), resolved by the method. */
  allowAuto?: boolean;
}
export interface BooleanParam extends ParamBase {
  kind: 'boolean';
  default: boolean;
}
export interface EnumParam extends ParamBase {
  kind: 'enum';
  default: string;
  values: readonly string[];
}
/** A model order: a permutation of model indices, or "shuffle" (seeded). */
export interface OrderParam extends ParamBase {
  kind: 'order';
  default: 'given';
}
export type ParamSpec = NumberParam | CoefficientParam | BooleanParam | EnumParam | OrderParam;

/** Validated parameter values, defaults filled in. */
export type ParamValues = Record<string, number | boolean | string | number[] | CoefficientSetting>;

/** What a method declares about its parameters and inputs. */
export interface MethodSpec {
  id: string;
  label: string;
  /** One or two sentences for users. */
  summary: string;
  /** Source paper or project. */
  source: string;
  family: 'batch' | 'continual';
  params: ParamSpec[];
  models: { min: number; max?: number };
}

/** Fills defaults and validates `raw` against `spec`; unknown keys and bad values raise ConfigError listing what is allowed. */
export function resolveParams(spec: MethodSpec, raw: Record<string, unknown> = {}): ParamValues {
  const known = new Map(spec.params.map((p) => [p.name, p]));
  for (const key of Object.keys(raw)) {
    if (!known.has(key)) {
      const allowed = spec.params.map((p) => p.name).join(', ') || '(none)';
      throw new ConfigError(`params.${key}`, `unknown parameter for method '${spec.id}' (allowed: ${allowed})`);
    }
  }
  const out: ParamValues = {};
  for (const p of spec.params) out[p.name] = raw[p.name] === undefined ? defaultOf(p) : validateParam(p, raw[p.name]);
  return out;
}

function defaultOf(p: ParamSpec): ParamValues[string] {
  return p.default;
}

/** Validates one parameter value (already parsed from JSON or from a CLI string). */
export function validateParam(p: ParamSpec, v: unknown): ParamValues[string] {
  const field = `params.${p.name}`;
  switch (p.kind) {
    case 'number':
    case 'integer': {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConfigError(field, `expected a number in ${rangeText(p)}, got ${preview(v)}`);
      if (p.kind === 'integer' && !Number.isInteger(v)) throw new ConfigError(field, `expected an integer in ${rangeText(p)}, got ${v}`);
      const lowOk = p.minExclusive ? v > p.min : v >= p.min;
      const highOk = p.maxExclusive ? v < p.max : v <= p.max;
      if (!lowOk || !highOk) throw new ConfigError(field, `${v} is outside the allowed range ${rangeText(p)}`);
      return v;
    }
    case 'coefficient':
      if (v === 'auto' && p.allowAuto) return 'auto';
      return validateCoefficient(field, v);
    case 'boolean':
      if (typeof v !== 'boolean') throw new ConfigError(field, `expected true or false, got ${preview(v)}`);
      return v;
    case 'enum':
      if (typeof v !== 'string' || !p.values.includes(v)) throw new ConfigError(field, `expected one of ${p.values.join(', ')}, got ${preview(v)}`);
      return v;
    case 'order':
      if (v === 'given' || v === 'shuffle') return v;
      if (Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 0)) return v as number[];
      throw new ConfigError(field, `expected "given", "shuffle" or a list of model indices, got ${preview(v)}`);
  }
}

/** Human-readable interval, e.g. "(0, 1]". */
export function rangeText(p: NumberParam): string {
  return `${p.minExclusive ? '(' : '['}${p.min}, ${p.max}${p.maxExclusive ? ')' : ']'}`;
}

/**
 * Parses a `--set key=value` string for parameter `p`: numbers, true/false, enum words, or JSON (lists, rules, tables).
 */
export function parseParamText(p: ParamSpec, text: string): unknown {
  const t = text.trim();
  if (p.kind === 'enum' || (p.kind === 'order' && /^[a-z]+$/.test(t)) || (p.kind === 'coefficient' && t === 'auto')) return t;
  if (p.kind === 'order' && /^\d+(,\d+)*$/.test(t)) return t.split(',').map(Number);
  if (p.kind === 'coefficient' && /^-?[\d.e+-]+(,-?[\d.e+-]+)+$/i.test(t)) return t.split(',').map(Number);
  try {
    return JSON.parse(t);
  } catch {
    throw new ConfigError(`params.${p.name}`, `cannot read ${preview(text)} as a value (numbers, true/false, or JSON)`);
  }
}
