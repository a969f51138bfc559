/**
 * CPU twins of the global-TIES kernels that read raw model bytes (shaders/ties_scan.wgsl, ties_output.wgsl; host in
 * src/engine/gpu/tiesFused.ts). tiesOutputRef is fusedOutputRef's composition of the twins of decode_stack,
 * ties_merge, combine and pack_add, which ties_output reproduces bit for bit (plus the counts behind the majority
 * sign); tiesScanRef spells out the scan's counts and key lists. The GPU fills its lists in whatever order its threads
 * run, so lists compare as sets.
 */
import type { RawDType } from '../gpu/kernels';
import type { DisjointMerge } from './methods/signElect';
import { combineRef, type F32Mode } from './kernels';
import { dareLaunchRef, decodeStackRef, fusedOutputRef, taskSumGuard, type DareLaunch, type LinearMergeResult, type RawInput } from './linearMerge';
import { bitsOf, columnSumF32, tiesMergeRef, trimMaskRef } from './mergeKernels';

const MAG = 0x7fffffff;
const INF_BITS = 0x7f800000;

/** What the scan of one chunk finds (ties_scan.wgsl, before any capacity limit). */
export interface TiesScanRefResult {
  /** Per task: keys >= its bracket's upper end. */
  above: number[];
  positive: number;
  negative: number;
  /** Per task: the keys inside its bracket, in element order. */
  listed: number[][];
}

/** Twin of ties_scan on one chunk: brackets[2r], brackets[2r + 1] are task r's (lo, above) keys. */
export function tiesScanRef(inputs: readonly RawInput[], numel: number, brackets: ArrayLike<number>, mode?: F32Mode): TiesScanRefResult {
  const tasks = inputs.length - 1;
  const { stack } = decodeStackRef(inputs, numel, mode);
  const bits = bitsOf(stack);
  const out: TiesScanRefResult = { above: new Array<number>(tasks).fill(0), positive: 0, negative: 0, listed: Array.from({ length: tasks }, () => []) };
  const decided = new Float32Array(tasks);
  for (let j = 0; j < numel; j++) {
    let open = false;
    for (let r = 0; r < tasks; r++) {
      const b = bits[r * numel + j]!;
      const key = b & MAG;
      const kept = key >= brackets[2 * r + 1]!;
      if (kept) out.above[r]!++;
      else if (key >= brackets[2 * r]!) {
        out.listed[r]!.push(key);
        open = true;
      }
      decided[r] = kept ? stack[r * numel + j]! : 0;
    }
    if (open) continue;
    const s = new Uint32Array(new Float32Array([columnSumF32(decided, tasks, 1, 0)]).buffer)[0]!;
    const mag = s & MAG;
    if (mag === 0 || mag > INF_BITS) continue;
    if (s >>> 31) out.negative++;
    else out.positive++;
  }
  return out;
}

/**
 * Twin of ties_output: theta0 + sum_t coeffs[t] * c_t encoded in outDtype, with c the ties_merge contributions of the
 * task vectors under `thresholds` (magnitude bits per task), the majority rule with `majority`, and `merge`; plus the
 * squared norms of theta0, each untrimmed tau_t and the delta, and the tally: columns whose trimmed sum elects +1 or
 * -1, and tied columns: a zero sum and a delta that may depend on the majority sign. For merge `sum`, the column's
 * delta under majority +1 differs (bit for bit) from its delta under -1; for `mean` and `max`, a kept entry could
 * agree (non-zero and not NaN). With `drop` (ties_output with DROP), dare_drop first turns the task vectors into the
 * ones TIES sees (dareLaunchRef); the norms stay those of the undropped ones.
 */
export function tiesOutputRef(
  inputs: readonly RawInput[],
  numel: number,
  s: { coeffs: ArrayLike<number>; thresholds: Uint32Array; majority: -1 | 0 | 1; merge: DisjointMerge; outDtype: RawDType; drop?: DareLaunch },
  mode?: F32Mode,
): LinearMergeResult & TiesTallyRef {
  let tally: TiesTallyRef | null = null;
  // With a drop, the task vectors TIES sees are the dropped ones (dare_drop on the stack, then ties_merge).
  const dropped = (stack: Float32Array, tasks: number) => {
    if (s.drop) dareLaunchRef(stack, tasks, numel, s.drop);
    return stack;
  };
  const result = fusedOutputRef(
    inputs,
    numel,
    s.coeffs,
    s.outDtype,
    mode,
    (stack, tasks) => {
      dropped(stack, tasks);
      tally = tiesTallyRef(stack, tasks, numel, s, mode);
      tiesMergeRef(stack, tasks, numel, s.thresholds, s.merge, { rule: 'majority', majority: s.majority });
    },
    // The flags' guard: the trimmed column sums, which keep every NaN and infinity the disjoint merge may drop; with a
    // drop also the sum of the undropped task vectors, which keeps those the drop loses (NaN marks either).
    (stack, tasks) => {
      const trimmed = dropped(stack.slice(), tasks);
      trimMaskRef(trimmed, tasks, numel, s.thresholds);
      const sums = Float32Array.from({ length: numel }, (_, j) => columnSumF32(trimmed, tasks, numel, j));
      if (!s.drop) return sums;
      const undropped = taskSumGuard(numel, mode)(stack, tasks);
      return sums.map((x, j) => (Number.isFinite(x) && Number.isFinite(undropped[j]!) ? 0 : NaN));
    },
  );
  return { ...result, ...tally! };
}

/** ties_output's tally (see tiesOutputRef) of the task-vector stack `stack` (not changed). */
interface TiesTallyRef {
  positive: number;
  negative: number;
  tied: number;
}
function tiesTallyRef(stack: Float32Array, tasks: number, numel: number, s: { coeffs: ArrayLike<number>; thresholds: Uint32Array; merge: DisjointMerge }, mode?: F32Mode): TiesTallyRef {
  const trimmed = stack.slice();
  trimMaskRef(trimmed, tasks, numel, s.thresholds);
  const tb = bitsOf(trimmed);
  const tally = { positive: 0, negative: 0, tied: 0 };
  const bySign = s.merge === 'sum' ? ([1, -1] as const).map((majority) => deltaBits(stack, tasks, numel, s, majority, mode)) : null;
  for (let j = 0; j < numel; j++) {
    const sum = new Uint32Array(new Float32Array([columnSumF32(trimmed, tasks, numel, j)]).buffer)[0]!;
    const mag = sum & MAG;
    if (mag === 0) {
      let open = false;
      if (bySign) open = bySign[0]![j] !== bySign[1]![j];
      else for (let r = 0; r < tasks; r++) open ||= (tb[r * numel + j]! & MAG) !== 0 && (tb[r * numel + j]! & MAG) <= INF_BITS;
      if (open) tally.tied++;
    } else if (mag <= INF_BITS) {
      if (sum >>> 31) tally.negative++;
      else tally.positive++;
    }
  }
  return tally;
}

/** Bits of the combined delta of `stack` (not changed) merged with the majority rule and sign `majority`. */
function deltaBits(stack: Float32Array, tasks: number, numel: number, s: { coeffs: ArrayLike<number>; thresholds: Uint32Array; merge: DisjointMerge }, majority: -1 | 1, mode?: F32Mode): Uint32Array {
  const merged = stack.slice();
  tiesMergeRef(merged, tasks, numel, s.thresholds, s.merge, { rule: 'majority', majority });
  return bitsOf(combineRef(merged, tasks, numel, s.coeffs, mode));
}
