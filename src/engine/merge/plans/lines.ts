/**
 * LiNeS on the GPU (reference: reference/methods/lines.ts): the `then` merge at scale 1 (Task Arithmetic, TIES, or
 * Consensus on Task Arithmetic), with tensor `name` of task t scaled by alpha + beta * depth(name). alpha "auto" =
 * (||sum_t tau_t||_1 / ||tau_MTL||_1) / T, from one extra pass over the model. Without interference metrics the
 * output is one fused kernel per chunk with those scales as its per-task coefficients: linear_merge (then Task
 * Arithmetic), or global TIES's ties_output once alpha is known (the alpha pass takes TIES's contributions through
 * the stack, which needs the exact majority sign up front; a later merge finds alpha in PlanContext.memo).
 */
import { combine } from '../../gpu/kernels';
import { LinearMergeKernel } from '../../gpu/linearMerge';
import { rowStats } from '../../gpu/mergeReductions';
import { coefficientAt, depthOf, type CoefficientSetting } from '../../methods/scaling';
import type { Chunk } from '../stream';
import { ConsensusStage } from './consensus';
import { memoized, paramsKey, type GpuPlan, type PlanContext } from './plan';
import { TiesStage, tiesSettingsOf } from './ties';
import { ones, stackCopy } from './util';

type Then = 'task_arithmetic' | 'ties' | 'consensus';

export function linesPlan(): GpuPlan {
  let ties: TiesStage | null = null;
  let consensus: ConsensusStage | null = null;
  let autoAlpha = 0;

  /** The `then` contributions of a chunk: the stack itself (TA), or a buffer the stages fill. */
  async function parts(p: PlanContext, c: Chunk, inPlace: boolean): Promise<GPUBuffer> {
    if (consensus) return (await consensus.contributions(p, c)).contributions;
    const stack = inPlace ? c.stack : stackCopy(p, c);
    if (ties) await ties.contributions(p, c, stack);
    return stack;
  }

  /** Per-task scale of tensor `name`: alpha + beta * depth(name). */
  function coefficients(p: PlanContext, name: string): Float32Array {
    const site = { tensor: name, layers: p.layers };
    const depth = depthOf(name, p.layers);
    const alpha = p.params.alpha;
    const betaDefault = p.spec.params.find((x) => x.name === 'beta')!.default as number;
    return Float32Array.from({ length: p.tasks }, (_, task) => {
      const a = alpha === 'auto' ? autoAlpha : coefficientAt(alpha as CoefficientSetting, { ...site, task }, autoAlpha);
      return a + coefficientAt(p.params.beta as CoefficientSetting, { ...site, task }, betaDefault) * depth;
    });
  }

  return {
    granularity: 'element',
    outputs: () => 1,
    // The `then` merge's contributions are at scale 1: the ramp only scales them.
    scaleParams: ['alpha', 'beta'],
    // Then TIES with scope "tensor" (sum or max) or Consensus: masked task vectors (then Task Arithmetic and global
    // TIES have their own fused kernels).
    masked: (p) => {
      const { then, merge, scope } = p.params;
      return then === 'consensus' || (then === 'ties' && scope === 'tensor' && merge !== 'mean') ? { scale: 1, coeffs: (t) => coefficients(p, t.name) } : null;
    },
    async prepare(p) {
      const then = p.params.then as Then;
      // alpha "auto" needs the L1 mass of the summed task vectors and of tau_MTL over the whole model: a function of
      // the models and of every parameter but the ramp's (alpha, beta), so a beta slider finds it in the memo.
      const alphaKey = paramsKey('lines: auto alpha of', p.params, ['alpha', 'beta']);
      const alphaPass = p.params.alpha === 'auto' && then !== 'task_arithmetic' && p.memo?.get(alphaKey) === undefined;
      // TIES may merge in its fused kernel unless this run's alpha pass needs its exact contributions first.
      if (then === 'ties') ties = new TiesStage(tiesSettingsOf(p.params), undefined, !alphaPass);
      if (then === 'consensus') consensus = new ConsensusStage({ k: p.params.consensus_k as number, then: 'task_arithmetic', tiesKParam: 'k' });
      await ties?.prepare(p);
      await consensus?.prepare(p);
      autoAlpha = 1 / p.tasks;
      if (p.params.alpha !== 'auto' || then === 'task_arithmetic') return;
      autoAlpha = await memoized(p, alphaKey, async () => {
        p.phase('LiNeS alpha');
        let l1Sum = 0;
        let l1Mtl = 0;
        const sum = p.scratch('lines sum', p.stream.maxChunk);
        let tensor = '';
        await p.stream.forEach(async (c) => {
          combine(p.ctx, c.stack, p.tasks, c.count, ones(p.tasks), sum);
          l1Sum += (await rowStats(p.ctx, sum, 1, c.count))[0]!.sumAbs;
          if (ties && c.tensor.name !== tensor) await ties.beginTensor(p, c.tensor);
          tensor = c.tensor.name;
          combine(p.ctx, await parts(p, c, false), p.tasks, c.count, ones(p.tasks), sum);
          l1Mtl += (await rowStats(p.ctx, sum, 1, c.count))[0]!.sumAbs;
        });
        return l1Mtl === 0 ? 1 / p.tasks : l1Sum / l1Mtl / p.tasks;
      }, () => 8);
    },
    async beginTensor(p, t) {
      await ties?.beginTensor(p, t);
      await consensus?.beginTensor(p, t);
    },
    fused: (p) => (p.params.then === 'task_arithmetic' ? { kernel: new LinearMergeKernel(p.ctx), coeffs: (t) => coefficients(p, t.name) } : (ties?.fusedSpec(p, (t) => coefficients(p, t.name)) ?? null)),
    async emit(p, c, out) {
      const stack = await parts(p, c, true);
      combine(p.ctx, stack, p.tasks, c.count, coefficients(p, c.tensor.name), out[0]!);
      return { contributions: stack };
    },
    destroy() {
      ties?.destroy();
      consensus?.destroy();
    },
  };
}
