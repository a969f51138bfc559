/**
 * The benchmark suite: probes, pipeline warm-up, the acceptance merges and their time breakdown, one OPCM step,
 * evaluation throughput, the method matrix, the interference-metrics cost and the baselines, in that order (most
 * important first). No workload starts once the profile's budget is spent; those left are listed as skipped, never
 * estimated.
 */
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import type { GpuContext } from '../src/engine/gpu/device';
import { DEFAULT_SVD_BATCH_BYTES } from '../src/engine/gpu/opcmBatch';
import { loadSuite } from '../src/engine/eval/suite';
import { resolveConfig } from '../src/engine/merge/config';
import { runContinual } from '../src/engine/merge/continual';
import { MetricsCache } from '../src/engine/merge/metrics';
import { ResidentInputs } from '../src/engine/merge/residentInputs';
import { METHODS, getMethod } from '../src/engine/methods/registry';
import { suiteFilesFromDir } from '../src/platform/nodeFiles';
import { findTorchPython, runTorch, timeReference } from './baselines';
import { breakdown } from './breakdown';
import { hostProfile } from './hostProfile';
import { measureMerge, mergeOnce, sizeInfo } from './engineRun';
import { demoThroughput, randomVitThroughput } from './evalRun';
import { opcmFigure, runTorchOpcm, timeOpcmGpu, timeOpcmTwin } from './opcmRun';
import { generateModels, type BenchDType, type BenchModels } from './models';
import { matrixRepeats, type Profile } from './profiles';
import { COPY_VARIANTS, copyBufferProbe, copyKernelProbe, freshReadbackProbe, launchProbe, matmulProbe, readbackProbe, uploadProbe, type CopyVariant, type ProbeResult } from './probes';
import { RESULTS_FORMAT, type BenchResults, type EngineFigure, type PairedCopy, type ReferenceFigure } from './results';
import { gbPerSecond, median, type Repeats } from './stats';
import { sizeLabel, vitTensors, type VitSize } from './vitShapes';

/** How the suite is run. */
export interface SuiteOptions {
  profile: Profile;
  /** Interpreters to try for PyTorch, or null to skip it; and the baseline script. */
  python: string[] | null;
  torchScript: string;
  /** The PyTorch OPCM step (default: torch_opcm.py beside torchScript). */
  torchOpcmScript?: string;
  /** The demo suite's folder (default public/demo). */
  demoDir?: string;
  log: (msg: string) => void;
  /**
   * Called with a snapshot of the results (`incomplete` set) before each workload starts, so that a run stopped from
   * outside (a device call's time limit) still leaves what it measured.
   */
  checkpoint?: (snapshot: BenchResults) => Promise<void>;
}

/** Every batch method id, in registry order. */
export const BATCH_METHODS = METHODS.filter((m) => m.family === 'batch').map((m) => m.id);

/** Why `method` cannot merge `tasks` models, or null if it can. */
export function modelCountProblem(method: string, tasks: number): string | null {
  const { min, max } = getMethod(method).models;
  if (tasks < min) return `${method} needs at least ${min} models`;
  if (max !== undefined && tasks > max) return `${method} takes at most ${max} models`;
  return null;
}

/** The first `tasks` fine-tuned models of a generated set. */
function subset(m: BenchModels, tasks: number): BenchModels {
  return { ...m, models: m.models.slice(0, tasks) };
}

/**
 * Task Arithmetic runs, each right after one batch of the copy kernel and one untimed merge, and a global TIES run right
 * after each of them, then Task Arithmetic with resident inputs (see PairedCopy): on a machine whose speed drifts, each
 * pair sees the same conditions.
 */
async function pairedWithCopy(ctx: GpuContext, m: BenchModels, reps: number, copy: { bytes: number; variant: CopyVariant }, minBatchMs: number): Promise<PairedCopy> {
  const out: Required<PairedCopy> = {
    ...{ copyGBs: [], taGBs: [], ratios: [], fraction: 0, taMs: [], tiesMs: [], tiesRatios: [], tiesOverTa: 0 },
    ...{ residentMs: [], residentGBs: [], residentRatios: [], residentFraction: 0 },
  };
  // Room for every chunk of every input (padding included), filled by one untimed merge and kept for the whole series.
  const resident = new ResidentInputs(2 * (m.models.length + 1) * m.modelBytes);
  const timed = async (method: string, keep?: ResidentInputs) => {
    const t0 = performance.now();
    const run = await mergeOnce(ctx, m, method, false, undefined, keep);
    return { ms: performance.now() - t0, outputBytes: run.outputBytes };
  };
  const moved = (outputBytes: number) => (m.models.length + 1) * m.modelBytes + outputBytes;
  try {
    await timed('task_arithmetic', resident);
    for (let i = 0; i < reps; i++) {
      const copyGBs = (await copyKernelProbe(ctx, copy.bytes, copy.variant, { minBatchMs, reps: 1 })).rate;
      // One untimed merge first: the probe freed 2 x copyBytes, and the merge's first touch of fresh memory is not
      // what a merge costs in steady use (the page merges again on every slider move).
      await mergeOnce(ctx, m, 'task_arithmetic', false);
      const ta = await timed('task_arithmetic');
      const ties = await timed('ties');
      const kept = await timed('task_arithmetic', resident);
      const taGBs = gbPerSecond(moved(ta.outputBytes), ta.ms);
      const keptGBs = gbPerSecond(moved(kept.outputBytes), kept.ms);
      out.copyGBs.push(copyGBs);
      out.taGBs.push(taGBs);
      out.ratios.push(taGBs / copyGBs);
      out.taMs.push(ta.ms);
      out.tiesMs.push(ties.ms);
      out.tiesRatios.push(ties.ms / ta.ms);
      out.residentMs.push(kept.ms);
      out.residentGBs.push(keptGBs);
      out.residentRatios.push(keptGBs / copyGBs);
    }
  } finally {
    resident.clear();
  }
  out.fraction = median(out.ratios);
  out.tiesOverTa = median(out.tiesRatios);
  out.residentFraction = median(out.residentRatios);
  return out;
}

/** Runs the whole suite on `ctx` and returns its results (the caller writes them). */
export async function runSuite(ctx: GpuContext, o: SuiteOptions): Promise<BenchResults> {
  const { profile: p, log } = o;
  const start = performance.now();
  const elapsed = () => performance.now() - start;
  const inBudget = () => elapsed() < p.budgetMs;
  const r: BenchResults = {
    format: RESULTS_FORMAT,
    date: new Date().toISOString(),
    profile: p.name,
    adapter: ctx.info.adapter,
    isSoftware: ctx.info.isSoftware,
    host: { platform: `${process.platform}-${process.arch}`, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryBytes: totalmem(), node: process.version, loadAverageStart: loadavg(), loadAverageEnd: [] },
    wallMs: 0,
    budgetMs: p.budgetMs,
    probes: [],
    copyGBs: 0,
    matmulGflops: 0,
    acceptance: { taskArithmetic: null, ties: null, tiesOverTa: null, breakdown: null },
    merges: [],
    metricsCost: [],
    torch: [],
    torchError: null,
    reference: [],
    opcm: [],
    evaluation: [],
    skipped: [],
    notMeasured: [],
    notes: [],
  };
  const step = async (msg: string) => {
    const at = `[${(elapsed() / 1000).toFixed(0)} s] ${msg}`;
    log(at);
    if (o.checkpoint) await o.checkpoint(structuredClone({ ...r, wallMs: elapsed(), notes: notesOf(p, r), incomplete: at }));
  };
  const python = o.python ? findTorchPython(o.python) : null;
  if (o.python && !python) r.torchError = `no interpreter among ${o.python.join(', ')} can import torch`;
  if (!o.python) r.torchError = 'PyTorch baseline turned off (--no-torch)';
  const torch = async (size: VitSize, dtype: BenchDType, tasks: number, methods: string[]) => {
    if (!python || methods.length === 0) return;
    if (!inBudget()) {
      r.skipped.push({ what: `PyTorch: ${methods.join(', ')} on ${tasks} x ${dtype}, ${sizeLabel(size)}`, reason: 'time budget' });
      return;
    }
    await step(`PyTorch: ${methods.length} method(s), ${tasks} x ${dtype}, ${sizeLabel(size)}`);
    try {
      r.torch.push(...(await runTorch(python, o.torchScript, { tensors: vitTensors(size), sizeLabel: sizeLabel(size), dtype, tasks, methods, repeats: p.torch.repeats, device: p.torch.device })));
    } catch (e) {
      r.torchError = (e as Error).message;
      log(`PyTorch baseline failed: ${r.torchError}`);
    }
  };

  // 1. Physical limits.
  const pr = p.probes;
  const { maxStorageBufferBindingSize, maxBufferSize } = ctx.info.limits;
  const copyBytes = Math.floor(Math.min(pr.copyBytes, maxStorageBufferBindingSize, maxBufferSize) / 64) * 64;
  await step('probes');
  const copies: { variant: CopyVariant; probe: ProbeResult }[] = [];
  for (const variant of COPY_VARIANTS) copies.push({ variant, probe: await copyKernelProbe(ctx, copyBytes, variant, pr.settings) });
  r.probes.push(...copies.map((c) => c.probe));
  // The achievable bandwidth: the fastest copy kernel. Which one wins depends on the device: 4 vec4s per thread on
  // SwiftShader (its per-thread cost), the scalar f32 copy on an H100 (2026-11-27: 1830 GB/s against 1400-1700).
  const fastest = copies.reduce((a, b) => (b.probe.rate > a.probe.rate ? b : a));
  r.copyKernel = fastest.probe.name;
  r.copyGBs = fastest.probe.rate;
  r.probes.push(
    await copyBufferProbe(ctx, copyBytes, pr.settings),
    await uploadProbe(ctx, pr.transferBytes, pr.settings),
    await readbackProbe(ctx, pr.transferBytes, pr.settings),
    await freshReadbackProbe(ctx, pr.transferBytes, pr.settings),
    await launchProbe(ctx, pr.settings),
    await matmulProbe(ctx, pr.matmulN, pr.matmulSettings),
  );
  r.matmulGflops = r.probes.at(-1)!.rate;

  // 2. Every pipeline compiled before anything is timed.
  await step('warm-up: every method once on a tiny model');
  const tiny = await generateModels({ size: p.warmupSize, dtype: 'F32', tasks: 2 });
  for (const method of BATCH_METHODS) await mergeOnce(ctx, tiny, method, false);
  if (p.opcm.length) await runContinual(ctx, { base: tiny.base, models: tiny.models, config: resolveConfig({ method: 'opcm' }) });

  // 3. Acceptance: Task Arithmetic and global TIES on the acceptance models, the breakdown, the references there.
  const acc = p.acceptance;
  {
    const m = await generateModels({ size: acc.size, dtype: 'F32', tasks: acc.tasks });
    await step(`acceptance: task_arithmetic, ${acc.tasks} x F32, ${sizeLabel(acc.size)}`);
    const ta = await measureMerge(ctx, m, 'task_arithmetic', acc.repeats, { size: acc.size, copyGBs: r.copyGBs });
    await step(`acceptance: ties, ${acc.tasks} x F32, ${sizeLabel(acc.size)}`);
    const ties = await measureMerge(ctx, m, 'ties', acc.repeats, { size: acc.size, copyGBs: r.copyGBs });
    r.acceptance = { taskArithmetic: ta, ties, tiesOverTa: ties.timing.ms / ta.timing.ms, breakdown: null, paired: null };
    await step('acceptance: task_arithmetic, each run right after a copy-kernel probe, then global TIES');
    r.acceptance.paired = await pairedWithCopy(ctx, m, acc.repeats.reps, { bytes: copyBytes, variant: fastest.variant }, pr.settings.minBatchMs);
    if (acc.breakdownRepeats && inBudget()) {
      // The four variants cost about 3.5 merges per repetition: as many repetitions as fit in a fifth of the budget (at least one).
      const fit = Math.floor((0.2 * p.budgetMs) / (3.5 * ta.timing.ms));
      const repeats = { ...acc.breakdownRepeats, reps: Math.max(1, Math.min(acc.breakdownRepeats.reps, fit)) };
      await step(`breakdown of task_arithmetic (${repeats.reps} run(s) per variant)`);
      r.acceptance.breakdown = await breakdown(ctx, m, acc.size, repeats);
    } else r.skipped.push({ what: 'time breakdown of task_arithmetic', reason: acc.breakdownRepeats ? 'time budget' : `not part of profile ${p.name}` });
    if (inBudget()) {
      await step('host main thread profile of one task_arithmetic merge');
      r.acceptance.hostProfile = await hostProfile(ctx, m, acc.size);
    } else r.skipped.push({ what: "profile of the host's main thread", reason: 'time budget' });
    if (p.reference.acceptance) {
      for (const fig of [ta, ties]) {
        if (!inBudget()) {
          r.skipped.push({ what: `CPU reference ${fig.method} at the acceptance size`, reason: 'time budget' });
          continue;
        }
        await step(`CPU reference: ${fig.method}, ${acc.tasks} models, ${sizeLabel(acc.size)}`);
        r.reference.push(await referenceFigure(m, fig, p.reference.repeats));
      }
    }
  }
  // The acceptance models are unreachable now: free them before PyTorch builds its own copies (with node --expose-gc).
  (globalThis as { gc?: () => void }).gc?.();
  await torch(acc.size, 'F32', acc.tasks, ['task_arithmetic', 'ties']);

  // 4. One OPCM step (GPU, CPU twin, PyTorch) and evaluation throughput (GPU and CPU twin).
  for (const oc of p.opcm) {
    const label = `OPCM step 2 of 2, ${sizeLabel(oc.size)}`;
    if (!inBudget()) {
      r.skipped.push({ what: label, reason: 'time budget' });
      continue;
    }
    const m = await generateModels({ size: oc.size, dtype: 'F32', tasks: 2 });
    await step(label);
    // The engine's default placement of the SVDs (the host on a CPU-emulated adapter), then the other one there (the
    // GPU's batched Jacobi), or one SVD at a time on a GPU (the host's float64 SVDs take minutes at full size).
    const svd = ctx.info.isSoftware ? 'host' : 'gpu';
    const fig = opcmFigure(oc.size, await timeOpcmGpu(ctx, m, oc.repeats, DEFAULT_SVD_BATCH_BYTES, svd));
    r.opcm!.push(fig);
    const timeOther = oc.otherSvd !== false && inBudget();
    if (timeOther && svd === 'host') {
      await step(`${label}, SVDs on the GPU`);
      const { projected: _, ...other } = await timeOpcmGpu(ctx, m, oc.repeats, DEFAULT_SVD_BATCH_BYTES, 'gpu');
      fig.gpuOtherSvd = other;
    } else if (timeOther) {
      await step(`${label}, one SVD at a time`);
      const { timing, peakGpuBytes } = await timeOpcmGpu(ctx, m, oc.repeats, 0, 'gpu');
      fig.gpuOtherBatching = { timing, peakGpuBytes, svdBatchBytes: 0 };
    }
    if (oc.twin) {
      await step(`CPU reference: ${label}`);
      fig.twin = await timeOpcmTwin(m);
    }
    if (python && inBudget()) {
      await step(`PyTorch: ${label}`);
      try {
        fig.torch = await runTorchOpcm(python, o.torchOpcmScript ?? join(dirname(o.torchScript), 'torch_opcm.py'), oc.size, p.torch.repeats, p.torch.device);
      } catch (e) {
        fig.torchError = (e as Error).message;
        log(`PyTorch OPCM baseline failed: ${fig.torchError}`);
      }
    } else fig.torchError = python ? 'time budget' : r.torchError;
  }
  if (p.evaluation) {
    const ev = p.evaluation;
    const opts = { batch: ev.batch, repeats: ev.repeats, matmulGflops: r.matmulGflops };
    if (inBudget()) {
      await step(`evaluation: demo suite, ${ev.demoSamples} images per task`);
      const suite = await loadSuite(suiteFilesFromDir(o.demoDir ?? 'public/demo'));
      r.evaluation!.push(await demoThroughput(ctx, suite, ev.demoSamples, { ...opts, twinImages: ev.demoTwinImages }));
    } else r.skipped.push({ what: 'evaluation throughput on the demo suite', reason: 'time budget' });
    if (inBudget()) {
      await step(`evaluation: random ${sizeLabel(ev.vit)}, ${ev.vitImages} image(s)`);
      r.evaluation!.push(await randomVitThroughput(ctx, ev.vit, ev.vitImages, { ...opts, twinImages: ev.vitTwinImages }));
      (globalThis as { gc?: () => void }).gc?.();
    } else r.skipped.push({ what: `evaluation throughput on a random ${sizeLabel(ev.vit)}`, reason: 'time budget' });
  }

  // 5. The method matrix: model counts in the profile's order, each in every dtype, then metrics cost and references.
  const mx = p.matrix;
  const generated = new Map<BenchDType, BenchModels>();
  const largest = Math.max(0, ...mx.tasks);
  const modelsOf = async (dtype: BenchDType) => {
    let all = generated.get(dtype);
    if (!all) generated.set(dtype, (all = await generateModels({ size: mx.size, dtype, tasks: largest })));
    return all;
  };
  for (const tasks of mx.tasks) {
    for (const dtype of mx.dtypes) {
      const m = subset(await modelsOf(dtype), tasks);
      const ran: string[] = [];
      for (const method of BATCH_METHODS) {
        const what = `${method}, ${tasks} x ${dtype}`;
        const problem = modelCountProblem(method, tasks);
        if (problem) r.skipped.push({ what, reason: problem });
        else if (!inBudget()) r.skipped.push({ what, reason: 'time budget' });
        else {
          await step(`merge: ${what}, ${sizeLabel(mx.size)}`);
          r.merges.push(await measureMerge(ctx, m, method, matrixRepeats(p, tasks), { size: mx.size, copyGBs: r.copyGBs }));
          ran.push(method);
        }
      }
      await torch(mx.size, dtype, tasks, ran);
      if (dtype === 'F32') await extras(m, ran);
    }
  }
  generated.clear();

  // Metrics cost and the CPU references on the matrix models (f32, p.reference.tasks models).
  async function extras(m: BenchModels, ran: string[]): Promise<void> {
    const offOf = (method: string): EngineFigure | undefined => r.merges.find((f) => f.method === method && f.tasks === m.models.length && f.dtype === 'F32');
    for (const method of m.models.length === p.metricsCost.tasks ? p.metricsCost.methods : []) {
      const off = offOf(method);
      if (!off) continue;
      if (!inBudget()) {
        r.skipped.push({ what: `${method} with interference metrics`, reason: 'time budget' });
        continue;
      }
      await step(`metrics on: ${method}, ${m.models.length} x F32`);
      const repeats = matrixRepeats(p, m.models.length);
      const on = await measureMerge(ctx, m, method, repeats, { size: mx.size, metrics: true, copyGBs: r.copyGBs });
      // The playground's merges after the first: the task vectors' metrics come from a MetricsCache (filled untimed).
      const metricsCache = new MetricsCache();
      await mergeOnce(ctx, m, method, true, metricsCache);
      const cached = await measureMerge(ctx, m, method, repeats, { size: mx.size, metrics: true, metricsCache, copyGBs: r.copyGBs });
      // And with the raw inputs kept on the GPU by the merge before (filled untimed): a slider step in the playground.
      const resident = new ResidentInputs(2 * (m.models.length + 1) * m.modelBytes);
      try {
        await mergeOnce(ctx, m, method, true, metricsCache, resident);
        const onResident = await measureMerge(ctx, m, method, repeats, { size: mx.size, metrics: true, metricsCache, resident, copyGBs: r.copyGBs });
        // The Accuracy tab's step: metrics off, the method's statistics (PlanContext.memo) and the inputs kept.
        const offResident = await measureMerge(ctx, m, method, repeats, { size: mx.size, metricsCache, resident, copyGBs: r.copyGBs });
        r.metricsCost.push({ method, off, on, cached, resident: onResident, offResident });
      } finally {
        resident.clear();
      }
    }
    if (m.models.length !== p.reference.tasks) return;
    const { methods } = p.reference;
    for (const method of methods ? ran.filter((id) => methods.includes(id)) : ran) {
      if (!inBudget()) {
        r.skipped.push({ what: `CPU reference ${method}`, reason: 'time budget' });
        continue;
      }
      await step(`CPU reference: ${method}, ${m.models.length} models, ${sizeLabel(mx.size)}`);
      r.reference.push(await referenceFigure(m, offOf(method)!, p.reference.repeats));
    }
  }

  r.notes.push(...notesOf(p, r));
  r.notMeasured.push(
    { what: 'browser slider latency (parameter change to updated charts)', reason: 'measured in Chromium by npm run bench:slider, into <date>-<adapter>-slider.md beside this file' },
  );
  r.host.loadAverageEnd = loadavg();
  r.wallMs = elapsed();
  return r;
}

/** The CPU reference of `engine.method` on the models `engine` was measured on, against that figure. */
async function referenceFigure(m: BenchModels, engine: EngineFigure, repeats: Repeats): Promise<ReferenceFigure> {
  const timing = await timeReference(m, engine.method, repeats);
  const engineMs = engine.timing.ms;
  return { method: engine.method, tasks: m.models.length, size: engine.size, timing, paramsPerSecond: m.elements / (timing.ms / 1000), engineMs, speedup: timing.ms / engineMs };
}

/** How the figures of a run were taken (sizes, repetitions, what is timed), for the summary. */
function notesOf(p: Profile, r: BenchResults): string[] {
  const size = (v: VitSize) => `${sizeLabel(v)} (${sizeInfo(v).params.toLocaleString('en')} parameters, ${(100 * sizeInfo(v).fractionOfVitB32).toPrecision(3)}% of ViT-B/32)`;
  const reps = (x: { warmups: number; reps: number }) => `median of ${x.reps} after ${x.warmups} warm-up run(s)`;
  const matrixReps = p.matrix.tasks.map((t) => `${t} models: ${reps(matrixRepeats(p, t))}`).join('; ');
  const notes = [
    `Acceptance merges: ${size(p.acceptance.size)}, ${p.acceptance.tasks} f32 models, ${reps(p.acceptance.repeats)}.` +
      (p.matrix.tasks.length ? ` Method matrix: ${size(p.matrix.size)}, ${p.matrix.tasks.join(' / ')} models, ${p.matrix.dtypes.join(' and ')}; ${matrixReps}.` : ''),
    `Every pipeline is compiled first by one untimed merge of every method on ${sizeLabel(p.warmupSize)}.`,
    'Timed region of the engine: runMerge from in-memory safetensors files (memorySource) to the merged file(s) written by the safetensors writer into a ' +
      'sink that counts bytes; generating the models is not timed, and PyTorch likewise times only the merge of state dicts already in memory.',
    'Bytes moved by a merge = (T + 1) input models + the bytes written; the copy kernel moves 2 x its buffer per iteration (read + write).',
  ];
  // Where the twins run: the f32 matrix models of p.reference.tasks models (when the matrix has them), the acceptance models.
  const twinsOn = [
    ...(p.matrix.tasks.includes(p.reference.tasks) && p.matrix.dtypes.includes('F32')
      ? [`the f32 matrix models with ${p.reference.tasks} models${p.reference.methods ? ` (${p.reference.methods.join(', ')} only)` : ''}`]
      : []),
    ...(p.reference.acceptance ? ['the acceptance models (Task Arithmetic, TIES)'] : []),
  ];
  if (twinsOn.length) notes.push(`The CPU reference twins run on ${twinsOn.join(' and on ')}; the engine figure they are compared with comes from the same run.`);
  if (r.isSoftware) {
    notes.push('SwiftShader executes WGSL on the CPU cores that also run Node, PyTorch and the CPU references: other load on the machine (see the load averages) slows every figure.');
  }
  return notes;
}
