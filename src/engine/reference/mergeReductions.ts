/**
 * CPU twins of the merge reductions (shaders/sign_sum, trimmed_sign_sum, row_stats, topk_energy, gram, sign_stats, usage_histogram; launchers in
 * src/engine/gpu/mergeReductions.ts). Integer results are exact in any order. Float sums follow the kernels'
 * order exactly: each of the WORKGROUP_SIZE threads of a chunk adds its strided share in f32, the thread sums
 * are added by the same tree, and the host part (`*FromPartials`) is shared, so a device that keeps subnormals
 * gives the same bits.
 */
import { TOPK_BLOCK, WORKGROUP_SIZE } from '../gpu/constants';
import { countReciprocals } from '../gpu/mergeKernels';
import {
  gramFromPartials,
  gramPairs,
  REDUCTION_CHUNK,
  reductionChunks,
  rowStatsFromPartials,
  signStatsFromPartials,
  topkEnergyFromPartials,
  type RowStats,
  type SignStatsCounts,
} from '../gpu/mergeReductions';
import { bitsOf, columnSumF32, trimMaskRef } from './mergeKernels';

const MAG = 0x7fffffff;
const INF_BITS = 0x7f800000;

/**
 * One workgroup's f32 sum of term(i) over i in [chunk * REDUCTION_CHUNK, ...) below `count`: thread t adds the
 * terms t, t + WORKGROUP_SIZE, ... of the chunk in order, then strides WORKGROUP_SIZE/2 .. 1 fold the thread sums.
 */
export function workgroupSumF32(chunk: number, count: number, term: (i: number) => number): number {
  const start = chunk * REDUCTION_CHUNK;
  const sums = new Float32Array(WORKGROUP_SIZE);
  for (let t = 0; t < WORKGROUP_SIZE; t++) {
    let acc = 0;
    for (let k = t; k < REDUCTION_CHUNK && start + k < count; k += WORKGROUP_SIZE) acc = Math.fround(acc + term(start + k));
    sums[t] = acc;
  }
  for (let stride = WORKGROUP_SIZE / 2; stride > 0; stride >>= 1) {
    for (let t = 0; t < stride; t++) sums[t] = sums[t]! + sums[t + stride]!;
  }
  return sums[0]!;
}

/** Twin of sign_sum: sum over columns of the sign of the f32 column sum (NaN sums count 0). */
export function signSumRef(stack: Float32Array, rows: number, numel: number): number {
  const f32 = new Float32Array(1);
  let total = 0;
  for (let j = 0; j < numel; j++) {
    f32[0] = columnSumF32(stack, rows, numel, j);
    const bits = bitsOf(f32)[0]!;
    const mag = bits & MAG;
    if (mag !== 0 && mag <= INF_BITS) total += bits >>> 31 ? -1 : 1;
  }
  return total;
}

/** Twin of trimmed_sign_sum over one chunk: signSumRef of the stack as trimMaskRef leaves it (`stack` is not changed). */
export function trimmedSignSumRef(stack: Float32Array, rows: number, numel: number, thresholdBits: Uint32Array): number {
  const trimmed = Float32Array.from(stack);
  trimMaskRef(trimmed, rows, numel, thresholdBits);
  return signSumRef(trimmed, rows, numel);
}

/** Twin of row_stats. */
export function rowStatsRef(stack: Float32Array, rows: number, numel: number): RowStats[] {
  const chunks = reductionChunks(numel);
  const partials = new Uint32Array(rows * chunks * 4);
  const floats = new Float32Array(partials.buffer);
  const bits = bitsOf(stack);
  for (let r = 0; r < rows; r++) {
    const x = (i: number) => stack[r * numel + i]!;
    for (let c = 0; c < chunks; c++) {
      const at = (r * chunks + c) * 4;
      floats[at] = workgroupSumF32(c, numel, (i) => Math.fround(x(i) * x(i)));
      floats[at + 1] = workgroupSumF32(c, numel, (i) => Math.abs(x(i)));
      for (let i = c * REDUCTION_CHUNK; i < Math.min(numel, (c + 1) * REDUCTION_CHUNK); i++) {
        const b = bits[r * numel + i]!;
        if ((b & MAG) !== 0) partials[at + 2]!++;
        if ((b & INF_BITS) === INF_BITS) partials[at + 3]!++;
      }
    }
  }
  return rowStatsFromPartials(partials, rows, chunks);
}

/** Twin of topk_energy: per row and level, the sum of x^2 over entries with (bits & 0x7fffffff) >= thresholds[row, level]. */
export function topkEnergyRef(stack: Float32Array, rows: number, numel: number, thresholds: Uint32Array): Float64Array {
  const levels = thresholds.length / rows;
  const blocks = Math.ceil(numel / TOPK_BLOCK);
  const partials = new Float32Array(rows * blocks * levels);
  const bits = bitsOf(stack);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < blocks; b++) {
      for (let l = 0; l < levels; l++) {
        const threshold = thresholds[r * levels + l]!;
        let sum = 0;
        for (let i = r * numel + b * TOPK_BLOCK; i < r * numel + Math.min(numel, (b + 1) * TOPK_BLOCK); i++) {
          if ((bits[i]! & MAG) >= threshold) sum = Math.fround(sum + Math.fround(stack[i]! * stack[i]!));
        }
        partials[(r * blocks + b) * levels + l] = sum;
      }
    }
  }
  return topkEnergyFromPartials(partials, rows, blocks, levels);
}

/** Twin of gram: the [rows, rows] matrix of row dot products. */
export function gramRef(stack: Float32Array, rows: number, numel: number): Float64Array {
  const chunks = reductionChunks(numel);
  const partials = new Float32Array(gramPairs(rows) * chunks);
  let p = 0;
  for (let a = 0; a < rows; a++) {
    for (let b = a; b < rows; b++, p++) {
      for (let c = 0; c < chunks; c++) {
        partials[p * chunks + c] = workgroupSumF32(c, numel, (i) => Math.fround(stack[a * numel + i]! * stack[b * numel + i]!));
      }
    }
  }
  return gramFromPartials(partials, rows, chunks);
}

/** Twin of sign_stats. */
export function signStatsRef(stack: Float32Array, rows: number, numel: number): SignStatsCounts {
  const chunks = reductionChunks(numel);
  const bits = bitsOf(stack);
  const recip = countReciprocals(rows);
  const pos = new Uint32Array(numel);
  const neg = new Uint32Array(numel);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < numel; j++) {
      const b = bits[r * numel + j]!;
      const mag = b & MAG;
      if (mag === 0 || mag > INF_BITS) continue;
      if (b >>> 31) neg[j]!++;
      else pos[j]!++;
    }
  }
  const partials = new Uint32Array(chunks * 3);
  const floats = new Float32Array(partials.buffer);
  for (let c = 0; c < chunks; c++) {
    for (let j = c * REDUCTION_CHUNK; j < Math.min(numel, (c + 1) * REDUCTION_CHUNK); j++) {
      if (pos[j]! > 0 && neg[j]! > 0) partials[3 * c]!++;
      if (pos[j]! + neg[j]! >= 2) partials[3 * c + 1]!++;
    }
    floats[3 * c + 2] = workgroupSumF32(c, numel, (j) => {
      const total = pos[j]! + neg[j]!;
      return total === 0 ? 1 : Math.fround(Math.abs(pos[j]! - neg[j]!) * recip[total]!);
    });
  }
  return signStatsFromPartials(partials, numel);
}

/** Twin of usage_histogram: result[c] = number of counts equal to c (c = 0..tasks); larger counts throw. */
export function usageHistogramRef(counts: Uint32Array, numel: number, tasks: number): number[] {
  const hist = new Array<number>(tasks + 1).fill(0);
  for (let j = 0; j < numel; j++) {
    const c = counts[j]!;
    if (c > tasks) throw new Error(`usageHistogramRef: count ${c} at ${j} exceeds ${tasks} tasks`);
    hist[c]!++;
  }
  return hist;
}
