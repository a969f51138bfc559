/**
 * Row-wise rank bands (Model Breadcrumbs' official scope, methods.md §6): each task's tensor is viewed as rows of
 * its last dimension n, and in every row only the entries of descending magnitude rank in [from, to) are kept (ties:
 * lower index first, topk.ts `rankBandMask` on the row); the rest are zeroed in place. One workgroup per row does a
 * 4-pass 8-bit radix select of ranks from and to - 1 in workgroup memory, then orders the ties with one scan
 * (shaders/row_band_mask.wgsl): 5 reads of the row and one write. CPU twin: reference/select.ts `rowBandMaskRef`. On
 * a CPU-emulated adapter Breadcrumbs selects on the host instead (merge/plans/rowBandHost.ts).
 */
import { ConfigError } from '../errors';
import type { RankBand } from './bandMask';
import type { GpuContext } from './device';
import { workgroupGrid } from './dispatch';
import { bind, launch } from './launch';

/** The shape of a stack of task tensors viewed row-wise: [tasks, rows x n]. */
export interface RowStackShape {
  tasks: number;
  rows: number;
  n: number;
}

/** Zeroes, in place, every entry of each length-n row of `stack` whose magnitude rank in its row is outside `band`. */
export function rowBandMask(ctx: GpuContext, stack: GPUBuffer, shape: RowStackShape, band: RankBand, label = 'rowBandMask'): void {
  const { tasks, rows, n } = shape;
  for (const [field, value] of Object.entries(shape)) {
    if (!Number.isInteger(value) || value < 0) throw new ConfigError(`${label}.${field}`, `must be a non-negative integer, got ${value}`);
  }
  if (!Number.isInteger(band.from) || band.from < 0 || !(band.to >= 0)) throw new ConfigError(`${label}.band`, `bad band [${band.from}, ${band.to})`);
  const totalRows = tasks * rows;
  if (totalRows === 0 || n === 0) return;
  const from = Math.min(band.from, n);
  const to = Math.min(band.to, n);
  const binding = bind(ctx, label, stack, totalRows * n * 4);
  launch(ctx, 'row_band_mask', [n, totalRows, from, Math.max(from, to)], [binding], workgroupGrid(totalRows, ctx.info.limits.maxComputeWorkgroupsPerDimension));
}
