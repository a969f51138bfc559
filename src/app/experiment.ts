/**
 * The Experiment: everything that reproduces what the page shows. Share links (shareLink.ts), experiment files
 * (configFile.ts) and mergekit YAML (mergekit.ts) all read and write it, and all of them go through
 * validateExperiment, so a value from a stranger is checked in one place: model sources, the method and its parameters
 * (against the method registry), evaluation settings and view settings. Errors are ConfigErrors naming the field at
 * fault. Access tokens and Hub endpoints are never taken from an experiment, whatever its origin.
 *
 * Pure: no DOM, no store. Local files cannot travel (a link or file only records their names); the page asks for
 * them again.
 */
import { ConfigError, preview } from '../engine/errors';
import { resolveParams, type MethodSpec, type ParamValues } from '../engine/methods/params';
import { resolveOrder } from '../engine/methods/order';
import { checkModelCount, getMethod, METHODS } from '../engine/methods/registry';
import { parseHubId } from '../platform/hubIds';

export const EXPERIMENT_VERSION = 1;

/** Where a model comes from: a model of the embedded demo suite, a Hub repo at a revision, or a local file (by name). */
export type ModelSource = { kind: 'demo'; id: string } | { kind: 'hub'; repo: string; revision: string } | { kind: 'local'; name: string };

/** A fine-tuned model of the experiment; its place in the list is the merge order (continual methods). */
export interface ExperimentModel {
  source: ModelSource;
  /** Included in the merge (a model toggled out stays listed). */
  enabled: boolean;
}

export type OutputDtype = 'base' | 'F32' | 'F16' | 'BF16';
export const OUTPUT_DTYPES: readonly OutputDtype[] = ['base', 'F32', 'F16', 'BF16'];

/** Images per task scored while a slider moves and once it rests, and the seed of the sample. */
export interface EvaluationSettings {
  liveSamples: number;
  settledSamples: number | 'all';
  seed: number;
}

/** One view setting: an enum, a boolean or a bounded integer. */
export type ViewField =
  | { kind: 'enum'; values: readonly string[]; default: string }
  | { kind: 'boolean'; default: boolean }
  | { kind: 'integer'; min: number; max: number; default: number };

/** Parameters the Sweep tab can vary: every method's real-valued ones (numbers and coefficients; integers are not). */
export const SWEEPABLE_PARAMS: readonly string[] = [...new Set(METHODS.flatMap((m) => m.params.filter((p) => p.kind === 'number' || p.kind === 'coefficient').map((p) => p.name)))].sort();

/**
 * What the user looks at. Open: a new view setting is one more entry here, and links and files carry it at once.
 * Unknown keys (from a newer page) are dropped with a warning rather than refused.
 */
export const VIEW_FIELDS: Readonly<Record<string, ViewField>> = {
  /** The chart tab shown. */
  tab: { kind: 'enum', values: ['accuracy', 'sweep', 'interference', 'continual', 'opcm'], default: 'accuracy' },
  /** Per-task accuracy as a percentage of the fine-tuned model's (true) or absolute (false). */
  normalized: { kind: 'boolean', default: false },
  /** The parameter the Sweep tab varies: "main" (the method's main coefficient) or one of SWEEPABLE_PARAMS. */
  sweep: { kind: 'enum', values: ['main', ...SWEEPABLE_PARAMS], default: 'main' },
};

export type ViewSettings = Record<string, string | boolean | number>;

export interface Experiment {
  version: typeof EXPERIMENT_VERSION;
  base: ModelSource;
  /** Empty: every model of the demo suite, in its order, all enabled. */
  models: ExperimentModel[];
  method: string;
  /** Only the parameters that differ from the method's defaults. */
  params: ParamValues;
  outputDtype: OutputDtype;
  evaluation: EvaluationSettings;
  view: ViewSettings;
  /**
   * The commit each Hub test set was read at (FusionBench presets), as `datasets/org/name@commit` in the preset's task
   * order; empty for other suites. A link that carries them reads the same images again.
   */
  data: string[];
}

export const DEMO_BASE: ModelSource = { kind: 'demo', id: 'base' };
export const DEFAULT_EVALUATION: EvaluationSettings = { liveSamples: 32, settledSamples: 'all', seed: 0 };
export const DEFAULT_METHOD = 'task_arithmetic';

/** The view settings at their defaults. */
export function defaultView(): ViewSettings {
  return Object.fromEntries(Object.entries(VIEW_FIELDS).map(([k, f]) => [k, f.default]));
}

/** The page's opening experiment: the demo suite merged with Task Arithmetic at its defaults. */
export function defaultExperiment(): Experiment {
  return {
    version: EXPERIMENT_VERSION,
    base: { ...DEMO_BASE },
    models: [],
    method: DEFAULT_METHOD,
    params: {},
    outputDtype: 'base',
    evaluation: { ...DEFAULT_EVALUATION },
    view: defaultView(),
    data: [],
  };
}

/** Longest model name, local file name or view value accepted. */
const MAX_NAME = 255;
/** Most fine-tuned models in one experiment. */
export const MAX_MODELS = 256;
/** Deepest nesting of objects and lists accepted anywhere (coefficient settings need 5). */
export const MAX_DEPTH = 12;

// Keys that would carry a credential or redirect downloads. Refused by name, never echoed with their value.
const SECRET_KEY = /token|secret|passw|authori[sz]|api[-_]?key|cookie|credential|bearer|endpoint|hub[-_]?url|mirror|proxy/i;
// Values that look like an access token (Hugging Face user tokens start with hf_).
const SECRET_VALUE = /\bhf_[A-Za-z0-9]{20,}|\bBearer\s+\S/;

/**
 * Refuses credentials and endpoints anywhere in an untrusted tree, and nesting deeper than MAX_DEPTH, before anything
 * else reads it (so no later error message can echo a token).
 */
export function rejectSecrets(value: unknown, field: string, depth = 0): void {
  if (depth > MAX_DEPTH) throw new ConfigError(field || 'experiment', `nested more than ${MAX_DEPTH} levels deep`);
  if (typeof value === 'string') {
    if (SECRET_VALUE.test(value)) throw new ConfigError(field, 'holds what looks like an access token; tokens are never read from links or files (the value is not shown)');
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => rejectSecrets(v, `${field}[${i}]`, depth + 1));
    return;
  }
  // Keys under params are parameter names and tensor names (CLIP has "token_embedding"): resolveParams refuses
  // unknown ones without echoing values, so only their values are screened.
  const namesAreData = field === 'params' || field.startsWith('params.');
  for (const [k, v] of Object.entries(value)) {
    const path = fieldOf(field, k);
    if (!namesAreData && SECRET_KEY.test(k)) throw new ConfigError(path, 'access tokens and Hub endpoints are never read from links or files; remove this field (its value is not shown)');
    if (SECRET_VALUE.test(k)) throw new ConfigError(field || 'experiment', 'has a key that looks like an access token; tokens are never read from links or files');
    rejectSecrets(v, path, depth + 1);
  }
}

/** The text form of a source: `demo:ID`, `local:NAME`, or a Hub id `org/name@revision` (mergekit's spelling too). */
export function sourceText(s: ModelSource): string {
  if (s.kind === 'demo') return `demo:${s.id}`;
  if (s.kind === 'local') return `local:${s.name}`;
  return `${s.repo}@${s.revision}`;
}

const DEMO_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
// C0/C1 control characters and lone surrogates have no place in a name shown to people.
const BAD_TEXT = /[\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** A name shown to people: bounded, no control characters; HTML is kept verbatim (the page renders text, never HTML). */
function checkText(field: string, v: unknown, what: string, max = MAX_NAME): string {
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(field, `expected ${what} (text), got ${preview(v)}`);
  if (v.length > max) throw new ConfigError(field, `${what} is ${v.length} characters long (at most ${max})`);
  if (BAD_TEXT.test(v)) throw new ConfigError(field, `${what} contains control characters or broken Unicode`);
  return v;
}

/** Parses a source from its text form (see sourceText). */
export function parseSource(field: string, text: unknown): ModelSource {
  // Room for a prefix and a name, or a Hub id with a long branch name; the parts are checked below.
  const t = checkText(field, text, 'a model source', 2 * MAX_NAME);
  if (t.startsWith('demo:')) {
    const id = t.slice(5);
    if (!DEMO_ID.test(id)) throw new ConfigError(field, `${preview(id)} is not a demo model id (letters, digits, ".", "_", "-")`);
    return { kind: 'demo', id };
  }
  if (t.startsWith('local:')) return { kind: 'local', name: checkText(field, t.slice(6), 'a file name') };
  if (/^[a-z][a-z0-9+.-]*:/i.test(t) || t.includes('//')) {
    throw new ConfigError(field, `${preview(t)} is not a model source: expected demo:ID, local:NAME or a Hub id org/name@revision (URLs and endpoints are not accepted)`);
  }
  try {
    const id = parseHubId(t);
    if (id.type !== 'model') throw new Error('dataset repos hold no models');
    return { kind: 'hub', repo: id.name, revision: id.revision };
  } catch (e) {
    throw new ConfigError(field, `${(e as Error).message}; sources are demo:ID, local:NAME or org/name@revision`);
  }
}

/** A test-set pin `datasets/org/name@revision` (the revision is required), normalized. */
export function parseDataPin(field: string, text: unknown): string {
  const t = checkText(field, text, 'a test-set pin', 2 * MAX_NAME);
  try {
    const id = parseHubId(t);
    if (id.type !== 'dataset' || !t.includes('@')) throw new Error('expected a dataset repo and the revision it was read at');
    return `datasets/${id.name}@${id.revision}`;
  } catch (e) {
    throw new ConfigError(field, `${(e as Error).message}; test-set pins are datasets/org/name@commit`);
  }
}

/** A source given as text or as the object form (what an experiment holds in memory). */
function readSource(field: string, v: unknown): ModelSource {
  if (typeof v === 'string') return parseSource(field, v);
  if (!isPlainObject(v)) throw new ConfigError(field, `expected a model source such as "demo:ID" or "org/name@revision", got ${preview(v)}`);
  onlyKeys(field, v, v.kind === 'demo' ? ['kind', 'id'] : v.kind === 'local' ? ['kind', 'name'] : ['kind', 'repo', 'revision']);
  if (v.kind === 'demo') return parseSource(field, `demo:${checkText(`${field}.id`, v.id, 'a demo model id')}`);
  if (v.kind === 'local') return { kind: 'local', name: checkText(`${field}.name`, v.name, 'a file name') };
  if (v.kind === 'hub') {
    if (typeof v.repo !== 'string' || (v.revision !== undefined && typeof v.revision !== 'string')) throw new ConfigError(field, 'expected {"kind": "hub", "repo": "org/name", "revision": "..."}');
    return parseSource(field, v.revision === undefined ? v.repo : `${v.repo}@${v.revision}`);
  }
  throw new ConfigError(`${field}.kind`, `expected "demo", "hub" or "local", got ${preview(v.kind)}`);
}

/**
 * Refuses JSON text nested deeper than `max` before JSON.parse sees it: parsing a megabyte of "[" takes seconds and
 * every later recursive walk would have to guard against it.
 */
export function checkJsonNesting(field: string, text: string, max = MAX_DEPTH): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      if (++depth > max) throw new ConfigError(field, `nested more than ${max} levels deep`);
    } else if (c === 93 || c === 125) depth--;
  }
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The path of key `k` under `field`; an empty key is written "" so that the error still names something. */
export function fieldOf(field: string, k: string): string {
  const key = k === '' ? '""' : k;
  return field ? `${field}.${key}` : key;
}

function onlyKeys(field: string, o: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw new ConfigError(fieldOf(field, k), `unknown field (allowed: ${allowed.join(', ')})`);
}

function integerIn(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ConfigError(field, `expected an integer in [${min}, ${max}], got ${preview(v)}`);
  return v;
}

/** Same value, with -0 kept apart from 0 (a parameter of -0 is not its default 0 if the user typed it). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return Object.is(a, b);
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** The parameters of `method` that differ from its defaults, validated (unknown name, wrong type, out of range). */
export function nonDefaultParams(method: MethodSpec, raw: Record<string, unknown>): ParamValues {
  const full = resolveParams(method, raw);
  const out: ParamValues = {};
  for (const p of method.params) if (!sameValue(full[p.name], p.default)) out[p.name] = full[p.name]!;
  return out;
}

export const EXPERIMENT_KEYS = ['version', 'base', 'models', 'method', 'params', 'outputDtype', 'evaluation', 'view', 'data'] as const;

/**
 * Checks an untrusted experiment (parsed JSON, a decoded link) and returns a clean one: defaults filled in, parameters
 * reduced to those that differ from the defaults. Throws a ConfigError naming the field at fault. Problems that do not
 * stop the page (an unknown view setting, a method that wants another number of models) go to `warnings`.
 */
export function validateExperiment(raw: unknown, warnings: string[] = []): Experiment {
  if (!isPlainObject(raw)) throw new ConfigError('experiment', `must be an object, got ${preview(raw)}`);
  rejectSecrets(raw, '');
  onlyKeys('', raw, EXPERIMENT_KEYS);
  if (raw.version !== undefined && raw.version !== EXPERIMENT_VERSION) {
    throw new ConfigError('version', `this page reads experiment version ${EXPERIMENT_VERSION}, got ${preview(raw.version)}`);
  }
  const out = defaultExperiment();
  if (raw.base !== undefined) out.base = readSource('base', raw.base);
  if (raw.models !== undefined) {
    if (!Array.isArray(raw.models)) throw new ConfigError('models', 'must be a list of models');
    if (raw.models.length > MAX_MODELS) throw new ConfigError('models', `has ${raw.models.length} entries (at most ${MAX_MODELS})`);
    out.models = raw.models.map((m, i) => readModel(`models[${i}]`, m));
  }
  if (raw.method !== undefined) {
    if (typeof raw.method !== 'string') throw new ConfigError('method', `expected a method id, got ${preview(raw.method)}`);
    out.method = raw.method;
  }
  const method = getMethod(out.method);
  if (raw.params !== undefined && !isPlainObject(raw.params)) throw new ConfigError('params', 'must be an object of parameter values');
  out.params = nonDefaultParams(method, (raw.params ?? {}) as Record<string, unknown>);
  if (raw.outputDtype !== undefined) {
    if (!OUTPUT_DTYPES.includes(raw.outputDtype as OutputDtype)) throw new ConfigError('outputDtype', `expected one of ${OUTPUT_DTYPES.join(', ')}, got ${preview(raw.outputDtype)}`);
    out.outputDtype = raw.outputDtype as OutputDtype;
  }
  if (raw.evaluation !== undefined) out.evaluation = readEvaluation(raw.evaluation);
  if (raw.view !== undefined) out.view = readView(raw.view, warnings);
  if (raw.data !== undefined) {
    if (!Array.isArray(raw.data)) throw new ConfigError('data', 'must be a list of test-set pins (datasets/org/name@commit)');
    if (raw.data.length > MAX_MODELS) throw new ConfigError('data', `has ${raw.data.length} entries (at most ${MAX_MODELS})`);
    out.data = raw.data.map((d, i) => parseDataPin(`data[${i}]`, d));
  }
  checkAgainstModels(out, method, warnings);
  return out;
}

function readModel(field: string, m: unknown): ExperimentModel {
  if (typeof m === 'string') return { source: parseSource(field, m), enabled: true };
  if (!isPlainObject(m)) throw new ConfigError(field, `expected {"source": "...", "enabled": true}, got ${preview(m)}`);
  onlyKeys(field, m, ['source', 'enabled']);
  if (m.enabled !== undefined && typeof m.enabled !== 'boolean') throw new ConfigError(`${field}.enabled`, `expected true or false, got ${preview(m.enabled)}`);
  return { source: readSource(`${field}.source`, m.source), enabled: m.enabled ?? true };
}

function readEvaluation(v: unknown): EvaluationSettings {
  if (!isPlainObject(v)) throw new ConfigError('evaluation', 'must be an object');
  onlyKeys('evaluation', v, ['liveSamples', 'settledSamples', 'seed']);
  const out = { ...DEFAULT_EVALUATION };
  if (v.liveSamples !== undefined) out.liveSamples = integerIn('evaluation.liveSamples', v.liveSamples, 1, 100_000);
  if (v.settledSamples !== undefined) out.settledSamples = v.settledSamples === 'all' ? 'all' : integerIn('evaluation.settledSamples', v.settledSamples, 1, 1_000_000);
  if (v.seed !== undefined) out.seed = integerIn('evaluation.seed', v.seed, 0, 4294967295);
  return out;
}

/** Validates one view value against its field. */
export function readViewValue(key: string, f: ViewField, v: unknown): string | boolean | number {
  const field = `view.${key}`;
  if (f.kind === 'enum') {
    if (typeof v !== 'string' || !f.values.includes(v)) throw new ConfigError(field, `expected one of ${f.values.join(', ')}, got ${preview(v)}`);
    return v;
  }
  if (f.kind === 'boolean') {
    if (typeof v !== 'boolean') throw new ConfigError(field, `expected true or false, got ${preview(v)}`);
    return v;
  }
  return integerIn(field, v, f.min, f.max);
}

function readView(v: unknown, warnings: string[]): ViewSettings {
  if (!isPlainObject(v)) throw new ConfigError('view', 'must be an object');
  const out = defaultView();
  for (const [k, value] of Object.entries(v)) {
    const f = Object.prototype.hasOwnProperty.call(VIEW_FIELDS, k) ? VIEW_FIELDS[k] : undefined;
    if (!f) {
      warnings.push(`view setting ${preview(k, 40)} is unknown to this page and was ignored`);
      continue;
    }
    out[k] = readViewValue(k, f, value);
  }
  return out;
}

/** Checks that need the model list: a given merge order, and (as a warning) the method's model count. */
function checkAgainstModels(e: Experiment, method: MethodSpec, warnings: string[]): void {
  for (const m of e.models) if (m.source.kind === 'local') warnings.push(`local file ${preview(m.source.name, 80)} must be opened again: files never travel in links or configs`);
  if (e.base.kind === 'local') warnings.push(`local base model ${preview(e.base.name, 80)} must be opened again: files never travel in links or configs`);
  if (!e.models.length) return;
  const count = e.models.filter((m) => m.enabled).length;
  if (Array.isArray(e.params.order)) resolveOrder(e.params.order, 0, count);
  try {
    checkModelCount(method, count);
  } catch (err) {
    warnings.push((err as Error).message);
  }
}
