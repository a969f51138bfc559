/**
 * A method on the GPU is a plan: optional statistics passes over the streamed model (`prepare`), then the output
 * pass, where `emit` turns each chunk's task-vector stack into the merged delta(s). Plans follow the CPU references
 * in src/engine/reference/methods exactly: every method yields per-task contributions c_t and the delta is
 * sum_t coeff(tensor, t) * c_t (the `combine` kernel), so anisotropic coefficients work for every method.
 */
import type { GpuContext } from '../../gpu/device';
import type { DareTensorDrop } from '../../gpu/linearMerge';
import type { FusedKernel } from '../../gpu/tiesFused';
import type { MethodSpec, ParamValues } from '../../methods/params';
import { coefficientAt, type CoefficientSetting } from '../../methods/scaling';
import type { AlignedTensor } from '../align';
import type { Chunk, ChunkStream, Granularity, RawChunkCache, StreamSource } from '../stream';
import type { KeptBits } from '../keptBits';
import type { PlanMemo } from '../planMemo';

/** A fused output pass: its kernel (destroyed by the pass) and the coefficients it takes per tensor. */
export interface FusedSpec {
  kernel: FusedKernel;
  coeffs(t: AlignedTensor): Float32Array | null;
  /**
   * After the pass: a kernel to run again with when its output must not stand (global TIES merged with an estimated
   * majority sign that its own tally contradicts on a tied column), else null. runMerge holds the pass's writes when
   * a plan has this (and they fit in MergeRun.holdBytes), so that only the chunks the kernel called provisional run
   * again (FusedOutput.rerun); otherwise the whole pass does.
   */
  redo?(): FusedKernel | null;
  /** Raw chunks an earlier pass kept on the GPU, for the pass to take instead of uploading them. */
  cache?: RawChunkCache;
}

/**
 * A transform applied in place to a chunk's stack (or a copy of it) before TIES sees it. `memoKey`, when the transform
 * is a function of its settings alone (DARE's seeded drop), names those settings: statistics taken after it may then
 * be kept in PlanContext.memo under that name too. `host`, where given, does the same to elements [start, start +
 * count) of tensor `t` as host task vectors ([T, count], the values the stack would hold), bit for bit: a CPU-emulated
 * adapter's host selections (hostSelect.ts) then apply it instead of selecting on the GPU. `fusedDrop`, where given,
 * says the transform is DARE's drop with these settings per tensor (null: the tensor is left alone), which global
 * TIES's fused output kernel applies itself (ties_output with DROP).
 */
export type StackTransform = ((p: PlanContext, c: Chunk, stack: GPUBuffer) => void) & {
  readonly memoKey?: string;
  readonly host?: (p: PlanContext, t: AlignedTensor, start: number, values: Float32Array) => void;
  readonly fusedDrop?: (name: string, shape: readonly number[]) => DareTensorDrop | null;
};

/** The memo key suffix of statistics taken after `pre`: '' without one, null where `pre` names no settings. */
export function afterTransform(pre: StackTransform | undefined): string | null {
  if (!pre) return '';
  return pre.memoKey === undefined ? null : `, after ${pre.memoKey}`;
}

/** What `emit` may report about a chunk, for the mask and overlap statistics. */
export interface EmitInfo {
  /** The per-task contributions c_t ([T, count] f32) when they differ from the task vectors (trimmed, masked...). */
  contributions?: GPUBuffer;
  /** How many tasks use each weight (u32 [count]), for TALL masks and Consensus. */
  usage?: GPUBuffer;
}

/** Everything a plan can use. */
export interface PlanContext {
  readonly ctx: GpuContext;
  readonly spec: MethodSpec;
  readonly params: ParamValues;
  readonly tasks: number;
  /** Number of layers of the model (for per-layer coefficients). */
  readonly layers: number;
  readonly stream: ChunkStream;
  /** The models the stream reads (for passes over their raw bytes). */
  readonly source: StreamSource;
  /** Elements per chunk the merge's options ask for. */
  readonly chunkElements: number;
  /** Whether the output pass may be a fused kernel (nothing needs the task-vector stack): see GpuPlan.fused. */
  readonly fusedOutput: boolean;
  /**
   * Statistics of these same task vectors that earlier merges computed (MergeRun.metricsCache; null without one),
   * keyed by plan and the parameters they depend on (merge/planMemo.ts). A plan takes its statistics from here when
   * they are in it and puts them here once complete, so a merge that changes only other parameters (a lambda slider)
   * skips the pass. The values are shared: a plan reads them and never changes them in place.
   */
  readonly memo: PlanMemo | null;
  /** Per-task values of coefficient parameter `param` at one tensor (the spec default where no rule matches). */
  coeffs(param: string, tensor: string): Float32Array;
  /** A reusable f32 GPU buffer of at least `floats` elements, one per `slot` name. */
  scratch(slot: string, floats: number): GPUBuffer;
  /** Names the current pass for progress reports. */
  phase(name: string): void;
}

export interface GpuPlan {
  granularity: Granularity;
  /** Number of merged models written (TALL masks write one per task). */
  outputs(tasks: number): number;
  /** Statistics passes over the whole model before the output pass. */
  prepare?(p: PlanContext): Promise<void>;
  /** Called in the output pass before the chunks of tensor `t` (per-tensor statistics). */
  beginTensor?(p: PlanContext, t: AlignedTensor): Promise<void>;
  /**
   * For plans whose output can come from one kernel per chunk of raw inputs (merge/plans/fusedOutput.ts): the kernel
   * and each tensor's per-task coefficients (null: that tensor goes through `emit`), or null where this run's settings
   * need `emit`. Called after `prepare`; runMerge uses it when nothing needs the task-vector stack.
   */
  fused?(p: PlanContext): FusedSpec | null;
  /**
   * True when a merge with interference metrics may take the fused pass once the task vectors' metrics are cached
   * (runMerge): `emit` reports no contributions or usage (the delta is a weighted sum of the task vectors, and of
   * theta0 for SLERP), so the merged delta's norm is all such a merge measures, and the fused pass gives it. Task
   * Arithmetic, simple averaging, Model Stock and SLERP (but see `stackFaster`). Default false.
   */
  fusedWithKnownMetrics?: boolean;
  /**
   * True when, given the statistics in `memo` (PlanContext.memo), a merge that collects weights (runMerge's `collect`)
   * or measures metrics is faster through the stack even where the fused pass could write it: Model Stock's and
   * SLERP's Gram pass keeps the decoded chunks for the stack's output pass, where before a fused output it reads the
   * raw inputs (demo suite, SwiftShader: 1.17x the time of the stack path; with the metrics known, 1.1-1.2x; measured
   * before the Gram pass left its raw chunks to the fused output: tensorGrams). With their Grams in `memo` no such
   * pass runs, and the fused pass is the faster. Default false.
   */
  stackFaster?(memo: PlanMemo | null): boolean;
  /**
   * Parameters that only scale the merged output (lambda; LiNeS's alpha and beta): the contributions and usage counts
   * `emit` reports do not depend on them. A merge with interference metrics keeps their statistics in
   * PlanContext.memo under the other parameters, and a later merge that differs in these alone takes the fused pass
   * with the metrics on, as `fusedWithKnownMetrics` plans do (the playground's lambda slider on the Interference tab).
   */
  scaleParams?: readonly string[];
  /**
   * For plans whose contributions, under the run's settings, are the task vectors masked, the kept entries times one
   * number (`scale`: 1, or DARE's rescale): that number and the per-task coefficients each tensor's contributions are
   * combined with; null where the settings make them otherwise (TIES's merge "mean" divides by a count). A merge keeps
   * the entries they keep in PlanContext.memo (merge/keptBits.ts, under the settings but `scaleParams`), and a later
   * one that finds them there writes through linear_merge's MASKED pipeline instead of `emit`.
   */
  masked?(p: PlanContext): { scale: number; coeffs(t: AlignedTensor): Float32Array } | null;
  /**
   * For masked plans that find the kept entries of every tensor faster than their stack path does (Breadcrumbs' row
   * bands on a CPU-emulated adapter, where the host selects): those entries, selected before the output pass, which
   * then writes through the MASKED pipeline as a later merge would; null where the stack path is the faster.
   */
  selectKept?(p: PlanContext): Promise<KeptBits | null>;
  /** Writes the merged delta of output o into out[o] (f32 [count]); may change c.stack in place. */
  emit(p: PlanContext, c: Chunk, out: GPUBuffer[]): Promise<EmitInfo | void>;
  /** Frees the plan's GPU state. */
  destroy?(): void;
}

/** Evaluates a coefficient parameter per task at one tensor. */
export function coefficientsOf(spec: MethodSpec, params: ParamValues, param: string, tensor: string, tasks: number, layers: number): Float32Array {
  const p = spec.params.find((x) => x.name === param);
  const fallback = p && typeof p.default === 'number' ? p.default : 0;
  const setting = params[param] as CoefficientSetting;
  return Float32Array.from({ length: tasks }, (_, task) => coefficientAt(setting, { tensor, task, layers }, fallback));
}

/** A PlanContext.memo key: `what`, and every parameter but those in `omit` (which the value does not depend on). */
export function paramsKey(what: string, params: ParamValues, omit: readonly string[]): string {
  return `${what} ${JSON.stringify(Object.fromEntries(Object.entries(params).filter(([name]) => !omit.includes(name))))}`;
}

/**
 * Statistics `key` of this merge's task vectors: from PlanContext.memo when an earlier merge of the same models put
 * them there, else computed by `compute` and put there with its size, `bytesOf(value)` (without a memo: computed).
 */
export async function memoized<T>(p: PlanContext, key: string, compute: () => Promise<T>, bytesOf: (value: T) => number): Promise<T> {
  const known = p.memo?.get(key);
  if (known !== undefined) return known as T;
  const value = await compute();
  p.memo?.set(key, value, bytesOf(value));
  return value;
}
