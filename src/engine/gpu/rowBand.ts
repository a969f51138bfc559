/**
 * Row-wise rank bands (Model Breadcrumbs' official scope, methods.md §6): each task's tensor is viewed as rows of
 * its last dimension n, and in every row only the entries of descending magnitude rank in [from, to) are kept (ties:
 * lower index first, topk.ts `rankBandMask` on the row); the rest are zeroed in place. One workgroup per row does a
 * 4-pass 8-bit radix select of ranks from and to - 1 in workgroup memory, then orders the ties with one scan
 * (shaders/row_band_mask.wgsl): 5 reads of the row and one write. On a CPU-emulated adapter, where each of that
 * kernel's workgroup barriers costs far more than the arithmetic, one thread per row does the same select serially
 * (shaders/row_band_serial.wgsl). CPU twin of both: reference/select.ts `rowBandMaskRef`.
 */
import { ConfigError } from '../errors';
import type { RankBand } from './bandMask';
import type { GpuContext } from './device';
import { WORKGROUP_SIZE } from './constants';
import { workgroupGrid } from './dispatch';
import { specialisedPipeline } from './kernels';
import { bind, launch } from './launch';

/** The shape of a stack of task tensors viewed row-wise: [tasks, rows x n]. */
export interface RowStackShape {
  tasks: number;
  rows: number;
  n: number;
}

/** Rows shorter than this use row_band_serial's 4-bit digits. */
const SHORT_ROW = 256;

/** The two kernels: a workgroup per row (GPUs), or a thread per row (CPU-emulated adapters). */
export type RowBandKernel = 'row_band_mask' | 'row_band_serial';

/**
 * Zeroes, in place, every entry of each length-n row of `stack` whose magnitude rank in its row is outside `band`.
 * `kernel` defaults to the adapter's (see the file comment).
 */
export function rowBandMask(ctx: GpuContext, stack: GPUBuffer, shape: RowStackShape, band: RankBand, label = 'rowBandMask', kernel?: RowBandKernel): void {
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
  const name = kernel ?? (ctx.info.isSoftware ? 'row_band_serial' : 'row_band_mask');
  const serial = name === 'row_band_serial';
  const grid = workgroupGrid(serial ? Math.ceil(totalRows / WORKGROUP_SIZE) : totalRows, ctx.info.limits.maxComputeWorkgroupsPerDimension);
  // Short rows take 4-bit digits (see row_band_serial.wgsl).
  const pipeline = serial ? specialisedPipeline(ctx, name, { RADIX_BITS: n < SHORT_ROW ? 4 : 8 }) : undefined;
  launch(ctx, name, [n, totalRows, from, Math.max(from, to)], [binding], grid, pipeline ? { pipeline } : {});
}
