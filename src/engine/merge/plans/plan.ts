/**
 * A method on the GPU is a plan: optional statistics passes over the streamed model (`prepare`), then the output
 * pass, where `emit` turns each chunk's task-vector stack into the merged delta(s). Plans follow the CPU references
 * in src/engine/reference/methods exactly: every method yields per-task contributions c_t and the delta is
 * sum_t coeff(tensor, t) * c_t (the `combine` kernel), so anisotropic coefficients work for every method.
 */
import type { GpuContext } from '../../gpu/device';
import type { MethodSpec, ParamValues } from '../../methods/params';
import { coefficientAt, type CoefficientSetting } from '../../methods/scaling';
import type { AlignedTensor } from '../align';
import type { Chunk, ChunkStream, Granularity } from '../stream';

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
   * For linear methods: the per-task coefficients of the delta at tensor `t` (delta = sum_t coeffs[t] * tau_t, what
   * `emit` computes), or null where the method's settings are not linear. runMerge then writes the output with one
   * fused kernel per chunk when nothing needs the stack. Called after `prepare` and `beginTensor`.
   */
  linear?(p: PlanContext, t: AlignedTensor): Float32Array | null;
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
