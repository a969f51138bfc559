/**
 * CPU twins of the kernels that read raw model bytes for a whole chunk at once: decode_stack (theta0 and the
 * task-vector stack), linear_merge (the output of a linear merge, with DROP of DARE then Task Arithmetic, with MASKED of
 * a merge whose kept entries are given),
 * magmax_output (MagMax's), consensus_output (Consensus Merging's, then Task Arithmetic) and tall_output (TALL masks'
 * T models). Each is the composition of the twins of unpack, task_vector, (dare_drop, magmax_select, or combine +
 * tall_mask + count_mask,) combine and pack_add, or for tall_output combine + tall_mask + bitmask_apply and pack_add
 * (reference/kernels.ts, reference/mergeKernels.ts), which the fused kernels reproduce bit for bit; the fused
 * kernels' twins add the report's squared norms of theta0, each tau_t and the f32 delta, summed in float64, and the
 * kernels' FINITE flags: per block of 16 elements, whether theta0 + delta (f32) holds a NaN or an infinity, or (for a
 * kernel whose masks may drop task-vector entries) a guard value computed before the masks does.
 */
import type { RawDType } from '../gpu/kernels';
import { LINEAR_BLOCK } from '../gpu/linearMerge';
import { combineRef, packAddRef, taskVectorRef, unpackRef, type F32Mode } from './kernels';
import { rngKey } from '../rng';
import { bitmaskApplyRef, countMaskRef, dareDropRef, magmaxSelectRef, tallMaskRef } from './mergeKernels';

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
  /**
   * Per block of LINEAR_BLOCK elements (one kernel thread's; the last one partial): 1 where theta0 + delta (f32), or
   * the kernel's guard values, hold a NaN or an infinity.
   */
  flags: Uint8Array;
}

/** The FINITE flags of merged values theta0 + delta (f32) and of `guard` values, per block of LINEAR_BLOCK elements. */
export function nonFiniteFlagsRef(base: Float32Array, delta: Float32Array, numel: number, guard: Float32Array | null = null): Uint8Array {
  const flags = new Uint8Array(Math.ceil(numel / LINEAR_BLOCK));
  for (let j = 0; j < numel; j++) {
    if (!Number.isFinite(Math.fround(base[j]! + delta[j]!)) || (guard && !Number.isFinite(guard[j]!))) flags[Math.floor(j / LINEAR_BLOCK)] = 1;
  }
  return flags;
}

/** The f32 sum of the task vectors per element, in model order from +0 (the guard of DARE's and Consensus's flags). */
export function taskSumRef(stack: Float32Array, tasks: number, numel: number, mode?: F32Mode): Float32Array {
  return combineRef(stack, tasks, numel, new Float32Array(tasks).fill(1), mode);
}

/** fusedOutputRef's guard of a kernel that flags its task vectors' sum (DARE's drop, Consensus's masks). */
export const taskSumGuard = (numel: number, mode?: F32Mode) => (stack: Float32Array, tasks: number) => taskSumRef(stack, tasks, numel, mode);

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

/**
 * The composition every fused output kernel's twin shares: decode_stack, then `contribute` (which turns the stack of
 * task vectors into the contributions c_t in place, or leaves it), combine with `coeffs`, pack_add; the norms are
 * those of theta0, of the task vectors before `contribute`, and of the f32 delta; `guard` gives the flags' guard values
 * from the task vectors before `contribute` (see LinearMergeResult.flags).
 */
export function fusedOutputRef(
  inputs: readonly RawInput[],
  numel: number,
  coeffs: ArrayLike<number>,
  outDtype: RawDType,
  mode: F32Mode | undefined,
  contribute: (stack: Float32Array, tasks: number) => void,
  guard?: (stack: Float32Array, tasks: number) => Float32Array,
): LinearMergeResult {
  const tasks = inputs.length - 1;
  const { base, stack } = decodeStackRef(inputs, numel, mode);
  const tvSq = Float64Array.from({ length: tasks }, (_, t) => sumSq(stack, t * numel, (t + 1) * numel));
  const guarded = guard?.(stack, tasks) ?? null;
  contribute(stack, tasks);
  // One coefficient more than models: theta0's, combined as a last row (linear_merge's BASE_TERM).
  const withBase = coeffs.length === tasks + 1;
  const rows = withBase ? new Float32Array((tasks + 1) * numel) : stack;
  if (withBase) {
    rows.set(stack);
    rows.set(base, tasks * numel);
  }
  const delta = combineRef(rows, withBase ? tasks + 1 : tasks, numel, coeffs, mode);
  return { bytes: packAddRef(base, delta, numel, outDtype, mode), baseSq: sumSq(base), tvSq, deltaSq: sumSq(delta), flags: nonFiniteFlagsRef(base, delta, numel, guarded) };
}

/**
 * theta0 = inputs[0], model t = inputs[1 + t]; delta = sum_t coeffs[t] * (model t - theta0) in f32, row order, plus
 * coeffs[T] * theta0 when there is one coefficient more than models.
 */
export function linearMergeRef(inputs: readonly RawInput[], numel: number, coeffs: ArrayLike<number>, outDtype: RawDType, mode?: F32Mode): LinearMergeResult {
  return fusedOutputRef(inputs, numel, coeffs, outDtype, mode, () => undefined);
}

/**
 * Twin of magmax_output: magmax_select (per column only the last model of largest |tau| bits keeps its value)
 * before combine.
 */
export function magmaxOutputRef(inputs: readonly RawInput[], numel: number, coeffs: ArrayLike<number>, outDtype: RawDType, mode?: F32Mode): LinearMergeResult {
  return fusedOutputRef(inputs, numel, coeffs, outDtype, mode, (stack, tasks) => magmaxSelectRef(stack, tasks, numel));
}

/**
 * One launch of linear_merge with DROP: the seed, rate and scale, and the tensors it covers one after the other, each
 * from element `at` of the chunk (the first at 0) to the next one's `at` (the last to the chunk's end), its elements
 * numbered from `elementOffset` in its tensor, its RNG keys rngKey(seed, t, tensorId).
 */
export interface DareLaunch {
  seed: number;
  p: number;
  scale: number;
  parts: readonly { at: number; elementOffset: number; tensorId: number }[];
}

/**
 * Twin of linear_merge with DROP: dare_drop on each part's columns (model t keeps entry j where
 * rngUniform(rngKey(seed, t, tensorId), elementOffset + j - at) >= p, times scale) before combine.
 */
export function dareOutputRef(inputs: readonly RawInput[], numel: number, coeffs: ArrayLike<number>, drop: DareLaunch, outDtype: RawDType, mode?: F32Mode): LinearMergeResult {
  return fusedOutputRef(inputs, numel, coeffs, outDtype, mode, (stack, tasks) => dareLaunchRef(stack, tasks, numel, drop), taskSumGuard(numel, mode));
}

/** dare_drop over one launch's stack [tasks, numel], in place: each part's columns with its own keys and offsets. */
export function dareLaunchRef(stack: Float32Array, tasks: number, numel: number, drop: DareLaunch): void {
  drop.parts.forEach((part, i) => {
    const from = part.at;
    const count = (i + 1 < drop.parts.length ? drop.parts[i + 1]!.at : numel) - from;
    const columns = new Float32Array(tasks * count);
    for (let t = 0; t < tasks; t++) columns.set(stack.subarray(t * numel + from, t * numel + from + count), t * count);
    const keys = Uint32Array.from({ length: tasks }, (_, t) => rngKey(drop.seed, t, part.tensorId));
    dareDropRef(columns, tasks, count, { keys, elementOffset: part.elementOffset, p: drop.p, scale: drop.scale });
    for (let t = 0; t < tasks; t++) stack.set(columns.subarray(t * count, (t + 1) * count), t * numel + from);
  });
}

/**
 * Twin of linear_merge with MASKED: each model's task vector, scaled by `scale` (one rounded f32 product; none when it
 * is 1, as dare_drop), through bitmask_apply with bit t of `words` (one per element) before combine.
 */
export function keptOutputRef(inputs: readonly RawInput[], numel: number, coeffs: ArrayLike<number>, kept: { words: Uint32Array; scale: number }, outDtype: RawDType, mode?: F32Mode): LinearMergeResult {
  const scale = Math.fround(kept.scale);
  const contribute = (stack: Float32Array, tasks: number) => {
    for (let t = 0; t < tasks; t++) {
      const row = stack.subarray(t * numel, (t + 1) * numel);
      const scaled = scale === 1 ? row : row.map((x) => Math.fround(x * scale));
      stack.set(bitmaskApplyRef(kept.words, t, scaled, numel), t * numel);
    }
  };
  return fusedOutputRef(inputs, numel, coeffs, outDtype, mode, contribute, taskSumGuard(numel, mode));
}

/**
 * Twin of consensus_output: the multi-task vector mtl = combine(stack, ones), tall_mask's usage counts against it
 * with `mask.lambdas`, and count_mask (columns used by fewer than `mask.k` tasks zeroed) before combine.
 */
export function consensusOutputRef(
  inputs: readonly RawInput[],
  numel: number,
  coeffs: ArrayLike<number>,
  mask: { lambdas: Float32Array; k: number },
  outDtype: RawDType,
  mode?: F32Mode,
): LinearMergeResult {
  const masks = (stack: Float32Array, tasks: number) => {
    const mtl = taskSumRef(stack, tasks, numel, mode);
    countMaskRef(stack, tasks, numel, tallMaskRef(stack, tasks, numel, mtl, mask.lambdas, false).counts, mask.k);
  };
  return fusedOutputRef(inputs, numel, coeffs, outDtype, mode, masks, taskSumGuard(numel, mode));
}

/** tallOutputRef's result: one model per task, and the norms and flags of linear_merge's twin. */
export interface TallOutputResult extends Omit<LinearMergeResult, 'bytes'> {
  /** encode(theta0 + m_t * mtl) in `outDtype` per model t, numel elements each, no padding. */
  outputs: Uint8Array[];
}

/**
 * Twin of tall_output: mtl = combine(stack, ones); tall_mask's masks (bits) against it with `lambdas`; per model t,
 * bitmask_apply (mtl where m_t, else +0) and pack_add. Norms: theta0, each tau_t and output 0's delta (the stack
 * path's merged norm); flags: per block, any output's merged values or mtl non-finite. At most 32 models (the masks'
 * bits, as on the stack path).
 */
export function tallOutputRef(inputs: readonly RawInput[], numel: number, lambdas: Float32Array, outDtype: RawDType, mode?: F32Mode): TallOutputResult {
  const tasks = inputs.length - 1;
  const { base, stack } = decodeStackRef(inputs, numel, mode);
  const tvSq = Float64Array.from({ length: tasks }, (_, t) => sumSq(stack, t * numel, (t + 1) * numel));
  const mtl = taskSumRef(stack, tasks, numel, mode);
  const { bitfield } = tallMaskRef(stack, tasks, numel, mtl, lambdas, true);
  const deltas = Array.from({ length: tasks }, (_, t) => bitmaskApplyRef(bitfield!, t, mtl, numel));
  const flags = new Uint8Array(Math.ceil(numel / LINEAR_BLOCK));
  for (const d of deltas) nonFiniteFlagsRef(base, d, numel, mtl).forEach((f, b) => (flags[b] = flags[b]! | f));
  return { outputs: deltas.map((d) => packAddRef(base, d, numel, outDtype, mode)), baseSq: sumSq(base), tvSq, deltaSq: sumSq(deltas[0]!), flags };
}

/**
 * partials_sum's twin: sums[r * groups + g] = the f32 sum, in order from the first, of partials r * threads + g * group
 * .. r * threads + min(threads, (g + 1) * group) - 1 (groups = ceil(threads / group)).
 */
export function partialsSumRef(partials: Float32Array, rows: number, threads: number, group: number): Float32Array {
  const groups = Math.ceil(threads / group);
  const sums = new Float32Array(rows * groups);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < groups; g++) {
      const first = r * threads + g * group;
      const end = r * threads + Math.min(threads, (g + 1) * group);
      let sum = partials[first]!;
      for (let i = first + 1; i < end; i++) sum = Math.fround(sum + partials[i]!);
      sums[r * groups + g] = sum;
    }
  }
  return sums;
}
