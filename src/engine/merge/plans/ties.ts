/**
 * TIES on the GPU (reference: reference/methods/ties.ts), as a stage other plans reuse (`then: ties`).
 * - scope "global": per task, the threshold is the value at descending rank int(D*k) of |tau| over the whole model
 *   (D elements), and the majority sign is the sign of the count of columns electing +1 minus those electing -1.
 *   Both come from one scan of the raw models (tiesFast.ts); where that cannot settle them (a sample's bracket missed,
 *   a `pre` transform, models in mixed dtypes), an exact select finds the thresholds in 2 streaming passes over the
 *   task vectors (hostSelect.ts: MagnitudeSelect, or the host's count on a CPU-emulated adapter) and a third adds up
 *   the elected signs. The output pass trims, elects and merges in one kernel per chunk: ties_output on the raw inputs
 *   when nothing needs the task-vector stack (GpuPlan.fused), else ties_merge; after DARE's drop (a `pre` with a
 *   fusedDrop) ties_output applies the drop too. Where ties_output writes every tensor, the exact select's third pass
 *   is not made either: the kernel tallies the signs itself from a provisional +1 (see redo).
 * - scope "tensor": per tensor, exactly int(k*numel) entries per task by magnitude (lower index wins ties), selected
 *   with 2 passes over that tensor before its output; zero sums elect +1.
 * A `pre` transform (DARE's drop) is applied to every stack before it is trimmed, in every pass.
 */
import { disjointMerge, tiesMerge } from '../../gpu/mergeKernels';
import { SignTally } from '../../gpu/mergeReductions';
import { combine } from '../../gpu/kernels';
import type { DisjointMerge } from '../../reference/methods/signElect';
import type { AlignedTensor } from '../align';
import { selectTaskRanks, TensorBand } from './hostSelect';
import { afterTransform, type FusedSpec, type GpuPlan, type PlanContext, type StackTransform } from './plan';
import { tiesFastApplies, tiesStatsFast, type TiesStats } from './tiesFast';
import { RawChunkCache, type Chunk } from '../stream';
import { stackCopy, taskSegments } from './util';
import { TiesOutputKernel } from '../../gpu/tiesFused';

export interface TiesSettings {
  k: number;
  merge: DisjointMerge;
  scope: 'global' | 'tensor';
}

/** Reads TIES settings from a method's parameters (`kParam` names the kept fraction: `k`, or `ties_k` in Consensus). */
export function tiesSettingsOf(params: PlanContext['params'], kParam = 'k'): TiesSettings {
  return { k: params[kParam] as number, merge: params.merge as DisjointMerge, scope: params.scope as 'global' | 'tensor' };
}

/** The TIES trim / elect / merge stage. */
export class TiesStage {
  /** Per-task threshold key (|x| bits) for scope global; 0 keeps everything. */
  private thresholds: Uint32Array | null = null;
  private majority: -1 | 0 | 1 = 0;
  /** False while `majority` is only estimated (the fused output pass settles it). */
  private majorityExact = true;
  /** Raw chunks the one-pass statistics kept on the GPU for the fused output pass. */
  private kept: RawChunkCache | null = null;
  private band: TensorBand | null = null;
  /** Where PlanContext.memo keeps these statistics (null with a `pre` that names no settings). */
  private readonly memoKey: string | null;

  /**
   * `fused`: the owner merges with `fusedKernel` when the run allows it (TIES itself, and DARE, whose drop the kernel
   * applies); stages inside other plans (Consensus, LiNeS) write through `contributions`, so they need the exact
   * majority sign up front.
   */
  constructor(
    private readonly s: TiesSettings,
    private readonly pre?: StackTransform,
    private readonly fused = false,
  ) {
    const after = afterTransform(pre);
    this.memoKey = after === null || s.scope !== 'global' ? null : `ties: global thresholds and majority sign at k = ${s.k}${after}`;
  }

  /**
   * Global thresholds and majority sign (nothing to do for scope "tensor"). They depend on the models, k and `pre`'s
   * settings alone: taken from PlanContext.memo when an earlier merge put them there (with an exact majority sign where
   * this run needs one), and put there once computed.
   */
  async prepare(p: PlanContext): Promise<void> {
    if (this.s.scope !== 'global') return;
    const known = this.memoKey ? (p.memo?.get(this.memoKey) as TiesStats | undefined) : undefined;
    // Only a fused output pass settles an estimated sign itself (see redo).
    if (known && (known.majorityExact || (this.fusable() && p.fusedOutput))) {
      this.thresholds = known.thresholds;
      this.majority = known.majority;
      this.majorityExact = known.majorityExact;
      return;
    }
    await this.compute(p);
    this.remember(p);
  }

  /** Puts the statistics as they stand into PlanContext.memo (where they have a key). */
  private remember(p: PlanContext): void {
    if (this.memoKey) p.memo?.set(this.memoKey, { thresholds: this.thresholds!, majority: this.majority, majorityExact: this.majorityExact } satisfies TiesStats, this.thresholds!.byteLength);
  }

  private async compute(p: PlanContext): Promise<void> {
    if (!this.pre && tiesFastApplies(p)) {
      p.phase('TIES statistics');
      // A fused output pass tallies the signs itself, so it needs the majority only for tied columns (see redo); it
      // also takes the raw chunks the scan leaves on the GPU (as many as the stream's cache allows).
      const fusedOutput = this.fused && p.fusedOutput;
      this.kept = fusedOutput ? new RawChunkCache(p.ctx, p.stream.options.cacheBytes) : null;
      const fast = await tiesStatsFast(p, this.s.k, !fusedOutput, this.kept);
      if (!fast) this.dropKept();
      if (fast) {
        this.thresholds = fast.thresholds;
        this.majority = fast.majority;
        this.majorityExact = fast.majorityExact;
        return;
      }
    }
    const total = p.stream.tensors.reduce((n, t) => n + t.numel, 0);
    const rank = Math.trunc(total * this.s.k);
    this.thresholds = new Uint32Array(p.tasks);
    if (rank < total) {
      p.phase('TIES threshold');
      const ranks = taskSegments(p.tasks).map(() => [rank]);
      (await selectTaskRanks(p, 'ties global threshold', ranks, null, this.pre)).forEach((r, t) => (this.thresholds![t] = r.bits[0]!));
    }
    // A fused output pass tallies the signs itself (see redo): it starts from a provisional +1, where it writes every
    // tensor (tiesFastApplies: the kernel takes them all; a tensor on the stack path would keep the provisional sign).
    if (this.fusable() && p.fusedOutput && tiesFastApplies(p)) {
      this.majority = 1;
      this.majorityExact = false;
      return;
    }
    p.phase('TIES majority sign');
    const tally = new SignTally(p.ctx, this.thresholds);
    try {
      // Read-only on the stack: a copy is needed only for `pre` to change.
      await p.stream.forEach((c) => {
        const stack = this.pre ? stackCopy(p, c) : c.stack;
        this.pre?.(p, c, stack);
        tally.add(stack, p.tasks, c.count);
      });
      this.majority = Math.sign(await tally.total()) as -1 | 0 | 1;
    } finally {
      tally.destroy();
    }
  }

  /**
   * The fused output pass of scope global, without `pre` or after DARE's drop (after `prepare`), each tensor's
   * contributions combined with `coeffs` (TIES's lambda, LiNeS's ramp), or null: ties_output, its redo with the exact
   * majority sign, and the raw chunks the one-pass statistics kept.
   */
  fusedSpec(p: PlanContext, coeffs: (t: AlignedTensor) => Float32Array): FusedSpec | null {
    let kernel = this.fusedKernel(p);
    if (!kernel) return null;
    return {
      kernel,
      coeffs,
      redo: () => (kernel = this.redo(p, kernel!)),
      ...(this.kept ? { cache: this.kept } : {}),
    };
  }

  /** Whether the owner merges with ties_output when the run allows it: scope global, no `pre` or DARE's drop. */
  private fusable(): boolean {
    return this.fused && this.s.scope === 'global' && (!this.pre || !!this.pre.fusedDrop);
  }

  /**
   * The fused output kernel of scope global (after `prepare`), or null: without `pre`, or with DARE's drop, which
   * ties_output applies itself (StackTransform.fusedDrop).
   */
  private fusedKernel(p: PlanContext): TiesOutputKernel | null {
    if (!this.fusable() || !this.thresholds) return null;
    const drop = this.pre?.fusedDrop;
    return new TiesOutputKernel(p.ctx, { thresholds: this.thresholds, majority: this.majority, merge: this.s.merge, ...(drop ? { drop } : {}) });
  }

  /**
   * After a fused output pass with `ran`: its tally gives the exact majority sign. The output stands unless the sign
   * was estimated, differs, and decides some tied column (zero sum, a delta that may depend on the sign); then a kernel with the
   * exact sign, for the chunks with tied columns (runMerge holds the output for that) or for a second pass.
   */
  redo(p: PlanContext, ran: TiesOutputKernel): TiesOutputKernel | null {
    if (this.majorityExact) return null;
    const exact = Math.sign(ran.tally.positive - ran.tally.negative) as -1 | 0 | 1;
    const stands = ran.tally.tied === 0 || exact === this.majority;
    this.majority = exact;
    this.majorityExact = true;
    // The memo gets the exact sign too (the tally covered every column), so later merges need no redo.
    this.remember(p);
    return stands ? null : this.fusedKernel(p);
  }

  /** Scope "tensor": selects the exact per-tensor count before the tensor's output chunks. */
  async beginTensor(p: PlanContext, t: AlignedTensor): Promise<void> {
    if (this.s.scope !== 'tensor') return;
    this.band?.destroy();
    this.band = null;
    if (this.s.k >= 1) return;
    const keep = Math.trunc(this.s.k * t.numel);
    const bands = taskSegments(p.tasks).map(() => ({ from: 0, to: keep }));
    this.band = await TensorBand.select(p, `ties ${t.name}`, t, bands, this.pre);
  }

  /** Turns `stack` (the chunk's task vectors or a copy of them) into TIES contributions, in place (after `pre`). */
  async contributions(p: PlanContext, c: Chunk, stack: GPUBuffer = c.stack): Promise<void> {
    this.pre?.(p, c, stack);
    if (this.s.scope === 'global') {
      tiesMerge(p.ctx, stack, p.tasks, c.count, this.thresholds!, this.s.merge, { rule: 'majority', majority: this.majority });
    } else {
      if (this.band) await this.band.apply(p, c, stack);
      disjointMerge(p.ctx, stack, p.tasks, c.count, this.s.merge, { rule: 'plus' });
    }
  }

  private dropKept(): void {
    this.kept?.destroy();
    this.kept = null;
  }

  destroy(): void {
    this.band?.destroy();
    this.band = null;
    this.dropKept();
  }
}

/** TIES-Merging: theta0 + lambda * disjoint merge of the trimmed task vectors. */
export function tiesPlan(): GpuPlan {
  let stage: TiesStage | null = null;
  return {
    granularity: 'element',
    outputs: () => 1,
    scaleParams: ['lambda'],
    // Scope "tensor" (global has ties_output): the trimmed entries that agree with the elected sign (sum), or the
    // largest of them (max), the rest +0.
    masked: (p) => (p.params.scope !== 'tensor' || p.params.merge === 'mean' ? null : { scale: 1, coeffs: (t) => p.coeffs('lambda', t.name) }),
    async prepare(p) {
      stage = new TiesStage(tiesSettingsOf(p.params), undefined, true);
      await stage.prepare(p);
    },
    beginTensor: (p, t) => stage!.beginTensor(p, t),
    fused: (p) => stage!.fusedSpec(p, (t) => p.coeffs('lambda', t.name)),
    async emit(p, c, out) {
      await stage!.contributions(p, c);
      combine(p.ctx, c.stack, p.tasks, c.count, p.coeffs('lambda', c.tensor.name), out[0]!);
      return { contributions: c.stack };
    },
    destroy: () => stage?.destroy(),
  };
}
