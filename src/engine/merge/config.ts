/**
 * The merge config: which method, its parameters, and how the output is written. The page, share links, the CLI's
 * `--config` file and the metadata of every merged file all carry this same JSON object.
 */
import { ConfigError, preview } from '../errors';
import { resolveParams, type MethodSpec, type ParamValues } from '../methods/params';
import { getMethod } from '../methods/registry';

export const CONFIG_FORMAT = 'merge-playground/merge@1';

/** How the merged file is written and how models are matched. */
export interface MergeOptions {
  /** Output dtype of merged float tensors: the base model's dtype, or a fixed one. */
  outputDtype: 'base' | 'F32' | 'F16' | 'BF16';
  /** Tensors only the base has (e.g. a text tower): copy them to the output, or leave them out. */
  extraBaseTensors: 'passthrough' | 'ignore';
  /** Allow fine-tuned models stored in another float dtype than the base (e.g. f16 fine-tunes of an f32 base). */
  mixedDtypes: boolean;
  /** Elements per GPU chunk: bounds GPU memory to a few chunks per model, whatever the model size. */
  chunkElements: number;
}

export const DEFAULT_OPTIONS: MergeOptions = {
  outputDtype: 'base',
  extraBaseTensors: 'passthrough',
  mixedDtypes: false,
  chunkElements: 1 << 22,
};

/** The serialisable merge config. */
export interface MergeConfig {
  format?: string;
  method: string;
  params?: Record<string, unknown>;
  options?: Partial<MergeOptions>;
}

/** A config after validation: the method's spec, parameters with defaults, complete options. */
export interface ResolvedConfig {
  method: MethodSpec;
  params: ParamValues;
  options: MergeOptions;
}

const OPTION_VALUES = {
  outputDtype: ['base', 'F32', 'F16', 'BF16'],
  extraBaseTensors: ['passthrough', 'ignore'],
} as const;

/** Validates an untrusted config object (JSON file, link) and fills defaults. Errors name the field at fault. */
export function resolveConfig(raw: unknown): ResolvedConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError('config', 'must be a JSON object');
  const c = raw as Record<string, unknown>;
  for (const k of Object.keys(c)) {
    if (!['format', 'method', 'params', 'options'].includes(k)) throw new ConfigError(k === '' ? '""' : k, 'unknown config key (allowed: format, method, params, options)');
  }
  if (c.format !== undefined && c.format !== CONFIG_FORMAT) throw new ConfigError('format', `expected ${JSON.stringify(CONFIG_FORMAT)}, got ${preview(c.format)}`);
  if (typeof c.method !== 'string') throw new ConfigError('method', 'is required (a method id such as "task_arithmetic")');
  const method = getMethod(c.method);
  if (c.params !== undefined && (typeof c.params !== 'object' || c.params === null || Array.isArray(c.params))) {
    throw new ConfigError('params', 'must be an object of parameter values');
  }
  const params = resolveParams(method, (c.params ?? {}) as Record<string, unknown>);
  return { method, params, options: resolveOptions(c.options) };
}

function resolveOptions(raw: unknown): MergeOptions {
  if (raw === undefined) return { ...DEFAULT_OPTIONS };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError('options', 'must be an object');
  const o = raw as Record<string, unknown>;
  const out = { ...DEFAULT_OPTIONS };
  for (const [k, v] of Object.entries(o)) {
    if (k === 'outputDtype' || k === 'extraBaseTensors') {
      const allowed: readonly string[] = OPTION_VALUES[k];
      if (typeof v !== 'string' || !allowed.includes(v)) throw new ConfigError(`options.${k}`, `expected one of ${allowed.join(', ')}, got ${preview(v)}`);
      (out as Record<string, unknown>)[k] = v;
    } else if (k === 'mixedDtypes') {
      if (typeof v !== 'boolean') throw new ConfigError(`options.${k}`, 'expected true or false');
      out.mixedDtypes = v;
    } else if (k === 'chunkElements') {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1024 || v % 1024 !== 0) {
        throw new ConfigError(`options.${k}`, 'expected a positive multiple of 1024');
      }
      out.chunkElements = v;
    } else {
      throw new ConfigError(`options.${k}`, 'unknown option (allowed: outputDtype, extraBaseTensors, mixedDtypes, chunkElements)');
    }
  }
  return out;
}

/** The canonical JSON form of a resolved config (what merged files record in their metadata). */
export function configToJson(c: ResolvedConfig): MergeConfig {
  return { format: CONFIG_FORMAT, method: c.method.id, params: { ...c.params }, options: { ...c.options } };
}
