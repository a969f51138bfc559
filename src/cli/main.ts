/**
 * `merge-playground` command line: the same engine and shaders as the page, on Dawn (the `webgpu` package) in Node.
 * Exit codes: 0 success, 1 a failure (bad input, GPU error), 2 bad usage. Errors are one line naming what is at fault.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ConfigError } from '../engine/errors';
import { GpuContext } from '../engine/gpu/device';
import { resolveConfig } from '../engine/merge/config';
import { runMerge, type MergeProgress } from '../engine/merge/runMerge';
import { methodsMarkdown } from '../engine/methods/docs';
import { METHODS } from '../engine/methods/registry';
import type { ParamSpec } from '../engine/methods/params';
import { nodeGpu } from '../platform/nodeGpu';
import { fileSink, openModelPath } from '../platform/nodeFiles';
import { buildConfig, parseMergeArgs, USAGE } from './args';

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (!command || command === '--help' || command === '-h' || command === 'help') {
      process.stdout.write(`${USAGE}\n`);
      return command ? 0 : 2;
    }
    if (command === 'methods') {
      process.stdout.write(rest.includes('--markdown') ? methodsMarkdown(METHODS) : describeMethods());
      return 0;
    }
    if (command === 'merge') return await mergeCommand(rest);
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
  const base = await openModelPath(cmd.base);
  const models = [];
  for (const m of cmd.models) models.push(await openModelPath(m));
  const gpu = await nodeGpu({ log });
  const ctx = await GpuContext.create(gpu, { label: 'merge-playground cli' });
  try {
    log(`merging ${models.length} model(s) into ${cmd.out} with ${config.method.id} on ${ctx.info.adapter}`);
    const report = await runMerge(ctx, {
      base,
      models,
      config,
      output: (index, label) => openOutput(cmd.out, index, label),
      onProgress: progressPrinter(log),
      // Interference metrics cost extra GPU passes: measure them when a report is asked for.
      metrics: cmd.report !== null,
    });
    if (cmd.report) {
      const reportSink = await fileSink(cmd.report);
      try {
        await reportSink.write(new TextEncoder().encode(`${JSON.stringify(report, null, 2)}\n`));
        await reportSink.close();
      } catch (e) {
        await reportSink.abort();
        throw e;
      }
    }
    log(`wrote ${cmd.out} (${report.tensors.length} tensors, ${(report.output?.bytes ?? 0).toLocaleString('en')} bytes) in ${(report.elapsedMs / 1000).toFixed(2)} s`);
    return 0;
  } finally {
    ctx.destroy();
  }
}

/**
 * The sink of one output: `--out` itself for single-model methods; for methods that write one model per task
 * (TALL masks) `--out` is a folder that receives `<index>-<model file name>`.
 */
async function openOutput(out: string, index: number, label: string | null) {
  if (label === null) return fileSink(out);
  await mkdir(out, { recursive: true });
  const name = basename(label).replace(/\.safetensors$/, '').replace(/[^\w.-]+/g, '_');
  return fileSink(join(out, `${index}-${name}.safetensors`));
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
