/**
 * Scores on a suite: of a model file (the base, a fine-tuned model), or of a merge whose weights stay on the GPU
 * (batch methods through runMerge's `collect`, continual methods after any step: scoreStep). The CLI's `eval`, the
 * continual protocol and the page's live view use these.
 */
import type { GpuContext } from '../gpu/device';
import { scaleAdd } from '../gpu/kernels';
import type { ByteSink } from '../io/byteSource';
import { runContinual, type ContinualReport, type StepView } from '../merge/continual';
import type { ResolvedConfig } from '../merge/config';
import type { MetricsCache } from '../merge/metrics';
import type { ResidentInputs } from '../merge/residentInputs';
import type { MergeReport } from '../merge/report';
import { runMerge, type MergeProgress } from '../merge/runMerge';
import type { Suite } from './suite';
import type { EvaluateOptions, SuiteEvaluator, TaskScore } from './suiteEvaluator';
import { GpuWeights, tensorToGpu } from './weights';

const storage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Scores of the base (modelIndex null) or of fine-tuned model i (completed by the base where it lacks a tensor). */
export async function scoreModel(ctx: GpuContext, suite: Suite, evaluator: SuiteEvaluator, modelIndex: number | null, opts: EvaluateOptions): Promise<TaskScore[]> {
  const own = new Map<string, GPUBuffer>();
  try {
    if (modelIndex !== null) {
      const model = suite.tasks[modelIndex]!.model;
      for (const name of model.tensors.keys()) own.set(name, await tensorToGpu(ctx, model, name, opts.signal));
    }
    return await scoreMerged(ctx, suite, evaluator, own, opts);
  } finally {
    for (const b of own.values()) ctx.destroyBuffer(b);
  }
}

/** Each fine-tuned model scored on its own task. */
export async function scoreIndividuals(ctx: GpuContext, suite: Suite, evaluator: SuiteEvaluator, opts: EvaluateOptions): Promise<TaskScore[]> {
  const out: TaskScore[] = [];
  for (let i = 0; i < suite.tasks.length; i++) out.push(...(await scoreModel(ctx, suite, evaluator, i, { ...opts, tasks: [suite.tasks[i]!.task.id] })));
  return out;
}

/** Scores merged tensors (file name -> f32 buffer, owned by the caller) completed by the base's other tensors. */
async function scoreMerged(ctx: GpuContext, suite: Suite, evaluator: SuiteEvaluator, merged: Map<string, GPUBuffer>, opts: EvaluateOptions): Promise<TaskScore[]> {
  const weights = await GpuWeights.fromMerged(ctx, suite.base, suite.config, merged, opts.signal);
  try {
    return await evaluator.evaluate(weights.get, opts);
  } finally {
    weights.destroy();
  }
}

/**
 * Scores the model a continual step holds (call it inside runContinual's onStep, while the view is valid):
 * theta0 + D is built on the GPU for the call and released after it.
 */
export async function scoreStep(ctx: GpuContext, suite: Suite, evaluator: SuiteEvaluator, view: StepView, opts: EvaluateOptions): Promise<TaskScore[]> {
  const merged = new Map<string, GPUBuffer>();
  try {
    for (const t of view.tensors) {
      const b = await tensorToGpu(ctx, suite.base, t.name, opts.signal);
      merged.set(t.name, b);
      scaleAdd(ctx, b, 1, 1, view.delta(t.name), t.numel);
    }
    return await scoreMerged(ctx, suite, evaluator, merged, opts);
  } finally {
    for (const b of merged.values()) ctx.destroyBuffer(b);
  }
}

export interface MergeAndScore {
  scores: TaskScore[];
  report: MergeReport | ContinualReport;
}

/** Merges the suite's models with `config` on the GPU and scores the merged model without leaving the GPU. */
export async function mergeAndScore(
  ctx: GpuContext,
  suite: Suite,
  evaluator: SuiteEvaluator,
  config: ResolvedConfig,
  opts: EvaluateOptions & {
    output?: () => Promise<ByteSink>;
    onProgress?: (p: MergeProgress) => void;
    metrics?: boolean;
    metricsCache?: MetricsCache;
    resident?: ResidentInputs;
    svd?: 'gpu' | 'host';
    /** runMerge's cacheBytes (batch methods; default: the engine's for the adapter). */
    cacheBytes?: number;
  },
): Promise<MergeAndScore> {
  const models = suite.tasks.map((t) => t.model);
  if (config.method.family === 'continual') {
    let scores: TaskScore[] = [];
    const report = await runContinual(ctx, {
      base: suite.base,
      models,
      config,
      signal: opts.signal,
      ...(opts.svd ? { svd: opts.svd } : {}),
      ...(opts.output ? { output: opts.output } : {}),
      onStep: async (view) => {
        if (view.diagnostics.step === models.length - 1) scores = await scoreStep(ctx, suite, evaluator, view, opts);
      },
    });
    return { scores, report };
  }
  const merged = new Map<string, GPUBuffer>();
  try {
    const report = await runMerge(ctx, {
      base: suite.base,
      models,
      config,
      signal: opts.signal,
      metrics: opts.metrics ?? false,
      ...(opts.metricsCache ? { metricsCache: opts.metricsCache } : {}),
      ...(opts.resident ? { resident: opts.resident } : {}),
      ...(opts.cacheBytes !== undefined ? { cacheBytes: opts.cacheBytes } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      ...(opts.output ? { output: async () => opts.output!() } : {}),
      collect: (t) => {
        const b = ctx.createBuffer(`merged ${t.name}`, Math.max(t.numel, 1) * 4, storage());
        merged.set(t.name, b);
        return b;
      },
    });
    return { scores: await scoreMerged(ctx, suite, evaluator, merged, opts), report };
  } finally {
    for (const b of merged.values()) ctx.destroyBuffer(b);
  }
}
