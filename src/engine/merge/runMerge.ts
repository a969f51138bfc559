/**
 * The streaming GPU merge. The method's plan (src/engine/merge/plans) runs its statistics passes, then the output
 * pass visits the tensors in file order: tensors that are not merged are copied, merged ones stream chunk by chunk
 * through the plan and are packed to the output dtype on the GPU and written. Outputs go through SafetensorsWriters
 * whose sinks commit only when everything succeeded: a failed or cancelled merge leaves no file.
 */
import { throwIfAborted } from '../errors';
import type { GpuContext } from '../gpu/device';
import type { ByteSink } from '../io/byteSource';
import type { Model } from '../io/model';
import { SafetensorsWriter, type TensorSpec } from '../io/safetensorsWriter';
import { checkModelCount } from '../methods/registry';
import { countLayers } from '../methods/scaling';
import { DTYPE_BYTES, type DType } from '../types';
import { alignModels, type AlignedTensor } from './align';
import { configToJson, type ResolvedConfig } from './config';
import { planOf } from './plans';
import { coefficientsOf, paramsKey, type FusedSpec, type GpuPlan, type PlanContext } from './plans/plan';
import { REPORT_FORMAT, totalsOf, type MergeReport, type TensorReport } from './report';
import { contributionBytes, copyTopk, coversAll, MetricsAccumulator, topkRetained, type ContributionMetrics, type InterferenceReport, type MetricsCache, type TaskVectorMetrics } from './metrics';
import { FusedOutput } from './plans/fusedOutput';
import { packDtypeOf } from './plans/util';
import { HeldWriter, HOLD_BYTES, type TensorWriter } from './heldWriter';
import { ChunkStream, chunkRanges, defaultCacheBytes } from './stream';
import { StackOutput } from './stackOutput';
import { KeptBits, SELECT_KEPT_BYTES } from './keptBits';
import { KEPT_MAX_TASKS, LinearMergeKernel } from '../gpu/linearMerge';
import type { ResidentInputs } from './residentInputs';

/** Progress of a running merge. */
export interface MergeProgress {
  /** The pass running ("statistics", "merge", ...). */
  phase: string;
  tensor: string;
  /** Bytes read from the models so far, and the bytes of one full read of them. */
  doneBytes: number;
  totalBytes: number;
}

export interface MergeRun {
  base: Model;
  models: Model[];
  config: ResolvedConfig;
  /**
   * Opens the sink of output `index` (most methods write one model; TALL masks one per task, `label` then names the
   * task's model). Omit to compute the report only.
   */
  output?: (index: number, label: string | null) => Promise<ByteSink>;
  onProgress?: (p: MergeProgress) => void;
  signal?: AbortSignal;
  /**
   * GPU memory for keeping data between a method's passes: the task vectors when they all fit, else raw input chunks up
   * to this many bytes (default: defaultCacheBytes, 2 GiB on a GPU, 512 MiB on a CPU-emulated adapter; 0: none).
   */
  cacheBytes?: number;
  /**
   * Raw input chunks kept on the GPU across merges of the same models (merge/residentInputs.ts): this merge takes the
   * chunks an earlier one kept instead of uploading them, and keeps its own while the store has room.
   */
  resident?: ResidentInputs;
  /** Measure the interference metrics (cosines, sign conflicts, masks, top-k curve; default true). */
  metrics?: boolean;
  /**
   * Per-tensor norms in the report (default true). false: the fused output kernels (used without metrics) leave them
   * out (null) and flag blocks of merged values that hold a NaN or an infinity instead, one value per 16 elements
   * where the norms take T + 2; the host then counts such values in the flagged chunks' task vectors
   * (report.nonFinite). What the command line does without --report, where only those warnings need the norms.
   */
  norms?: boolean;
  /** Task-vector metrics measured by earlier merges of the same models (merge/metrics.ts): reused, and these added. */
  metricsCache?: MetricsCache;
  /**
   * Output bytes (all outputs) a pass may hold in memory while its output may still change (global TIES merging with
   * an estimated majority sign): then only the chunks with tied columns run again if the estimate was wrong, where a
   * larger output runs the whole pass again (default HOLD_BYTES, 1 GiB; merge/heldWriter.ts).
   */
  holdBytes?: number;
  /**
   * Keeps merged weights on the GPU (for evaluation): for each merged tensor, return an f32 buffer of its size to
   * receive theta0 + delta of output 0, or null to skip it. Called once per tensor. A fused output pass copies its f32
   * output there (the same bits as the stack path's theta0 + delta); a tensor written in another dtype goes through
   * the stack for it.
   */
  collect?: (tensor: AlignedTensor) => GPUBuffer | null;
}

/** The dtype a merged float tensor is written in. */
export function outputDtypeOf(baseDtype: DType, option: ResolvedConfig['options']['outputDtype']): DType {
  return option === 'base' ? baseDtype : option;
}

/** Metadata recorded in every merged file: how it was made. */
export function mergeMetadata(run: Pick<MergeRun, 'base' | 'models' | 'config'>, label: string | null): Record<string, string> {
  const meta: Record<string, string> = {
    format: 'pt',
    'merge_playground.config': JSON.stringify(configToJson(run.config)),
    'merge_playground.base': run.base.name,
    'merge_playground.models': JSON.stringify(run.models.map((m) => m.name)),
  };
  if (label !== null) meta['merge_playground.output'] = label;
  return meta;
}

/** Output tensor list (name, dtype, shape) in the order they are written. */
export function outputSpecs(aligned: AlignedTensor[], config: ResolvedConfig): TensorSpec[] {
  return aligned.map((t) => ({
    name: t.name,
    shape: t.shape,
    dtype: t.action === 'merge' ? outputDtypeOf(t.dtype, config.options.outputDtype) : t.dtype,
  }));
}

// A function, not a constant: in Node, GPUBufferUsage exists only once the platform has installed Dawn's globals.
const storage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Merges on the GPU and returns the report; writes the merged file(s) through `run.output` if given. */
export async function runMerge(ctx: GpuContext, run: MergeRun): Promise<MergeReport> {
  const started = Date.now();
  const { base, models, config } = run;
  checkModelCount(config.method, models.length);
  const plan = planOf(config.method.id);
  const aligned = alignModels(base, models, config.options);
  const T = models.length;
  const norms = run.norms !== false;
  const specs = outputSpecs(aligned, config);
  const outputs = plan.outputs(T);
  const labels = outputs === 1 ? [null] : models.map((m) => m.name);
  const writers: SafetensorsWriter[] = [];
  const sinks: ByteSink[] = [];
  const merged = aligned.filter((t) => t.action === 'merge');
  const oneRead = merged.reduce((s, t) => s + t.numel * (DTYPE_BYTES[t.dtype] + models.reduce((a, m) => a + DTYPE_BYTES[m.tensors.get(t.name)!.info.dtype], 0)), 0);
  let phase = 'merge';
  let doneBytes = 0;
  let current = '';
  const progress = () => run.onProgress?.({ phase, tensor: current, doneBytes, totalBytes: oneRead });
  const source = { base, models, signal: run.signal, ...(run.resident ? { resident: run.resident } : {}) };
  const stream = new ChunkStream(ctx, source, merged, {
    granularity: plan.granularity,
    chunkElements: config.options.chunkElements,
    cacheBytes: run.cacheBytes ?? defaultCacheBytes(ctx),
    onRead: (bytes) => {
      doneBytes += bytes;
      progress();
    },
  });
  const scratch = new Map<string, GPUBuffer>();
  const layers = countLayers(aligned.map((t) => t.name));
  // What earlier merges of these models measured: their metrics (with metrics on) and the plans' statistics.
  const cached = knownMetrics(run, merged, plan.granularity);
  const known = run.metrics === false ? null : cached;
  const chunksOf = (t: AlignedTensor) => chunkRanges(t, plan.granularity, config.options.chunkElements);
  // The statistics of the method's contributions, kept under every parameter but those that only scale the output.
  const contributionsKey = known && plan.scaleParams ? paramsKey(`interference metrics of the contributions: ${config.method.id}`, config.params, plan.scaleParams) : null;
  const seen = contributionsKey ? ((known!.plans.get(contributionsKey) as ContributionMetrics | undefined) ?? null) : null;
  const knownContributions = seen && coversAll(seen, merged, chunksOf) ? seen : null;
  const recorded: ContributionMetrics | null = contributionsKey && !knownContributions ? new Map() : null;
  // The entries a masked plan's contributions keep (merge/keptBits.ts), kept under the same settings.
  const keptKey = cached && plan.scaleParams && plan.masked ? paramsKey(`kept entries: ${config.method.id}`, config.params, plan.scaleParams) : null;
  const seenKept = keptKey ? ((cached!.plans.get(keptKey) as KeptBits | undefined) ?? null) : null;
  const knownKept = seenKept?.covers(merged) ? seenKept : null;
  const metrics = run.metrics === false ? null : new MetricsAccumulator(T, known?.chunks ?? null, recorded);
  // Nothing needs the task-vector stack: plans with a fused output kernel write straight from the raw inputs (and
  // collect their f32 outputs where asked; a tensor written in another dtype is collected through the stack). With
  // interference metrics that too when the cache knows the task vectors' and the method has no contributions to
  // measure: the merged delta's norms, all that is left, come from the fused pass (the playground's slider moves on the
  // Interference tab); or when an earlier merge measured the method's contributions under the same parameters but
  // those that only scale the output (GpuPlan.scaleParams). Unless the plan's statistics pass makes the stack the
  // faster way to collect or measure (GpuPlan.stackFaster).
  const metricsKnown = !!metrics && norms && (!!plan.fusedWithKnownMetrics || !!knownContributions) && known?.topk !== undefined && metrics.knowsAll(merged, chunksOf);
  // The fused pass collects f32 outputs only: a merge that collects tensors written in another dtype takes the stack
  // for every tensor, since a plan may count on the fused pass seeing all of them (global TIES settles an estimated
  // majority sign from the fused kernel's own tally of the columns).
  const collectsAll = !run.collect || specs.every((s, i) => aligned[i]!.action !== 'merge' || packDtypeOf(s.dtype) === 'F32');
  const fusable = collectsAll && (!metrics || metricsKnown) && !((run.collect || metrics) && plan.stackFaster?.(cached?.plans ?? null));
  /** Tensors the fused pass merged with metrics on: their statistics come from the cache once their norms are in. */
  const fromCache: { t: AlignedTensor; report: TensorReport }[] = [];
  // One collected buffer per tensor, however many output passes run.
  const collected = new Map<string, GPUBuffer | null>();
  const collectOf = (t: AlignedTensor): GPUBuffer | null => {
    if (!run.collect) return null;
    if (!collected.has(t.name)) collected.set(t.name, run.collect(t));
    return collected.get(t.name)!;
  };
  const p: PlanContext = {
    ctx,
    spec: config.method,
    params: config.params,
    tasks: T,
    layers,
    stream,
    source,
    chunkElements: config.options.chunkElements,
    fusedOutput: fusable,
    memo: cached?.plans ?? null,
    coeffs: (param, tensor) => coefficientsOf(config.method, config.params, param, tensor, T, layers),
    scratch(slot, floats) {
      const have = scratch.get(slot);
      if (have && have.size >= floats * 4) return have;
      if (have) ctx.destroyBuffer(have);
      const buf = ctx.createBuffer(`scratch ${slot}`, Math.max(4, floats * 4), storage());
      scratch.set(slot, buf);
      return buf;
    },
    phase(name) {
      phase = name;
      doneBytes = 0;
      progress();
    },
  };
  const reports: TensorReport[] = [];
  const stacked = new StackOutput(p, plan, outputs, metrics);
  let spec: FusedSpec | null = null;
  /** Whether the output pass writes through linear_merge's MASKED pipeline (see GpuPlan.masked). */
  let maskedPass = false;
  let fused: FusedOutput | null = null;
  const openOutputs = async () => {
    for (let o = 0; o < (run.output ? outputs : 0); o++) {
      const sink = await run.output!(o, labels[o]!);
      sinks.push(sink);
      writers.push(await SafetensorsWriter.create(sink, specs, mergeMetadata(run, labels[o]!)));
    }
  };
  // Before the peak is reset: chunks kept for other inputs are let go here. Released in `finally`, after every submit.
  const releaseResident = run.resident?.use(ctx, base, models);
  ctx.resetPeak();
  try {
    await openOutputs();
    if (plan.prepare) await plan.prepare(p);
    if (metrics) metrics.setTopk(await topkOf(p, known));
    // A plan whose contributions are masked task vectors writes through linear_merge's MASKED pipeline once an
    // earlier merge kept their entries; the stack path records them for the next merge (where they fit half the memo).
    // A plan that finds them faster than its stack path does (GpuPlan.selectKept) selects them first, where they fit.
    const masked = plan.masked && plan.scaleParams && p.tasks <= KEPT_MAX_TASKS ? plan.masked(p) : null;
    // Entries an earlier merge kept win over a plan's own fused kernel (DARE then global TIES: reading them costs less
    // than drawing the drop again).
    spec = fusable && !(masked && knownKept) ? (plan.fused?.(p) ?? null) : null;
    const keptBytes = 4 * merged.reduce((n, t) => n + t.numel, 0);
    const keptRoom = cached ? cached.plans.roomFor(keptBytes) : keptBytes <= SELECT_KEPT_BYTES;
    const selected = fusable && !spec && masked && !knownKept && keptRoom ? ((await plan.selectKept?.(p)) ?? null) : null;
    const kept = knownKept ?? selected;
    maskedPass = fusable && !spec && !!masked && !!kept;
    if (maskedPass) spec = { kernel: new LinearMergeKernel(ctx, 'linear_merge', undefined, undefined, kept!.entries(masked!.scale)), coeffs: masked!.coeffs };
    if (keptKey && masked && !kept && keptRoom) stacked.kept = new KeptBits();
    // A pass whose output a redo may change holds its writes (merge/heldWriter.ts) when they fit.
    const outputBytes = specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[s.dtype], 0) * writers.length;
    const hold = !!spec?.redo && outputBytes <= (run.holdBytes ?? HOLD_BYTES);
    const held = hold ? writers.map((w) => new HeldWriter(w)) : null;
    if (spec) fused = new FusedOutput(ctx, source, T, config.options.chunkElements, spec.kernel, stream.options.onRead, spec.cache ?? null, hold, norms);
    p.phase('merge');
    const outputPass = async (targets: TensorWriter[]) => {
      for (let i = 0; i < aligned.length; i++) {
        const t = aligned[i]!;
        current = t.name;
        throwIfAborted(run.signal);
        if (t.action === 'passthrough') {
          await fused?.flush();
          await stacked.flush();
          await copyTensor(run, t, targets);
          reports.push({ name: t.name, shape: t.shape, dtype: t.dtype, outputDtype: t.dtype, action: 'passthrough', baseNorm: null, taskVectorNorms: null, mergedNorm: null });
          continue;
        }
        // Per-tensor statistics (Model Stock's and SLERP's Grams, which the fused coefficients take too; TIES's and
        // Breadcrumbs' bands with scope "tensor"); a masked pass needs none for the tensors it writes.
        if (!maskedPass) await plan.beginTensor?.(p, t);
        const coeffs = fused?.handles(t) ? spec!.coeffs(t) : null;
        const collect = collectOf(t);
        if (fused && coeffs && (!collect || fused.collects(specs[i]!.dtype))) {
          await stacked.flush();
          const report = await fused.tensor(t, coeffs, specs[i]!.dtype, targets, collect);
          reports.push(report);
          if (metrics) fromCache.push({ t, report });
        } else {
          await fused?.flush();
          if (maskedPass) await plan.beginTensor?.(p, t);
          reports.push(await stacked.tensor(t, specs[i]!.dtype, targets, collect));
        }
      }
      await fused?.flush();
      await stacked.flush();
    };
    // The fused path submits without a scope per chunk: one scope over the pass turns any GPU error into a GpuError.
    if (fused) await ctx.scoped(`${config.method.id} output`, () => outputPass(held ?? writers));
    else await outputPass(writers);
    const again = spec?.redo?.() ?? null;
    if (again && hold) {
      // The held output stands but for the chunks whose tied columns took the estimated sign: run those again.
      p.phase('merge again: tied columns');
      await ctx.scoped(`${config.method.id} output`, () => fused!.rerun(again));
    } else if (again) {
      // The pass's output must not stand (see FusedSpec.redo): discard it and write everything again.
      for (const s of sinks.splice(0)) await s.abort();
      writers.length = 0;
      reports.length = 0;
      fused!.destroy();
      fused = new FusedOutput(ctx, source, T, config.options.chunkElements, again, stream.options.onRead, null, false, norms);
      fromCache.length = 0;
      p.phase('merge again');
      await openOutputs();
      await ctx.scoped(`${config.method.id} output`, () => outputPass(writers));
    }
    // The fused tensors' metrics, once their merged norms are final (a rerun of tied columns changes them): the
    // task vectors' from the cache, as are their norms in the report (the stack path's, from the row statistics).
    for (const { t, report } of fromCache.splice(0)) {
      const tvSq = metrics!.addKnownTensor(t, chunksOf(t), report.mergedNorm! ** 2, knownContributions);
      report.taskVectorNorms = Array.from(tvSq, Math.sqrt);
    }
    for (const h of held ?? []) await h.release();
    for (const w of writers) await w.finish();
    // Complete: the contributions of every chunk were measured (a failed or cancelled merge keeps nothing).
    if (recorded && coversAll(recorded, merged, chunksOf)) known!.plans.set(contributionsKey!, recorded, contributionBytes(recorded, T));
    for (const k of [stacked.kept, selected]) if (keptKey && k?.covers(merged)) cached!.plans.set(keptKey, k, k.bytes);
  } catch (e) {
    // Nothing may be left behind: every opened output is discarded whatever failed.
    for (const s of sinks) await s.abort();
    await stacked.abandon();
    throw e;
  } finally {
    plan.destroy?.();
    stacked.destroy();
    // The pass owns the kernel once it exists; a kernel made for a pass that never started is freed here.
    if (fused) fused.destroy();
    else spec?.kernel.destroy();
    stream.destroy();
    for (const b of scratch.values()) ctx.destroyBuffer(b);
    releaseResident?.();
  }
  return {
    format: REPORT_FORMAT,
    config: configToJson(config),
    base: base.name,
    models: models.map((m) => m.name),
    backend: `webgpu: ${ctx.info.adapter}`,
    totals: totalsOf(reports, T),
    tensors: reports,
    elapsedMs: Date.now() - started,
    peakGpuBytes: ctx.peakBytes,
    output: writers.length ? { file: sinks[0]!.name, bytes: writers[0]!.totalBytes } : null,
    interference: metrics?.result() ?? null,
    ...(norms ? {} : { nonFinite: fused?.nonFinite() ?? [] }),
  };
}

/** The cached metrics of this merge's task vectors (run.metricsCache), or null without a cache. */
function knownMetrics(run: MergeRun, merged: readonly AlignedTensor[], granularity: GpuPlan['granularity']): TaskVectorMetrics | null {
  const cache = run.metricsCache;
  return cache ? cache.entry(cache.keyOf(run.base, run.models, merged, `${granularity} ${run.config.options.chunkElements}`)) : null;
}

/** The merge's top-k curve: from the cache when an earlier merge measured it, else measured (and cached). */
async function topkOf(p: PlanContext, known: TaskVectorMetrics | null): Promise<InterferenceReport['topk']> {
  if (known?.topk !== undefined) return copyTopk(known.topk);
  const topk = await topkRetained(p);
  if (known) known.topk = copyTopk(topk);
  return topk;
}

/** Copies a tensor that is not merged from the base to every output, in bounded chunks. */
async function copyTensor(run: MergeRun, t: AlignedTensor, writers: readonly TensorWriter[]): Promise<void> {
  if (!writers.length) return;
  const step = run.config.options.chunkElements;
  for (let start = 0; start < t.numel; start += step) {
    const bytes = await run.base.readTensor(t.name, { start, count: Math.min(step, t.numel - start) }, run.signal);
    for (const w of writers) await w.write(t.name, bytes);
  }
}
