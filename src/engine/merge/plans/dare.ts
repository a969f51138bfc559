/**
 * DARE on the GPU (reference: reference/methods/dare.ts): every task vector loses each entry with probability p
 * (counter-based RNG keyed by seed, task and tensor name, so masks are identical on CPU and GPU and across chunkings),
 * kept entries are rescaled by 1/(1-p), then Task Arithmetic or TIES (whose trim still applies after the drop).
 */
import { combine } from '../../gpu/kernels';
import { LinearMergeKernel, type DareTensorDrop } from '../../gpu/linearMerge';
import { dareDrop, type DareChunk } from '../../gpu/mergeKernels';
import { dareDropRef } from '../../reference/mergeKernels';
import { isLinearWeight } from '../../reference/linearWeights';
import { rngKey, stringId } from '../../rng';
import type { AlignedTensor } from '../align';
import type { Chunk } from '../stream';
import type { GpuPlan, PlanContext, StackTransform } from './plan';
import { TiesStage, tiesSettingsOf } from './ties';

/** The factor kept entries are multiplied by: 1 / (1 - p) with `rescale`, else 1. */
const dropScale = (params: PlanContext['params']) => (params.rescale ? 1 / (1 - (params.p as number)) : 1);

/**
 * Tensor `name`'s drop: seed (model t's RNG key is rngKey(seed, t, stringId(name))), rate and scale; null where
 * `linear_only` leaves the tensor alone.
 */
function tensorDrop(params: PlanContext['params'], name: string, shape: readonly number[]): DareTensorDrop | null {
  if (params.linear_only && !isLinearWeight(name, shape)) return null;
  return { seed: params.seed as number, p: params.p as number, scale: dropScale(params) };
}

/**
 * The drop as a stack transform (a no-op on tensors `linear_only` leaves alone). Seeded, so a function of the settings
 * it reads: its memoKey names them, and TIES's statistics after it are kept across merges that change only lambda.
 */
export function dareTransform(params: PlanContext['params']): StackTransform {
  // Tensor t's drop as dare_drop takes it (each model's RNG key), or null where it is left alone.
  const chunkDrop = (tasks: number, t: AlignedTensor, start: number): DareChunk | null => {
    const d = tensorDrop(params, t.name, t.shape);
    if (!d) return null;
    const id = stringId(t.name);
    return { keys: Uint32Array.from({ length: tasks }, (_, m) => rngKey(d.seed, m, id)), p: d.p, scale: d.scale, elementOffset: start };
  };
  const drop = (ctx: PlanContext, c: Chunk, stack: GPUBuffer) => {
    const d = chunkDrop(ctx.tasks, c.tensor, c.start);
    if (d) dareDrop(ctx.ctx, stack, ctx.tasks, c.count, d);
  };
  // dare_drop's twin: the same decisions and products, bit for bit (tests/gpu/mergeKernels.test.ts).
  const host = (ctx: PlanContext, t: AlignedTensor, start: number, values: Float32Array) => {
    const d = chunkDrop(ctx.tasks, t, start);
    if (d) dareDropRef(values, ctx.tasks, values.length / ctx.tasks, d);
  };
  const { p, seed, rescale, linear_only } = params;
  const fusedDrop = (name: string, shape: readonly number[]) => tensorDrop(params, name, shape);
  return Object.assign(drop, { memoKey: `DARE's drop ${JSON.stringify({ p, seed, rescale, linear_only })}`, host, fusedDrop });
}

export function darePlan(): GpuPlan {
  let drop: StackTransform | null = null;
  let ties: TiesStage | null = null;
  return {
    granularity: 'element',
    outputs: () => 1,
    scaleParams: ['lambda'],
    // Then TIES (sum or max): the entries the drop and the trim keep and that agree, rescaled; with linear_only and a
    // rescale the scale differs between tensors, which one launch cannot take.
    masked(p) {
      const { then, merge, linear_only } = p.params;
      const scale = dropScale(p.params);
      if (then !== 'ties' || merge === 'mean' || (linear_only && Math.fround(scale) !== 1)) return null;
      return { scale, coeffs: (t) => p.coeffs('lambda', t.name) };
    },
    async prepare(p) {
      drop = dareTransform(p.params);
      if (p.params.then === 'ties') {
        // Global TIES's fused output applies the drop itself (ties_output with DROP).
        ties = new TiesStage(tiesSettingsOf(p.params), drop, true);
        await ties.prepare(p);
      }
    },
    beginTensor: async (p, t) => ties?.beginTensor(p, t),
    // Then Task Arithmetic: one fused kernel per chunk (linear_merge with its drop; a tensor left alone merges plainly;
    // small tensors share a launch, each keyed by its own name). Then global TIES: ties_output with the drop.
    fused: (p) =>
      ties
        ? ties.fusedSpec(p, (t) => p.coeffs('lambda', t.name))
        : {
            kernel: new LinearMergeKernel(p.ctx, 'linear_merge', (name, shape) => tensorDrop(p.params, name, shape)),
            coeffs: (t) => p.coeffs('lambda', t.name),
          },
    async emit(p, c, out) {
      if (ties) await ties.contributions(p, c);
      else drop!(p, c, c.stack);
      combine(p.ctx, c.stack, p.tasks, c.count, p.coeffs('lambda', c.tensor.name), out[0]!);
      return { contributions: c.stack };
    },
    destroy: () => ties?.destroy(),
  };
}
