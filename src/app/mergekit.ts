/**
 * mergekit YAML export and import for the methods both tools have. mergekit's generalized task arithmetic computes,
 * per tensor, base + lambda * sum_i(w_i * mask_i * tau_i) / (normalize ? sum_i(w_i * mask_i) : 1), where the mask
 * comes from its sparsification (magnitude: ties; random: dare_*; magnitude_outliers: breadcrumbs) and sign consensus
 * (ties, dare_ties). Its parameter settings (a number, a per-layer list, filter rules) are the playground's coefficient
 * settings, so per-layer gradients and filters carry over as they are.
 *
 *   playground                          mergekit
 *   simple_average                      linear, weight 1 each, normalize: true
 *   task_arithmetic, lambda             task_arithmetic, lambda (per_task lambda: per-model weight)
 *   ties k, merge sum|mean, lambda      ties, density k, normalize false|true, lambda
 *   dare p, rescale, then ta|ties       dare_linear|dare_ties, density 1 - p, rescale
 *   breadcrumbs density, gamma          breadcrumbs, density, gamma
 *   model_stock                         model_stock
 *   slerp t                             slerp, base_model = the first model, t
 *
 * Where the two differ (whole-model vs per-tensor trimming, DARE's random masks and rescaling), export still writes the
 * nearest config and returns a warning, also written as a comment in the YAML. Anything with no mergekit form (OPCM,
 * TALL masks, coefficient tables, "max" merging) is refused with an error naming the field. Import refuses what it
 * cannot map, names the YAML field, and bounds the input (size, one document, YAML alias expansion).
 */
import { Document, isScalar, parseAllDocuments, visit } from 'yaml';
import { ConfigError, preview } from '../engine/errors';
import { resolveParams, type ParamValues } from '../engine/methods/params';
import { getMethod } from '../engine/methods/registry';
import { validateCoefficient, type CoefficientSetting, type Gradient } from '../engine/methods/scaling';
import { parseHubId } from '../platform/hubIds';
import {
  defaultExperiment,
  DEMO_BASE,
  fieldOf,
  isPlainObject,
  rejectSecrets,
  sourceText,
  validateExperiment,
  type Experiment,
  type ModelSource,
  type OutputDtype,
} from './experiment';
import type { DecodedLink } from './shareLink';

/** Largest YAML read: mergekit configs are a few kB. */
export const MAX_YAML_BYTES = 256 * 1024;
/** YAML alias expansions allowed (the yaml package counts the nodes each alias brings in). */
const MAX_ALIAS_COUNT = 100;

export interface MergekitExport {
  yaml: string;
  warnings: string[];
}

// Where the embedded demo suite's files are, relative to the project folder.
const DEMO_BASE_PATH = 'public/demo/base/model.safetensors';
const DEMO_MODEL_PATH = /^public\/demo\/models\/([A-Za-z0-9][A-Za-z0-9._-]{0,63})\.safetensors$/;

const DTYPES: Record<Exclude<OutputDtype, 'base'>, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/** A model source as a mergekit model reference (a path or a Hub id with its revision). */
export function modelRef(s: ModelSource): string {
  if (s.kind === 'demo') return sourceText(s) === sourceText(DEMO_BASE) ? DEMO_BASE_PATH : `public/demo/models/${s.id}.safetensors`;
  if (s.kind === 'local') return s.name;
  return s.revision === 'main' ? s.repo : `${s.repo}@${s.revision}`;
}

function refToSource(field: string, ref: unknown): ModelSource {
  if (typeof ref !== 'string' || ref === '') throw new ConfigError(field, `expected a model path or Hub id (text), got ${preview(ref)}`);
  if (ref.includes('+')) throw new ConfigError(field, 'LoRA references ("model+lora") are not supported');
  if (ref === DEMO_BASE_PATH) return { ...DEMO_BASE };
  const demo = DEMO_MODEL_PATH.exec(ref);
  if (demo) return { kind: 'demo', id: demo[1]! };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(ref)) throw new ConfigError(field, 'URLs are not model references (use a Hub id org/name@revision or a file name)');
  try {
    const id = parseHubId(ref);
    if (id.type === 'model') return { kind: 'hub', repo: id.name, revision: id.revision };
  } catch {
    // Not a Hub id: a local path, which the user opens in the page.
  }
  if (ref.length > 255 || /[\u0000-\u001f\u007f]/.test(ref)) throw new ConfigError(field, 'is not a usable file name (too long or control characters)');
  return { kind: 'local', name: ref };
}

// ---------- export ----------

type Setting = CoefficientSetting;

/** A coefficient setting at one task index (per_task unwrapped; missing entries take the fallback, as the engine does). */
function settingForTask(s: Setting, task: number, fallback: number, field: string): Setting {
  if (typeof s === 'object' && !Array.isArray(s)) {
    if ('table' in s) throw new ConfigError(field, 'a coefficient table (values per tensor name) has no mergekit form: use a number, a per-layer list or filter rules');
    const inner = s.per_task[task];
    return inner === undefined ? fallback : settingForTask(inner, task, fallback, `${field}.per_task[${task}]`);
  }
  return s;
}

/** The setting as mergekit reads it: filter rules get a final catch-all with the fallback, as the engine falls back. */
function mergekitSetting(s: Setting, fallback: number): unknown {
  if (!Array.isArray(s) || s.every((x) => typeof x === 'number')) return s;
  const rules = (s as { filter?: string; value: Gradient }[]).map((r) => (r.filter === undefined ? { value: r.value } : { filter: r.filter, value: r.value }));
  const last = rules[rules.length - 1];
  if (last && (last.filter === undefined || last.filter === '*')) return rules;
  return [...rules, { value: fallback }];
}

const isPerTask = (s: Setting): boolean => typeof s === 'object' && !Array.isArray(s) && 'per_task' in s;

/** Per-model weights and the global lambda of a task-vector method, from the playground's lambda. */
function weightsAndLambda(lambda: Setting, count: number, fallback: number, field: string): { weights: unknown[]; lambda?: unknown } {
  if (isPerTask(lambda)) return { weights: Array.from({ length: count }, (_, i) => mergekitSetting(settingForTask(lambda, i, fallback, field), fallback)) };
  settingForTask(lambda, 0, fallback, field); // refuses tables
  return { weights: new Array<unknown>(count).fill(1), ...(lambda === 1 ? {} : { lambda: mergekitSetting(lambda, fallback) }) };
}

/** 1 - x without the binary noise of the subtraction (1 - 0.33 is 0.6699999999999999). */
const complement = (x: number): number => Number((1 - x).toPrecision(15));

/**
 * The mergekit YAML of an experiment. `defaultModels` stands for the models when the experiment lists none (the demo
 * suite's). Throws a ConfigError for methods and settings mergekit has no form of.
 */
export function exportMergekitYaml(e: Experiment, defaultModels: ModelSource[] = []): MergekitExport {
  const method = getMethod(e.method);
  const p = resolveParams(method, e.params);
  const warnings: string[] = [];
  const listed = e.models.length ? e.models : defaultModels.map((source) => ({ source, enabled: true }));
  const off = listed.filter((m) => !m.enabled).length;
  if (off) warnings.push(`${off} model(s) toggled out of the merge are left out of the YAML`);
  const models = listed.filter((m) => m.enabled).map((m) => modelRef(m.source));
  if (!models.length) throw new ConfigError('models', 'there are no fine-tuned models to export');
  const lambdaSpec = method.params.find((x) => x.name === 'lambda');
  const lambdaDefault = lambdaSpec && typeof lambdaSpec.default === 'number' ? lambdaSpec.default : 1;
  const doc: Record<string, unknown> = {};

  /** A generalized-task-arithmetic config: per-model weight (and extra per-model values), global parameters. */
  const gta = (name: string, perModel: Record<string, unknown>, global: Record<string, unknown>) => {
    const { weights, lambda } = weightsAndLambda(p.lambda as Setting, models.length, lambdaDefault, 'params.lambda');
    Object.assign(doc, {
      merge_method: name,
      base_model: modelRef(e.base),
      models: models.map((model, i) => ({ model, parameters: { weight: weights[i], ...perModel } })),
      parameters: { ...global, ...(lambda === undefined ? {} : { lambda }) },
    });
    if (isPerTask(p.lambda as Setting) && (name === 'ties' || name === 'dare_ties')) {
      warnings.push('mergekit weights each task vector before the sign election; the playground scales each model\'s contribution after it, so per-task lambdas can elect other signs');
    }
  };
  const noMax = () => {
    if (p.merge === 'max') throw new ConfigError('params.merge', 'mergekit has no "max" disjoint merge: use sum or mean to export');
  };

  switch (method.id) {
    case 'simple_average':
      Object.assign(doc, { merge_method: 'linear', models: models.map((model) => ({ model, parameters: { weight: 1 } })), parameters: { normalize: true } });
      break;
    case 'task_arithmetic':
      gta('task_arithmetic', {}, { normalize: false });
      break;
    case 'ties':
      noMax();
      if (p.merge === 'mean' && isPerTask(p.lambda as Setting)) throw new ConfigError('params.lambda', 'per-task lambdas with merge "mean" have no mergekit form (its normalize divides the weights out)');
      gta('ties', { density: p.k }, { normalize: p.merge === 'mean' });
      if (p.scope === 'global') warnings.push('mergekit trims each tensor on its own (scope "tensor"); this experiment trims over the whole model (scope "global"), so the merges differ: set scope to tensor to match');
      break;
    case 'dare': {
      const ties = p.then === 'ties';
      if (ties) noMax();
      gta(ties ? 'dare_ties' : 'dare_linear', { density: complement(p.p as number) }, { normalize: ties && p.merge === 'mean', rescale: p.rescale });
      warnings.push('mergekit draws its own random drop masks (seeded with mergekit-yaml --random-seed) and rescales by the L1 norm ratio rather than 1 / (1 - p): the merges agree in expectation only');
      if (ties && (p.k as number) < 1) warnings.push(`mergekit's dare_ties does not trim by magnitude after the drop: k = ${p.k} is not exported (k = 1 matches)`);
      if (p.linear_only) warnings.push('mergekit drops entries of every tensor: linear_only is not exported');
      break;
    }
    case 'breadcrumbs':
      gta('breadcrumbs', { density: p.density, gamma: p.gamma }, { normalize: false });
      if (p.scope === 'row') warnings.push('mergekit ranks magnitudes over each whole tensor (scope "tensor"); this experiment ranks within rows (scope "row"), so the masks differ: set scope to tensor to match');
      break;
    case 'model_stock':
      Object.assign(doc, { merge_method: 'model_stock', base_model: modelRef(e.base), models: models.map((model) => ({ model })) });
      if (p.angle === 'angle') warnings.push('mergekit averages the pairwise cosines (angle "cosine"); this experiment averages the angles');
      break;
    case 'slerp': {
      if (models.length !== 2) throw new ConfigError('models', `slerp needs exactly 2 models, got ${models.length}`);
      const t = settingForTask(p.t as Setting, 0, 0.5, 'params.t');
      if (isPerTask(p.t as Setting)) throw new ConfigError('params.t', 'a per-task t has no meaning for slerp');
      Object.assign(doc, { merge_method: 'slerp', base_model: models[0], models: models.map((model) => ({ model })), parameters: { t: mergekitSetting(t, 0.5) } });
      break;
    }
    default:
      throw new ConfigError('method', `mergekit has no ${method.label} (${method.id}); YAML export covers simple_average (linear), task_arithmetic, ties, dare, breadcrumbs, model_stock and slerp`);
  }
  // The playground computes in float32; the output dtype is mergekit's out_dtype.
  doc.dtype = 'float32';
  if (e.outputDtype !== 'base') doc.out_dtype = DTYPES[e.outputDtype];
  // linear writes no base model, and slerp's base_model is its first model.
  const written = [...(method.id === 'slerp' || method.id === 'simple_average' ? [] : [e.base]), ...listed.filter((m) => m.enabled).map((m) => m.source)];
  const demo = written.some((s) => s.kind === 'demo');
  return { yaml: yamlText(doc, method.id, demo, warnings), warnings };
}

function yamlText(obj: Record<string, unknown>, methodId: string, demo: boolean, warnings: string[]): string {
  const doc = new Document(obj);
  // Per-layer lists on one line, as mergekit's examples write them.
  visit(doc, {
    Seq(_, node) {
      if (node.items.every((x) => isScalar(x))) node.flow = true;
    },
  });
  doc.commentBefore = [
    ` Merge Playground experiment (${methodId}) for mergekit.`,
    ...(demo ? [' Demo models are single .safetensors files: merge them with mergekit-pytorch, or replace the paths.'] : []),
    ...warnings.map((w) => ` Note: ${w}.`),
  ].join('\n');
  return doc.toString({ lineWidth: 0 });
}

// ---------- import ----------

const TOP_KEYS = ['merge_method', 'base_model', 'models', 'parameters', 'dtype', 'out_dtype', 'tokenizer_source', 'tokenizer', 'chat_template', 'name'];
const IGNORED_KEYS = ['tokenizer_source', 'tokenizer', 'chat_template', 'name'];
const SUPPORTED = ['linear', 'task_arithmetic', 'ties', 'dare_linear', 'dare_ties', 'breadcrumbs', 'model_stock', 'slerp'];

/** Per-model and global parameters each method reads (mergekit's names). */
const METHOD_PARAMS: Record<string, { perModel: string[]; global: string[] }> = {
  linear: { perModel: ['weight'], global: ['normalize'] },
  task_arithmetic: { perModel: ['weight', 'density'], global: ['normalize', 'rescale', 'int8_mask', 'lambda'] },
  ties: { perModel: ['weight', 'density'], global: ['normalize', 'rescale', 'int8_mask', 'lambda'] },
  dare_linear: { perModel: ['weight', 'density'], global: ['normalize', 'rescale', 'int8_mask', 'lambda'] },
  dare_ties: { perModel: ['weight', 'density'], global: ['normalize', 'rescale', 'int8_mask', 'lambda'] },
  breadcrumbs: { perModel: ['weight', 'density', 'gamma'], global: ['normalize', 'rescale', 'int8_mask', 'lambda'] },
  model_stock: { perModel: [], global: ['filter_wise'] },
  slerp: { perModel: [], global: ['t'] },
};

/** mergekit's YAML as a plain object: one document, bounded size and alias expansion, no unknown tags. */
function parseYaml(text: string): Record<string, unknown> {
  const field = 'mergekit YAML';
  if (typeof text !== 'string') throw new ConfigError(field, 'must be text');
  if (text.length > MAX_YAML_BYTES) throw new ConfigError(field, `is ${text.length} characters long (at most ${MAX_YAML_BYTES})`);
  let raw: unknown;
  try {
    const docs = parseAllDocuments(text, { uniqueKeys: true });
    if (!Array.isArray(docs) || docs.length === 0) throw new ConfigError(field, 'is empty');
    if (docs.length > 1) throw new ConfigError(field, `holds ${docs.length} documents; multi-stage files (mergekit-multi) are not supported`);
    const doc = docs[0]!;
    const problem = doc.errors[0] ?? doc.warnings[0];
    if (problem) throw new ConfigError(field, `${problem.message.split('\n')[0]}${problem.linePos ? ` (line ${problem.linePos[0].line})` : ''}`);
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    // The yaml package throws ReferenceError on alias bombs, RangeError on absurd nesting.
    const bomb = /alias/i.test((e as Error).message);
    throw new ConfigError(field, bomb ? `expands too many aliases (more than ${MAX_ALIAS_COUNT} nodes): refused` : `cannot be read (${(e as Error).message.split('\n')[0]!.slice(0, 120)})`);
  }
  if (!isPlainObject(raw)) throw new ConfigError(field, `must be a mapping with merge_method and models, got ${preview(raw)}`);
  return raw;
}

/** A parsed setting that mergekit allows and the playground understands (numbers, per-layer lists, filter rules). */
function settingAt(field: string, v: unknown): Setting {
  const s = validateCoefficient(field, v);
  if (typeof s === 'object' && !Array.isArray(s)) throw new ConfigError(field, 'expected a number, a per-layer list or filter rules');
  return s;
}

function scalarAt(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw new ConfigError(field, `expected a number in [${min}, ${max}] (one value for every layer), got ${preview(v)}`);
  return v;
}

function boolAt(field: string, v: unknown, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw new ConfigError(field, `expected true or false, got ${preview(v)}`);
  return v;
}

/** A setting times a number (per-layer values and filter-rule values scaled). */
function scaled(s: Setting, f: number): Setting {
  if (f === 1) return s;
  const g = (x: Gradient): Gradient => (typeof x === 'number' ? x * f : x.map((y) => y * f));
  if (typeof s === 'number' || (Array.isArray(s) && s.every((x) => typeof x === 'number'))) return g(s as Gradient);
  return (s as { filter?: string; value: Gradient }[]).map((r) => ({ ...r, value: g(r.value) }));
}

/** One model entry of mergekit's `models` list. */
interface Entry {
  field: string;
  /** The model reference as written (slerp finds base_model among the models by it). */
  ref: unknown;
  source: ModelSource;
  params: Record<string, unknown>;
}

/**
 * Reads mergekit YAML into an Experiment (the current experiment's evaluation and view settings, and its base where the
 * YAML names none, are kept). Throws a ConfigError naming the YAML field at fault.
 */
export function importMergekitYaml(text: string, current: Experiment = defaultExperiment()): DecodedLink {
  const raw = parseYaml(text);
  for (const k of Object.keys(raw)) {
    if (k === 'slices' || k === 'modules') throw new ConfigError(k, 'layer slices and modules are not supported: list whole models under "models"');
    if (!TOP_KEYS.includes(k)) {
      rejectSecrets({ [k]: null }, '');
      throw new ConfigError(fieldOf('', k), `unknown mergekit field (allowed: ${TOP_KEYS.join(', ')})`);
    }
  }
  for (const k of ['base_model', 'models', 'parameters'] as const) if (raw[k] !== undefined) rejectSecrets(raw[k], k);
  const warnings: string[] = [];
  for (const k of IGNORED_KEYS) if (raw[k] !== undefined) warnings.push(`${k} is ignored (the playground merges weights only)`);

  const name = raw.merge_method;
  if (typeof name !== 'string') throw new ConfigError('merge_method', 'is required (e.g. ties)');
  const allowed = METHOD_PARAMS[name];
  if (!allowed || !SUPPORTED.includes(name)) {
    const why = name === 'breadcrumbs_ties' ? 'the playground has no Breadcrumbs with sign consensus (use breadcrumbs)' : `not one the playground has (supported: ${SUPPORTED.join(', ')})`;
    throw new ConfigError('merge_method', `${preview(name, 40)} is ${why}`);
  }
  const global = raw.parameters === undefined ? {} : raw.parameters;
  if (!isPlainObject(global)) throw new ConfigError('parameters', 'must be a mapping of parameter settings');
  for (const k of Object.keys(global)) {
    if (!allowed.global.includes(k) && !allowed.perModel.includes(k)) throw new ConfigError(`parameters.${k}`, `unknown parameter for mergekit's ${name} (allowed: ${[...allowed.global, ...allowed.perModel].join(', ') || 'none'})`);
  }
  const base = raw.base_model === undefined ? null : refToSource('base_model', raw.base_model);
  if (!Array.isArray(raw.models) || raw.models.length === 0) throw new ConfigError('models', 'must be a non-empty list of {model: ..., parameters: ...}');
  const baseRef = typeof raw.base_model === 'string' ? raw.base_model : null;
  const entries: Entry[] = [];
  raw.models.forEach((m, i) => {
    const field = `models[${i}]`;
    if (!isPlainObject(m)) throw new ConfigError(field, `expected {model: ..., parameters: ...}, got ${preview(m)}`);
    for (const k of Object.keys(m)) if (k !== 'model' && k !== 'parameters') throw new ConfigError(`${field}.${k}`, 'unknown field (allowed: model, parameters)');
    const source = refToSource(`${field}.model`, m.model);
    const params = m.parameters === undefined ? {} : m.parameters;
    if (!isPlainObject(params)) throw new ConfigError(`${field}.parameters`, 'must be a mapping');
    for (const k of Object.keys(params)) {
      if (!allowed.perModel.includes(k)) throw new ConfigError(`${field}.parameters.${k}`, `unknown per-model parameter for mergekit's ${name} (allowed: ${allowed.perModel.join(', ') || 'none'})`);
    }
    // Task-vector methods skip the base model when it is listed among the models (mergekit does too).
    if (name !== 'slerp' && name !== 'linear' && baseRef !== null && m.model === baseRef) return;
    entries.push({ field, ref: m.model, source, params });
  });

  const perModel = (e: Entry, k: string): { field: string; value: unknown } =>
    e.params[k] !== undefined ? { field: `${e.field}.parameters.${k}`, value: e.params[k] } : { field: `parameters.${k}`, value: global[k] };
  /** One value of a per-model parameter shared by every model (the playground has one k, one density, one gamma). */
  const shared = (k: string, fallback: number, min: number, max: number): number => {
    const values = entries.map((e) => perModel(e, k)).map(({ field, value }) => (value === undefined ? fallback : scalarAt(field, value, min, max)));
    if (values.some((v) => v !== values[0])) throw new ConfigError(`${entries[0]!.field}.parameters.${k}`, `differs between models; the playground uses one ${k} for all of them`);
    return values[0] ?? fallback;
  };
  const weights = (): Setting[] =>
    entries.map((e) => {
      const { field, value } = perModel(e, 'weight');
      if (value === undefined) throw new ConfigError(`${e.field}.parameters.weight`, `is required by mergekit's ${name}`);
      return settingAt(field, value);
    });
  const lambda = global.lambda === undefined ? 1 : settingAt('parameters.lambda', global.lambda);

  /** Weights and lambda folded into the playground's lambda (per-task when the weights differ). */
  const foldLambda = (ws: Setting[], normalize: boolean): Setting => {
    let factors = ws;
    if (normalize) {
      if (!ws.every((w) => typeof w === 'number')) throw new ConfigError('parameters.normalize', 'normalize: true with per-layer or filtered weights has no playground form');
      const sum = (ws as number[]).reduce((a, b) => a + b, 0);
      factors = (ws as number[]).map((w) => w / (Math.abs(sum) < 1e-8 ? 1 : sum));
    }
    if (factors.every((f) => f === 1)) return lambda;
    if (factors.every((f) => typeof f === 'number' && f === factors[0]) && typeof lambda === 'number') return (factors[0] as number) * lambda;
    if (typeof lambda !== 'number') throw new ConfigError('parameters.lambda', 'a per-layer or filtered lambda together with per-model weights other than 1 has no single playground setting');
    return { per_task: factors.map((f) => scaled(f, lambda)) };
  };
  /** TIES-style methods: normalize divides by the weights of the agreeing models, so it cancels equal weights (merge "mean"). */
  const foldTies = (ws: Setting[], normalize: boolean): { merge: string; lambda: Setting } => {
    if (!normalize) return { merge: 'sum', lambda: foldLambda(ws, false) };
    if (!ws.every((w) => typeof w === 'number' && w === ws[0] && w !== 0)) throw new ConfigError('parameters.normalize', 'normalize: true with unequal weights has no playground form (the playground\'s merge "mean" weighs models equally)');
    return { merge: 'mean', lambda };
  };

  let method = name;
  let params: Record<string, unknown> = {};
  let expBase = base;
  let sources = entries.map((e) => e.source);
  const normalize = (fallback: boolean) => boolAt('parameters.normalize', global.normalize, fallback);
  switch (name) {
    case 'linear': {
      const ws = weights();
      const norm = normalize(true);
      if (!ws.every((w) => typeof w === 'number')) throw new ConfigError('models', 'per-layer or filtered linear weights have no playground form');
      const w = ws as number[];
      const sum = w.reduce((a, b) => a + b, 0);
      if (!norm && Math.abs(sum - 1) > 1e-9) throw new ConfigError('parameters.normalize', `is false and the weights add up to ${sum}, not 1: that also scales the base model, which the playground cannot do`);
      if (w.every((x) => x === w[0]) && norm) method = 'simple_average';
      else {
        method = 'task_arithmetic';
        params = { lambda: foldLambda(w, norm) };
        warnings.push('a weighted linear merge is imported as Task Arithmetic with lambda_i = w_i / sum(w), which is the same model (the base cancels out)');
      }
      if (!expBase) {
        expBase = current.base;
        warnings.push('linear merges use no base model; the current base is kept (Task Arithmetic needs one)');
      }
      break;
    }
    case 'task_arithmetic':
      if (shared('density', 1, 0, 1) !== 1) warnings.push("density is ignored: mergekit's task_arithmetic does not sparsify");
      params = { lambda: foldLambda(weights(), normalize(false)) };
      break;
    case 'ties': {
      const { merge, lambda: l } = foldTies(weights(), normalize(true));
      params = { k: shared('density', 1, 0, 1), merge, scope: 'tensor', lambda: l };
      if (boolAt('parameters.rescale', global.rescale, false)) throw new ConfigError('parameters.rescale', 'is not supported for ties');
      break;
    }
    case 'dare_linear':
    case 'dare_ties': {
      method = 'dare';
      const density = shared('density', 1, 0, 1);
      if (density === 0) throw new ConfigError('parameters.density', 'of 0 drops everything (the playground\'s p must be below 1)');
      params = { p: complement(density), rescale: boolAt('parameters.rescale', global.rescale, true) };
      if (name === 'dare_ties') {
        const { merge, lambda: l } = foldTies(weights(), normalize(false));
        Object.assign(params, { then: 'ties', k: 1, scope: 'tensor', merge, lambda: l });
      } else params.lambda = foldLambda(weights(), normalize(false));
      warnings.push('DARE drops entries at random: the playground\'s seeded masks and 1 / (1 - p) rescaling differ from mergekit\'s, so the merges agree in expectation only');
      break;
    }
    case 'breadcrumbs':
      if (boolAt('parameters.rescale', global.rescale, false)) throw new ConfigError('parameters.rescale', 'is not supported for breadcrumbs');
      params = { density: shared('density', 1, 0, 1), gamma: shared('gamma', 0.01, 0, 1), scope: 'tensor', lambda: foldLambda(weights(), normalize(false)) };
      break;
    case 'model_stock':
      if (boolAt('parameters.filter_wise', global.filter_wise, false)) throw new ConfigError('parameters.filter_wise', 'per-row Model Stock is not supported');
      params = { angle: 'cosine' };
      break;
    case 'slerp': {
      if (entries.length !== 2) throw new ConfigError('models', `slerp needs exactly 2 models, got ${entries.length}`);
      if (global.t === undefined) throw new ConfigError('parameters.t', 'is required by mergekit\'s slerp');
      const first = baseRef === null ? -1 : entries.findIndex((e) => e.ref === baseRef);
      if (first < 0) throw new ConfigError('base_model', 'must be one of the two models (slerp goes from base_model at t = 0 to the other at t = 1)');
      sources = first === 0 ? sources : [sources[1]!, sources[0]!];
      params = { t: settingAt('parameters.t', global.t) };
      expBase = current.base;
      warnings.push('slerp interpolates the two models and uses no pretrained base; the current base is kept');
      break;
    }
  }
  if (!expBase) throw new ConfigError('base_model', `is required by mergekit's ${name}`);
  if (raw.dtype !== undefined && raw.dtype !== 'float32') {
    if (!Object.values(DTYPES).includes(raw.dtype as string)) throw new ConfigError('dtype', `expected one of ${Object.values(DTYPES).join(', ')}, got ${preview(raw.dtype)}`);
    warnings.push(`dtype ${String(raw.dtype)} is ignored: the playground computes in float32`);
  }
  let outputDtype: OutputDtype = 'base';
  if (raw.out_dtype !== undefined) {
    const found = (Object.entries(DTYPES) as [OutputDtype, string][]).find(([, v]) => v === raw.out_dtype);
    if (!found) throw new ConfigError('out_dtype', `expected one of ${Object.values(DTYPES).join(', ')}, got ${preview(raw.out_dtype)}`);
    outputDtype = found[0];
  }
  const spec = getMethod(method);
  const full: ParamValues = resolveParams(spec, params);
  const experiment = validateExperiment(
    { ...current, base: expBase, models: sources.map((source) => ({ source, enabled: true })), method, params: full, outputDtype },
    warnings,
  );
  return { experiment, warnings };
}
