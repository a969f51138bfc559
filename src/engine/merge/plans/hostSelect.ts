/**
 * Exact magnitude selection per task (the k-th largest |tau| of each task over a tensor or the whole model: TIES's
 * thresholds, the per-tensor bands of TIES and Breadcrumbs, the top-k curve). On a GPU, MagnitudeSelect
 * (gpu/select.ts) counts the passes' histograms with select_histogram over the stream's stacks, and BandMask applies
 * a band. On a CPU-emulated adapter the same passes (gpu/selectPasses.ts) are counted here on the host, from the
 * chunks' task vectors formed from the sources (hostTaskVectorStack), and a band is applied here (HostBandMask) and
 * written over the stack: there select_histogram's atomic increments into 65536-bin histograms, each pass's clear and
 * readback of T of them per tensor, and band_mask made a per-tensor TIES merge 3x slower. The results are the same
 * (the select is exact, the band's tie order the same). A small scope (QUICKSELECT_MAX) skips the passes: a
 * quickselect over each task's keys gives the same keys and counts.
 */
import { ConfigError, throwIfAborted } from '../../errors';
import { MagnitudeSelect } from '../../gpu/select';
import { BandMask, BandPlans, bandRanks, type RankBand } from '../../gpu/bandMask';
import { checkChunk, MAGNITUDE_KEY as MAGNITUDE, SelectionRun, type MagnitudeSelection } from '../../gpu/selectPasses';
import type { AlignedTensor } from '../align';
import { chunkRanges, hostTaskVectorStack, type Chunk } from '../stream';
import { afterTransform, type PlanContext, type StackTransform } from './plan';
import { keyAtRank, maskSpan } from './rowBandHost';
import { stackCopy, taskSegments } from './util';

/** The chunks' task vectors are kept from pass 1 to pass 2 up to this many bytes (else read again). */
const KEEP_BYTES = 256 * 2 ** 20;
/**
 * Scopes of at most this many elements per task are selected by quickselect (HostMagnitudeSelect.quickSelect) instead
 * of the radix passes, whose histograms hold 65536 bins per task in pass 1 and 32768 per selected prefix in pass 2
 * however small the scope: for the demo suite's per-tensor TIES (72 tensors of up to 65536 elements) those
 * allocations, their clearing and the scans of every bin were most of a merge.
 */
const QUICKSELECT_MAX = 1 << 18;

/** A host chunk's f32 bits ([rows, numel] of `values`), once its shape and row-to-segment map are checked. */
function chunkBits(label: string, values: Float32Array, rows: number, numel: number, segmentOfRow: readonly number[], segments: number): Int32Array {
  checkChunk(label, rows, numel, segmentOfRow, segments);
  if (values.length < rows * numel) throw new RangeError(`${label}: ${values.length} values for ${rows} rows of ${numel}`);
  return new Int32Array(values.buffer, values.byteOffset, rows * numel);
}

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
    const bits = chunkBits(`${this.state.label} feed`, values, rows, numel, segmentOfRow, this.state.ranks.length);
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

  /**
   * The radix select's result by quickselect over each segment's keys (rows `segment` of each [segments, count] chunk):
   * per requested rank the key at that descending rank, and how many keys are strictly greater and equal. The same
   * numbers as the passes' (both are exact); a rank beyond the segment's count is the same ConfigError.
   */
  static quickSelect(label: string, chunks: readonly Float32Array[], counts: readonly number[], ranks: readonly (readonly number[])[]): MagnitudeSelection[] {
    const total = counts.reduce((n, c) => n + c, 0);
    const keys = new Int32Array(total);
    return ranks.map((list, s) => {
      for (const r of list) {
        if (r >= total) throw new ConfigError(`${label} segment ${s}`, `rank ${r} requested but the segment has only ${total} elements`);
      }
      const out: MagnitudeSelection = { bits: new Uint32Array(list.length), greater: new Float64Array(list.length), equal: new Float64Array(list.length) };
      if (list.length === 0) return out;
      let at = 0;
      chunks.forEach((chunk, i) => {
        const bits = new Int32Array(chunk.buffer, chunk.byteOffset + s * counts[i]! * 4, counts[i]!);
        for (let j = 0; j < bits.length; j++) keys[at++] = bits[j]! & MAGNITUDE;
      });
      list.forEach((r, i) => {
        const key = keyAtRank(keys, 0, total, r);
        let greater = 0;
        let equal = 0;
        for (let j = 0; j < total; j++) {
          const k = keys[j]!;
          greater += (key - k) >>> 31;
          equal += ((k ^ key) - 1) >>> 31;
        }
        out.bits[i] = key;
        out.greater[i] = greater;
        out.equal[i] = equal;
      });
      return out;
    });
  }
}

/**
 * Whether the host selects: on a CPU-emulated adapter, from the sources, so only where no `pre` changes the stacks or
 * `pre` has a host twin (DARE's drop).
 */
const onHost = (p: PlanContext, pre?: StackTransform) => p.ctx.info.isSoftware && (!pre || !!pre.host);

/** A chunk's task vectors formed on the host from the sources, `pre` applied (its host twin). */
async function hostChunk(p: PlanContext, t: AlignedTensor, start: number, count: number, pre?: StackTransform): Promise<Float32Array<ArrayBuffer>> {
  const tau = await hostTaskVectorStack(p.source, t, start, count, p.stream.options.onRead);
  pre?.host!(p, t, start, tau);
  return tau;
}

/** The host's count of a selection over chunks of task vectors, and the chunks when they fit in KEEP_BYTES. */
async function hostSelect(p: PlanContext, label: string, ranks: readonly (readonly number[])[], tensors: readonly AlignedTensor[], pre?: StackTransform) {
  const segments = taskSegments(p.tasks);
  const sel = new HostMagnitudeSelect(label, p.tasks, ranks);
  const { granularity, chunkElements } = p.stream.options;
  const chunks = tensors.flatMap((t) => chunkRanges(t, granularity, chunkElements).map((r) => ({ t, ...r })));
  const bytes = chunks.reduce((n, c) => n + c.count * p.tasks * 4, 0);
  const kept: Float32Array<ArrayBuffer>[] | null = bytes <= KEEP_BYTES ? [] : null;
  const counts = chunks.map((c) => c.count);
  if (!sel.done && kept && counts.reduce((n, c) => n + c, 0) <= QUICKSELECT_MAX) {
    for (const { t, start, count } of chunks) {
      throwIfAborted(p.source.signal);
      kept.push(await hostChunk(p, t, start, count, pre));
    }
    return { selection: HostMagnitudeSelect.quickSelect(label, kept, counts, ranks), kept: new Map(chunks.map((c, i) => [c.start, kept[i]!])) };
  }
  while (!sel.done) {
    sel.beginPass();
    for (const [i, { t, start, count }] of chunks.entries()) {
      throwIfAborted(p.source.signal);
      let tau = kept?.[i];
      if (!tau) {
        tau = await hostChunk(p, t, start, count, pre);
        kept?.push(tau);
      }
      sel.feed(tau, p.tasks, count, segments);
    }
    await sel.endPass();
  }
  return { selection: sel.results(), kept: kept && kept.length === chunks.length ? new Map(chunks.map((c, i) => [c.start, kept[i]!])) : null };
}

/**
 * Per task, the magnitudes at descending ranks `ranks[t]` of its task vector over `scope` (one tensor, or null: every
 * tensor the stream visits). On a CPU-emulated adapter counted on the host from the sources (after `pre`'s host twin;
 * a `pre` without one selects on the GPU); otherwise MagnitudeSelect over the stream's chunks, each stack after `pre`
 * (on a copy).
 */
export async function selectTaskRanks(p: PlanContext, label: string, ranks: readonly (readonly number[])[], scope: AlignedTensor | null, pre?: StackTransform): Promise<MagnitudeSelection[]> {
  if (onHost(p, pre)) return (await hostSelect(p, label, ranks, scope ? [scope] : p.stream.tensors, pre)).selection;
  const segments = taskSegments(p.tasks);
  const sel = new MagnitudeSelect(p.ctx, { label, segments: p.tasks, ranks });
  const visit = (f: (c: Chunk) => Promise<void>) => (scope ? p.stream.forTensor(scope, f) : p.stream.forEach(f));
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

/** BandMask's result on host arrays: zeroes, in place, the entries outside their segment's band (rows in element order). */
export class HostBandMask {
  private readonly bands: BandPlans;

  constructor(opts: { label: string; bands: readonly RankBand[]; counts: ArrayLike<number>; selection: readonly MagnitudeSelection[] }) {
    this.bands = new BandPlans(opts.label, opts);
  }

  /** Masks the rows of `values` ([rows, numel]); row r belongs to segment segmentOfRow[r] (-1 = untouched). */
  apply(values: Float32Array, rows: number, numel: number, segmentOfRow: readonly number[]): void {
    const bits = chunkBits(`${this.bands.label} apply`, values, rows, numel, segmentOfRow, this.bands.plans.length);
    segmentOfRow.forEach((s, r) => {
      if (s < 0) return;
      const plan = this.bands.feed(s, numel);
      if (!plan.keepAll) {
        if (plan.from >= plan.to) bits.fill(0, r * numel, (r + 1) * numel);
        else maskSpan(bits, r * numel, (r + 1) * numel, plan);
      }
      this.bands.checkComplete(s);
    });
  }
}

/**
 * Each task's rank band over one tensor (TIES's and Breadcrumbs' scope "tensor"): on a CPU-emulated adapter selected
 * and applied on the host (the chunks' task vectors kept from the selection where they fit, the masked ones written
 * over the stack; `pre` applied by its host twin), unless `pre` has none; otherwise MagnitudeSelect and BandMask on
 * the GPU.
 */
export class TensorBand {
  private constructor(
    private readonly gpu: BandMask | null,
    private readonly host: HostBandMask | null,
    private readonly kept: Map<number, Float32Array<ArrayBuffer>> | null,
    private readonly pre?: StackTransform,
  ) {}

  /**
   * Selects the band of every task over tensor `t` (`bands[task]`). The selection depends on the models, the ranks
   * and `pre`'s settings alone: taken from PlanContext.memo when an earlier merge put it there (a lambda move of TIES
   * or Breadcrumbs with scope "tensor", or of DARE then TIES, then skips both passes over the tensor), and put there
   * once made.
   */
  static async select(p: PlanContext, label: string, t: AlignedTensor, bands: readonly RankBand[], pre?: StackTransform): Promise<TensorBand> {
    const counts = new Array<number>(p.tasks).fill(t.numel);
    const ranks = bandRanks(bands, counts);
    const after = afterTransform(pre);
    const key = after === null ? null : `magnitude selection of ${t.name} at ranks ${JSON.stringify(ranks)}${after}`;
    const known = key ? (p.memo?.get(key) as MagnitudeSelection[] | undefined) : undefined;
    let made: { selection: MagnitudeSelection[]; kept: Map<number, Float32Array<ArrayBuffer>> | null };
    if (known) made = { selection: known, kept: null };
    else if (onHost(p, pre)) made = await hostSelect(p, label, ranks, [t], pre);
    else made = { selection: await selectTaskRanks(p, label, ranks, t, pre), kept: null };
    if (key && !known) p.memo?.set(key, made.selection, made.selection.reduce((n, s) => n + s.bits.byteLength + s.greater.byteLength + s.equal.byteLength, 0));
    const { selection, kept } = made;
    if (onHost(p, pre)) return new TensorBand(null, new HostBandMask({ label, bands, counts, selection }), kept, pre);
    return new TensorBand(new BandMask(p.ctx, { label, bands, counts, selection }), null, null);
  }

  /** Masks chunk `c`'s task vectors into `stack` (its stack, or a copy after `pre`), chunks in element order. */
  async apply(p: PlanContext, c: Chunk, stack: GPUBuffer): Promise<void> {
    const segments = taskSegments(p.tasks);
    if (this.gpu) return this.gpu.apply(stack, p.tasks, c.count, segments);
    const tau = this.kept?.get(c.start) ?? (await hostChunk(p, c.tensor, c.start, c.count, this.pre));
    this.kept?.delete(c.start);
    this.host!.apply(tau, p.tasks, c.count, segments);
    p.ctx.device.queue.writeBuffer(stack, 0, tau);
  }

  destroy(): void {
    this.gpu?.destroy();
    this.kept?.clear();
  }
}
