/**
 * `merge-playground eval`: per-task accuracy of the base, each fine-tuned model and the merged model on a suite,
 * on the GPU. `--all-methods` compares every method at its defaults; `--orders N` runs a continual method's
 * protocol (scores after every step, BWT, several seeded orders: src/engine/eval/continualEval.ts).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { checkSvdMethod, gpuCacheBytes, parseGpuCache, parseSvd } from './args';
import { ConfigError } from '../engine/errors';
import type { GpuContext } from '../engine/gpu/device';
import { loadSuite, type Suite } from '../engine/eval/suite';
import { SuiteEvaluator, type TaskScore } from '../engine/eval/suiteEvaluator';
import { runContinualProtocol, type ContinualProtocolResult, type MeanStd } from '../engine/eval/continualEval';
import { mergeAndScore, scoreIndividuals, scoreModel } from '../engine/eval/scoreMerge';
import { resolveConfig, type MergeConfig } from '../engine/merge/config';
import { METHODS, getMethod } from '../engine/methods/registry';
import { parseParamText } from '../engine/methods/params';
import { suiteFilesFromDir } from '../platform/nodeFiles';
import { HUB_PRESETS, hubPreset } from '../engine/eval/fusionbench/presets';
import { loadHubSuite } from '../engine/eval/hubSuite';
import { headCacheOver } from '../engine/eval/zeroShotHeads';
import { nodeHubAccess, nodeHubOptions } from '../platform/hubNode';
import { decodeImageNode } from '../platform/imageDecodeNode';

/** Accuracies (%) of one model on every task, and their average. */
export interface ScoreRow {
  tasks: Record<string, number>;
  average: number;
}

export const EVAL_USAGE = `Usage:
  merge-playground eval --suite SUITE --method METHOD [--set key=value ...] [--samples N] [--seed S] [--json out.json]
                        [--gpu-cache MIB]
  merge-playground eval --suite SUITE --all-methods [--samples N] [--seed S] [--json out.json] [--markdown out.md]
                        [--gpu-cache MIB]
  merge-playground eval --suite SUITE --method CONTINUAL_METHOD --orders N [--seed S] [--all-tasks]
                        [--set key=value ...] [--samples N] [--json out.json] [--svd gpu|host]

SUITE is demo (the embedded suite), a folder with a manifest.json, or a FusionBench preset
from the Hub (${HUB_PRESETS.map((p) => p.id).join(', ')}; 8, 14 or 20 tasks, zero-shot heads
from the base CLIP text tower; HF_ENDPOINT and HF_TOKEN apply).
--samples takes N stratified test images per task (seeded by --seed). --orders N runs a
continual method (opcm, continual_*) in N random orders (order k is the shuffle of seed
S+k, as merge --set order=shuffle --set seed=S+k); after every step the merged model is
scored on the tasks seen so far (--all-tasks: on every task). It prints each step's average
accuracy, lambda_t and sqrt(t), each order's backward transfer (BWT) and final average
accuracy, and their mean and sample standard deviation over the orders. --svd (opcm only)
sets where OPCM factors its Linear weights, as for merge: gpu or host (default: the host on a
CPU-emulated adapter, else the GPU). --gpu-cache sets the GPU memory batch methods keep model
bytes in between their passes, as for merge (MiB; default 2048 on a GPU, 512 on a CPU-emulated
adapter; 0: none).`;

/**
 * A suite by name: a FusionBench preset from the Hub (models, text-tower heads and parquet test splits, through the
 * download cache; HF_ENDPOINT and HF_TOKEN apply), `demo`, or a folder with a manifest.json.
 */
async function openSuite(ctx: GpuContext, name: string, log: (m: string) => void): Promise<Suite> {
  if (!HUB_PRESETS.some((p) => p.id === name)) return loadSuite(suiteFilesFromDir(suiteDir(name)));
  const options = nodeHubOptions();
  return loadHubSuite({
    ctx,
    hub: nodeHubAccess(),
    decodeImage: decodeImageNode,
    preset: hubPreset(name),
    ...(options.cache ? { headCache: headCacheOver(options.cache) } : {}),
    onStatus: log,
  });
}

/** The folder of a named suite (`demo` is the embedded one, shipped in public/demo), or the path given. */
export function suiteDir(name: string): string {
  if (name !== 'demo') return name;
  // The CLI runs from dist-cli/cli.mjs (or src/cli in tests): the package root is one or two levels up.
  const here = dirname(fileURLToPath(import.meta.url));
  return join(here, here.endsWith('cli') && !here.endsWith('dist-cli') ? '../..' : '..', 'public', 'demo');
}

function row(scores: TaskScore[]): ScoreRow {
  const tasks = Object.fromEntries(scores.map((s) => [s.task, s.accuracy]));
  return { tasks, average: scores.reduce((a, s) => a + s.accuracy, 0) / scores.length };
}

/** Scores of the model a config merges (weights kept on the GPU); TALL masks make no single model. */
async function scoreMerge(ctx: GpuContext, suite: Suite, evaluator: SuiteEvaluator, raw: MergeConfig, opts: { samples: number | null; seed: number; svd?: 'gpu' | 'host' }): Promise<ScoreRow> {
  if (raw.method === 'tall_masks') throw new ConfigError('method', 'tall_masks makes one model per task, not one merged model: it has no single row in this table');
  const config = resolveConfig({ ...raw, options: { ...(raw.options ?? {}), mixedDtypes: true } });
  return row((await mergeAndScore(ctx, suite, evaluator, config, opts)).scores);
}

export interface EvalResult {
  suite: string;
  samples: number | null;
  seed: number;
  tasks: string[];
  base: ScoreRow;
  individual: ScoreRow;
  /** With --orders: the merged column is the final model's accuracy, averaged over the orders. */
  merged?: ScoreRow & { method: string; params: Record<string, unknown> };
  methods?: (ScoreRow & { method: string })[];
  /** With --all-methods: the methods that give no single merge of the suite, and why. */
  skipped?: { method: string; why: string }[];
  continual?: ContinualProtocolResult;
}

/** Runs the eval command; returns the result (printing is the caller's). */
export async function runEval(ctx: GpuContext, argv: string[], log: (m: string) => void): Promise<EvalResult> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        suite: { type: 'string' },
        method: { type: 'string' },
        set: { type: 'string', multiple: true },
        samples: { type: 'string' },
        seed: { type: 'string' },
        json: { type: 'string' },
        markdown: { type: 'string' },
        orders: { type: 'string' },
        'all-tasks': { type: 'boolean' },
        'all-methods': { type: 'boolean' },
        svd: { type: 'string' },
        'gpu-cache': { type: 'string' },
        quiet: { type: 'boolean' },
      },
    }));
  } catch (e) {
    throw new ConfigError('arguments', (e as Error).message);
  }
  if (!values.suite) throw new ConfigError('--suite', `is required (demo, a folder with a manifest.json, or a preset: ${HUB_PRESETS.map((p) => p.id).join(', ')})`);
  if (!values.method && !values['all-methods']) throw new ConfigError('--method', 'is required (or --all-methods)');
  const samples = values.samples === undefined ? null : Number(values.samples);
  if (samples !== null && (!Number.isInteger(samples) || samples < 1)) throw new ConfigError('--samples', `expected a positive integer, got ${values.samples}`);
  const seed = values.seed === undefined ? 0 : Number(values.seed);
  if (!Number.isInteger(seed)) throw new ConfigError('--seed', `expected an integer, got ${values.seed}`);
  const orders = values.orders === undefined ? null : Number(values.orders);
  if (orders !== null) {
    if (!Number.isInteger(orders) || orders < 1) throw new ConfigError('--orders', `expected a positive integer, got ${values.orders}`);
    if (!values.method || values['all-methods']) throw new ConfigError('--orders', 'needs --method with a continual method, and no --all-methods');
    if (getMethod(values.method).family !== 'continual') throw new ConfigError('--orders', `only continual methods merge in steps ('${values.method}' is a batch method)`);
    if (seed < 0) throw new ConfigError('--seed', `seeds the orders too: expected a non-negative integer, got ${seed}`);
  } else if (values['all-tasks']) throw new ConfigError('--all-tasks', 'only applies with --orders');
  const spec = values.method ? getMethod(values.method) : null;
  const svd = parseSvd(values.svd);
  if (svd && (!spec || values['all-methods'])) throw new ConfigError('--svd', 'needs --method opcm, and no --all-methods');
  if (spec) checkSvdMethod(svd, spec.id);
  const cacheBytes = gpuCacheBytes(parseGpuCache(values['gpu-cache']), spec);
  const params: Record<string, unknown> = {};
  for (const s of spec ? (values.set ?? []) : []) {
    const eq = s.indexOf('=');
    const p = spec!.params.find((x) => x.name === s.slice(0, eq));
    if (eq <= 0 || !p) throw new ConfigError('--set', `expected key=value with a parameter of ${spec!.id} (${spec!.params.map((x) => x.name).join(', ')}), got ${JSON.stringify(s)}`);
    params[p.name] = parseParamText(p, s.slice(eq + 1));
  }
  // Checked before any scoring, which takes minutes on a CPU adapter.
  const continualConfig = spec && orders !== null ? resolveConfig({ method: spec.id, params, options: { mixedDtypes: true } }) : null;
  if (continualConfig && (continualConfig.params.order ?? 'given') !== 'given') throw new ConfigError('--set', 'order: --orders and --seed choose the merge orders; leave order out');
  const suite = await openSuite(ctx, values.suite, log);
  const evaluator = new SuiteEvaluator(ctx, suite);
  const opts = { samples, seed, ...(svd ? { svd } : {}), ...(cacheBytes !== undefined ? { cacheBytes } : {}) };
  try {
    log(`evaluating on ${suite.manifest.name} (${suite.tasks.length} tasks, ${samples ?? 'all'} images per task)`);
    const base = row(await scoreModel(ctx, suite, evaluator, null, opts));
    const individual = await scoreIndividuals(ctx, suite, evaluator, opts);
    const result: EvalResult = { suite: suite.manifest.name, samples, seed, tasks: suite.tasks.map((t) => t.task.id), base, individual: row(individual) };
    if (spec) {
      if (!continualConfig) result.merged = { ...(await scoreMerge(ctx, suite, evaluator, { method: spec.id, params }, opts)), method: spec.id, params };
      else {
        log(`${spec.id}: ${orders} order(s), seed ${seed}, scored after every step on ${values['all-tasks'] ? 'every task' : 'the tasks seen so far'}`);
        const continual = await runContinualProtocol(ctx, suite, evaluator, {
          config: continualConfig,
          orders: orders!,
          seed,
          samples,
          sampleSeed: seed,
          evaluate: values['all-tasks'] ? 'all' : 'seen',
          ...(svd ? { svd } : {}),
          onStep: (k, step) => log(`  order ${k + 1}/${orders}: step ${step + 1}/${suite.tasks.length}`),
        });
        result.continual = continual;
        const final = continual.runs.map((r) => r.acc[r.acc.length - 1]!);
        const tasks = Object.fromEntries(result.tasks.map((t, j) => [t, final.reduce((a, row) => a + row[j]!, 0) / final.length]));
        result.merged = { tasks, average: continual.finalAverage.mean, method: spec.id, params };
      }
    }
    if (values['all-methods']) {
      result.methods = [];
      result.skipped = [];
      for (const m of METHODS) {
        // TALL masks make one model per task; SLERP takes exactly two models: neither gives one merge of the suite.
        const fits = suite.tasks.length >= m.models.min && (m.models.max === undefined || suite.tasks.length <= m.models.max);
        if (m.id === 'tall_masks' || !fits) {
          const takes = m.models.min === m.models.max ? `exactly ${m.models.min}` : `${m.models.min}-${m.models.max ?? 'any'}`;
          const why = m.id === 'tall_masks' ? 'one model per task' : `takes ${takes} models, the suite has ${suite.tasks.length}`;
          result.skipped.push({ method: m.id, why });
          log(`  ${m.id}: skipped (${why})`);
          continue;
        }
        log(`  ${m.id}`);
        result.methods.push({ ...(await scoreMerge(ctx, suite, evaluator, { method: m.id }, opts)), method: m.id });
      }
    }
    return result;
  } finally {
    evaluator.destroy();
  }
}

const pct = (x: number) => x.toFixed(1);

/** The result as a text table: tasks x {base, individual, merged/methods}, with average and normalized accuracy. */
export function evalTable(r: EvalResult): string {
  const cols: [string, ScoreRow][] = [['base', r.base], ['individual', r.individual]];
  if (r.merged) cols.push([r.merged.method, r.merged]);
  for (const m of r.methods ?? []) cols.push([m.method, m]);
  const width = Math.max(12, ...r.tasks.map((t) => t.length), ...cols.map(([n]) => n.length));
  const pad = (s: string) => s.padStart(width);
  const lines = [['task'.padEnd(width), ...cols.map(([n]) => pad(n))].join(' ')];
  for (const t of r.tasks) lines.push([t.padEnd(width), ...cols.map(([, c]) => pad(pct(c.tasks[t]!)))].join(' '));
  lines.push(['average'.padEnd(width), ...cols.map(([, c]) => pad(pct(c.average)))].join(' '));
  // Normalized accuracy: merged / individual per task, averaged (the FusionBench and TALL convention).
  const norm = (c: ScoreRow) => (100 * r.tasks.reduce((a, t) => a + c.tasks[t]! / r.individual.tasks[t]!, 0)) / r.tasks.length;
  lines.push(['normalized'.padEnd(width), ...cols.map(([, c]) => pad(pct(norm(c))))].join(' '));
  if (r.continual) lines.push(`(${r.continual.method}: the final model, averaged over ${r.continual.runs.length} order(s))`, '', continualTable(r.continual));
  return lines.join('\n') + '\n';
}

const pm = (s: MeanStd) => `${pct(s.mean)} ± ${s.std === null ? 'n/a' : pct(s.std)}`;

/** The continual protocol as text: a per-step table for each order, then BWT and final average, mean ± std. */
export function continualTable(c: ContinualProtocolResult): string {
  const width = Math.max(12, ...c.tasks.map((t) => t.length));
  const num = (x: number | null, digits: number) => (x === null ? '-' : x.toFixed(digits)).padStart(9);
  const lines: string[] = [];
  c.runs.forEach((run, k) => {
    lines.push(`order ${k + 1}${run.seed === null ? '' : ` (seed ${run.seed})`}: ${run.order.map((i) => c.tasks[i]).join(', ')}`);
    lines.push(`${'step'.padStart(4)}  ${'task added'.padEnd(width)} ${'avg seen'.padStart(9)} ${'lambda_t'.padStart(9)} ${'sqrt(t)'.padStart(9)}`);
    run.steps.forEach((s, i) => {
      lines.push(`${String(i + 1).padStart(4)}  ${c.tasks[run.order[i]!]!.padEnd(width)} ${num(run.seenAverage[i]!, 1)} ${num(s.lambda, 3)} ${num(s.sqrtT, 3)}`);
    });
    lines.push(`BWT ${run.bwt === null ? 'n/a' : pct(run.bwt)}, final average ${pct(run.finalAverage)}`, '');
  });
  const n = c.runs.length;
  lines.push(`${c.method} over ${n} order(s): final average ${pm(c.finalAverage)}, BWT ${c.bwt ? pm(c.bwt) : 'n/a'} (mean ± sample std)`);
  return lines.join('\n');
}

/** Markdown version of the table (docs/demo-results.md). */
export function evalMarkdown(r: EvalResult, command: string, run?: { adapter: string; seconds: number }): string {
  const cols: [string, ScoreRow][] = [['base', r.base], ['individual', r.individual], ...(r.methods ?? []).map((m) => [m.method, m] as [string, ScoreRow])];
  if (r.merged) cols.push([r.merged.method, r.merged]);
  const norm = (c: ScoreRow) => (100 * r.tasks.reduce((a, t) => a + c.tasks[t]! / r.individual.tasks[t]!, 0)) / r.tasks.length;
  const gain = (c: ScoreRow) => (100 * (c.average - r.base.average)) / (r.individual.average - r.base.average);
  return [
    `# ${r.suite}: accuracy of every method at its defaults`,
    '',
    `Generated by \`${command}\` on the GPU (${r.samples ?? 'all'} test images per task, seed ${r.seed}); do not edit by hand.`,
    '',
    `| model | ${r.tasks.join(' | ')} | average | normalized | gain kept |`,
    `|---|${r.tasks.map(() => '---:').join('|')}|---:|---:|---:|`,
    ...cols.map(([n, c]) => `| ${n} | ${r.tasks.map((t) => pct(c.tasks[t]!)).join(' | ')} | **${pct(c.average)}** | ${pct(norm(c))} | ${n === 'base' ? '' : `${pct(gain(c))} %`} |`),
    '',
    'normalized = mean over tasks of (accuracy / individual accuracy); gain kept = (average - base) / (individual - base).',
    ...(r.skipped?.length ? ['', `Not in the table: ${r.skipped.map((x) => `${x.method} (${x.why})`).join(', ')}.`] : []),
    '',
    'The samples are stratified and seeded and every kernel is deterministic, so the command reproduces these numbers on the' +
      ` same adapter${run ? ` (here ${run.adapter}: ${Math.round(run.seconds)} s)` : ''}.`,
    '',
  ].join('\n');
}
