/**
 * Experiment files: the Experiment as pretty JSON tagged `"format": "merge-playground/experiment@1"`, and the CLI's
 * merge config (`"format": "merge-playground/merge@1"`, what `merge-playground merge --config` reads). Import takes
 * either: an experiment file restores everything; a CLI config sets the method, its parameters and the output dtype.
 * Both go through the same validators as links, with the same size, nesting and credential limits.
 */
import { ConfigError, preview } from '../engine/errors';
import { CONFIG_FORMAT, DEFAULT_OPTIONS, resolveConfig, type MergeConfig } from '../engine/merge/config';
import { getMethod } from '../engine/methods/registry';
import {
  checkJsonNesting,
  defaultExperiment,
  EXPERIMENT_VERSION,
  isPlainObject,
  nonDefaultParams,
  rejectSecrets,
  sourceText,
  validateExperiment,
  type Experiment,
} from './experiment';
import type { DecodedLink } from './shareLink';

export const EXPERIMENT_FORMAT = 'merge-playground/experiment@1';
/** Largest config file read (real ones are a few kB; a coefficient table for a big model may reach a few hundred). */
export const MAX_CONFIG_BYTES = 1 << 20;

/** The JSON object of an experiment file: sources in their text form, parameters that differ from the defaults. */
export function experimentToJson(e: Experiment): Record<string, unknown> {
  return {
    format: EXPERIMENT_FORMAT,
    version: e.version,
    base: sourceText(e.base),
    models: e.models.map((m) => ({ source: sourceText(m.source), enabled: m.enabled })),
    method: e.method,
    params: { ...e.params },
    outputDtype: e.outputDtype,
    evaluation: { ...e.evaluation },
    view: { ...e.view },
    ...(e.data.length ? { data: [...e.data] } : {}),
  };
}

/** The experiment file's text (pretty JSON, ending with a newline). */
export function exportExperimentJson(e: Experiment): string {
  return `${JSON.stringify(experimentToJson(e), null, 2)}\n`;
}

/**
 * The CLI's merge config for this experiment: `merge-playground merge --config FILE --base BASE --model M ...` runs the
 * same merge (models are given on the command line: the CLI reads files and folders, not demo ids).
 */
export function experimentToMergeConfig(e: Experiment): MergeConfig {
  getMethod(e.method);
  const config: MergeConfig = { format: CONFIG_FORMAT, method: e.method, params: { ...e.params } };
  if (e.outputDtype !== 'base') config.options = { outputDtype: e.outputDtype };
  return config;
}

export function exportMergeConfigJson(e: Experiment): string {
  return `${JSON.stringify(experimentToMergeConfig(e), null, 2)}\n`;
}

/** Reads an experiment file or a CLI merge config; throws a ConfigError naming the field at fault. */
export function importConfigJson(text: string, fileName = 'config file'): DecodedLink {
  if (typeof text !== 'string') throw new ConfigError(fileName, 'must be text');
  if (text.length > MAX_CONFIG_BYTES) throw new ConfigError(fileName, `is ${text.length} characters long (at most ${MAX_CONFIG_BYTES})`);
  checkJsonNesting(fileName, text);
  let raw: unknown;
  try {
    raw = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (e) {
    throw new ConfigError(fileName, `is not valid JSON (${(e as Error).message.slice(0, 120)})`);
  }
  return importConfigObject(raw);
}

/** Reads a parsed experiment file or CLI merge config. */
export function importConfigObject(raw: unknown): DecodedLink {
  if (!isPlainObject(raw)) throw new ConfigError('config', `must be a JSON object, got ${preview(raw)}`);
  rejectSecrets(raw, '');
  const warnings: string[] = [];
  if (raw.format === EXPERIMENT_FORMAT) {
    const { format: _, ...rest } = raw;
    return { experiment: validateExperiment(rest, warnings), warnings };
  }
  if (raw.format !== undefined && raw.format !== CONFIG_FORMAT) {
    throw new ConfigError('format', `expected ${JSON.stringify(EXPERIMENT_FORMAT)} (a page export) or ${JSON.stringify(CONFIG_FORMAT)} (a CLI config), got ${preview(raw.format)}`);
  }
  if (raw.format === undefined && !('method' in raw)) throw new ConfigError('format', `is missing: expected ${JSON.stringify(EXPERIMENT_FORMAT)} or a CLI config with "method"`);
  const config = resolveConfig(raw);
  const experiment = defaultExperiment();
  experiment.method = config.method.id;
  experiment.params = nonDefaultParams(config.method, config.params);
  experiment.outputDtype = config.options.outputDtype;
  for (const k of Object.keys(DEFAULT_OPTIONS) as (keyof typeof DEFAULT_OPTIONS)[]) {
    if (k !== 'outputDtype' && config.options[k] !== DEFAULT_OPTIONS[k]) warnings.push(`options.${k} is a command-line setting: the page does not use it`);
  }
  return { experiment: validateExperiment({ ...experiment, version: EXPERIMENT_VERSION }, warnings), warnings };
}
