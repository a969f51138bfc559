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
 * element of every segment exactly once per pass, in any chunking. CPU twin: src/engine/reference/select.ts.
 */
import { ConfigError, GpuError } from '../errors';
import { WORKGROUP_SIZE } from './constants';
import type { GpuContext } from './device';
import { readBuffer, specialisedPipeline } from './kernels';
import { bind, launch } from './launch';
import { QuadRows } from './mergeKernels';

/** Per requested rank: the selected |x| as f32 bits, and how many elements are strictly greater / equal. */
export interface MagnitudeSelection {
  bits: Uint32Array;
  greater: Float64Array;
  equal: Float64Array;
}

/** Key bits resolved by pass 2; pass 1 resolves the rest. */
const LOW_BITS = 15;
const HIGH_BINS = 1 << (31 - LOW_BITS);
const LOW_BINS = 1 << LOW_BITS;
/** vec4s per thread of select_histogram: amortizes the per-thread bookkeeping. */
const PER_THREAD = 8;
/**
 * Most entries of a pass's prefix tables (select_histogram LOOKUP): 4 MiB. Finding a key's slot in a table measured
 * as fast as one compare against a single slot, and 2.8x faster than trying the top-k curve's 8 slots in turn (pass 2
 * over 8 x 1M elements on SwiftShader: about 230 ms against 600 to 670 ms); a wider pass tries the slots in turn.
 */
const LOOKUP_MAX_ENTRIES = 1 << 20;
/** A table entry for a prefix that is no slot's (select_histogram NO_SLOT). */
const NO_SLOT = 0xffffffff;
/** A shift that maps every 31-bit key to prefix 0 (pass 1 has one slot per segment). */
const NO_PREFIX_SHIFT = 31;
const TWO_32 = 2 ** 32;

/** Where a rank sits in a histogram: its digit, the elements in higher digits, the elements in its digit. */
interface Located {
  digit: number;
  above: number;
  count: number;
}

/** Count of bin `bin` in a readback of (low, high) word pairs. */
function countAt(hist: Uint32Array, bin: number): number {
  return hist[2 * bin]! + hist[2 * bin + 1]! * TWO_32;
}

/** Total count of the bins of one slot. */
function slotTotal(hist: Uint32Array, slot: number, bins: number): number {
  let total = 0;
  for (let d = 0; d < bins; d++) total += countAt(hist, slot * bins + d);
  return total;
}

/** Locates descending ranks (each < the slot's total) in one slot's histogram with a single sweep from the top bin. */
function locate(hist: Uint32Array, slot: number, bins: number, ranks: readonly number[]): Located[] {
  const order = ranks.map((_, i) => i).sort((i, j) => ranks[i]! - ranks[j]!);
  const out: Located[] = new Array<Located>(ranks.length);
  let above = 0;
  let k = 0;
  for (let d = bins - 1; d >= 0 && k < order.length; d--) {
    const count = countAt(hist, slot * bins + d);
    while (k < order.length && ranks[order[k]!]! < above + count) out[order[k++]!] = { digit: d, above, count };
    above += count;
  }
  return out;
}

/** One pass's layout: which slots (key prefixes) each segment has and where they are. */
interface PassPlan {
  shift: number;
  digitMask: number;
  prefixShift: number;
  bins: number;
  /** Key prefix of every slot. */
  prefixes: number[];
  /** Per segment: first slot and slot count (0 = the segment is not counted this pass). */
  firstSlot: number[];
  slotCount: number[];
  /**
   * Per segment a table of slot indices (NO_SLOT elsewhere) for the prefixes first .. first + length - 1, all tables
   * in `entries` (select_histogram's LOOKUP); null where they would exceed LOOKUP_MAX_ENTRIES: slots tried in turn.
   */
  lookup: { start: number[]; first: number[]; length: number[]; entries: Uint32Array<ArrayBuffer> } | null;
}

/** Pass-1 outcome for one rank: its 16-bit prefix and the elements in higher prefixes. */
interface HighDigit {
  prefix: number;
  above: number;
  inPrefix: number;
}

/** Streaming exact k-th-largest-magnitude selection over segments (see the file comment). */
export class MagnitudeSelect {
  private readonly label: string;
  private readonly ranks: number[][];
  private passes = 0;
  private active: { plan: PassPlan; hist: GPUBuffer; histBytes: number; slots: GPUBuffer } | null = null;
  private fed: Float64Array;
  private firstCounts: Float64Array | null = null;
  private high: HighDigit[][] | null = null;
  private final: MagnitudeSelection[] | null = null;
  private readonly quadRows: QuadRows;

  /** segments: independent populations (e.g. one per task); ranks[s]: descending ranks wanted in segment s (0 = largest |x|). */
  constructor(
    private readonly ctx: GpuContext,
    opts: { label: string; segments: number; ranks: readonly (readonly number[])[] },
  ) {
    this.label = opts.label;
    this.quadRows = new QuadRows(ctx, opts.label);
    const { segments, ranks } = opts;
    if (!Number.isInteger(segments) || segments < 1) throw new ConfigError(`${this.label}.segments`, `must be a positive integer, got ${segments}`);
    if (ranks.length !== segments) throw new ConfigError(`${this.label}.ranks`, `needs one rank list per segment (${segments}), got ${ranks.length}`);
    ranks.forEach((list, s) =>
      list.forEach((r) => {
        if (!Number.isSafeInteger(r) || r < 0) throw new ConfigError(`${this.label} segment ${s}`, `rank must be a non-negative integer, got ${r}`);
      }),
    );
    this.ranks = ranks.map((list) => [...list]);
    this.fed = new Float64Array(segments);
    if (this.ranks.every((list) => list.length === 0)) this.final = this.ranks.map(() => emptySelection(0));
  }

  /** All ranks resolved. */
  get done(): boolean {
    return this.final !== null;
  }

  /** Passes started so far. */
  get pass(): number {
    return this.passes;
  }

  /** Starts the next pass: allocates and zeroes its histograms. */
  beginPass(): void {
    if (this.done) throw new GpuError('validation', `${this.label}: selection is done, no pass to begin`);
    if (this.active) throw new GpuError('validation', `${this.label}: pass ${this.passes} has not ended`);
    if (this.passes > 0 && !this.high) throw new GpuError('validation', `${this.label}: pass 1 failed, start a new selection`);
    const plan = this.passes === 0 ? this.highPlan() : this.lowPlan();
    const histBytes = plan.prefixes.length * plan.bins * 8;
    const hist = this.ctx.createBuffer(`${this.label} histogram`, histBytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
    const words: Uint32Array<ArrayBuffer> = plan.lookup?.entries ?? Uint32Array.from(plan.prefixes);
    const slots = this.ctx.createBuffer(`${this.label} slots`, words.byteLength, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
    this.ctx.device.queue.writeBuffer(slots, 0, words);
    this.active = { plan, hist, histBytes, slots };
    this.fed = new Float64Array(this.ranks.length);
    this.passes++;
  }

  /** Feeds one chunk: rows of `stack` ([rows, numel] f32); row r belongs to segment segmentOfRow[r] (-1 = skip row). */
  feed(stack: GPUBuffer, rows: number, numel: number, segmentOfRow: readonly number[]): void {
    const active = this.active;
    if (!active) throw new GpuError('validation', `${this.label}: feed outside a pass (call beginPass first)`);
    const kernel = `${this.label} feed`;
    checkChunk(kernel, rows, numel, segmentOfRow, this.ranks.length);
    bind(this.ctx, kernel, stack, rows * numel * 4);
    const { plan } = active;
    const listed: number[] = [];
    const { lookup } = plan;
    segmentOfRow.forEach((s, r) => {
      if (s < 0) return;
      this.fed[s]! += numel;
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
    const active = this.active;
    if (!active) throw new GpuError('validation', `${this.label}: endPass without beginPass`);
    this.active = null;
    let hist: Uint32Array;
    try {
      const bytes = await readBuffer(this.ctx, active.hist, active.histBytes);
      hist = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    } finally {
      this.ctx.destroyBuffer(active.hist);
      this.ctx.destroyBuffer(active.slots);
    }
    if (this.passes === 1) this.resolveHigh(active.plan, hist);
    else this.resolveLow(active.plan, hist);
  }

  /** Per segment, per requested rank: the selected |x| as f32 bits (u32), and how many elements are strictly greater / equal. */
  results(): MagnitudeSelection[] {
    if (!this.final) throw new GpuError('validation', `${this.label}: results before the selection is done (pass ${this.passes})`);
    return this.final;
  }

  /** Total elements fed per segment in the last pass. */
  counts(): Float64Array {
    return Float64Array.from(this.fed);
  }

  /** Frees the GPU buffers of a pass in progress. */
  destroy(): void {
    this.quadRows.destroy();
    if (!this.active) return;
    this.ctx.destroyBuffer(this.active.hist);
    this.ctx.destroyBuffer(this.active.slots);
    this.active = null;
  }

  /** Pass 1: one slot per segment that has ranks, binned by the high 16 key bits. */
  private highPlan(): PassPlan {
    const plan: PassPlan = { shift: LOW_BITS, digitMask: HIGH_BINS - 1, prefixShift: NO_PREFIX_SHIFT, bins: HIGH_BINS, ...noSlots(), lookup: null };
    for (const list of this.ranks) {
      plan.firstSlot.push(plan.prefixes.length);
      plan.slotCount.push(list.length > 0 ? 1 : 0);
      if (list.length > 0) plan.prefixes.push(0);
    }
    plan.lookup = prefixTables(plan);
    return plan;
  }

  /** Pass 2: one slot per distinct selected 16-bit prefix of each segment, binned by the low 15 key bits. */
  private lowPlan(): PassPlan {
    const plan: PassPlan = { shift: 0, digitMask: LOW_BINS - 1, prefixShift: LOW_BITS, bins: LOW_BINS, ...noSlots(), lookup: null };
    for (const digits of this.high!) {
      const distinct = [...new Set(digits.map((h) => h.prefix))];
      plan.firstSlot.push(plan.prefixes.length);
      plan.slotCount.push(distinct.length);
      plan.prefixes.push(...distinct);
    }
    plan.lookup = prefixTables(plan);
    return plan;
  }

  /** Checks every rank against its segment's count and finds each rank's 16-bit prefix. */
  private resolveHigh(plan: PassPlan, hist: Uint32Array): void {
    this.firstCounts = Float64Array.from(this.fed);
    this.high = this.ranks.map((list, s) => {
      const count = this.fed[s]!;
      for (const r of list) {
        if (r >= count) throw new ConfigError(`${this.label} segment ${s}`, `rank ${r} requested but the segment has only ${count} elements`);
      }
      if (list.length === 0) return [];
      const slot = plan.firstSlot[s]!;
      const total = slotTotal(hist, slot, plan.bins);
      if (total !== count) throw new GpuError('internal', `${this.label} segment ${s}: histogram counts ${total} elements, ${count} were fed`);
      return locate(hist, slot, plan.bins, list).map((l) => ({ prefix: l.digit, above: l.above, inPrefix: l.count }));
    });
  }

  /** Finds each rank's low 15 bits under its prefix; checks that pass 2 saw the same data as pass 1. */
  private resolveLow(plan: PassPlan, hist: Uint32Array): void {
    this.ranks.forEach((_, s) => {
      if (this.fed[s] !== this.firstCounts![s]) {
        throw new ConfigError(`${this.label} segment ${s}`, `pass 2 was fed ${this.fed[s]} elements, pass 1 ${this.firstCounts![s]}`);
      }
    });
    this.final = this.ranks.map((list, s) => {
      const out = emptySelection(list.length);
      const digits = this.high![s]!;
      for (let k = 0; k < plan.slotCount[s]!; k++) {
        const slot = plan.firstSlot[s]! + k;
        const prefix = plan.prefixes[slot]!;
        const members = digits.flatMap((h, i) => (h.prefix === prefix ? [i] : []));
        const total = slotTotal(hist, slot, plan.bins);
        const expected = digits[members[0]!]!.inPrefix;
        if (total !== expected) {
          const where = `prefix 0x${prefix.toString(16)}: ${total} vs ${expected} elements`;
          throw new ConfigError(`${this.label} segment ${s}`, `the data fed in pass 2 differs from pass 1 (${where})`);
        }
        const found = locate(hist, slot, plan.bins, members.map((i) => list[i]! - digits[i]!.above));
        members.forEach((i, m) => {
          const low = found[m]!;
          out.bits[i] = ((prefix << LOW_BITS) | low.digit) >>> 0;
          out.greater[i] = digits[i]!.above + low.above;
          out.equal[i] = low.count;
        });
      }
      return out;
    });
  }
}

/** The prefix tables of a pass (PassPlan.lookup), or null when they would take more than LOOKUP_MAX_ENTRIES. */
function prefixTables(plan: PassPlan): PassPlan['lookup'] {
  const start: number[] = [];
  const first: number[] = [];
  const length: number[] = [];
  let total = 0;
  plan.slotCount.forEach((count, s) => {
    const own = plan.prefixes.slice(plan.firstSlot[s]!, plan.firstSlot[s]! + count);
    start.push(total);
    first.push(count ? Math.min(...own) : 0);
    length.push(count ? Math.max(...own) - first[s]! + 1 : 0);
    total += length[s]!;
  });
  if (total > LOOKUP_MAX_ENTRIES) return null;
  const entries = new Uint32Array(Math.max(total, 1)).fill(NO_SLOT);
  plan.slotCount.forEach((count, s) => {
    for (let g = plan.firstSlot[s]!; g < plan.firstSlot[s]! + count; g++) entries[start[s]! + plan.prefixes[g]! - first[s]!] = g;
  });
  return { start, first, length, entries };
}

/** An empty slot layout (filled per pass). */
function noSlots(): Pick<PassPlan, 'prefixes' | 'firstSlot' | 'slotCount'> {
  return { prefixes: [], firstSlot: [], slotCount: [] };
}

/** A selection result with room for n ranks. */
function emptySelection(n: number): MagnitudeSelection {
  return { bits: new Uint32Array(n), greater: new Float64Array(n), equal: new Float64Array(n) };
}

/** Checks a chunk's shape and row-to-segment map (shared with BandMask). */
export function checkChunk(kernel: string, rows: number, numel: number, segmentOfRow: readonly number[], segments: number): void {
  if (!Number.isInteger(rows) || rows < 0 || !Number.isInteger(numel) || numel < 0) {
    throw new GpuError('validation', `${kernel}: rows and numel must be non-negative integers, got ${rows} x ${numel}`);
  }
  if (segmentOfRow.length !== rows) {
    throw new GpuError('validation', `${kernel}: segmentOfRow has ${segmentOfRow.length} entries for ${rows} rows`);
  }
  segmentOfRow.forEach((s, r) => {
    if (!Number.isInteger(s) || s < -1 || s >= segments) {
      throw new GpuError('validation', `${kernel}: row ${r} maps to segment ${s}, not in -1..${segments - 1}`);
    }
  });
}
