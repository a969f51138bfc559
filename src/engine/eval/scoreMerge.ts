/**
 * Scores on a suite: of a model file (the base, a fine-tuned model), or of a merge whose weights stay on the GPU
 * (batch methods through runMerge's `collect`, continual methods from their last step). The CLI's `eval` and the
 * page's live view both use these.
 */
import type { GpuContext } from '../gpu/device';
import { scaleAdd } from '../gpu/kernels';
import type { ByteSink } from '../io/byteSource';
import { runContinual, type ContinualReport } from '../merge/continual';
import type { ResolvedConfig } from '../merge/config';
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
    const weights = await GpuWeights.fromMerged(ctx, suite.base, suite.config, own, opts.signal);
    try {
      return await evaluator.evaluate(weights.get, opts);
    } finally {
      weights.destroy();
    }
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
  opts: EvaluateOptions & { output?: () => Promise<ByteSink>; onProgress?: (p: MergeProgress) => void; metrics?: boolean },
): Promise<MergeAndScore> {
  const models = suite.tasks.map((t) => t.model);
  const merged = new Map<string, GPUBuffer>();
  try {
    let report: MergeReport | ContinualReport;
    if (config.method.family === 'continual') {
      report = await runContinual(ctx, {
        base: suite.base,
        models,
        config,
        signal: opts.signal,
        ...(opts.output ? { output: opts.output } : {}),
        onStep: async (view) => {
          if (view.diagnostics.step !== models.length - 1) return;
          for (const t of view.tensors) {
            const b = await tensorToGpu(ctx, suite.base, t.name);
            scaleAdd(ctx, b, 1, 1, view.delta(t.name), t.numel);
            merged.set(t.name, b);
          }
        },
      });
    } else {
      report = await runMerge(ctx, {
        base: suite.base,
        models,
        config,
        signal: opts.signal,
        metrics: opts.metrics ?? false,
        ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
        ...(opts.output ? { output: async () => opts.output!() } : {}),
        collect: (t) => {
          const b = ctx.createBuffer(`merged ${t.name}`, Math.max(t.numel, 1) * 4, storage());
          merged.set(t.name, b);
          return b;
        },
      });
    }
    const weights = await GpuWeights.fromMerged(ctx, suite.base, suite.config, merged, opts.signal);
    try {
      return { scores: await evaluator.evaluate(weights.get, opts), report };
    } finally {
      weights.destroy();
    }
  } finally {
    for (const b of merged.values()) ctx.destroyBuffer(b);
  }
}
