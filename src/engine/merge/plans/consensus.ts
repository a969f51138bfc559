/**
 * TALL masks and Consensus Merging on the GPU (reference: reference/methods/masks.ts, consensus.ts, tallMasks.ts).
 * m_t = |tau_t| > mask_lambda_t * |tau_MTL - tau_t| (strict), where tau_MTL is the multi-task vector at scale 1
 * (the plain sum for TALL; the `then` merge for Consensus). count = sum_t m_t.
 * - Consensus: the `then` contributions where count >= k, scaled by lambda. Then Task Arithmetic without interference
 *   metrics: one fused kernel per chunk of raw inputs (consensus_output), as the stack's kernels compute it.
 * - TALL: one model per task, theta0 + m_t * tau_MTL. Without interference metrics, all T models of a chunk come from
 *   one fused kernel (tall_output) and one readback, where the stack path runs combine, tall_mask and T bitmask_apply
 *   and pack_add kernels with T readbacks per chunk.
 */
import { ConfigError } from '../../errors';
import { combine } from '../../gpu/kernels';
import { LinearMergeKernel } from '../../gpu/linearMerge';
import { BITFIELD_ROWS, bitmaskApply, countMask, tallMask } from '../../gpu/mergeKernels';
import type { AlignedTensor } from '../align';
import type { Chunk } from '../stream';
import type { GpuPlan, PlanContext } from './plan';
import { TiesStage, tiesSettingsOf } from './ties';
import { ones, stackCopy } from './util';

/** Consensus contributions: the `then` merge (Task Arithmetic or TIES) restricted to weights used by >= k tasks. */
export class ConsensusStage {
  private ties: TiesStage | null = null;

  constructor(private readonly opts: { k: number; then: 'task_arithmetic' | 'ties'; tiesKParam: string }) {}

  async prepare(p: PlanContext): Promise<void> {
    if (this.opts.then === 'ties') {
      this.ties = new TiesStage(tiesSettingsOf(p.params, this.opts.tiesKParam));
      await this.ties.prepare(p);
    }
  }

  async beginTensor(p: PlanContext, t: AlignedTensor): Promise<void> {
    await this.ties?.beginTensor(p, t);
  }

  /** Writes the contributions to a scratch stack (the chunk's stack keeps the task vectors) and returns it with the usage counts. */
  async contributions(p: PlanContext, c: Chunk): Promise<{ contributions: GPUBuffer; usage: GPUBuffer }> {
    const parts = stackCopy(p, c, 'consensus contributions');
    if (this.ties) await this.ties.contributions(p, c, parts);
    const mtl = p.scratch('tau_MTL', p.stream.maxChunk);
    combine(p.ctx, parts, p.tasks, c.count, ones(p.tasks), mtl);
    const usage = p.scratch('usage counts', p.stream.maxChunk);
    tallMask(p.ctx, c.stack, p.tasks, c.count, mtl, p.coeffs('mask_lambda', c.tensor.name), { counts: usage });
    countMask(p.ctx, parts, p.tasks, c.count, usage, this.opts.k);
    return { contributions: parts, usage };
  }

  destroy(): void {
    this.ties?.destroy();
  }
}

export function consensusPlan(): GpuPlan {
  let stage: ConsensusStage | null = null;
  return {
    granularity: 'element',
    outputs: () => 1,
    scaleParams: ['lambda'],
    // Then TIES (sum or max): its contributions where enough tasks use the weight, the rest +0 (then Task Arithmetic
    // has its own fused kernel).
    masked: (p) => (p.params.then !== 'ties' || p.params.merge === 'mean' ? null : { scale: 1, coeffs: (t) => p.coeffs('lambda', t.name) }),
    async prepare(p) {
      stage = new ConsensusStage({ k: p.params.k as number, then: p.params.then as 'task_arithmetic' | 'ties', tiesKParam: 'ties_k' });
      await stage.prepare(p);
    },
    beginTensor: (p, t) => stage!.beginTensor(p, t),
    fused: (p) =>
      p.params.then === 'task_arithmetic'
        ? {
            kernel: new LinearMergeKernel(p.ctx, 'consensus_output', undefined, (name) => ({ lambdas: p.coeffs('mask_lambda', name), k: p.params.k as number })),
            // A non-finite coefficient or mask lambda goes through the stack (the kernel's zeroed columns assume finite).
            coeffs: (t) => {
              const c = p.coeffs('lambda', t.name);
              return c.every(Number.isFinite) && p.coeffs('mask_lambda', t.name).every(Number.isFinite) ? c : null;
            },
          }
        : null,
    async emit(p, c, out) {
      const info = await stage!.contributions(p, c);
      combine(p.ctx, info.contributions, p.tasks, c.count, p.coeffs('lambda', c.tensor.name), out[0]!);
      return info;
    },
    destroy: () => stage?.destroy(),
  };
}

export function tallMasksPlan(): GpuPlan {
  return {
    granularity: 'element',
    outputs: (tasks) => tasks,
    async prepare(p) {
      if (p.tasks > BITFIELD_ROWS) throw new ConfigError('models', `tall_masks handles at most ${BITFIELD_ROWS} fine-tuned models, got ${p.tasks}`);
    },
    fused: (p) => ({
      kernel: new LinearMergeKernel(p.ctx, 'tall_output', undefined, (name) => ({ lambdas: p.coeffs('mask_lambda', name), k: 0 })),
      // The kernel reads no coefficients (mtl at scale 1); a non-finite mask lambda goes through the stack, as for Consensus.
      coeffs: (t) => (p.coeffs('mask_lambda', t.name).every(Number.isFinite) ? ones(p.tasks) : null),
    }),
    async emit(p, c, out) {
      const mtl = p.scratch('tau_MTL', p.stream.maxChunk);
      combine(p.ctx, c.stack, p.tasks, c.count, ones(p.tasks), mtl);
      const usage = p.scratch('usage counts', p.stream.maxChunk);
      const bits = p.scratch('mask bits', p.stream.maxChunk);
      tallMask(p.ctx, c.stack, p.tasks, c.count, mtl, p.coeffs('mask_lambda', c.tensor.name), { counts: usage, bitfield: bits });
      for (let t = 0; t < p.tasks; t++) bitmaskApply(p.ctx, bits, t, mtl, c.count, out[t]!);
      return { usage };
    },
  };
}
