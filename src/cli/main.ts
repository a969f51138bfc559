/**
 * `merge-playground` command line: the same engine and shaders as the page, on Dawn (the `webgpu` package) in Node.
 * Exit codes: 0 success, 1 a failure (bad input, GPU error), 2 bad usage. Errors are one line naming what is at fault.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ConfigError } from '../engine/errors';
import { GpuContext, GpuRuntime } from '../engine/gpu/device';
import { tensorSizes, withChunkFallback, withDeviceRetry } from '../engine/gpu/retry';
import type { Model } from '../engine/io/model';
import { resolveConfig } from '../engine/merge/config';
import { runContinual } from '../engine/merge/continual';
import { runMerge, type MergeProgress } from '../engine/merge/runMerge';
import type { MergeReport, NonFiniteCount } from '../engine/merge/report';
import { methodsMarkdown } from '../engine/methods/docs';
import { METHODS } from '../engine/methods/registry';
import type { ParamSpec } from '../engine/methods/params';
import { nodeGpu } from '../platform/nodeGpu';
import { describeFsError, fileSink } from '../platform/nodeFiles';
import { modelSource, openModelArg } from '../platform/hubNode';
import { buildConfig, parseMergeArgs, USAGE, checkSvdMethod, gpuCacheBytes } from './args';
import { evalMarkdown, evalTable, EVAL_USAGE, runEval } from './evalCommand';

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (!command || command === '--help' || command === '-h' || command === 'help') {
      process.stdout.write(`${USAGE}\n\n${EVAL_USAGE}\n`);
      return command ? 0 : 2;
    }
    if (command === 'methods') {
      process.stdout.write(rest.includes('--markdown') ? methodsMarkdown(METHODS) : describeMethods());
      return 0;
    }
    if (command === 'merge') return await mergeCommand(rest);
    if (command === 'eval') return await evalCommand(rest);
    throw new ConfigError('command', `unknown command ${JSON.stringify(command)} (commands: merge, methods, --help)`);
  } catch (e) {
    const err = e as Error;
    process.stderr.write(`merge-playground: error: ${err.message.split('\n')[0]}\n`);
    return err instanceof ConfigError && (err.field === 'arguments' || err.field === 'command' || err.field.startsWith('--')) ? 2 : 1;
  }
}

async function mergeCommand(argv: string[]): Promise<number> {
  const cmd = parseMergeArgs(argv);
  const fileConfig = cmd.configFile ? await readJson(cmd.configFile) : undefined;
  const config = resolveConfig(buildConfig(cmd, fileConfig));
  const log = (msg: string) => {
    if (!cmd.quiet) process.stderr.write(`${msg}\n`);
  };
  // Hub ids are downloaded (with progress) before the GPU starts; local files are read as the merge goes.
  const open = (arg: string) => openModelArg(arg, { prefix: cmd.prefix, log });
  const base = await open(cmd.base);
  const models: Model[] = [];
  for (const m of cmd.models) models.push(await open(m));
  const runtime = new GpuRuntime(await nodeGpu({ log }), { label: 'merge-playground cli' });
  try {
    if (cmd.saveSteps && config.method.family !== 'continual') throw new ConfigError('--save-steps', `only continual methods merge in steps ('${config.method.id}' is a batch method)`);
    checkSvdMethod(cmd.svd, config.method.id);
    const cacheBytes = gpuCacheBytes(cmd.gpuCacheMiB, config.method);
    // A lost device restarts the merge once on a new one; a buffer that does not fit restarts it in smaller chunks.
    // Files of a failed attempt are aborted (temp files removed), so only a complete merge is ever renamed into place.
    const report = await withDeviceRetry(
      runtime,
      async (ctx, attempt) => {
        log(`merging ${models.length} model(s) into ${cmd.out} with ${config.method.id} on ${ctx.info.adapter}`);
        if (config.method.family === 'continual') {
          return runContinual(ctx, {
            base,
            models,
            config,
            output: async () => attempt.sink(await fileSink(cmd.out)),
            saveStep: async (step) => {
              if (!cmd.saveSteps) return null;
              await mkdir(cmd.saveSteps, { recursive: true });
              return fileSink(join(cmd.saveSteps, `step-${String(step + 1).padStart(3, '0')}.safetensors`));
            },
            onProgress: stepPrinter(log),
            ...(cmd.svd ? { svd: cmd.svd } : {}),
          });
        }
        return withChunkFallback(
          config,
          (cfg, run) =>
            runMerge(ctx, {
              base,
              models,
              config: cfg,
              // A rerun after running out of memory passes 0, which wins over --gpu-cache.
              ...((run.cacheBytes ?? cacheBytes) !== undefined ? { cacheBytes: run.cacheBytes ?? cacheBytes } : {}),
              output: async (index, label) => attempt.sink(await openOutput(cmd.out, index, label)),
              onProgress: progressPrinter(log),
              // Interference metrics cost extra GPU passes, and the norms' partial sums a fifth of a fused merge on a
              // CPU-emulated GPU: both only when a report is asked for (without, NaN and infinities are still found).
              metrics: cmd.report !== null,
              norms: cmd.report !== null,
            }),
          { tensors: tensorSizes(base), onFallback: (n, e) => log(`${e.message}; merging again in chunks of ${n.toLocaleString('en')} elements`) },
        );
      },
      { onRetry: (reason) => log(`the GPU device was lost (${reason}); merging again on a new device`) },
    );
    // Sources pin Hub models to the commits actually read, so the report says exactly what was merged.
    if (cmd.report) await writeText(cmd.report, `${JSON.stringify({ ...report, sources: { base: modelSource(base), models: models.map(modelSource) } }, null, 2)}\n`);
    // Printed even with --quiet: the output file is written, but it may be useless.
    if ('interference' in report) for (const line of nonFiniteWarnings(report)) process.stderr.write(`merge-playground: warning: ${line}\n`);
    log(`wrote ${cmd.out} (${(report.output?.bytes ?? 0).toLocaleString('en')} bytes) in ${(report.elapsedMs / 1000).toFixed(2)} s`);
    return 0;
  } finally {
    runtime.destroy();
  }
}

/**
 * One line per tensor and model whose task vector (fine-tuned minus base) held NaN or infinite values, which spread
 * into the merge: counted by the interference metrics when they were measured (--report), else by a merge without
 * norms (report.nonFinite, which also names merged tensors that overflowed), else seen in the per-tensor norms, which
 * such values make non-finite. At most 20 lines, then how many more.
 */
export function nonFiniteWarnings(report: MergeReport): string[] {
  const found = new Map<string, { tensor: string; model: number; count: number | null }>();
  const overflowed: NonFiniteCount[] = [];
  if (report.interference) {
    // Reported per chunk: a tensor streamed in several chunks appears several times.
    for (const n of report.interference.nonFinite) {
      const key = `${n.model}/${n.tensor}`;
      const seen = found.get(key);
      found.set(key, { tensor: n.tensor, model: n.model, count: (seen?.count ?? 0) + n.count });
    }
  } else {
    for (const n of report.nonFinite ?? []) {
      if (n.model === null) overflowed.push(n);
      else found.set(`${n.model}/${n.tensor}`, { tensor: n.tensor, model: n.model, count: n.count });
    }
    for (const t of report.tensors) {
      t.taskVectorNorms?.forEach((norm, model) => {
        if (!Number.isFinite(norm)) found.set(`${model}/${t.name}`, { tensor: t.name, model, count: null });
      });
    }
  }
  const lines = [
    ...[...found.values()].map(
      ({ tensor, model, count }) =>
        `tensor "${tensor}" of model ${report.models[model]} differs from the base by ${count === null ? '' : `${count} `}NaN or infinite values; the merged tensor may hold them too`,
    ),
    ...overflowed.map(({ tensor, count }) => `merged tensor "${tensor}" holds ${count} infinite or NaN values where every task vector is finite: the weighted sum overflowed`),
  ];
  return lines.length > 20 ? [...lines.slice(0, 20), `... and ${lines.length - 20} more tensors with NaN or infinite values`] : lines;
}

/**
 * The sink of one output: `--out` itself for single-model methods; for methods that write one model per task
 * (TALL masks) `--out` is a folder that receives `<index>-<model file name>`.
 */
async function openOutput(out: string, index: number, label: string | null) {
  if (label === null) return fileSink(out);
  try {
    await mkdir(out, { recursive: true });
  } catch (e) {
    throw new ConfigError('--out', `${out}: this method writes one model per task into a folder, and the folder cannot be created: ${describeFsError(e)}`);
  }
  const name = basename(label).replace(/\.safetensors$/, '').replace(/[^\w.-]+/g, '_');
  return fileSink(join(out, `${index}-${name}.safetensors`));
}

async function evalCommand(argv: string[]): Promise<number> {
  const quiet = argv.includes('--quiet');
  const log = (msg: string) => {
    if (!quiet) process.stderr.write(`${msg}\n`);
  };
  const started = performance.now();
  const ctx = await GpuContext.create(await nodeGpu({ log }), { label: 'merge-playground eval' });
  try {
    const result = await runEval(ctx, argv, log);
    process.stdout.write(evalTable(result));
    const json = flagValue(argv, '--json');
    if (json) await writeText(json, `${JSON.stringify(result, null, 2)}\n`);
    const md = flagValue(argv, '--markdown');
    if (md) {
      const command = `merge-playground eval ${argv.filter((a) => a !== '--quiet' && a !== md && a !== '--markdown').join(' ')}`;
      await writeText(md, evalMarkdown(result, command, { adapter: ctx.info.adapter, seconds: (performance.now() - started) / 1000 }));
    }
    return 0;
  } finally {
    ctx.destroy();
  }
}

function flagValue(argv: string[], flag: string): string | null {
  const i = argv.indexOf(flag);
  return i >= 0 ? (argv[i + 1] ?? null) : null;
}

/** Writes a text file atomically (temp file, then rename). */
async function writeText(path: string, text: string): Promise<void> {
  const sink = await fileSink(path);
  try {
    await sink.write(new TextEncoder().encode(text));
    await sink.close();
  } catch (e) {
    await sink.abort();
    throw e;
  }
}

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ConfigError('--config', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConfigError('--config', `${path} is not valid JSON (${(e as Error).message})`);
  }
}

/** Prints one line per continual step. */
function stepPrinter(log: (msg: string) => void): (p: { step: number; steps: number }) => void {
  let last = -1;
  return (p) => {
    if (p.step === last) return;
    last = p.step;
    log(`  step ${p.step + 1}/${p.steps}`);
  };
}

/** Prints progress to stderr at most twice a second, and only once a run has lasted a second. */
function progressPrinter(log: (msg: string) => void): (p: MergeProgress) => void {
  const start = Date.now();
  let last = 0;
  return (p) => {
    const now = Date.now();
    if (now - start < 1000 || now - last < 500) return;
    last = now;
    const pct = p.totalBytes ? ((100 * p.doneBytes) / p.totalBytes).toFixed(1) : '100';
    log(`  ${p.phase}: ${pct}%  ${p.tensor}`);
  };
}

function describeParam(p: ParamSpec): string {
  const range = p.kind === 'enum' ? p.values.join('|') : p.kind === 'number' || p.kind === 'integer' || p.kind === 'coefficient' ? `${p.min}..${p.max}` : p.kind;
  return `    ${p.name} = ${JSON.stringify(p.default)}  (${range})  ${p.description}`;
}

function describeMethods(): string {
  return METHODS.map((m) => [`${m.id}: ${m.label}. ${m.summary}`, ...m.params.map(describeParam), ''].join('\n')).join('\n');
}
