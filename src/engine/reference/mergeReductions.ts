/**
 * CPU twins of the merge reductions (shaders/sign_sum, trimmed_sign_sum, row_stats, topk_energy, gram, sign_stats, usage_histogram; launchers in
 * src/engine/gpu/mergeReductions.ts). Integer results are exact in any order. Float sums follow the kernels'
 * order exactly: each thread adds its block of REDUCTION_BLOCK columns in f32 in four running sums (blockSumF32Lanes,
 * the kernels' lane_total), and the host part (`*FromPartials`) is shared, so a device that keeps subnormals gives the
 * same bits.
 */
import { REDUCTION_BLOCK, reductionBlocks } from '../gpu/constants';
import { countReciprocals } from '../gpu/mergeKernels';
import {
  gramFromPartials,
  gramPairs,
  rowStatsFromPartials,
  signStatsFromPartials,
  topkEnergyFromPartials,
  type RowStats,
  type SignStatsCounts,
} from '../gpu/mergeReductions';
import { bitsOf, columnSumF32, trimMaskRef } from './mergeKernels';

const MAG = 0x7fffffff;
const INF_BITS = 0x7f800000;

/** Elements [first, end) of block `block` of `count` elements (common.wgsl `block_span`). */
export function blockSpan(block: number, count: number): [number, number] {
  const first = block * REDUCTION_BLOCK;
  return [first, Math.min(count, first + REDUCTION_BLOCK)];
}

/** One thread's f32 sum of term(i) over its block (blockSpan) in four running sums (element i into sum i % 4, in order), then (s0 + s1) + (s2 + s3). */
export function blockSumF32Lanes(block: number, count: number, term: (i: number) => number): number {
  const [first, end] = blockSpan(block, count);
  const lanes = [0, 0, 0, 0];
  for (let i = first; i < end; i++) lanes[i & 3] = Math.fround(lanes[i & 3]! + term(i));
  return Math.fround(Math.fround(lanes[0]! + lanes[1]!) + Math.fround(lanes[2]! + lanes[3]!));
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
  const blocks = reductionBlocks(numel);
  const partials = new Uint32Array(rows * blocks * 4);
  const floats = new Float32Array(partials.buffer);
  const bits = bitsOf(stack);
  for (let r = 0; r < rows; r++) {
    const x = (i: number) => stack[r * numel + i]!;
    for (let c = 0; c < blocks; c++) {
      const at = (r * blocks + c) * 4;
      floats[at] = blockSumF32Lanes(c, numel, (i) => Math.fround(x(i) * x(i)));
      floats[at + 1] = blockSumF32Lanes(c, numel, (i) => Math.abs(x(i)));
      const [first, end] = blockSpan(c, numel);
      for (let i = first; i < end; i++) {
        const b = bits[r * numel + i]!;
        if ((b & MAG) !== 0) partials[at + 2]!++;
        if ((b & INF_BITS) === INF_BITS) partials[at + 3]!++;
      }
    }
  }
  return rowStatsFromPartials(partials, rows, blocks);
}

/** Twin of topk_energy: per row and level, the sum of x^2 over entries with (bits & 0x7fffffff) >= thresholds[row, level] (in gram's four running sums). */
export function topkEnergyRef(stack: Float32Array, rows: number, numel: number, thresholds: Uint32Array): Float64Array {
  const levels = thresholds.length / rows;
  const blocks = reductionBlocks(numel);
  const partials = new Float32Array(rows * blocks * levels);
  const bits = bitsOf(stack);
  for (let r = 0; r < rows; r++) {
    for (let l = 0; l < levels; l++) {
      const threshold = thresholds[r * levels + l]!;
      const term = (i: number) => ((bits[r * numel + i]! & MAG) >= threshold ? Math.fround(stack[r * numel + i]! * stack[r * numel + i]!) : 0);
      for (let b = 0; b < blocks; b++) partials[(r * blocks + b) * levels + l] = blockSumF32Lanes(b, numel, term);
    }
  }
  return topkEnergyFromPartials(partials, rows, blocks, levels);
}

/** Twin of gram: the [rows, rows] matrix of row dot products. */
export function gramRef(stack: Float32Array, rows: number, numel: number): Float64Array {
  return gramFromPartials(gramPartialsRef(stack, rows, numel), rows, reductionBlocks(numel));
}

/** Twin of gram's (and gram_raw's) partials: [pairs, blocks] f32, pair (a, b) a <= b row-major over the upper triangle. */
export function gramPartialsRef(stack: Float32Array, rows: number, numel: number): Float32Array {
  const blocks = reductionBlocks(numel);
  const partials = new Float32Array(gramPairs(rows) * blocks);
  let p = 0;
  for (let a = 0; a < rows; a++) {
    for (let b = a; b < rows; b++, p++) {
      for (let c = 0; c < blocks; c++) {
        partials[p * blocks + c] = blockSumF32Lanes(c, numel, (i) => Math.fround(stack[a * numel + i]! * stack[b * numel + i]!));
      }
    }
  }
  return partials;
}

/** Twin of sign_stats. */
export function signStatsRef(stack: Float32Array, rows: number, numel: number): SignStatsCounts {
  const blocks = reductionBlocks(numel);
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
  const partials = new Uint32Array(blocks * 3);
  const floats = new Float32Array(partials.buffer);
  for (let c = 0; c < blocks; c++) {
    const [first, end] = blockSpan(c, numel);
    for (let j = first; j < end; j++) {
      if (pos[j]! > 0 && neg[j]! > 0) partials[3 * c]!++;
      if (pos[j]! + neg[j]! >= 2) partials[3 * c + 1]!++;
    }
    floats[3 * c + 2] = blockSumF32Lanes(c, numel, (j) => {
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
