/**
 * Model Breadcrumbs on the GPU (reference: reference/methods/breadcrumbs.ts): keep a middle band of magnitudes.
 * scope "row": in each row (last dimension, n entries) the descending ranks [int(n*gamma), int(n*gamma) + int(n*density));
 * scope "tensor" (mergekit): over the tensor, ranks [top, N - bottom) with target = int(density*N), top = int(gamma*N),
 * bottom = N - target - top (top shrinks when bottom would be negative); both break ties by lower index.
 */
import type { RankBand } from '../../gpu/bandMask';
import { combine } from '../../gpu/kernels';
import { rowBandMask } from '../../gpu/rowBand';
import type { AlignedTensor } from '../align';
import { hostTaskVectorStack } from '../stream';
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
    async emit(p, c, out) {
      if (scopeOf(p) === 'row') {
        if (c.tensor.shape.length > 0) {
          const n = c.rowLength;
          const from = Math.trunc(n * (p.params.gamma as number));
          const to = from + Math.trunc(n * (p.params.density as number));
          if (p.ctx.info.isSoftware) {
            // A CPU-emulated adapter selects on these same cores far slower than the host does (rowBandHost.ts): the
            // host forms the chunk's task vectors as decode_stack does, masks them and writes them over the stack.
            // Which entries the band keeps depends on the models, n, from and to alone: kept in the memo as one bit
            // per entry (where they fit: memoFits), so a lambda move applies the bits instead of selecting.
            const stack = await hostTaskVectorStack(p.source, c.tensor, c.start, c.count, p.stream.options.onRead);
            const key = `breadcrumbs: kept bits of rows [${from}, ${to}) of ${n} in ${c.tensor.name}@${c.start}`;
            const kept = p.memo?.get(key) as Uint32Array | undefined;
            if (kept) applyKeptBits(stack, kept);
            else {
              rowBandMaskHost(stack, n, from, to);
              if (memoFits(p)) {
                const bits = keptBits(stack);
                p.memo!.set(key, bits, bits.byteLength);
              }
            }
            p.ctx.device.queue.writeBuffer(c.stack, 0, stack);
          } else {
            // The stack is [T, count]: as T * (count / n) rows of n entries each.
            rowBandMask(p.ctx, c.stack, { tasks: p.tasks, rows: c.count / n, n }, { from, to }, 'breadcrumbs rows');
          }
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
