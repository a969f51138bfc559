/**
 * Share links: the whole Experiment in the URL hash, readable by people and versioned.
 *
 *   #v=1&method=ties&k=0.1&lambda=0.2,0.6&models=demo:fashion-noise,!demo:digits-dim,org/name@0123abcd...&view.tab=sweep
 *
 * - `v=1` (required) is the format version; a link of another version is refused with a clear error.
 * - `method` is the method id; every other plain key is one of that method's parameters, written only when it differs
 *   from the default. Numbers are the shortest decimal that reads back to the same double (-0 kept); per-layer lists
 *   are comma-separated numbers; `auto`, enum words, true/false as words; merge orders as `2,0,1`; any other
 *   coefficient setting (filter rules, per_task, tables, one-element lists) as compact JSON.
 * - `base` and `models` hold model sources: `demo:ID`, `local:NAME` or a Hub id `org/name@revision`; a `!` before a
 *   model marks it toggled out. No `models` key means the demo suite's models in their order.
 * - `dtype`, `live`, `settled` (a number or `all`), `eval_seed`: output dtype and evaluation sample; `view.KEY`: view
 *   settings (see VIEW_FIELDS); `data`: the test sets' commits of a FusionBench preset (`datasets/org/name@commit`,
 *   comma-separated).
 * Keys and values are percent-encoded where needed (`%`, `&`, `=`, `,`, `!`, `+`, spaces, non-ASCII); ':', '/', '@' stay
 * readable. The decoder refuses hashes over MAX_LINK characters before reading them, repeated keys, malformed
 * percent-encoding, credentials and endpoints, and hands everything else to validateExperiment.
 */
import { ConfigError, preview } from '../engine/errors';
import type { ParamSpec, ParamValues } from '../engine/methods/params';
import { getMethod } from '../engine/methods/registry';
import {
  checkJsonNesting,
  DEFAULT_EVALUATION,
  DEFAULT_METHOD,
  DEMO_BASE,
  rejectSecrets,
  sourceText,
  validateExperiment,
  VIEW_FIELDS,
  type Experiment,
} from './experiment';

export const LINK_VERSION = 1;
/** Longest hash accepted or written: far above any real experiment, far below what could slow the page. */
export const MAX_LINK = 8192;

/** Link keys that are not method parameters (no method may name a parameter like these; a test checks). */
export const RESERVED_KEYS = ['v', 'method', 'base', 'models', 'dtype', 'live', 'settled', 'eval_seed', 'data'] as const;
const VIEW_PREFIX = 'view.';
/** Keys whose value is a comma-separated list, percent-encoded item by item. */
const LISTS = new Set(['models', 'data']);

/** What a link decodes to: the experiment, and notes for the user (local files to open again, ignored settings). */
export interface DecodedLink {
  experiment: Experiment;
  warnings: string[];
}

// ---------- encoding ----------

/** A number as the shortest decimal that reads back to the same double; -0 stays -0. */
export function numberText(x: number): string {
  return Object.is(x, -0) ? '-0' : String(x);
}

/** Compact JSON that keeps -0 (JSON.stringify writes 0). */
export function jsonText(v: unknown): string {
  if (typeof v === 'number') return numberText(v);
  if (Array.isArray(v)) return `[${v.map(jsonText).join(',')}]`;
  if (typeof v === 'object' && v !== null) return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${jsonText(x)}`).join(',')}}`;
  return JSON.stringify(v);
}

/** Percent-encodes a key or value; ':', '/' and '@' stay readable, and the separators '&', '=', ',', '!' are escaped. */
function enc(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%3A/g, ':')
    .replace(/%2F/g, '/')
    .replace(/%40/g, '@');
}

const isNumberList = (v: unknown): v is number[] => Array.isArray(v) && v.length > 1 && v.every((x) => typeof x === 'number');

/** The link text of one parameter value. */
function paramText(p: ParamSpec, v: ParamValues[string]): string {
  if (typeof v === 'number') return numberText(v);
  if (typeof v === 'string' || typeof v === 'boolean') return String(v);
  if (p.kind === 'order' && Array.isArray(v)) return (v as number[]).join(',');
  if (isNumberList(v)) return v.map(numberText).join(',');
  return jsonText(v);
}

/** The URL hash (with '#') of an experiment; throws a ConfigError if it would exceed MAX_LINK. */
export function encodeShareLink(e: Experiment): string {
  const method = getMethod(e.method);
  const parts: [string, string][] = [['v', String(LINK_VERSION)]];
  if (e.method !== DEFAULT_METHOD) parts.push(['method', e.method]);
  for (const p of method.params) if (e.params[p.name] !== undefined) parts.push([p.name, paramText(p, e.params[p.name]!)]);
  if (e.models.length) parts.push(['models', e.models.map((m) => `${m.enabled ? '' : '!'}${enc(sourceText(m.source))}`).join(',')]);
  if (sourceText(e.base) !== sourceText(DEMO_BASE)) parts.push(['base', sourceText(e.base)]);
  if (e.outputDtype !== 'base') parts.push(['dtype', e.outputDtype]);
  if (e.evaluation.liveSamples !== DEFAULT_EVALUATION.liveSamples) parts.push(['live', String(e.evaluation.liveSamples)]);
  if (e.evaluation.settledSamples !== DEFAULT_EVALUATION.settledSamples) parts.push(['settled', String(e.evaluation.settledSamples)]);
  if (e.evaluation.seed !== DEFAULT_EVALUATION.seed) parts.push(['eval_seed', String(e.evaluation.seed)]);
  for (const [k, f] of Object.entries(VIEW_FIELDS)) if (e.view[k] !== undefined && e.view[k] !== f.default) parts.push([`${VIEW_PREFIX}${k}`, String(e.view[k])]);
  if (e.data.length) parts.push(['data', e.data.map(enc).join(',')]);
  // Lists are encoded item by item (their commas separate items); everything else as a whole.
  const hash = `#${parts.map(([k, v]) => `${enc(k)}=${LISTS.has(k) ? v : enc(v)}`).join('&')}`;
  if (hash.length > MAX_LINK) throw new ConfigError('link', `would be ${hash.length} characters long (links hold at most ${MAX_LINK}): export the experiment as a JSON file instead`);
  return hash;
}

// ---------- decoding ----------

const KEY = /^[A-Za-z0-9_.]{1,64}$/;
const NUMBER = /^-?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
const INTEGER = /^\d{1,10}$/;

function dec(field: string, s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new ConfigError(field, 'has malformed percent-encoding (a "%" not followed by two hex digits, or bytes that are not UTF-8)');
  }
}

const num = (s: string): number | string => (NUMBER.test(s) ? Number(s) : s);
const int = (s: string): number | string => (INTEGER.test(s) ? Number(s) : s);
const bool = (s: string): boolean | string => (s === 'true' ? true : s === 'false' ? false : s);

/** A parameter value from its link text, by the parameter's kind; what cannot be read stays text for the validator to refuse. */
function readParam(p: ParamSpec | undefined, text: string): unknown {
  if (!p) return text;
  switch (p.kind) {
    case 'number':
    case 'integer':
      return num(text);
    case 'boolean':
      return bool(text);
    case 'enum':
      return text;
    case 'order':
      return /^\d{1,9}(,\d{1,9})*$/.test(text) ? text.split(',').map(Number) : text;
    case 'coefficient': {
      if (text === 'auto') return text;
      if (text.startsWith('[') || text.startsWith('{')) {
        checkJsonNesting(`params.${p.name}`, text);
        try {
          return JSON.parse(text) as unknown;
        } catch {
          throw new ConfigError(`params.${p.name}`, `is not valid JSON: ${preview(text)}`);
        }
      }
      const items = text.split(',');
      return items.length > 1 && items.every((x) => NUMBER.test(x)) ? items.map(Number) : num(text);
    }
  }
}

/**
 * Reads a URL hash (with or without '#') into an Experiment. An empty hash gives the default experiment. Throws a
 * ConfigError naming the link key or experiment field at fault; the page then keeps its defaults and shows the message
 * as text.
 */
export function decodeShareLink(hash: string): DecodedLink {
  if (typeof hash !== 'string') throw new ConfigError('link', 'must be text');
  // Length first: a megabyte-long link is refused before any work proportional to it.
  if (hash.length > MAX_LINK) throw new ConfigError('link', `is ${hash.length} characters long (at most ${MAX_LINK})`);
  const body = hash.startsWith('#') ? hash.slice(1) : hash;
  const warnings: string[] = [];
  if (body.trim() === '') return { experiment: validateExperiment({}, warnings), warnings };

  const entries = new Map<string, string>();
  for (const part of body.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = dec('link', eq < 0 ? part : part.slice(0, eq));
    // Credentials are refused before any message could quote them.
    rejectSecrets({ [key]: null }, '');
    if (!KEY.test(key)) throw new ConfigError('link', `key ${preview(key, 40)} is not a setting name (letters, digits, "_" and "." only)`);
    if (eq < 0) throw new ConfigError(key, 'has no value (expected key=value)');
    if (entries.has(key)) throw new ConfigError(key, 'appears twice in the link');
    const value = LISTS.has(key) ? part.slice(eq + 1) : dec(key, part.slice(eq + 1));
    rejectSecrets({ [key]: value }, '');
    entries.set(key, value);
  }
  const raw = fromEntries(entries);
  return { experiment: validateExperiment(raw, warnings), warnings };
}

/** The raw experiment object of a link's entries (types read from the text; validateExperiment does the checking). */
function fromEntries(entries: Map<string, string>): Record<string, unknown> {
  const version = entries.get('v');
  if (version === undefined) throw new ConfigError('v', `is missing: this is not a Merge Playground link (they start with #v=${LINK_VERSION})`);
  if (version !== String(LINK_VERSION)) throw new ConfigError('v', `link version ${preview(version, 20)} is not one this page reads (it reads v=${LINK_VERSION})`);
  const raw: Record<string, unknown> = {};
  const methodId = entries.get('method') ?? DEFAULT_METHOD;
  raw.method = methodId;
  const method = getMethod(methodId);
  // No prototype: a "__proto__" key must stay a key (refused as an unknown parameter), never become a prototype.
  const params = Object.create(null) as Record<string, unknown>;
  const view = Object.create(null) as Record<string, unknown>;
  const evaluation: Record<string, unknown> = {};
  for (const [key, text] of entries) {
    if (key === 'v' || key === 'method') continue;
    if (key === 'models') raw.models = text === '' ? [] : text.split(',').map((item, i) => readModel(`models[${i}]`, item));
    else if (key === 'base') raw.base = text;
    else if (key === 'data') raw.data = text === '' ? [] : text.split(',').map((item, i) => dec(`data[${i}]`, item));
    else if (key === 'dtype') raw.outputDtype = text;
    else if (key === 'live') evaluation.liveSamples = int(text);
    else if (key === 'settled') evaluation.settledSamples = text === 'all' ? 'all' : int(text);
    else if (key === 'eval_seed') evaluation.seed = int(text);
    else if (key.startsWith(VIEW_PREFIX)) {
      const name = key.slice(VIEW_PREFIX.length);
      const f = Object.prototype.hasOwnProperty.call(VIEW_FIELDS, name) ? VIEW_FIELDS[name] : undefined;
      view[name] = f?.kind === 'boolean' ? bool(text) : f?.kind === 'integer' ? int(text) : text;
    } else params[key] = readParam(method.params.find((p) => p.name === key), text);
  }
  raw.params = params;
  if (Object.keys(view).length) raw.view = view;
  if (Object.keys(evaluation).length) raw.evaluation = evaluation;
  return raw;
}

function readModel(field: string, item: string): { source: string; enabled: boolean } {
  const enabled = !item.startsWith('!');
  return { source: dec(field, enabled ? item : item.slice(1)), enabled };
}
