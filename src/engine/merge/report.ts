/** The merge report: per-tensor norms of every task vector and of the merged one (the CLI's --report, the page's chart). */
import type { DType } from '../types';
import type { MergeConfig } from './config';
import type { InterferenceReport } from './metrics';

export const REPORT_FORMAT = 'merge-playground/report@1';

/** Norms of one tensor. Norms are L2 (Frobenius), accumulated in float64. */
export interface TensorReport {
  name: string;
  shape: number[];
  /** Base model dtype and the dtype written. */
  dtype: DType;
  outputDtype: DType | null;
  action: 'merge' | 'passthrough' | 'ignore';
  /** ||theta0|| for this tensor. */
  baseNorm: number | null;
  /** ||tau_t|| for each fine-tuned model, in input order. */
  taskVectorNorms: number[] | null;
  /** ||theta_merged - theta0|| (computed in f32 before rounding to the output dtype). */
  mergedNorm: number | null;
}

/**
 * NaN or infinite values found by a merge that skipped the norms (MergeRun.norms false), in the chunks whose merged
 * values its kernels flagged: in model `model`'s task vector of `tensor`, or (model null) in the merged tensor where
 * no task vector holds any (an overflow).
 */
export interface NonFiniteCount {
  tensor: string;
  model: number | null;
  count: number;
}

/** Everything a merge reports. */
export interface MergeReport {
  format: typeof REPORT_FORMAT;
  config: MergeConfig;
  base: string;
  models: string[];
  backend: string;
  /** Whole-model norms (square root of the sum over merged tensors). */
  totals: { baseNorm: number; taskVectorNorms: number[]; mergedNorm: number };
  tensors: TensorReport[];
  elapsedMs: number;
  /** Peak bytes of GPU buffers the engine held during the merge (null on the CPU backend). */
  peakGpuBytes: number | null;
  output: { file: string; bytes: number } | null;
  /** Interference metrics (null when not measured). */
  interference: InterferenceReport | null;
  /** With norms: false (no norms for the tensors merged by a fused kernel, whose norms are null): what it found. */
  nonFinite?: NonFiniteCount[];
}

/** Whole-model totals from per-tensor norms. */
export function totalsOf(tensors: TensorReport[], models: number): MergeReport['totals'] {
  let base = 0;
  let merged = 0;
  const tv = new Array<number>(models).fill(0);
  for (const t of tensors) {
    if (t.action !== 'merge') continue;
    base += (t.baseNorm ?? 0) ** 2;
    merged += (t.mergedNorm ?? 0) ** 2;
    t.taskVectorNorms?.forEach((n, i) => (tv[i] = tv[i]! + n * n));
  }
  return { baseNorm: Math.sqrt(base), taskVectorNorms: tv.map(Math.sqrt), mergedNorm: Math.sqrt(merged) };
}
