/**
 * The entries a merge's contributions keep, per element one word (bit t: model t's entry is kept), as keep_bits
 * reads them from the stack path's contributions. For the methods whose contributions are the task vectors masked
 * and scaled by one number (GpuPlan.masked: Breadcrumbs, TIES with scope "tensor" (merge "sum" or "max"), DARE then
 * TIES, Consensus then TIES, LiNeS on those), a merge keeps them in PlanContext.memo under the method's settings except
 * those that only scale the output (lambda), and a later merge that differs only in those writes through linear_merge's
 * MASKED pipeline straight from the raw inputs: one kernel per chunk instead of the stack's selections, trims and
 * elections (runMerge).
 */
import type { KeptEntries } from '../gpu/linearMerge';
import type { AlignedTensor } from './align';

/**
 * The most bytes of words a merge without a memo to keep them in selects up front (GpuPlan.selectKept): what a
 * default PlanMemo would keep (half its 64 MiB), 8M weights.
 */
export const SELECT_KEPT_BYTES = 32 * 2 ** 20;

/** A chunk of a tensor (the stack path's) and its words. */
interface Piece {
  start: number;
  words: Uint32Array;
}

export class KeptBits {
  private readonly tensors = new Map<string, Piece[]>();
  private elements = 0;

  /** Records the words of elements [start, start + words.length) of tensor `name`. */
  add(name: string, start: number, words: Uint32Array): void {
    let pieces = this.tensors.get(name);
    if (!pieces) this.tensors.set(name, (pieces = []));
    pieces.push({ start, words });
    pieces.sort((a, b) => a.start - b.start);
    this.elements += words.length;
  }

  /** Whether every element of `tensors` is recorded. */
  covers(tensors: readonly AlignedTensor[]): boolean {
    return tensors.every((t) => {
      let next = 0;
      for (const p of this.tensors.get(t.name) ?? []) {
        if (p.start > next) return false;
        next = Math.max(next, p.start + p.words.length);
      }
      return next >= t.numel;
    });
  }

  /** The words of elements [start, start + count) of tensor `name` (recorded: see covers). */
  words(name: string, start: number, count: number): Uint32Array {
    const out = new Uint32Array(count);
    for (const p of this.tensors.get(name) ?? []) {
      const from = Math.max(start, p.start);
      const to = Math.min(start + count, p.start + p.words.length);
      if (from < to) out.set(p.words.subarray(from - p.start, to - p.start), from - start);
    }
    return out;
  }

  /** Bytes the words take. */
  get bytes(): number {
    return this.elements * 4;
  }

  /** The entries for linear_merge's MASKED pipeline, kept ones scaled by `scale`. */
  entries(scale: number): KeptEntries {
    return { words: (name, start, count) => this.words(name, start, count), scale };
  }
}
