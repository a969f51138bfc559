/**
 * DARE on the GPU (reference: reference/methods/dare.ts): every task vector loses each entry with probability p
 * (counter-based RNG keyed by seed, task and tensor name, so masks are identical on CPU and GPU and across chunkings),
 * kept entries are rescaled by 1/(1-p), then Task Arithmetic or TIES (whose trim still applies after the drop).
 */
import { combine } from '../../gpu/kernels';
import { dareDrop } from '../../gpu/mergeKernels';
import { isLinearWeight } from '../../reference/linearWeights';
import { rngKey, stringId } from '../../rng';
import type { Chunk } from '../stream';
import type { GpuPlan, PlanContext } from './plan';
import { TiesStage, tiesSettingsOf, type StackTransform } from './ties';

/** The drop as a stack transform (a no-op on tensors `linear_only` leaves alone). */
export function dareTransform(params: PlanContext['params']): StackTransform {
  const p = params.p as number;
  const seed = params.seed as number;
  const scale = params.rescale ? 1 / (1 - p) : 1;
  return (ctx: PlanContext, c: Chunk, stack: GPUBuffer) => {
    if (params.linear_only && !isLinearWeight(c.tensor.name, c.tensor.shape)) return;
    const id = stringId(c.tensor.name);
    const keys = Uint32Array.from({ length: ctx.tasks }, (_, t) => rngKey(seed, t, id));
    dareDrop(ctx.ctx, stack, ctx.tasks, c.count, { keys, elementOffset: c.start, p, scale });
  };
}

export function darePlan(): GpuPlan {
  let drop: StackTransform | null = null;
  let ties: TiesStage | null = null;
  return {
    granularity: 'element',
    outputs: () => 1,
    async prepare(p) {
      drop = dareTransform(p.params);
      if (p.params.then === 'ties') {
        ties = new TiesStage(tiesSettingsOf(p.params), drop);
        await ties.prepare(p);
      }
    },
    beginTensor: async (p, t) => ties?.beginTensor(p, t),
    async emit(p, c, out) {
      if (ties) await ties.contributions(p, c);
      else drop!(p, c, c.stack);
      combine(p.ctx, c.stack, p.tasks, c.count, p.coeffs('lambda', c.tensor.name), out[0]!);
      return { contributions: c.stack };
    },
    destroy: () => ties?.destroy(),
  };
}
