/**
 * The continual protocol (methods.md 1.9): a continual method folds the suite's models in one at a time, in one or
 * several seeded random orders; after every step the merged model (kept on the GPU) is scored on the tasks seen so
 * far, or on all tasks. Each order gives an accuracy matrix acc[step][task], its backward transfer and its final
 * average accuracy; over the orders, their mean and sample standard deviation. The CLI's `eval --orders` and the
 * page's continual chart both use runContinualProtocol.
 *
 * BWT follows FusionBench's compute_backward_transfer (metrics/continual_learning/backward_transfer.py), the mean of
 * acc_{T,i} - acc_{i,i} over the tasks it is given, called with the T-1 tasks merged before the last one:
 *   BWT = 1/(T-1) * sum_{i=1}^{T-1} (acc_{T,i} - acc_{i,i}),
 * with i the merge position, acc_{i,i} the accuracy on task i right after it was merged, acc_{T,i} after the last
 * step. (Given all T tasks, the same function returns (T-1)/T times this value: the last term is 0.)
 */
import { ConfigError, preview, throwIfAborted } from '../errors';
import type { GpuContext } from '../gpu/device';
import { runContinual, type StepDiagnostics } from '../merge/continual';
import type { ResolvedConfig } from '../merge/config';
import { resolveOrder, shuffledOrder } from '../methods/order';
import type { ParamValues } from '../methods/params';
import type { CoefficientSetting } from '../methods/scaling';
import { scoreStep } from './scoreMerge';
import type { Suite } from './suite';
import type { SuiteEvaluator } from './suiteEvaluator';

/** Accuracy (%) per suite task after one step; null where the task was not evaluated (not yet seen). */
export type AccRow = (number | null)[];

/** A mean over runs and its sample standard deviation (n - 1 in the denominator; null for a single run). */
export interface MeanStd {
  mean: number;
  std: number | null;
  n: number;
}

/** The seeded orders of the protocol: order k is the shuffle of seed `seed + k` (as `--set order=shuffle --set seed=...`). */
export function seededOrders(tasks: number, orders: number, seed: number): number[][] {
  if (!Number.isInteger(orders) || orders < 1) throw new ConfigError('orders', `expected a positive integer, got ${orders}`);
  if (!Number.isInteger(seed) || seed < 0) throw new ConfigError('seed', `expected a non-negative integer, got ${seed}`);
  return Array.from({ length: orders }, (_, k) => shuffledOrder(tasks, seed + k));
}

/**
 * Backward transfer of one run (formula in the header): `acc` has one row per step and one column per suite task,
 * `order[i]` is the suite task merged at step i. Null for a single task (nothing is merged after it).
 */
export function backwardTransfer(acc: readonly AccRow[], order: readonly number[]): number | null {
  const T = order.length;
  if (acc.length !== T) throw new ConfigError('acc', `expected one row per step (${T}), got ${acc.length}`);
  if (T < 2) return null;
  const at = (step: number, task: number) => {
    const v = acc[step]![task];
    if (v === null || v === undefined) throw new ConfigError('acc', `no accuracy for task ${task} after step ${step + 1}`);
    return v;
  };
  let sum = 0;
  for (let i = 0; i < T - 1; i++) sum += at(T - 1, order[i]!) - at(i, order[i]!);
  return sum / (T - 1);
}

/** Average accuracy of a row over suite tasks `tasks` (e.g. those seen so far); each must have been evaluated. */
export function averageOver(row: AccRow, tasks: readonly number[]): number {
  if (tasks.length === 0) throw new ConfigError('acc', 'an average over no task');
  let sum = 0;
  for (const t of tasks) {
    const v = row[t];
    if (v === null || v === undefined) throw new ConfigError('acc', `task ${t} was not evaluated`);
    sum += v;
  }
  return sum / tasks.length;
}

/** Mean and sample standard deviation of `values` (n - 1 denominator, as pandas' std; null std when n < 2). */
export function meanStd(values: readonly number[]): MeanStd {
  const n = values.length;
  if (n === 0) throw new ConfigError('runs', 'no value to average');
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, std: null, n };
  const ss = values.reduce((a, v) => a + (v - mean) ** 2, 0);
  return { mean, std: Math.sqrt(ss / (n - 1)), n };
}

/**
 * The config's parameters for models passed in merge order: per-task coefficients (`per_task` lists and `table`
 * rows, indexed by the model's position in the input) follow their model. Missing entries stay missing, so the
 * method's fallback still applies to them.
 */
export function permuteTaskParams(config: ResolvedConfig, order: readonly number[]): ParamValues {
  const out: ParamValues = { ...config.params };
  for (const p of config.method.params) {
    if (p.kind !== 'coefficient') continue;
    const v = out[p.name] as CoefficientSetting | undefined;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) continue;
    // Entries past a short list are undefined, as they were: coefficientAt falls back for them.
    if ('per_task' in v) out[p.name] = { per_task: order.map((i) => v.per_task[i]!) };
    else out[p.name] = { ...v, table: Object.fromEntries(Object.entries(v.table).map(([name, row]) => [name, order.map((i) => row[i]!)])) };
  }
  return out;
}

/** An explicit order, validated as a permutation of the suite's tasks. */
function checkedOrder(order: number[], k: number, count: number): number[] {
  try {
    return resolveOrder(order, 0, count);
  } catch {
    throw new ConfigError(`orders[${k}]`, `expected a permutation of 0..${count - 1} (each of the suite's ${count} tasks once), got ${preview(order)}`);
  }
}

/** One order's run: accuracies after every step, their averages, BWT and each step's diagnostics. */
export interface OrderRun {
  /** Suite task indices in merge order. */
  order: number[];
  /** Seed of the shuffle that gave the order (null for an order given explicitly). */
  seed: number | null;
  /** acc[step][task]: accuracy (%) on suite task `task` after `step + 1` models; null if not evaluated. */
  acc: AccRow[];
  /** Average accuracy on the tasks seen so far, after each step. */
  seenAverage: number[];
  /** Average accuracy on every task after the last step. */
  finalAverage: number;
  bwt: number | null;
  /** Diagnostics of each step (modelIndex is the suite task index). */
  steps: StepDiagnostics[];
  elapsedMs: number;
}

export interface ContinualProtocolResult {
  method: string;
  params: ParamValues;
  /** Suite task ids: the columns of every acc matrix. */
  tasks: string[];
  evaluate: 'seen' | 'all';
  samples: number | null;
  sampleSeed: number;
  runs: OrderRun[];
  finalAverage: MeanStd;
  /** Over the runs with a BWT (null when the suite has a single task). */
  bwt: MeanStd | null;
  /** Which standard deviation `std` is. */
  std: 'sample';
}

export interface ContinualProtocolOptions {
  /** A continual method (opcm, continual_task_arithmetic, continual_ties, continual_average, continual_magmax). */
  config: ResolvedConfig;
  /** How many seeded random orders (default 1), or the orders themselves (permutations of the suite's tasks). */
  orders?: number | number[][];
  /** Order k is the shuffle of seed `seed + k` (default 0). */
  seed?: number;
  /** Images per task (stratified, seeded by sampleSeed); null = the whole test sets. */
  samples?: number | null;
  sampleSeed?: number;
  /** Score each step on the tasks seen so far (default) or on every task. */
  evaluate?: 'seen' | 'all';
  /** Where OPCM factors its Linear weights (runContinual's `svd`; default: the adapter's). */
  svd?: 'gpu' | 'host';
  signal?: AbortSignal;
  /** After each step of each order, as soon as it is scored (the page draws its chart from this). */
  onStep?: (orderIndex: number, step: number, accRow: AccRow, detail: { task: number; diagnostics: StepDiagnostics }) => void;
}

/** Runs the continual protocol over `suite` on the GPU; weights never leave it (scoreStep). */
export async function runContinualProtocol(ctx: GpuContext, suite: Suite, evaluator: SuiteEvaluator, opts: ContinualProtocolOptions): Promise<ContinualProtocolResult> {
  const { config } = opts;
  if (config.method.family !== 'continual') throw new ConfigError('method', `'${config.method.id}' is a batch method: only continual methods merge in steps`);
  if ((config.params.order ?? 'given') !== 'given') {
    throw new ConfigError('params.order', 'the protocol chooses the merge orders (orders and seed); leave order at "given"');
  }
  const count = suite.tasks.length;
  const seed = opts.seed ?? 0;
  const given = Array.isArray(opts.orders);
  const orders = Array.isArray(opts.orders) ? opts.orders.map((o, k) => checkedOrder(o, k, count)) : seededOrders(count, opts.orders ?? 1, seed);
  const ids = suite.tasks.map((t) => t.task.id);
  const evaluate = opts.evaluate ?? 'seen';
  const scoring = { samples: opts.samples ?? null, seed: opts.sampleSeed ?? 0, ...(opts.signal ? { signal: opts.signal } : {}) };
  const runs: OrderRun[] = [];
  for (let k = 0; k < orders.length; k++) {
    throwIfAborted(opts.signal);
    const started = Date.now();
    const order = orders[k]!;
    const acc: AccRow[] = [];
    const steps: StepDiagnostics[] = [];
    // Models go in already in merge order (the baselines take no order parameter); per-task settings follow them.
    await runContinual(ctx, {
      base: suite.base,
      models: order.map((i) => suite.tasks[i]!.model),
      config: { ...config, params: permuteTaskParams(config, order) },
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.svd ? { svd: opts.svd } : {}),
      onStep: async (view) => {
        const step = view.diagnostics.step;
        const task = order[step]!;
        const tasks = evaluate === 'all' ? ids : order.slice(0, step + 1).map((i) => ids[i]!);
        const scores = await scoreStep(ctx, suite, evaluator, view, { ...scoring, tasks });
        const row: AccRow = ids.map((id) => scores.find((s) => s.task === id)?.accuracy ?? null);
        const diagnostics = { ...view.diagnostics, modelIndex: task };
        acc.push(row);
        steps.push(diagnostics);
        opts.onStep?.(k, step, row, { task, diagnostics });
      },
    });
    runs.push({
      order,
      seed: given ? null : seed + k,
      acc,
      seenAverage: acc.map((row, i) => averageOver(row, order.slice(0, i + 1))),
      finalAverage: averageOver(acc[acc.length - 1]!, order),
      bwt: backwardTransfer(acc, order),
      steps,
      elapsedMs: Date.now() - started,
    });
  }
  const bwts = runs.map((r) => r.bwt).filter((b): b is number => b !== null);
  return {
    method: config.method.id,
    params: config.params,
    tasks: ids,
    evaluate,
    samples: scoring.samples,
    sampleSeed: scoring.seed,
    runs,
    finalAverage: meanStd(runs.map((r) => r.finalAverage)),
    bwt: bwts.length ? meanStd(bwts) : null,
    std: 'sample',
  };
}
