/**
 * The passes of the exact two-digit radix select shared by the GPU's MagnitudeSelect (select.ts: histograms by the
 * select_histogram kernel) and the host's (merge/plans/hostSelect.ts, for CPU-emulated adapters): which key prefixes
 * each pass counts, and what the counted histograms say. Keys are the u32 `bits(x) & 0x7fffffff` (-0 == 0, NaN above
 * Infinity). Pass 1 counts the high 16 key bits of every element per segment and finds the bin holding each
 * requested rank; pass 2 counts the low 15 bits of the elements under each selected 16-bit prefix. Counts are exact
 * up to 2^53, so segments of any size work.
 */
import { ConfigError, GpuError } from '../errors';

/** Per requested rank: the selected |x| as f32 bits, and how many elements are strictly greater / equal. */
export interface MagnitudeSelection {
  bits: Uint32Array;
  greater: Float64Array;
  equal: Float64Array;
}

/** The magnitude key of an f32's bits (`bits & MAGNITUDE_KEY`): its order is |x|'s (see the file comment). */
export const MAGNITUDE_KEY = 0x7fffffff;
/** Key bits resolved by pass 2; pass 1 resolves the rest. */
const LOW_BITS = 15;
const HIGH_BINS = 1 << (31 - LOW_BITS);
const LOW_BINS = 1 << LOW_BITS;
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

/** A pass's counts, bin slot * bins + digit (exact integers up to 2^53). */
export type Histogram = Float64Array;

/** Where a rank sits in a histogram: its digit, the elements in higher digits, the elements in its digit. */
interface Located {
  digit: number;
  above: number;
  count: number;
}

/**
 * Locates descending ranks (each < the slot's total) in one slot's histogram with one sweep from the top bin, and
 * totals the slot. A pass touches every bin of every slot (65536 per segment in pass 1), so this is one tight loop.
 */
function locate(hist: Histogram, slot: number, bins: number, ranks: readonly number[]): { located: Located[]; total: number } {
  const order = ranks.map((_, i) => i).sort((i, j) => ranks[i]! - ranks[j]!);
  const located: Located[] = new Array<Located>(ranks.length);
  const first = slot * bins;
  let above = 0;
  let k = 0;
  for (let d = bins - 1; d >= 0; d--) {
    const c = hist[first + d]!;
    while (k < order.length && ranks[order[k]!]! < above + c) located[order[k++]!] = { digit: d, above, count: c };
    above += c;
  }
  return { located, total: above };
}

/**
 * One pass's layout: an element with key x counts in bin slot * bins + ((x >> shift) & digitMask) when its prefix
 * x >> prefixShift is one of its segment's slots' prefixes.
 */
export interface PassPlan {
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

/** The state of one selection: its ranks, the pass in progress, the elements fed to it, and the results. */
export class SelectPasses {
  readonly ranks: number[][];
  private passes = 0;
  private current: PassPlan | null = null;
  private fed: Float64Array;
  private firstCounts: Float64Array | null = null;
  private high: HighDigit[][] | null = null;
  private final: MagnitudeSelection[] | null = null;

  /** segments: independent populations (e.g. one per task); ranks[s]: descending ranks wanted in segment s (0 = largest |x|). */
  constructor(
    readonly label: string,
    segments: number,
    ranks: readonly (readonly number[])[],
  ) {
    if (!Number.isInteger(segments) || segments < 1) throw new ConfigError(`${label}.segments`, `must be a positive integer, got ${segments}`);
    if (ranks.length !== segments) throw new ConfigError(`${label}.ranks`, `needs one rank list per segment (${segments}), got ${ranks.length}`);
    ranks.forEach((list, s) =>
      list.forEach((r) => {
        if (!Number.isSafeInteger(r) || r < 0) throw new ConfigError(`${label} segment ${s}`, `rank must be a non-negative integer, got ${r}`);
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

  /** Starts the next pass; returns its layout. */
  begin(): PassPlan {
    if (this.done) throw new GpuError('validation', `${this.label}: selection is done, no pass to begin`);
    if (this.current) throw new GpuError('validation', `${this.label}: pass ${this.passes} has not ended`);
    if (this.passes > 0 && !this.high) throw new GpuError('validation', `${this.label}: pass 1 failed, start a new selection`);
    this.current = this.passes === 0 ? this.highPlan() : this.lowPlan();
    this.fed = new Float64Array(this.ranks.length);
    this.passes++;
    return this.current;
  }

  /** The pass in progress, for a feed (throws outside a pass). */
  feeding(): PassPlan {
    if (!this.current) throw new GpuError('validation', `${this.label}: feed outside a pass (call beginPass first)`);
    return this.current;
  }

  /** Counts n elements fed to segment s in this pass. */
  addFed(s: number, n: number): void {
    this.fed[s]! += n;
  }

  /** Ends the pass in progress (throws outside one); returns its layout, for `resolve` once its counts are read. */
  end(): PassPlan {
    const plan = this.current;
    if (!plan) throw new GpuError('validation', `${this.label}: endPass without beginPass`);
    this.current = null;
    return plan;
  }

  /** Reads an ended pass's histogram: pass 1 narrows each rank to a prefix, pass 2 resolves it. */
  resolve(plan: PassPlan, hist: Histogram): void {
    if (this.passes === 1) this.resolveHigh(plan, hist);
    else this.resolveLow(plan, hist);
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
  private resolveHigh(plan: PassPlan, hist: Histogram): void {
    this.firstCounts = Float64Array.from(this.fed);
    this.high = this.ranks.map((list, s) => {
      const fed = this.fed[s]!;
      for (const r of list) {
        if (r >= fed) throw new ConfigError(`${this.label} segment ${s}`, `rank ${r} requested but the segment has only ${fed} elements`);
      }
      if (list.length === 0) return [];
      const { located, total } = locate(hist, plan.firstSlot[s]!, plan.bins, list);
      if (total !== fed) throw new GpuError('internal', `${this.label} segment ${s}: histogram counts ${total} elements, ${fed} were fed`);
      return located.map((l) => ({ prefix: l.digit, above: l.above, inPrefix: l.count }));
    });
  }

  /** Finds each rank's low 15 bits under its prefix; checks that pass 2 saw the same data as pass 1. */
  private resolveLow(plan: PassPlan, hist: Histogram): void {
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
        const { located: found, total } = locate(hist, slot, plan.bins, members.map((i) => list[i]! - digits[i]!.above));
        const expected = digits[members[0]!]!.inPrefix;
        if (total !== expected) {
          const where = `prefix 0x${prefix.toString(16)}: ${total} vs ${expected} elements`;
          throw new ConfigError(`${this.label} segment ${s}`, `the data fed in pass 2 differs from pass 1 (${where})`);
        }
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

/** What a selection (MagnitudeSelect on the GPU, HostMagnitudeSelect on the host) reports of its passes. */
export abstract class SelectionRun {
  protected readonly state: SelectPasses;

  /** segments: independent populations (e.g. one per task); ranks[s]: descending ranks wanted in segment s (0 = largest |x|). */
  constructor(label: string, segments: number, ranks: readonly (readonly number[])[]) {
    this.state = new SelectPasses(label, segments, ranks);
  }

  /** All ranks resolved. */
  get done(): boolean {
    return this.state.done;
  }

  /** Passes started so far. */
  get pass(): number {
    return this.state.pass;
  }

  /** Per segment, per requested rank: the selected |x| as f32 bits (u32), and how many elements are strictly greater / equal. */
  results(): MagnitudeSelection[] {
    return this.state.results();
  }

  /** Total elements fed per segment in the last pass. */
  counts(): Float64Array {
    return this.state.counts();
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
