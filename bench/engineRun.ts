/**
 * Times the engine's GPU merge (runMerge) on in-memory models: every method at its defaults, interference metrics
 * off for the pure merge figure (or on, to price them; optionally with a MetricsCache, as the playground merges), the
 * merged model(s) written through the safetensors writer into sinks that count and drop the bytes. As the command
 * line merges: the report's norms only with the metrics (--report), else the kernels' non-finite flags.
 */
import type { GpuContext } from '../src/engine/gpu/device';
import { resolveConfig } from '../src/engine/merge/config';
import type { MetricsCache } from '../src/engine/merge/metrics';
import { runMerge } from '../src/engine/merge/runMerge';
import type { ResidentInputs } from '../src/engine/merge/residentInputs';
import type { MergeReport } from '../src/engine/merge/report';
import { countingSink, type BenchModels } from './models';
import type { EngineFigure, SizeInfo } from './results';
import { gbPerSecond, timeIt, withPeakRss, type Repeats } from './stats';
import { parameterCount, sizeLabel, VIT_B32, vitTensors, type VitSize } from './vitShapes';

/** The SizeInfo of a model size. */
export function sizeInfo(size: VitSize): SizeInfo {
  const params = parameterCount(vitTensors(size));
  return { label: sizeLabel(size), width: size.width, layers: size.layers, params, fractionOfVitB32: params / parameterCount(vitTensors(VIT_B32)) };
}

/** One merge with its report, the bytes it wrote, and the wall time of each pass (from the progress phases). */
export async function mergeOnce(
  ctx: GpuContext,
  m: BenchModels,
  method: string,
  metrics: boolean,
  metricsCache?: MetricsCache,
  /** Raw inputs kept on the GPU across merges, as the playground keeps them (filled by the first merge given it). */
  resident?: ResidentInputs,
): Promise<{ report: MergeReport; outputBytes: number; passes: { phase: string; ms: number }[] }> {
  const config = resolveConfig({ method });
  const sinks: ReturnType<typeof countingSink>[] = [];
  const marks: { phase: string; at: number }[] = [];
  const t0 = performance.now();
  const report = await runMerge(ctx, {
    base: m.base,
    models: m.models,
    config,
    metrics,
    norms: metrics,
    ...(metricsCache ? { metricsCache } : {}),
    ...(resident ? { resident } : {}),
    output: async (index) => {
      const sink = countingSink(`merged ${index}`);
      sinks.push(sink);
      return sink;
    },
    onProgress: (p) => {
      if (marks.at(-1)?.phase !== p.phase) marks.push({ phase: p.phase, at: performance.now() });
    },
  });
  const end = performance.now();
  // Time before the first progress event (setup, the first reads) counts towards the first pass.
  const passes = marks.map((mk, i) => ({ phase: mk.phase, ms: (marks[i + 1]?.at ?? end) - (i === 0 ? t0 : mk.at) }));
  return { report, outputBytes: sinks.reduce((s, k) => s + k.bytes, 0), passes };
}

/** Times `method` on `m`: medians, effective bandwidth (and its fraction of `copyGBs`), GPU and resident memory. */
export async function measureMerge(
  ctx: GpuContext,
  m: BenchModels,
  method: string,
  repeats: Repeats,
  /** metricsCache: kept across the runs, so every run after the first warm-up finds the task vectors' metrics in it. */
  /** resident: raw inputs kept on the GPU across the runs (fill it with one untimed merge first). */
  opts: { size: VitSize; metrics?: boolean; metricsCache?: MetricsCache; resident?: ResidentInputs; copyGBs: number | null },
): Promise<EngineFigure> {
  const metrics = opts.metrics ?? false;
  const held: { last?: Awaited<ReturnType<typeof mergeOnce>> } = {};
  const rssBefore = process.memoryUsage.rss();
  const { value: timing, peakRss } = await withPeakRss(() => timeIt(repeats, async () => void (held.last = await mergeOnce(ctx, m, method, metrics, opts.metricsCache, opts.resident))));
  const run = held.last!;
  const tasks = m.models.length;
  const bytesMoved = (tasks + 1) * m.modelBytes + run.outputBytes;
  const effectiveGBs = gbPerSecond(bytesMoved, timing.ms);
  return {
    method,
    tasks,
    dtype: m.dtype,
    size: sizeInfo(opts.size),
    timing,
    bytesMoved,
    effectiveGBs,
    fractionOfCopy: opts.copyGBs ? effectiveGBs / opts.copyGBs : null,
    paramsPerSecond: m.elements / (timing.ms / 1000),
    peakGpuBytes: run.report.peakGpuBytes,
    rssBeforeBytes: rssBefore,
    rssPeakBytes: peakRss,
    passes: run.passes,
    metrics,
    ...(opts.metricsCache ? { metricsCached: true } : {}),
    ...(opts.resident ? { residentInputs: true } : {}),
  };
}
