/**
 * Exact rank-band masks over streamed segments (mergekit `scope=tensor` magnitude / breadcrumbs): keep exactly the
 * elements whose descending magnitude rank is in [from, to), where among equal |x| the lower flat index (element
 * order in the segment, chunks fed in order) comes first (topk.ts `rankBandMask`). Everything else is zeroed in place.
 *
 * Built on MagnitudeSelect: the keys a and b at ranks `from` and `to - 1` (see `bandRanks`) split each segment into
 * b < |x| < a (kept), |x| > a or |x| < b (dropped), and the tie groups |x| == a or b. A tie group lying wholly inside
 * the band is kept without further work. Only a group the band cuts needs ordinals: per chunk, band_count counts each
 * tile's members, the host prefix-sums them (with a running carry per segment across chunks, in float64) into
 * per-tile ordinal windows, and band_mask scans the ordinals inside each tile. Cost per chunk: one read-write pass,
 * plus one read pass and a small readback when the chunk holds a cut tie group. CPU twin: reference/select.ts
 * `bandMaskRef`.
 *
 * Usage: select the ranks `bandRanks(bands, counts)` with MagnitudeSelect over the same segments, then
 * `new BandMask(ctx, { label, bands, counts, selection: sel.results() })` and `await apply(...)` every chunk, each
 * segment's chunks in element order (the order they were fed to the selection).
 */
import { ConfigError } from '../errors';
import { WORKGROUP_SIZE } from './constants';
import type { GpuContext } from './device';
import { workgroupGrid } from './dispatch';
import { readBuffer } from './kernels';
import { bind, launch } from './launch';
import { checkChunk, type MagnitudeSelection } from './selectPasses';

/** Descending magnitude ranks [from, to) to keep (0 = largest |x|); `to` may exceed the element count. */
export interface RankBand {
  from: number;
  to: number;
}

/** Consecutive elements per thread in band_count / band_mask (a tile is WORKGROUP_SIZE times this). */
const PER_THREAD = 16;
const TILE = WORKGROUP_SIZE * PER_THREAD;
/** An ordinal window that keeps a whole tie group. */
const ALL = 0xffffffff;

/** The ranks MagnitudeSelect must find for `bands`: [from, min(to, count) - 1], or none for an empty band. */
export function bandRanks(bands: readonly RankBand[], counts: ArrayLike<number>): number[][] {
  return bands.map((band, s) => {
    const to = Math.min(band.to, counts[s] ?? 0);
    return band.from < to ? [band.from, to - 1] : [];
  });
}

/** One segment's band in key terms, and the tie ordinals seen so far. */
export interface SegmentPlan {
  from: number;
  to: number;
  count: number;
  /** Nothing to zero: the band covers the whole segment. */
  keepAll: boolean;
  a: number;
  b: number;
  /** Elements with key > a / key > b. */
  greaterA: number;
  greaterB: number;
  equalA: number;
  equalB: number;
  /** The tie group of a / of b (b != a) is cut by the band, so its members need ordinals. */
  cutA: boolean;
  cutB: boolean;
  seenA: number;
  seenB: number;
  fed: number;
}

/**
 * The bands of a mask in key terms, with the elements and tie ordinals seen so far, checked against the selection
 * (shared by BandMask and the host's mask, merge/plans/hostSelect.ts).
 */
export class BandPlans {
  readonly plans: SegmentPlan[];

  constructor(
    readonly label: string,
    opts: { bands: readonly RankBand[]; counts: ArrayLike<number>; selection: readonly MagnitudeSelection[] },
  ) {
    const { bands, counts, selection } = opts;
    if (counts.length !== bands.length || selection.length !== bands.length) {
      const got = `${bands.length}, ${counts.length}, ${selection.length}`;
      throw new ConfigError(label, `needs one band, count and selection per segment, got ${got}`);
    }
    const ranks = bandRanks(bands, counts);
    this.plans = bands.map((band, s) => {
      const field = `${label} segment ${s}`;
      const count = counts[s]!;
      if (!Number.isSafeInteger(band.from) || band.from < 0 || !(band.to >= 0)) throw new ConfigError(field, `bad band [${band.from}, ${band.to})`);
      if (!Number.isSafeInteger(count) || count < 0) throw new ConfigError(field, `bad element count ${count}`);
      const sel = selection[s]!;
      if (sel.bits.length !== ranks[s]!.length) {
        throw new ConfigError(field, `selection has ${sel.bits.length} ranks, the band needs ${ranks[s]!.length} (bandRanks)`);
      }
      return planSegment(band.from, Math.min(band.to, count), count, sel);
    });
  }

  /** Counts a row of `numel` elements of segment s (in element order); returns the segment's plan. */
  feed(s: number, numel: number): SegmentPlan {
    const plan = this.plans[s]!;
    plan.fed += numel;
    if (plan.fed > plan.count) throw new ConfigError(`${this.label} segment ${s}`, `fed ${plan.fed} elements, the segment has ${plan.count}`);
    return plan;
  }

  /** Once a segment is complete, its tie counts must match the selection's (else the data changed in between). */
  checkComplete(s: number): void {
    const plan = this.plans[s]!;
    if (plan.fed === plan.count && ((plan.cutA && plan.seenA !== plan.equalA) || (plan.cutB && plan.seenB !== plan.equalB))) {
      throw new ConfigError(`${this.label} segment ${s}`, 'the data differs from the data the selection saw (tie counts do not match)');
    }
  }
}

/** Streaming exact rank-band mask with index tie-break (see the file comment). */
export class BandMask {
  private readonly label: string;
  private readonly bands: BandPlans;
  private destroyed = false;

  constructor(
    private readonly ctx: GpuContext,
    opts: { label: string; bands: readonly RankBand[]; counts: ArrayLike<number>; selection: readonly MagnitudeSelection[] },
  ) {
    this.label = opts.label;
    this.bands = new BandPlans(opts.label, opts);
  }

  /** Zeroes, in place, the entries of `stack` ([rows, numel] f32) outside their segment's band; -1 rows are untouched. */
  async apply(stack: GPUBuffer, rows: number, numel: number, segmentOfRow: readonly number[]): Promise<void> {
    const kernel = `${this.label} apply`;
    if (this.destroyed) throw new ConfigError(this.label, 'apply after destroy');
    checkChunk(kernel, rows, numel, segmentOfRow, this.bands.plans.length);
    const stackBinding = bind(this.ctx, kernel, stack, rows * numel * 4);
    const listed: number[] = [];
    segmentOfRow.forEach((s, r) => {
      if (s < 0) return;
      const plan = this.bands.feed(s, numel);
      if (numel > 0 && !plan.keepAll) listed.push(r);
    });
    if (listed.length === 0) return;
    const tilesPerRow = Math.ceil(numel / TILE);
    const tiles = listed.length * tilesPerRow;
    const rowInfo = new Uint32Array(listed.length * 4);
    listed.forEach((r, i) => {
      const plan = this.bands.plans[segmentOfRow[r]!]!;
      rowInfo.set([r, plan.a, plan.b, 0], 4 * i);
    });
    const ordered = listed.some((r) => this.bands.plans[segmentOfRow[r]!]!.cutA || this.bands.plans[segmentOfRow[r]!]!.cutB);
    const grid = workgroupGrid(tiles, this.ctx.info.limits.maxComputeWorkgroupsPerDimension);
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
    const rowBuf = this.ctx.createBuffer(`${kernel} rows`, rowInfo.byteLength, usage);
    const windowBuf = this.ctx.createBuffer(`${kernel} windows`, tiles * 16, usage);
    try {
      this.ctx.device.queue.writeBuffer(rowBuf, 0, rowInfo);
      const tieCounts = ordered ? await this.countTies(kernel, rowBuf, stackBinding, numel, listed.length, tilesPerRow, grid) : null;
      const windows = new Uint32Array(tiles * 4);
      listed.forEach((r, i) => this.fillWindows(segmentOfRow[r]!, windows, tieCounts, i * tilesPerRow, tilesPerRow));
      for (const s of new Set(listed.map((r) => segmentOfRow[r]!))) this.bands.checkComplete(s);
      this.ctx.device.queue.writeBuffer(windowBuf, 0, windows);
      const params = [numel, tilesPerRow, listed.length, PER_THREAD, ordered ? 1 : 0];
      launch(this.ctx, 'band_mask', params, [{ buffer: rowBuf }, { buffer: windowBuf }, stackBinding], grid);
    } finally {
      this.ctx.destroyBuffer(rowBuf);
      this.ctx.destroyBuffer(windowBuf);
    }
  }

  /** Ends the mask's use (its GPU buffers live only inside apply, so none stay allocated); later applies throw. */
  destroy(): void {
    this.destroyed = true;
  }

  /** Runs band_count and reads back each tile's (== a, == b) counts. */
  private async countTies(
    kernel: string,
    rowBuf: GPUBuffer,
    stack: GPUBufferBinding,
    numel: number,
    listedRows: number,
    tilesPerRow: number,
    grid: { x: number; y: number },
  ): Promise<Uint32Array> {
    const tiles = listedRows * tilesPerRow;
    const countBuf = this.ctx.createBuffer(`${kernel} tie counts`, tiles * 8, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
    try {
      launch(this.ctx, 'band_count', [numel, tilesPerRow, listedRows, PER_THREAD], [{ buffer: rowBuf }, stack, { buffer: countBuf }], grid);
      const bytes = await readBuffer(this.ctx, countBuf, tiles * 8);
      return new Uint32Array(bytes.buffer, bytes.byteOffset, tiles * 2);
    } finally {
      this.ctx.destroyBuffer(countBuf);
    }
  }

  /** Writes the ordinal windows of one row's tiles and advances the segment's tie carries. */
  private fillWindows(s: number, windows: Uint32Array, tieCounts: Uint32Array | null, firstTile: number, tilesPerRow: number): void {
    const plan = this.bands.plans[s]!;
    for (let t = firstTile; t < firstTile + tilesPerRow; t++) {
      windows.set(tileWindow(plan, plan.cutA, plan.greaterA, plan.seenA), 4 * t);
      windows.set(tileWindow(plan, plan.cutB, plan.greaterB, plan.seenB), 4 * t + 2);
      if (plan.cutA) plan.seenA += tieCounts![2 * t]!;
      if (plan.cutB) plan.seenB += tieCounts![2 * t + 1]!;
    }
  }
}

/** Window [lo, hi) of in-tile ordinals kept for one tie group, given the members seen in earlier tiles. */
function tileWindow(plan: SegmentPlan, cut: boolean, greater: number, seen: number): [number, number] {
  if (plan.from >= plan.to) return [0, 0];
  if (!cut) return [0, ALL];
  const clamp = (x: number) => Math.min(TILE, Math.max(0, x));
  return [clamp(plan.from - greater - seen), clamp(plan.to - greater - seen)];
}

/** A segment's band in key terms from the selection of ranks [from, to - 1] (to already clamped to count). */
function planSegment(from: number, to: number, count: number, sel: MagnitudeSelection): SegmentPlan {
  const base = { from, to, count, seenA: 0, seenB: 0, fed: 0 };
  if (from >= to) {
    return { ...base, keepAll: false, a: 0, b: 0, greaterA: 0, greaterB: 0, equalA: 0, equalB: 0, cutA: false, cutB: false };
  }
  const a = sel.bits[0]!;
  const b = sel.bits[1]!;
  const greaterA = sel.greater[0]!;
  const greaterB = sel.greater[1]!;
  const equalA = sel.equal[0]!;
  const equalB = sel.equal[1]!;
  const cuts = (greater: number, equal: number) => greater < from || greater + equal > to;
  return {
    ...base,
    keepAll: from === 0 && to === count,
    a,
    b,
    greaterA,
    greaterB,
    equalA,
    equalB,
    cutA: cuts(greaterA, equalA),
    cutB: b !== a && cuts(greaterB, equalB),
  };
}
