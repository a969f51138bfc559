/**
 * Model Breadcrumbs on the GPU (reference: reference/methods/breadcrumbs.ts): keep a middle band of magnitudes.
 * scope "row": in each row (last dimension, n entries) the descending ranks [int(n*gamma), int(n*gamma) + int(n*density));
 * scope "tensor" (mergekit): over the tensor, ranks [top, N - bottom) with target = int(density*N), top = int(gamma*N),
 * bottom = N - target - top (top shrinks when bottom would be negative); both break ties by lower index.
 */
import { throwIfAborted } from '../../errors';
import type { RankBand } from '../../gpu/bandMask';
import { combine } from '../../gpu/kernels';
import { rowBandMask } from '../../gpu/rowBand';
import { keepBitsRef } from '../../reference/mergeKernels';
import type { AlignedTensor } from '../align';
import { KeptBits } from '../keptBits';
import { chunkRanges, hostTaskVectorStack, rowLengthOf } from '../stream';
import { TensorBand } from './hostSelect';
import type { GpuPlan, PlanContext } from './plan';
import { applyKeptBits, keptBits, rowBandMaskHost } from './rowBandHost';
import { taskSegments } from './util';

/** mergekit's band of a flattened tensor of `total` entries, or null for "keep everything". */
export function tensorBand(total: number, density: number, gamma: number): RankBand | null {
  if (density >= 1) return null;
  const target = Math.trunc(density * total);
  let top = Math.trunc(gamma * total);
  let bottom = total - target - top;
  if (bottom < 0) {
    top += bottom;
    bottom = 0;
  }
  return { from: top, to: total - bottom };
}

/**
 * Whether the memo keeps the row bands' bits: when one band's bits for the whole model take at most half its room,
 * so that a merge finds all of them (where a memo that holds part of them evicts the rest as a merge fills it).
 */
const memoFits = (p: PlanContext) => p.memo !== null && p.memo.roomFor((p.tasks * p.stream.tensors.reduce((n, t) => n + t.numel, 0)) / 8);

/** The band of ranks [from, to) kept in each row of n entries (scope "row"). */
function rowBand(p: PlanContext, n: number): { from: number; to: number } {
  const from = Math.trunc(n * (p.params.gamma as number));
  return { from, to: from + Math.trunc(n * (p.params.density as number)) };
}

/**
 * Elements [start, start + count) of tensor `t` (whole rows of n) as task vectors [T, count] on the host, each row's
 * band kept and the rest +0 (a 0-d tensor unmasked), as decode_stack and row_band_mask give them. A CPU-emulated
 * adapter selects on these same cores far slower than the host does (rowBandHost.ts). Which entries the band keeps
 * depends on the models, n, from and to alone: with `remember`, kept in the memo as one bit per entry (where they fit:
 * memoFits), so that a later merge through the stack applies the bits instead of selecting.
 */
async function hostBand(p: PlanContext, t: AlignedTensor, start: number, count: number, remember: boolean): Promise<Float32Array<ArrayBuffer>> {
  const stack = await hostTaskVectorStack(p.source, t, start, count, p.stream.options.onRead);
  if (t.shape.length === 0) return stack;
  const n = rowLengthOf(t);
  const { from, to } = rowBand(p, n);
  const key = `breadcrumbs: kept bits of rows [${from}, ${to}) of ${n} in ${t.name}@${start}`;
  const kept = p.memo?.get(key) as Uint32Array | undefined;
  if (kept) applyKeptBits(stack, kept);
  else {
    rowBandMaskHost(stack, n, from, to);
    if (remember && memoFits(p)) {
      const bits = keptBits(stack);
      p.memo!.set(key, bits, bits.byteLength);
    }
  }
  return stack;
}

export function breadcrumbsPlan(): GpuPlan {
  let band: TensorBand | null = null;
  const scopeOf = (p: PlanContext) => p.params.scope as 'row' | 'tensor';
  return {
    granularity: 'row',
    outputs: () => 1,
    scaleParams: ['lambda'],
    // The band's task vectors, the rest +0, whatever the scope.
    masked: (p) => ({ scale: 1, coeffs: (t) => p.coeffs('lambda', t.name) }),
    async beginTensor(p: PlanContext, t: AlignedTensor) {
      band?.destroy();
      band = null;
      if (scopeOf(p) !== 'tensor') return;
      const b = tensorBand(t.numel, p.params.density as number, p.params.gamma as number);
      if (!b) return;
      band = await TensorBand.select(p, `breadcrumbs ${t.name}`, t, taskSegments(p.tasks).map(() => b));
    },
    // On a CPU-emulated adapter, with scope "row": the host's bands of every chunk the stream would visit, as words
    // (which runMerge keeps in the memo in place of the row bits).
    async selectKept(p) {
      if (scopeOf(p) !== 'row' || !p.ctx.info.isSoftware) return null;
      p.phase('Breadcrumbs bands');
      const kept = new KeptBits();
      for (const t of p.stream.tensors) {
        for (const { start, count } of chunkRanges(t, 'row', p.chunkElements)) {
          throwIfAborted(p.source.signal);
          kept.add(t.name, start, keepBitsRef(await hostBand(p, t, start, count, false), p.tasks, count));
        }
      }
      return kept;
    },
    async emit(p, c, out) {
      if (scopeOf(p) === 'row') {
        // The host forms the chunk's banded task vectors (see hostBand) and writes them over the stack.
        if (p.ctx.info.isSoftware) p.ctx.device.queue.writeBuffer(c.stack, 0, await hostBand(p, c.tensor, c.start, c.count, true));
        else if (c.tensor.shape.length > 0) {
          // The stack is [T, count]: as T * (count / n) rows of n entries each.
          const n = c.rowLength;
          rowBandMask(p.ctx, c.stack, { tasks: p.tasks, rows: c.count / n, n }, rowBand(p, n), 'breadcrumbs rows');
        }
      } else if (band) {
        await band.apply(p, c, c.stack);
      }
      combine(p.ctx, c.stack, p.tasks, c.count, p.coeffs('lambda', c.tensor.name), out[0]!);
      return { contributions: c.stack };
    },
    destroy: () => band?.destroy(),
  };
}
