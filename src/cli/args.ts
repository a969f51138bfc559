/** Command-line parsing for `merge-playground`: flags to a merge config, with errors that name the flag at fault. */
import { parseArgs } from 'node:util';
import { ConfigError } from '../engine/errors';
import type { MergeConfig } from '../engine/merge/config';
import { getMethod } from '../engine/methods/registry';
import { parseParamText } from '../engine/methods/params';

export const USAGE = `Usage:
  merge-playground merge --base BASE --model M1 --model M2 [...] --method METHOD
                         [--set key=value ...] [--config config.json] --out merged.safetensors
                         [--report report.json] [--dtype base|F32|F16|BF16]
                         [--extra-tensors passthrough|ignore] [--mixed-dtypes]
                         [--save-steps DIR] [--svd gpu|host] [--gpu-cache MIB]
                         [--prefix TENSOR_PREFIX] [--quiet]
  merge-playground methods [--markdown]   list every method and its parameters
  merge-playground --help

BASE and M are .safetensors files, sharded index files (model.safetensors.index.json),
folders holding model.safetensors or a sharded index, or Hugging Face Hub ids
org/name[@revision] (an argument that is neither an existing path nor named like a
file: *.safetensors, *.json, ./..., /...). Hub models are
downloaded with range requests into ~/.cache/merge-playground/hub (MERGE_PLAYGROUND_CACHE
sets the folder, or "off"); HF_ENDPOINT sets the Hub URL and HF_TOKEN the access token
for gated or private repos. --prefix keeps only tensors whose names start with it (e.g.
vision_model. of a full CLIP checkpoint: only those tensors are downloaded). --set overrides one method
parameter; --config reads the same JSON config the page exports (flags override it).
Continual methods (opcm, continual_*) merge the models one at a time, in the order
given (or --set order=shuffle --set seed=N); --save-steps writes the merged model
after every step, and the report has one entry per step. --svd sets where OPCM factors
its Linear weights: gpu (block Jacobi) or host (float64, one CPU core); by default the
host on a CPU-emulated adapter (SwiftShader, llvmpipe), else the GPU. --gpu-cache sets
the GPU memory, in MiB, that methods with several passes over the models (TIES, SLERP,
Model Stock, the interference metrics) use to keep model bytes on the GPU between them
instead of uploading them again (default 2048 on a GPU, 512 on a CPU-emulated adapter;
0: none). A merge that runs out of GPU memory is run again without it.`;

/** `--svd` (merge and eval): where OPCM factors its Linear weights, or null for the adapter's default. */
export function parseSvd(value: string | undefined): 'gpu' | 'host' | null {
  if (value === undefined) return null;
  if (value !== 'gpu' && value !== 'host') throw new ConfigError('--svd', `expected gpu or host, got ${JSON.stringify(value)}`);
  return value;
}

/** `--svd` names a placement of OPCM's SVDs: refused for any other method. */
export function checkSvdMethod(svd: 'gpu' | 'host' | null, method: string): void {
  if (svd && method !== 'opcm') throw new ConfigError('--svd', `only opcm takes SVDs ('${method}' does not)`);
}

/** `--gpu-cache` (merge): MiB as a whole number >= 0, or null for the engine's default. */
export function parseGpuCache(value: string | undefined): number | null {
  if (value === undefined) return null;
  const mib = Number(value.trim());
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(mib * 2 ** 20)) throw new ConfigError('--gpu-cache', `expected a whole number of MiB (0 or more), got ${JSON.stringify(value)}`);
  return mib;
}

/**
 * `--gpu-cache` for `method` (null: every method, as --all-methods): the cache's bytes for runMerge, undefined without
 * the flag; refused for a continual method, which keeps nothing between passes.
 */
export function gpuCacheBytes(mib: number | null, method: { id: string; family: string } | null): number | undefined {
  if (mib === null) return undefined;
  if (method?.family === 'continual') throw new ConfigError('--gpu-cache', `only batch methods keep model bytes between passes ('${method.id}' is a continual method)`);
  return mib * 2 ** 20;
}

/** A parsed `merge` command. */
export interface MergeCommand {
  base: string;
  models: string[];
  out: string;
  report: string | null;
  configFile: string | null;
  method: string | null;
  sets: string[];
  dtype: string | null;
  extraTensors: string | null;
  mixedDtypes: boolean;
  saveSteps: string | null;
  /** Where OPCM's SVDs run (null: the engine's default for the adapter). */
  svd: 'gpu' | 'host' | null;
  /** GPU memory kept between a batch method's passes, in MiB (null: the engine's default for the adapter). */
  gpuCacheMiB: number | null;
  /** Only tensors whose names start with this ('' for all). */
  prefix: string;
  quiet: boolean;
}

/** Parses the arguments after `merge`. */
export function parseMergeArgs(argv: string[]): MergeCommand {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        base: { type: 'string' },
        model: { type: 'string', multiple: true },
        method: { type: 'string' },
        set: { type: 'string', multiple: true },
        config: { type: 'string' },
        out: { type: 'string' },
        report: { type: 'string' },
        dtype: { type: 'string' },
        'extra-tensors': { type: 'string' },
        'mixed-dtypes': { type: 'boolean' },
        'save-steps': { type: 'string' },
        svd: { type: 'string' },
        'gpu-cache': { type: 'string' },
        prefix: { type: 'string' },
        quiet: { type: 'boolean' },
      },
    }));
  } catch (e) {
    throw new ConfigError('arguments', (e as Error).message);
  }
  if (!values.base) throw new ConfigError('--base', 'is required (the pretrained model)');
  if (!values.model?.length) throw new ConfigError('--model', 'is required at least once (a fine-tuned model)');
  if (!values.out) throw new ConfigError('--out', 'is required (where to write merged.safetensors)');
  const svd = parseSvd(values.svd);
  return {
    base: values.base,
    models: values.model,
    out: values.out,
    report: values.report ?? null,
    configFile: values.config ?? null,
    method: values.method ?? null,
    sets: values.set ?? [],
    dtype: values.dtype ?? null,
    extraTensors: values['extra-tensors'] ?? null,
    mixedDtypes: values['mixed-dtypes'] ?? false,
    saveSteps: values['save-steps'] ?? null,
    svd,
    gpuCacheMiB: parseGpuCache(values['gpu-cache']),
    prefix: values.prefix ?? '',
    quiet: values.quiet ?? false,
  };
}

/** Combines a config file (if any) with the flags; flags win. Returns the raw config for resolveConfig. */
export function buildConfig(cmd: MergeCommand, fileConfig: unknown): MergeConfig {
  const fromFile = (fileConfig ?? {}) as Partial<MergeConfig> & Record<string, unknown>;
  if (typeof fromFile !== 'object' || Array.isArray(fromFile)) throw new ConfigError('--config', 'must contain a JSON object');
  const method = cmd.method ?? (typeof fromFile.method === 'string' ? fromFile.method : null);
  if (!method) throw new ConfigError('--method', 'is required (or give "method" in --config); run `merge-playground methods` for the list');
  const spec = getMethod(method);
  const params: Record<string, unknown> = fromFile.method === undefined || fromFile.method === method ? { ...(fromFile.params ?? {}) } : {};
  for (const s of cmd.sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new ConfigError('--set', `expected key=value, got ${JSON.stringify(s)}`);
    const key = s.slice(0, eq).trim();
    const p = spec.params.find((x) => x.name === key);
    if (!p) throw new ConfigError(`--set ${key}`, `unknown parameter for method '${spec.id}' (allowed: ${spec.params.map((x) => x.name).join(', ') || '(none)'})`);
    params[key] = parseParamText(p, s.slice(eq + 1));
  }
  const options: Record<string, unknown> = { ...(fromFile.options ?? {}) };
  if (cmd.dtype) options.outputDtype = cmd.dtype;
  if (cmd.extraTensors) options.extraBaseTensors = cmd.extraTensors;
  if (cmd.mixedDtypes) options.mixedDtypes = true;
  const out: MergeConfig = { method, params, options };
  if (fromFile.format !== undefined) out.format = fromFile.format as string;
  return out;
}
