/**
 * CPU twins of the kernels that read raw model bytes for a whole chunk at once: decode_stack (theta0 and the
 * task-vector stack), linear_merge (the output of a linear merge), magmax_output (MagMax's) and dare_output (DARE then
 * Task Arithmetic). Each is the composition of the twins of unpack, task_vector, (magmax_select or dare_drop,)
 * combine and pack_add (reference/kernels.ts,
 * reference/mergeKernels.ts), which the fused kernels reproduce bit for bit; the fused kernels' twins add the report's
 * squared norms of theta0, each tau_t and the f32 delta, summed in float64.
 */
import type { RawDType } from '../gpu/kernels';
import { combineRef, packAddRef, taskVectorRef, unpackRef, type F32Mode } from './kernels';
import { dareDropRef, magmaxSelectRef } from './mergeKernels';

/** One raw input: its little-endian bytes and encoding. */
export interface RawInput {
  bytes: Uint8Array;
  dtype: RawDType;
}

export interface LinearMergeResult {
  /** encode(theta0 + delta) in `outDtype`, numel elements, no padding. */
  bytes: Uint8Array;
  /** Sums of squares: theta0, each tau_t, delta = sum_t coeffs[t] * tau_t (f32). */
  baseSq: number;
  tvSq: Float64Array;
  deltaSq: number;
}

const sumSq = (x: Float32Array, from = 0, to = x.length) => {
  let s = 0;
  for (let j = from; j < to; j++) s += x[j]! * x[j]!;
  return s;
};

/** theta0 = inputs[0] decoded, and stack[t * numel + j] = decode(inputs[1 + t], j) - theta0[j] in f32. */
export function decodeStackRef(inputs: readonly RawInput[], numel: number, mode?: F32Mode): { base: Float32Array; stack: Float32Array } {
  const tasks = inputs.length - 1;
  const base = unpackRef(inputs[0]!.bytes, inputs[0]!.dtype, numel);
  const stack = new Float32Array(tasks * numel);
  for (let t = 0; t < tasks; t++) taskVectorRef(inputs[t + 1]!.bytes, inputs[t + 1]!.dtype, base, numel, stack, t, mode);
  return { base, stack };
}

/** theta0 = inputs[0], model t = inputs[1 + t]; delta = sum_t coeffs[t] * (model t - theta0) in f32, row order. */
export function linearMergeRef(inputs: readonly RawInput[], numel: number, coeffs: ArrayLike<number>, outDtype: RawDType, mode?: F32Mode): LinearMergeResult {
  const tasks = inputs.length - 1;
  const { base, stack } = decodeStackRef(inputs, numel, mode);
  const delta = combineRef(stack, tasks, numel, coeffs, mode);
  return {
    bytes: packAddRef(base, delta, numel, outDtype, mode),
    baseSq: sumSq(base),
    tvSq: Float64Array.from({ length: tasks }, (_, t) => sumSq(stack, t * numel, (t + 1) * numel)),
    deltaSq: sumSq(delta),
  };
}

/**
 * Twin of magmax_output: decode_stack, magmax_select (per column only the last model of largest |tau| bits keeps its
 * value), combine with `coeffs`, pack_add; the norms are those of the task vectors before the selection.
 */
export function magmaxOutputRef(inputs: readonly RawInput[], numel: number, coeffs: ArrayLike<number>, outDtype: RawDType, mode?: F32Mode): LinearMergeResult {
  const tasks = inputs.length - 1;
  const { base, stack } = decodeStackRef(inputs, numel, mode);
  const tvSq = Float64Array.from({ length: tasks }, (_, t) => sumSq(stack, t * numel, (t + 1) * numel));
  magmaxSelectRef(stack, tasks, numel);
  const delta = combineRef(stack, tasks, numel, coeffs, mode);
  return { bytes: packAddRef(base, delta, numel, outDtype, mode), baseSq: sumSq(base), tvSq, deltaSq: sumSq(delta) };
}

/**
 * Twin of dare_output: decode_stack, dare_drop (model t keeps entry j where rngUniform(keys[t], elementOffset + j) >= p,
 * times scale), combine with `coeffs`, pack_add; the norms are those of the task vectors before the drop.
 */
export function dareOutputRef(
  inputs: readonly RawInput[],
  numel: number,
  coeffs: ArrayLike<number>,
  drop: { keys: Uint32Array; elementOffset: number; p: number; scale: number },
  outDtype: RawDType,
  mode?: F32Mode,
): LinearMergeResult {
  const tasks = inputs.length - 1;
  const { base, stack } = decodeStackRef(inputs, numel, mode);
  const tvSq = Float64Array.from({ length: tasks }, (_, t) => sumSq(stack, t * numel, (t + 1) * numel));
  dareDropRef(stack, tasks, numel, drop);
  const delta = combineRef(stack, tasks, numel, coeffs, mode);
  return { bytes: packAddRef(base, delta, numel, outDtype, mode), baseSq: sumSq(base), tvSq, deltaSq: sumSq(delta) };
}
