/**
 * Exact magnitude selection per task (the k-th largest |tau| of each task over a tensor or the whole model: TIES's
 * thresholds, Breadcrumbs' per-tensor band, the top-k curve). On a GPU, MagnitudeSelect (gpu/select.ts) counts the
 * passes' histograms with select_histogram over the stream's stacks. On a CPU-emulated adapter the same passes
 * (gpu/selectPasses.ts) are counted here on the host, from the chunks' task vectors formed from the sources
 * (hostTaskVectorStack): there select_histogram's atomic increments into 65536-bin histograms, and each pass's clear
 * and readback of T of them per tensor, made a per-tensor TIES merge about 20x slower than a global one. The results
 * are the same (the select is exact).
 */
import { throwIfAborted } from '../../errors';
import { MagnitudeSelect } from '../../gpu/select';
import { checkChunk, SelectionRun, type MagnitudeSelection } from '../../gpu/selectPasses';
import type { AlignedTensor } from '../align';
import { chunkRanges, hostTaskVectorStack } from '../stream';
import type { PlanContext } from './plan';
import type { StackTransform } from './ties';
import { stackCopy, taskSegments } from './util';

const MAGNITUDE = 0x7fffffff;
/** The chunks' task vectors are kept from pass 1 to pass 2 up to this many bytes (else read again). */
const KEEP_BYTES = 256 * 2 ** 20;

/** MagnitudeSelect's passes counted on the host (same API, f32 arrays instead of GPU buffers). */
export class HostMagnitudeSelect extends SelectionRun {
  private hist: Float64Array | null = null;
  /** Per segment, this pass's slot of each key prefix (-1: not counted), or null when the segment is not counted. */
  private slotOf: (Int32Array | null)[] = [];

  /** Starts the next pass: zeroed histograms and each segment's prefix-to-slot map. */
  beginPass(): void {
    const plan = this.state.begin();
    this.hist = new Float64Array(plan.prefixes.length * plan.bins);
    const prefixes = 2 ** (31 - plan.prefixShift);
    this.slotOf = plan.slotCount.map((count, s) => {
      if (count === 0) return null;
      const map = new Int32Array(prefixes).fill(-1);
      for (let g = plan.firstSlot[s]!; g < plan.firstSlot[s]! + count; g++) map[plan.prefixes[g]!] = g;
      return map;
    });
  }

  /** Feeds one chunk: rows of `values` ([rows, numel]); row r belongs to segment segmentOfRow[r] (-1 = skip row). */
  feed(values: Float32Array, rows: number, numel: number, segmentOfRow: readonly number[]): void {
    const plan = this.state.feeding();
    const label = `${this.state.label} feed`;
    checkChunk(label, rows, numel, segmentOfRow, this.state.ranks.length);
    if (values.length < rows * numel) throw new RangeError(`${label}: ${values.length} values for ${rows} rows of ${numel}`);
    const bits = new Int32Array(values.buffer, values.byteOffset, rows * numel);
    const hist = this.hist!;
    const { shift, digitMask, prefixShift, bins } = plan;
    segmentOfRow.forEach((s, r) => {
      if (s < 0) return;
      this.state.addFed(s, numel);
      const map = this.slotOf[s];
      if (!map) return;
      const end = (r + 1) * numel;
      if (map.length === 1) {
        // One slot (pass 1): every element counts.
        const at = map[0]! * bins;
        for (let j = r * numel; j < end; j++) {
          const bin = at + (((bits[j]! & MAGNITUDE) >>> shift) & digitMask);
          hist[bin] = hist[bin]! + 1;
        }
        return;
      }
      for (let j = r * numel; j < end; j++) {
        const key = bits[j]! & MAGNITUDE;
        const slot = map[key >>> prefixShift]!;
        if (slot >= 0) {
          const bin = slot * bins + ((key >>> shift) & digitMask);
          hist[bin] = hist[bin]! + 1;
        }
      }
    });
  }

  /** Finishes a pass (narrows the prefixes, or resolves the ranks). */
  async endPass(): Promise<void> {
    const plan = this.state.end();
    const hist = this.hist!;
    this.hist = null;
    this.state.resolve(plan, hist);
  }
}

/**
 * Per task, the magnitudes at descending ranks `ranks[t]` of its task vector over `scope` (one tensor, or null: every
 * tensor the stream visits). On a CPU-emulated adapter counted on the host from the sources (unless `pre` changes the
 * stacks first); otherwise MagnitudeSelect over the stream's chunks, each stack after `pre` (on a copy).
 */
export async function selectTaskRanks(p: PlanContext, label: string, ranks: readonly (readonly number[])[], scope: AlignedTensor | null, pre?: StackTransform): Promise<MagnitudeSelection[]> {
  const segments = taskSegments(p.tasks);
  if (p.ctx.info.isSoftware && !pre) {
    const sel = new HostMagnitudeSelect(label, p.tasks, ranks);
    const { granularity, chunkElements, onRead } = p.stream.options;
    const chunks = (scope ? [scope] : p.stream.tensors).flatMap((t) => chunkRanges(t, granularity, chunkElements).map((r) => ({ t, ...r })));
    const bytes = chunks.reduce((n, c) => n + c.count * p.tasks * 4, 0);
    const kept: Float32Array[] | null = bytes <= KEEP_BYTES ? [] : null;
    while (!sel.done) {
      sel.beginPass();
      for (const [i, { t, start, count }] of chunks.entries()) {
        throwIfAborted(p.source.signal);
        let tau = kept?.[i];
        if (!tau) {
          tau = await hostTaskVectorStack(p.source, t, start, count, onRead);
          kept?.push(tau);
        }
        sel.feed(tau, p.tasks, count, segments);
      }
      await sel.endPass();
    }
    return sel.results();
  }
  const sel = new MagnitudeSelect(p.ctx, { label, segments: p.tasks, ranks });
  const visit = scope ? (f: Parameters<typeof p.stream.forEach>[0]) => p.stream.forTensor(scope, f) : (f: Parameters<typeof p.stream.forEach>[0]) => p.stream.forEach(f);
  try {
    while (!sel.done) {
      sel.beginPass();
      await visit(async (c) => {
        const stack = pre ? stackCopy(p, c) : c.stack;
        pre?.(p, c, stack);
        sel.feed(stack, p.tasks, c.count, segments);
      });
      await sel.endPass();
    }
    return sel.results();
  } finally {
    sel.destroy();
  }
}
