/**
 * Exact magnitude selection over data streamed in chunks: the k-th largest |x| of each segment (e.g. per task over a
 * whole model for global TIES) without sorting and without the data ever sitting on the GPU at once.
 *
 * Keys are the u32 `bits(x) & 0x7fffffff` (-0 == 0, NaN above Infinity; exact and total). It is a two-digit radix
 * select: pass 1 counts the high 16 key bits of every element in a 65536-bin histogram per segment; the host walks the
 * bins from the top to find the bin holding each requested rank; pass 2 counts the low 15 bits of the elements under
 * each selected 16-bit prefix (one 32768-bin histogram per distinct prefix). **Cost: exactly 2 streaming reads of the
 * data (2 passes)**, plus one small readback per pass. The kernel finds each key's slot (the prefix under study) in a
 * table per segment (LOOKUP_MAX_ENTRIES). GPU memory depends only on segments, ranks and bins (pass 1: 512 KiB per
 * segment with ranks; pass 2: 256 KiB per distinct prefix, and tables of at most 4 MiB), never on the data size,
 * except that a chunk whose rows are not a multiple of 4 floats long is read through one reused aligned copy
 * (QuadRows: the kernel reads whole vec4s). Counts are 64-bit, so segments of any size work.
 *
 * Usage: `while (!sel.done) { sel.beginPass(); for each chunk: sel.feed(...); await sel.endPass(); }`, streaming every
 * element of every segment exactly once per pass, in any chunking. CPU twin: src/engine/reference/select.ts. The passes'
 * layouts and what their histograms say are selectPasses.ts's, shared with the host's select (merge/plans/hostSelect.ts).
 */
import { GpuError } from '../errors';
import { WORKGROUP_SIZE } from './constants';
import type { GpuContext } from './device';
import { readBuffer, specialisedPipeline } from './kernels';
import { bind, launch } from './launch';
import { QuadRows } from './mergeKernels';
import { checkChunk, SelectionRun } from './selectPasses';


/** vec4s per thread of select_histogram: amortizes the per-thread bookkeeping. */
const PER_THREAD = 8;
const TWO_32 = 2 ** 32;

/** Streaming exact k-th-largest-magnitude selection over segments (see the file comment). */
export class MagnitudeSelect extends SelectionRun {
  private buffers: { hist: GPUBuffer; histBytes: number; slots: GPUBuffer } | null = null;
  private readonly quadRows: QuadRows;

  /** segments: independent populations (e.g. one per task); ranks[s]: descending ranks wanted in segment s (0 = largest |x|). */
  constructor(
    private readonly ctx: GpuContext,
    opts: { label: string; segments: number; ranks: readonly (readonly number[])[] },
  ) {
    super(opts.label, opts.segments, opts.ranks);
    this.quadRows = new QuadRows(ctx, opts.label);
  }

  private get label(): string {
    return this.state.label;
  }

  /** Starts the next pass: allocates and zeroes its histograms. */
  beginPass(): void {
    const plan = this.state.begin();
    const histBytes = plan.prefixes.length * plan.bins * 8;
    const hist = this.ctx.createBuffer(`${this.label} histogram`, histBytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
    const words: Uint32Array<ArrayBuffer> = plan.lookup?.entries ?? Uint32Array.from(plan.prefixes);
    const slots = this.ctx.createBuffer(`${this.label} slots`, words.byteLength, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
    this.ctx.device.queue.writeBuffer(slots, 0, words);
    this.buffers = { hist, histBytes, slots };
  }

  /** Feeds one chunk: rows of `stack` ([rows, numel] f32); row r belongs to segment segmentOfRow[r] (-1 = skip row). */
  feed(stack: GPUBuffer, rows: number, numel: number, segmentOfRow: readonly number[]): void {
    const plan = this.state.feeding();
    const active = this.buffers!;
    const kernel = `${this.label} feed`;
    checkChunk(kernel, rows, numel, segmentOfRow, this.state.ranks.length);
    bind(this.ctx, kernel, stack, rows * numel * 4);
    const listed: number[] = [];
    const { lookup } = plan;
    segmentOfRow.forEach((s, r) => {
      if (s < 0) return;
      this.state.addFed(s, numel);
      if (plan.slotCount[s]! === 0) return;
      if (lookup) listed.push(r, lookup.start[s]!, lookup.first[s]!, lookup.length[s]!);
      else listed.push(r, plan.firstSlot[s]!, plan.slotCount[s]!, 0);
    });
    const listedRows = listed.length / 4;
    if (listedRows === 0 || numel === 0) return;
    const { buffer, quads } = this.quadRows.of(stack, rows, numel);
    const blocks = Math.ceil(quads / (WORKGROUP_SIZE * PER_THREAD));
    const maxDim = this.ctx.info.limits.maxComputeWorkgroupsPerDimension;
    if (blocks > maxDim || listedRows > maxDim) {
      throw new GpuError('validation', `${kernel}: ${listedRows} rows of ${numel} elements exceed a ${maxDim}x${maxDim} grid (use smaller chunks)`);
    }
    const rowInfo = this.ctx.createBuffer(`${kernel} rows`, listed.length * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
    try {
      this.ctx.device.queue.writeBuffer(rowInfo, 0, Uint32Array.from(listed));
      const bindings = [
        { buffer: rowInfo },
        { buffer: active.slots },
        bind(this.ctx, kernel, buffer, rows * quads * 16),
        { buffer: active.hist },
      ];
      const params = [numel, quads, plan.shift, plan.digitMask, plan.prefixShift, plan.bins, PER_THREAD];
      const pipeline = specialisedPipeline(this.ctx, 'select_histogram', { LOOKUP: lookup ? 1 : 0 });
      launch(this.ctx, 'select_histogram', params, bindings, { x: blocks, y: listedRows }, { pipeline });
    } finally {
      this.ctx.destroyBuffer(rowInfo);
    }
  }

  /** Finishes a pass (reads back the small histograms, narrows the prefixes). */
  async endPass(): Promise<void> {
    const plan = this.state.end();
    const active = this.buffers!;
    this.buffers = null;
    let hist: Uint32Array;
    try {
      const bytes = await readBuffer(this.ctx, active.hist, active.histBytes);
      hist = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    } finally {
      this.ctx.destroyBuffer(active.hist);
      this.ctx.destroyBuffer(active.slots);
    }
    // The kernel counts in (low, high) u32 word pairs.
    const counts = new Float64Array(hist.length / 2);
    for (let b = 0; b < counts.length; b++) counts[b] = hist[2 * b]! + hist[2 * b + 1]! * TWO_32;
    this.state.resolve(plan, counts);
  }

  /** Frees the GPU buffers of a pass in progress. */
  destroy(): void {
    this.quadRows.destroy();
    if (!this.buffers) return;
    this.ctx.destroyBuffer(this.buffers.hist);
    this.ctx.destroyBuffer(this.buffers.slots);
    this.buffers = null;
  }
}
