/**
 * The benchmark's machine-readable results (bench/results/<date>-<adapter>.json): one object per run of the suite.
 * Every time is a median in milliseconds over `reps` timed runs after `warmups` untimed ones; every ratio is of two
 * figures measured in the same run.
 */
import type { BenchDType } from './models';
import type { ProbeResult } from './probes';
import type { Timing } from './stats';

export const RESULTS_FORMAT = 'merge-playground/bench@1';

/** A model size as run: its label, parameters per model, and its fraction of ViT-B/32. */
export interface SizeInfo {
  label: string;
  width: number;
  layers: number;
  params: number;
  /** params / 87,456,000. */
  fractionOfVitB32: number;
}

/** One merge of the engine (GPU path), timed. */
export interface EngineFigure {
  method: string;
  tasks: number;
  dtype: BenchDType;
  size: SizeInfo;
  timing: Timing;
  /** Bytes of the input tensors (base + T models) plus the merged output(s), the least any merge must move. */
  bytesMoved: number;
  /** bytesMoved / time, and that as a fraction of the copy-kernel bandwidth of this run. */
  effectiveGBs: number;
  fractionOfCopy: number | null;
  /** Parameters merged per second (model elements / time). */
  paramsPerSecond: number;
  /** report.peakGpuBytes of the last timed run. */
  peakGpuBytes: number | null;
  /** Resident memory of the process before the runs (models in memory included) and its peak during them. */
  rssBeforeBytes: number;
  rssPeakBytes: number;
  /** Wall time of each pass of the last timed run, from runMerge's progress phases (e.g. TIES threshold, merge). */
  passes: { phase: string; ms: number }[];
  metrics: boolean;
  /** With metrics: the task vectors' metrics came from a MetricsCache filled before the timed runs (the playground's case). */
  metricsCached?: boolean;
  /** Whether the raw inputs were kept on the GPU by the merge before (ResidentInputs). */
  residentInputs?: boolean;
}

/** The same merge in PyTorch, in its own process. */
export interface TorchFigure {
  method: string;
  tasks: number;
  dtype: BenchDType;
  sizeLabel: string;
  ms: number;
  runs: number[];
  device: string;
  torch: string;
  threads: number;
  peakRssBytes: number;
  cudaPeakBytes?: number;
}

/** The float64 CPU reference twin of one method, on a scaled-down model. */
export interface ReferenceFigure {
  method: string;
  tasks: number;
  size: SizeInfo;
  timing: Timing;
  paramsPerSecond: number;
  /** The engine on the same models in the same run, and reference time / engine time (> 1: the engine is faster). */
  engineMs: number;
  speedup: number;
}

/** Where the time of one merge goes: each part measured as the difference of two runs of the streaming pass. */
/**
 * Task Arithmetic against the copy kernel timed right before each of its runs (so a machine whose speed drifts during
 * the suite moves both; one untimed merge sits between them): each pair's ratio of effective bandwidths, and their
 * median, the acceptance figure. Global TIES likewise runs right after each timed TA run: each pair's time ratio, and
 * their median (absent in results written before these pairs were measured).
 */
export interface PairedCopy {
  copyGBs: number[];
  taGBs: number[];
  ratios: number[];
  fraction: number;
  taMs?: number[];
  tiesMs?: number[];
  tiesRatios?: number[];
  tiesOverTa?: number;
  /**
   * Task Arithmetic again right after TIES, with the raw inputs kept on the GPU by the previous merge of the same models
   * (ResidentInputs, as the playground merges again on a slider move): ms, GB/s, GB/s over the pair's copy kernel, and
   * the median of those ratios.
   */
  residentMs?: number[];
  residentGBs?: number[];
  residentRatios?: number[];
  residentFraction?: number;
}

export interface Breakdown {
  method: string;
  tasks: number;
  dtype: BenchDType;
  size: SizeInfo;
  reps: number;
  /** Chunks streamed per pass (one per tensor below the chunk size). */
  chunks: number;
  /** Median ms of each measured variant (see bench/breakdown.ts for what each runs), and max - min of its runs. */
  variants: Record<string, number>;
  spreads: Record<string, number>;
  /** The derived parts: name, ms, fraction of the full merge. */
  parts: { part: string; ms: number; fraction: number }[];
}

/** The host's main thread during one cold Task Arithmetic merge (bench/hostProfile.ts): self time by part, in ms. */
export interface HostProfile {
  method: string;
  tasks: number;
  dtype: BenchDType;
  size: SizeInfo;
  /** The merge's wall time under the profiler, and the time the profile's samples cover. */
  mergeMs: number;
  sampledMs: number;
  intervalUs: number;
  parts: { part: string; ms: number }[];
  /** The functions with the most self time (name, and file:line where the profile has one). */
  top: { fn: string; ms: number }[];
}

/** One OPCM step (the second, t = 2: an SVD and a projection for every Linear weight) on random ViT-shaped weights. */
export interface OpcmFigure {
  size: SizeInfo;
  /** The Linear weights the step projects, by shape (rows x cols of the [out, in] weight). */
  linearWeights: { rows: number; cols: number; count: number }[];
  /** runContinual over 2 models, timed from the end of step 1's callback to step 2's (see bench/opcmRun.ts). */
  /**
   * multiplyAdds: at most this many in the step's SVDs and projections (from the last run's sweep counts, see
   * stepMultiplyAdds in bench/opcmRun.ts); absent in results written before it was counted.
   */
  gpu: OpcmGpuRun & { projected: number };
  /**
   * The same step with the SVDs placed the other way (on the GPU when `gpu` factored on the host, the default on a
   * CPU-emulated adapter), timed right after it on the same models; absent in results written before.
   */
  gpuOtherSvd?: OpcmGpuRun;
  /**
   * The same step with one SVD at a time (runContinual's svdBatchBytes 0; `gpu` batches same-shape SVDs by default),
   * timed right after it on the same models; absent in results written before.
   */
  gpuOtherBatching?: { timing: Timing; peakGpuBytes: number; svdBatchBytes: number };
  twin: OpcmTwinFigure | null;
  torch: OpcmTorchFigure | null;
  torchError: string | null;
}

/**
 * One timing of the step on the GPU path. svd: where the Linear weights were factored (runContinual's `svd`; absent
 * in results written before it existed: the GPU). multiplyAdds and sweeps only with the GPU's Jacobi SVDs.
 */
export interface OpcmGpuRun {
  timing: Timing;
  peakGpuBytes: number;
  multiplyAdds?: number;
  sweeps?: number[];
  svdBatchBytes?: number;
  svd?: 'gpu' | 'host';
}

/** The float64 twin's step (src/engine/reference/opcm.ts opcmStep) on the same models, one run. */
export interface OpcmTwinFigure {
  timing: Timing;
}

/** The same step in PyTorch (bench/torch_opcm.py), float32, full torch.linalg.svd per Linear weight. */
export interface OpcmTorchFigure {
  ms: number;
  runs: number[];
  /** The part of the step spent in torch.linalg.svd. */
  svdMs: number;
  device: string;
  torch: string;
  threads: number;
  peakRssBytes: number;
}

/** Evaluation throughput of one model: the GPU path and the float64 CPU twin on the same images in the same run. */
export interface EvalFigure {
  workload: string;
  model: { hiddenSize: number; layers: number; imageSize: number; patchSize: number; channels: number; params: number };
  /** Images per timed GPU run, and the GPU batch size. */
  images: number;
  batch: number;
  /** Matrix-product FLOPs of one image's forward pass and head (bench/evalRun.ts flopsPerImage). */
  flopsPerImage: number;
  gpu: { timing: Timing; imagesPerSecond: number; gflops: number; fractionOfMatmul: number | null };
  /** The twin on `images` of the same images (one timed run). */
  twin: { timing: Timing; images: number; imagesPerSecond: number } | null;
  /** Predictions of the GPU path and the twin on the images both scored. */
  agreement: { compared: number; same: number } | null;
}

/** A workload the budget or the method's model count left out, and why. */
export interface Skipped {
  what: string;
  reason: string;
}

/** A figure not measured by this suite yet (a named hook for later work). */
export interface NotMeasured {
  what: string;
  reason: string;
}

/** Everything one run of the suite measured. */
export interface BenchResults {
  format: typeof RESULTS_FORMAT;
  date: string;
  profile: string;
  adapter: string;
  isSoftware: boolean;
  host: { platform: string; cpus: number; cpuModel: string; memoryBytes: number; node: string; loadAverageStart: number[]; loadAverageEnd: number[] };
  wallMs: number;
  budgetMs: number;
  /**
   * Set only in the snapshots written while the suite runs (bench/main.ts): the step that was starting when it was
   * written ("[12 s] PyTorch: ..."). A results file that still has it comes from a run that was stopped before it finished.
   */
  incomplete?: string;
  probes: ProbeResult[];
  /** The copy-kernel bandwidth every merge figure is divided by (GB/s), and the matmul peak (GFLOP/s). */
  copyGBs: number;
  /**
   * The probe copyGBs comes from: the fastest copy kernel, e.g. "copy kernel (vec4x2)". Absent in results written
   * while the suite timed one vec4 per thread only ("copy kernel (vec4)").
   */
  copyKernel?: string;
  matmulGflops: number;
  acceptance: {
    taskArithmetic: EngineFigure | null;
    ties: EngineFigure | null;
    tiesOverTa: number | null;
    breakdown: Breakdown | null;
    paired?: PairedCopy | null;
    /** Absent in results written before it was measured. */
    hostProfile?: HostProfile | null;
  };
  merges: EngineFigure[];
  /**
   * cached: metrics on with a filled MetricsCache (the task vectors' metrics and, since 2026-11-29, the method's own
   * statistics), as the playground merges after the first; resident: that and the raw inputs kept on the GPU (the
   * playground's slider step on the Interference tab); offResident: metrics off with both (its step on the Accuracy
   * tab). Each absent in results written before it was measured.
   */
  metricsCost: { method: string; off: EngineFigure; on: EngineFigure; cached?: EngineFigure; resident?: EngineFigure; offResident?: EngineFigure }[];
  torch: TorchFigure[];
  torchError: string | null;
  reference: ReferenceFigure[];
  /** Absent in results written before these sections existed. */
  opcm?: OpcmFigure[];
  evaluation?: EvalFigure[];
  skipped: Skipped[];
  notMeasured: NotMeasured[];
  notes: string[];
}
